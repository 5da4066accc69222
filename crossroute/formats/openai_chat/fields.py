"""Typed reads of untrusted client JSON; a wrong type is a 400 naming the field."""

from __future__ import annotations

from typing import Any

from crossroute.ir import GatewayError


def invalid(message: str, param: str | None) -> GatewayError:
    return GatewayError(400, message, kind="invalid_request", param=param)


def optional_str(obj: dict[str, Any], key: str, param: str) -> str | None:
    value = obj.get(key)
    if value is None or isinstance(value, str):
        return value
    raise invalid(f"'{param}' must be a string", param)


def required_str(obj: dict[str, Any], key: str, param: str) -> str:
    value = obj.get(key)
    if isinstance(value, str) and value:
        return value
    raise invalid(f"'{param}' is required and must be a non-empty string", param)


def optional_bool(obj: dict[str, Any], key: str, param: str) -> bool | None:
    value = obj.get(key)
    if value is None or isinstance(value, bool):
        return value
    raise invalid(f"'{param}' must be a boolean", param)


def optional_number(obj: dict[str, Any], key: str, param: str) -> float | None:
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    raise invalid(f"'{param}' must be a number", param)


def optional_count(obj: dict[str, Any], key: str, param: str) -> int | None:
    """A non-negative integer (an integral float like 1024.0 is accepted)."""
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    raise invalid(f"'{param}' must be a non-negative integer", param)


def optional_dict(obj: dict[str, Any], key: str, param: str) -> dict[str, Any] | None:
    value = obj.get(key)
    if value is None or isinstance(value, dict):
        return value
    raise invalid(f"'{param}' must be an object", param)


def required_dict(obj: dict[str, Any], key: str, param: str) -> dict[str, Any]:
    value = obj.get(key)
    if isinstance(value, dict):
        return value
    raise invalid(f"'{param}' is required and must be an object", param)


def optional_list(obj: dict[str, Any], key: str, param: str) -> list[Any] | None:
    value = obj.get(key)
    if value is None or isinstance(value, list):
        return value
    raise invalid(f"'{param}' must be an array", param)

"""Typed reads of untrusted client JSON, shared by every format's request parser.

Each helper takes a value and the path it was found at (`param`, such as
"messages[0].content") and returns it typed, or raises a 400
ir.GatewayError naming that path and what was expected. "optional" helpers
let None (an absent field) through as None; "required" ones do not.
"""

from __future__ import annotations

from typing import Any

from crossroute import ir

# JSON encoders (orjson) write 64-bit integers; a larger one could not go upstream.
INT_MIN, INT_MAX = -(1 << 63), (1 << 63) - 1

_JSON_TYPE_NAMES: dict[type, str] = {
    dict: "object",
    list: "array",
    str: "string",
    bool: "boolean",
    int: "integer",
    float: "number",
}


def bad_request(message: str, param: str | None = None) -> ir.GatewayError:
    return ir.GatewayError(400, message, param=param)


def type_name(value: Any) -> str:
    """The JSON name of a value's type, for error messages."""
    if value is None:
        return "null"
    return _JSON_TYPE_NAMES.get(type(value), type(value).__name__)


def _not_a(expected: str, value: Any, param: str) -> ir.GatewayError:
    if value is None:
        return bad_request(f"'{param}' is required and must be {expected}", param)
    return bad_request(f"'{param}' must be {expected}, got {type_name(value)}", param)


# ---------------------------------------------------------------- objects and arrays


def required_dict(value: Any, param: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _not_a("an object", value, param)
    return value


def optional_dict(value: Any, param: str) -> dict[str, Any] | None:
    return None if value is None else required_dict(value, param)


def dict_or_empty(value: Any, param: str) -> dict[str, Any]:
    """An object, with an absent one read as {}."""
    return {} if value is None else required_dict(value, param)


def required_list(value: Any, param: str) -> list[Any]:
    if not isinstance(value, list):
        raise _not_a("an array", value, param)
    return value


def optional_list(value: Any, param: str) -> list[Any] | None:
    return None if value is None else required_list(value, param)


def list_or_empty(value: Any, param: str) -> list[Any]:
    """An array, with an absent one read as []."""
    return [] if value is None else required_list(value, param)


# ---------------------------------------------------------------- strings


def required_str(value: Any, param: str) -> str:
    """A string; the empty string is accepted."""
    if not isinstance(value, str):
        raise _not_a("a string", value, param)
    return value


def non_empty_str(value: Any, param: str) -> str:
    text = required_str(value, param)
    if not text:
        raise bad_request(f"'{param}' must not be empty", param)
    return text


def optional_str(value: Any, param: str) -> str | None:
    return None if value is None else required_str(value, param)


# ---------------------------------------------------------------- booleans and numbers


def optional_bool(value: Any, param: str) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    raise _not_a("a boolean", value, param)


def optional_int(
    value: Any, param: str, *, minimum: int | None = None, whole_floats: bool = False
) -> int | None:
    """An integer (never a boolean). `whole_floats` also takes a float with
    no fraction, such as 1024.0, as that integer."""
    if value is None:
        return None
    if whole_floats and isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _not_a("an integer", value, param)
    if minimum is not None and value < minimum:
        raise bad_request(f"'{param}' must be at least {minimum}, got {value}", param)
    if not INT_MIN <= value <= INT_MAX:
        raise bad_request(f"'{param}' is out of range: at most {INT_MAX}", param)
    return value


def optional_number(value: Any, param: str) -> float | None:
    """An integer or a float (never a boolean), as a float."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _not_a("a number", value, param)
    return float(value)

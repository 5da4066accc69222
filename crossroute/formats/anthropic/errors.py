"""Anthropic error bodies: `{"type": "error", "error": {"type", "message"}}`."""

from __future__ import annotations

from typing import Any

import orjson

from crossroute import ir

_TYPE_BY_KIND: dict[str, str] = {
    "invalid_request": "invalid_request_error",
    "authentication": "authentication_error",
    "permission": "permission_error",
    "not_found": "not_found_error",
    "request_too_large": "request_too_large",
    "rate_limit": "rate_limit_error",
    "billing": "billing_error",
    "server": "api_error",
    "overloaded": "overloaded_error",
    "timeout": "timeout_error",
    # Anthropic has no 503 type of its own; the SDK picks its class from the status anyway.
    "unavailable": "api_error",
}

_STATUS_BY_TYPE: dict[str, int] = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "conflict_error": 409,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}

_MAX_MESSAGE = 1000


def render_error(err: ir.GatewayError) -> dict[str, Any]:
    error_type = _TYPE_BY_KIND.get(err.kind or ir.kind_for_status(err.status), "api_error")
    return {"type": "error", "error": {"type": error_type, "message": err.message}}


def status_for_error_type(error_type: Any) -> int:
    """The HTTP status an in-stream `error` event of this type stands for."""
    return _STATUS_BY_TYPE.get(error_type, 500) if isinstance(error_type, str) else 500


def error_from_object(status: int, error: dict[str, Any]) -> ir.GatewayError:
    """The canonical error for an Anthropic `error` object, keeping `status`."""
    message = error.get("message")
    error_type = error.get("type")
    details = error.get("details")
    code = details.get("error_code") if isinstance(details, dict) else None
    kind = ir.kind_for_status(_STATUS_BY_TYPE[error_type]) if error_type in _STATUS_BY_TYPE else None
    return ir.GatewayError(
        status,
        message[:_MAX_MESSAGE] if isinstance(message, str) and message else f"upstream error ({error_type or status})",
        kind=kind,
        code=code if isinstance(code, str) else None,
    )


def parse_error(status: int, body: bytes) -> ir.GatewayError:
    try:
        parsed = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        parsed = None
    error = parsed.get("error") if isinstance(parsed, dict) else None
    if isinstance(error, dict):
        return error_from_object(status, error)
    if isinstance(error, str) and error:  # some proxies answer {"error": "text"}
        return ir.GatewayError(status, error[:_MAX_MESSAGE])
    text = body.decode("utf-8", errors="replace").strip()
    return ir.GatewayError(status, text[:_MAX_MESSAGE] if text else f"upstream answered HTTP {status}")

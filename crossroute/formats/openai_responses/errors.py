"""Error bodies: OpenAI's `{"error": {message, type, param, code}}`, both directions."""

from __future__ import annotations

import re
from typing import Any

import orjson

from crossroute import ir

_TYPE_BY_KIND: dict[str, str] = {
    "invalid_request": "invalid_request_error",
    "authentication": "authentication_error",
    "permission": "permission_error",
    "not_found": "invalid_request_error",
    "request_too_large": "invalid_request_error",
    "rate_limit": "rate_limit_error",
    "billing": "insufficient_quota",
    "server": "server_error",
    "overloaded": "server_error",
    "timeout": "timeout_error",
    "unavailable": "server_error",
}

_CODE_BY_KIND: dict[str, str] = {
    "authentication": "invalid_api_key",
    "rate_limit": "rate_limit_exceeded",
    "billing": "insufficient_quota",
}

# OpenAI puts the wait in the message: "Please try again in 1.898s." / "in 20ms."
_RETRY_IN = re.compile(r"try again in (\d+(?:\.\d+)?)\s*(ms|s)\b", re.IGNORECASE)
_MAX_MESSAGE = 2000


def render_error(err: ir.GatewayError) -> dict[str, Any]:
    kind = err.kind or ir.kind_for_status(err.status)
    return {
        "error": {
            "message": err.message,
            "type": _TYPE_BY_KIND.get(kind, "server_error"),
            "param": err.param,
            "code": err.code or _CODE_BY_KIND.get(kind),
        }
    }


def parse_error(status: int, body: bytes) -> ir.GatewayError:
    data = _loads(body)
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict):
        fields = error
    elif isinstance(data, dict):
        fields = {"message": error} if isinstance(error, str) else data
    else:
        fields = {}
    message = _text(fields.get("message")) or _body_text(body) or f"upstream returned HTTP {status}"
    code = _text(fields.get("code"))
    err_type = _text(fields.get("type"))
    kind: ir.ErrorKind | None = "billing" if "insufficient_quota" in (code, err_type) else None
    return ir.GatewayError(
        status,
        message,
        kind=kind,
        code=code,
        param=_text(fields.get("param")),
        retry_after=_retry_after(message),
    )


def _loads(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return None


def _text(value: Any) -> str | None:
    if isinstance(value, str):
        return value or None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def _body_text(body: bytes) -> str:
    return body.decode("utf-8", errors="replace").strip()[:_MAX_MESSAGE]


def _retry_after(message: str) -> float | None:
    match = _RETRY_IN.search(message)
    if match is None:
        return None
    value = float(match.group(1))
    return value / 1000 if match.group(2).lower() == "ms" else value

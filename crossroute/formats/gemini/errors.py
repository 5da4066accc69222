"""Gemini error bodies: {"error": {code, message, status, details[]}} (google.rpc.Status)."""

from __future__ import annotations

import math
from typing import Any

import orjson

from crossroute import ir

RETRY_INFO = "type.googleapis.com/google.rpc.RetryInfo"
ERROR_INFO = "type.googleapis.com/google.rpc.ErrorInfo"
BAD_REQUEST = "type.googleapis.com/google.rpc.BadRequest"

_STATUS_BY_HTTP: dict[int, str] = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    402: "FAILED_PRECONDITION",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    408: "DEADLINE_EXCEEDED",
    409: "ABORTED",
    413: "INVALID_ARGUMENT",
    422: "INVALID_ARGUMENT",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "UNIMPLEMENTED",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
    529: "UNAVAILABLE",
}
_STATUS_BY_KIND: dict[str, str] = {
    "invalid_request": "INVALID_ARGUMENT",
    "authentication": "UNAUTHENTICATED",
    "permission": "PERMISSION_DENIED",
    "not_found": "NOT_FOUND",
    "request_too_large": "INVALID_ARGUMENT",
    "rate_limit": "RESOURCE_EXHAUSTED",
    "billing": "FAILED_PRECONDITION",
    "server": "INTERNAL",
    "overloaded": "UNAVAILABLE",
    "timeout": "DEADLINE_EXCEEDED",
    "unavailable": "UNAVAILABLE",
}
_AUTH_REASONS = frozenset(
    {"API_KEY_INVALID", "API_KEY_EXPIRED", "ACCESS_TOKEN_EXPIRED", "ACCESS_TOKEN_TYPE_UNSUPPORTED"}
)
_MAX_MESSAGE = 2000


# ---------------------------------------------------------------- gateway -> client


def status_name(err: ir.GatewayError) -> str:
    if err.status in _STATUS_BY_HTTP:
        return _STATUS_BY_HTTP[err.status]
    return _STATUS_BY_KIND.get(err.kind or "", "INTERNAL" if err.status >= 500 else "INVALID_ARGUMENT")


def render_error(err: ir.GatewayError) -> dict[str, Any]:
    error: dict[str, Any] = {"code": err.status, "message": err.message, "status": status_name(err)}
    details: list[dict[str, Any]] = []
    if err.code:
        details.append({"@type": ERROR_INFO, "reason": err.code, "domain": "crossroute"})
    if err.param:
        details.append(
            {"@type": BAD_REQUEST, "fieldViolations": [{"field": err.param, "description": err.message}]}
        )
    if err.retry_after is not None and err.retry_after >= 0 and math.isfinite(err.retry_after):
        details.append({"@type": RETRY_INFO, "retryDelay": format_duration(err.retry_after)})
    if details:
        error["details"] = details
    return {"error": error}


def format_duration(seconds: float) -> str:
    if float(seconds).is_integer():
        return f"{int(seconds)}s"
    return f"{seconds:.3f}s"


# ---------------------------------------------------------------- upstream -> gateway


def parse_error(status: int, body: bytes) -> ir.GatewayError:
    try:
        parsed: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        parsed = None
    if parsed is None:
        text = body.decode("utf-8", errors="replace").strip()
        return ir.GatewayError(status, text[:_MAX_MESSAGE] or f"upstream returned HTTP {status}")
    return error_from_body(parsed, status)


def error_from_body(body: Any, status: int | None) -> ir.GatewayError:
    """The canonical error of a Gemini error object (or an array of one). An
    error chunk inside a 200 stream takes its status from `error.code`."""
    if isinstance(body, list) and len(body) == 1:
        body = body[0]
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        error = body if isinstance(body, dict) and "message" in body else {}
    code = error.get("code")
    body_status = code if isinstance(code, int) and 400 <= code < 600 else None
    http = status if status is not None and status >= 400 else (body_status or 502)
    message = error.get("message")
    reason, param, retry_after = _details(error.get("details"))
    kind: ir.ErrorKind | None = None
    if reason in _AUTH_REASONS or error.get("status") == "UNAUTHENTICATED":
        kind = "authentication"
    return ir.GatewayError(
        http,
        message[:_MAX_MESSAGE] if isinstance(message, str) and message else f"upstream returned HTTP {http}",
        kind=kind,
        code=reason,
        param=param,
        retry_after=retry_after,
    )


def _details(raw: Any) -> tuple[str | None, str | None, float | None]:
    """(ErrorInfo reason, BadRequest field, RetryInfo delay) from google.rpc details."""
    reason: str | None = None
    param: str | None = None
    retry_after: float | None = None
    for detail in raw if isinstance(raw, list) else []:
        if not isinstance(detail, dict):
            continue
        kind = detail.get("@type")
        if kind == RETRY_INFO:
            retry_after = parse_duration(detail.get("retryDelay"))
        elif kind == ERROR_INFO and isinstance(detail.get("reason"), str):
            reason = detail["reason"]
        elif kind == BAD_REQUEST:
            param = _first_field(detail.get("fieldViolations"))
    return reason, param, retry_after


def _first_field(violations: Any) -> str | None:
    if isinstance(violations, list) and violations and isinstance(violations[0], dict):
        value = violations[0].get("field")
        return value if isinstance(value, str) else None
    return None


def parse_duration(value: Any) -> float | None:
    """'12s' / '1.5s' (proto Duration JSON) -> seconds."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value) if math.isfinite(value) and value >= 0 else None
    if not isinstance(value, str):
        return None
    text = value.strip().removesuffix("s")
    try:
        seconds = float(text)
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None

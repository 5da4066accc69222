"""Errors in the OpenAI shape `{"error": {message, type, param, code}}`, both ways."""

from __future__ import annotations

import re
from typing import Any

import orjson

from crossroute.ir import ErrorKind, GatewayError, kind_for_status

_MAX_MESSAGE = 1000

# kind -> (error.type, default error.code)
_WIRE_BY_KIND: dict[str, tuple[str, str | None]] = {
    "invalid_request": ("invalid_request_error", None),
    "authentication": ("authentication_error", None),
    "permission": ("permission_error", None),
    "not_found": ("not_found_error", None),
    "request_too_large": ("invalid_request_error", None),
    "rate_limit": ("rate_limit_error", "rate_limit_exceeded"),
    "billing": ("insufficient_quota", "insufficient_quota"),
    "server": ("server_error", None),
    "overloaded": ("overloaded_error", None),
    "timeout": ("timeout_error", None),
    "unavailable": ("service_unavailable_error", None),
}

_KIND_BY_MARK: dict[str, ErrorKind] = {
    "invalid_request_error": "invalid_request",
    "authentication_error": "authentication",
    "invalid_api_key": "authentication",
    "permission_error": "permission",
    "not_found_error": "not_found",
    "model_not_found": "not_found",
    "rate_limit_error": "rate_limit",
    "rate_limit_exceeded": "rate_limit",
    "insufficient_quota": "billing",
    "billing_error": "billing",
    "server_error": "server",
    "api_error": "server",
    "overloaded_error": "overloaded",
    "timeout_error": "timeout",
    "service_unavailable_error": "unavailable",
    # Google's OpenAI-compatible endpoint speaks gRPC status names.
    "RESOURCE_EXHAUSTED": "rate_limit",
    "INVALID_ARGUMENT": "invalid_request",
    "UNAUTHENTICATED": "authentication",
    "PERMISSION_DENIED": "permission",
    "NOT_FOUND": "not_found",
    "INTERNAL": "server",
    "UNAVAILABLE": "unavailable",
    "DEADLINE_EXCEEDED": "timeout",
}

# Marks that say more than the HTTP status does (a 429 that is really billing).
_REFINING_KINDS: frozenset[str] = frozenset({"billing", "overloaded"})

_STATUS_BY_KIND: dict[str, int] = {
    "invalid_request": 400,
    "authentication": 401,
    "permission": 403,
    "not_found": 404,
    "request_too_large": 413,
    "rate_limit": 429,
    "billing": 429,
    "server": 500,
    "overloaded": 529,
    "timeout": 504,
    "unavailable": 503,
}


def render_error(err: GatewayError) -> dict[str, Any]:
    error_type, default_code = _WIRE_BY_KIND.get(err.kind or "server", ("server_error", None))
    return {
        "error": {
            "message": err.message,
            "type": error_type,
            "param": err.param,
            "code": err.code if err.code is not None else default_code,
        }
    }


def parse_error(status: int, body: bytes) -> GatewayError:
    text = body.decode("utf-8", errors="replace").strip()
    try:
        parsed: object = orjson.loads(body)
    except orjson.JSONDecodeError:
        parsed = None
    error = error_from_object(status, parsed)
    if error is None:
        return GatewayError(status, _truncate(text) or f"upstream returned HTTP {status}")
    if not error.message:
        error.message = _truncate(text) or f"upstream returned HTTP {status}"
    return error


def error_from_object(status: int, obj: object) -> GatewayError | None:
    """The error an upstream JSON value describes, or None if it is not one.
    `status` is the HTTP status, or 0 for an error found inside a stream."""
    if isinstance(obj, list) and len(obj) == 1:
        obj = obj[0]
    if not isinstance(obj, dict):
        return None
    inner = obj.get("error")
    if isinstance(inner, dict):
        fields = inner
    elif isinstance(inner, str) and inner:
        fields = {"message": inner}
    elif "message" in obj or "detail" in obj:
        fields = obj
    else:
        return None
    return _error_from_fields(status, fields)


def _error_from_fields(status: int, fields: dict[str, Any]) -> GatewayError:
    message = fields.get("message", fields.get("detail"))
    message = message if isinstance(message, str) else (orjson.dumps(message).decode() if message else "")
    error_type, code = fields.get("type"), fields.get("code")
    marked = _marked_kind(error_type, code, fields.get("status"))
    if status < 400:
        status = _status_in_stream(code, marked)
        kind: ErrorKind = marked or kind_for_status(status)
    else:
        kind = marked if marked in _REFINING_KINDS else kind_for_status(status)
    param = fields.get("param")
    return GatewayError(
        status,
        _truncate(message),
        kind=kind,
        code=code if isinstance(code, str) and code else None,
        param=param if isinstance(param, str) else None,
        retry_after=_retry_after(message, fields.get("details")),
    )


def _marked_kind(*marks: object) -> ErrorKind | None:
    for mark in marks:
        if isinstance(mark, str) and mark in _KIND_BY_MARK:
            return _KIND_BY_MARK[mark]
    return None


def _status_in_stream(code: object, marked: ErrorKind | None) -> int:
    if isinstance(code, int) and not isinstance(code, bool) and 400 <= code <= 599:
        return code
    if isinstance(code, str) and code.isdigit() and 400 <= int(code) <= 599:
        return int(code)
    if marked is not None:
        return _STATUS_BY_KIND[marked]
    return 502  # an unexplained error from upstream mid-stream


def _truncate(text: str) -> str:
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 3] + "..."


# ---------------------------------------------------------------- retry hints

_TRY_AGAIN = re.compile(r"try again in ((?:\d+(?:\.\d+)?(?:ms|h|m|s))+)", re.IGNORECASE)
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)", re.IGNORECASE)
_SECONDS_PER_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def _retry_after(message: str, details: object) -> float | None:
    """OpenAI says "Please try again in 6m0s" / "in 120ms"; Google's compat
    endpoint sends a RetryInfo detail with `retryDelay: "12s"`."""
    found = _TRY_AGAIN.search(message)
    if found:
        return _duration_seconds(found.group(1))
    if isinstance(details, list):
        for detail in details:
            delay = detail.get("retryDelay") if isinstance(detail, dict) else None
            if isinstance(delay, str) and _DURATION_PART.fullmatch(delay):
                return _duration_seconds(delay)
    return None


def _duration_seconds(text: str) -> float:
    return sum(float(n) * _SECONDS_PER_UNIT[unit.lower()] for n, unit in _DURATION_PART.findall(text))

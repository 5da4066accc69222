"""What the OpenAI Chat and Responses fakes share: auth, error bodies, request checks."""

from __future__ import annotations

import time
from typing import Any

import orjson
from aiohttp import web

from .script import new_id, split_pieces
from .wire import ProtocolServer, Rejection, is_int, is_number, retry_headers, type_name

_ERROR_TYPES: dict[int, tuple[str, str | None]] = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("permission_error", None),
    404: ("invalid_request_error", "model_not_found"),
    409: ("conflict_error", None),
    422: ("invalid_request_error", None),
    429: ("requests", "rate_limit_exceeded"),
    500: ("server_error", None),
    502: ("server_error", None),
    503: ("server_error", None),
}


def error_type(status: int) -> tuple[str, str | None]:
    if status in _ERROR_TYPES:
        return _ERROR_TYPES[status]
    return ("server_error", None) if status >= 500 else ("invalid_request_error", None)


def error_object(
    status: int, message: str, param: str | None = None, code: str | None = None
) -> dict[str, Any]:
    kind, default_code = error_type(status)
    return {"message": message, "type": kind, "param": param, "code": code or default_code}


def error_response(rejection: Rejection) -> web.Response:
    body = {"error": error_object(rejection.status, rejection.message, rejection.param, rejection.code)}
    headers = {"x-request-id": new_id("req_"), **retry_headers(rejection)}
    return web.Response(
        status=rejection.status, body=orjson.dumps(body), content_type="application/json", headers=headers
    )


def check_bearer(request: web.Request, api_key: str | None) -> None:
    if api_key is None:
        return
    auth = request.headers.get("Authorization", "")
    if not auth:
        raise Rejection(
            401,
            "You didn't provide an API key. You need to provide your API key in an Authorization header "
            "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
        )
    scheme, _, token = auth.partition(" ")
    if scheme.lower() != "bearer" or token.strip() != api_key:
        shown = token.strip()[:3] + "*" * 4
        raise Rejection(401, f"Incorrect API key provided: {shown}.", code="invalid_api_key")


def response_headers() -> dict[str, str]:
    return {"x-request-id": new_id("req_"), "openai-processing-ms": "1"}


def now() -> int:
    return int(time.time())


def invalid_type(param: str, expected: str, value: Any) -> Rejection:
    return Rejection(
        400,
        f"Invalid type for '{param}': expected {expected}, but got {type_name(value)} instead.",
        param=param,
        code="invalid_type",
    )


def missing(param: str) -> Rejection:
    return Rejection(
        400, f"Missing required parameter: '{param}'.", param=param, code="missing_required_parameter"
    )


def invalid_value(param: str, value: Any, allowed: tuple[str, ...]) -> Rejection:
    supported = ", ".join(f"'{a}'" for a in allowed)
    return Rejection(
        400,
        f"Invalid value: '{value}'. Supported values are: {supported}.",
        param=param,
        code="invalid_value",
    )


def require_str(obj: dict[str, Any], key: str, param: str, *, non_empty: bool = False) -> str:
    if key not in obj or obj[key] is None:
        raise missing(param)
    value = obj[key]
    if not isinstance(value, str):
        raise invalid_type(param, "a string", value)
    if non_empty and not value:
        raise Rejection(
            400,
            f"Invalid '{param}': empty string. Expected a string with minimum length 1, but got an empty string instead.",
            param=param,
            code="empty_string",
        )
    return value


def require_obj(value: Any, param: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise invalid_type(param, "an object", value)
    return value


def require_list(value: Any, param: str, *, non_empty: bool = False) -> list[Any]:
    if not isinstance(value, list):
        raise invalid_type(param, "an array", value)
    if non_empty and not value:
        raise Rejection(
            400,
            f"Invalid '{param}': empty array. Expected an array with minimum length 1, but got an empty array instead.",
            param=param,
            code="empty_array",
        )
    return value


def check_number(body: dict[str, Any], key: str, low: float, high: float) -> None:
    if body.get(key) is None:
        return
    value = body[key]
    if not is_number(value):
        raise invalid_type(key, "a decimal", value)
    if not low <= value <= high:
        raise Rejection(
            400,
            f"Invalid '{key}': decimal above maximum value. Expected a value <= {high}, but got {value} instead."
            if value > high
            else f"Invalid '{key}': decimal below minimum value. Expected a value >= {low}, but got {value} instead.",
            param=key,
            code="decimal_above_max_value" if value > high else "decimal_below_min_value",
        )


def check_positive_int(body: dict[str, Any], key: str) -> None:
    if body.get(key) is None:
        return
    value = body[key]
    if not is_int(value):
        raise invalid_type(key, "an integer", value)
    if value < 1:
        raise Rejection(
            400,
            f"Invalid '{key}': integer below minimum value. Expected a value >= 1, but got {value} instead.",
            param=key,
            code="integer_below_min_value",
        )


def check_bool(body: dict[str, Any], key: str) -> None:
    if body.get(key) is not None and not isinstance(body[key], bool):
        raise invalid_type(key, "a boolean", body[key])


FUNCTION_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")


def check_function_name(name: Any, param: str) -> None:
    if not isinstance(name, str):
        raise invalid_type(param, "a string", name) if name is not None else missing(param)
    if not name or len(name) > 64 or not set(name) <= FUNCTION_NAME_CHARS:
        raise Rejection(
            400,
            f"Invalid '{param}': string does not match pattern. Expected a string that matches the pattern "
            f"'^[a-zA-Z0-9_-]+$'.",
            param=param,
            code="invalid_value",
        )


def split_arguments(arguments: str, pieces: int) -> list[str]:
    """Argument fragments as a streaming model emits them (at least one, possibly empty)."""
    return split_pieces(arguments, pieces) or [""]


def dump_args(args: dict[str, Any]) -> str:
    return orjson.dumps(args).decode()


class OpenAIServer(ProtocolServer):
    """Bearer keys and OpenAI error bodies, as both OpenAI APIs have them."""

    def check_auth(self, request: web.Request, api_key: str | None) -> None:
        check_bearer(request, api_key)

    def error_response(self, rejection: Rejection) -> web.Response:
        return error_response(rejection)

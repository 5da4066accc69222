"""Shared helpers: lenient reading of upstream JSON, ids, usage, stop reasons."""

from __future__ import annotations

from typing import Any

from crossroute import ir

FAMILY = "openai"
NAME: ir.Format = "openai-responses"
RESPONSE_PREFIX = "resp_"
# A redacted Anthropic thinking block shown to a Responses client keeps its
# "redacted" flag in the reasoning item id, the only other field a client replays.
REDACTED_PREFIX = "rs_redacted_"


# ---------------------------------------------------------------- lenient reading (upstream bodies)


def get_dict(obj: Any, key: str) -> dict[str, Any]:
    value = obj.get(key) if isinstance(obj, dict) else None
    return value if isinstance(value, dict) else {}


def get_list(obj: Any, key: str) -> list[Any]:
    value = obj.get(key) if isinstance(obj, dict) else None
    return value if isinstance(value, list) else []


def get_str(obj: Any, key: str) -> str | None:
    value = obj.get(key) if isinstance(obj, dict) else None
    return value if isinstance(value, str) else None


def get_int(obj: Any, key: str) -> int:
    value = obj.get(key) if isinstance(obj, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


# ---------------------------------------------------------------- ids


def with_prefix(value: str, prefix: str) -> str:
    return value if value.startswith(prefix) else prefix + value


def response_id(value: str | None) -> str:
    return with_prefix(value, RESPONSE_PREFIX) if value else ir.new_id(RESPONSE_PREFIX)


def reasoning_item_id(part_id: str | None, redacted: bool) -> str:
    if redacted:
        return part_id if part_id and part_id.startswith(REDACTED_PREFIX) else ir.new_id(REDACTED_PREFIX)
    return part_id if part_id and part_id.startswith("rs_") else ir.new_id("rs_")


def summary_text(item: dict[str, Any]) -> str:
    """The visible text of a reasoning item: its summaries, else its raw reasoning text."""
    texts = [get_str(s, "text") or "" for s in get_list(item, "summary")]
    if not any(texts):
        texts = [get_str(c, "text") or "" for c in get_list(item, "content")]
    return "\n\n".join(t for t in texts if t)


# ---------------------------------------------------------------- usage


def render_usage(usage: ir.Usage | None) -> dict[str, Any] | None:
    if usage is None:
        return None
    return {
        "input_tokens": usage.input_tokens,
        "input_tokens_details": {
            "cached_tokens": usage.cached_tokens,
            "cache_write_tokens": usage.cache_write_tokens,
        },
        "output_tokens": usage.output_tokens,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
        "total_tokens": usage.total_tokens,
    }


# ---------------------------------------------------------------- stop reasons


def stop_reason_of(status: str | None, incomplete_reason: str | None, has_calls: bool) -> ir.StopReason:
    if has_calls:
        return "tool_use"
    if status == "incomplete":
        return "content_filter" if incomplete_reason == "content_filter" else "max_tokens"
    return "end_turn"


def status_of(stop: ir.StopReason) -> tuple[str, str | None]:
    """(status, incomplete_details.reason) for a stop reason."""
    if stop == "max_tokens":
        return "incomplete", "max_output_tokens"
    if stop == "content_filter":
        return "incomplete", "content_filter"
    if stop == "error":
        return "failed", None
    return "completed", None


# ---------------------------------------------------------------- in-response error codes

# The codes `response.error.code` may carry (the SDK's model rejects others).
RESPONSE_ERROR_CODES = frozenset(
    {
        "server_error", "rate_limit_exceeded", "invalid_prompt", "data_residency_mismatch", "bio_policy",
        "misalignment_policy_violation", "vector_store_timeout", "invalid_image", "invalid_image_format",
        "invalid_base64_image", "invalid_image_url", "image_too_large", "image_too_small",
        "image_parse_error", "image_content_policy_violation", "invalid_image_mode",
        "image_file_too_large", "unsupported_image_media_type", "empty_image_file",
        "failed_to_download_image", "image_file_not_found",
    }
)


def response_error_code(err: ir.GatewayError) -> str:
    if err.code in RESPONSE_ERROR_CODES:
        return err.code
    if err.kind == "rate_limit":
        return "rate_limit_exceeded"
    if err.kind in ("invalid_request", "request_too_large"):
        return "invalid_prompt"
    return "server_error"


def status_for_response_error(code: str | None) -> int:
    if code == "rate_limit_exceeded":
        return 429
    if code and (code.startswith("invalid") or code.startswith("image") or code in ("bio_policy",)):
        return 400
    return 500


def response_error(error: Any, fallback: str) -> ir.GatewayError:
    """A GatewayError from a `response.error` object or an `error` stream event."""
    code = get_str(error, "code")
    message = get_str(error, "message") or fallback
    return ir.GatewayError(status_for_response_error(code), message, code=code, param=get_str(error, "param"))

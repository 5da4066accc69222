"""Pieces shared by both directions of the Anthropic Messages format: stop
reasons, usage arithmetic and ids."""

from __future__ import annotations

import re
from typing import Any

import orjson

from crossroute import ir

OWN_FAMILY = "anthropic"
MESSAGE_ID_PREFIX = "msg_"

# ---------------------------------------------------------------- stop reasons

_STOP_FROM_WIRE: dict[str, ir.StopReason] = {
    "end_turn": "end_turn",
    "max_tokens": "max_tokens",
    "stop_sequence": "stop_sequence",
    "tool_use": "tool_use",
    "refusal": "content_filter",
    # A paused server-tool turn is over as far as the client is concerned.
    "pause_turn": "end_turn",
    "model_context_window_exceeded": "max_tokens",
}

_STOP_TO_WIRE: dict[ir.StopReason, str] = {
    "end_turn": "end_turn",
    "max_tokens": "max_tokens",
    "stop_sequence": "stop_sequence",
    "tool_use": "tool_use",
    "content_filter": "refusal",
    "error": "end_turn",
}


# Tool calls decide tool_use both ways: a "tool_use" without any call (only
# server tools ran) would make clients wait for calls that never come.


def stop_from_wire(value: Any, has_tool_calls: bool) -> ir.StopReason:
    if has_tool_calls:
        return "tool_use"
    reason = _STOP_FROM_WIRE.get(value, "end_turn") if isinstance(value, str) else "end_turn"
    return "end_turn" if reason == "tool_use" else reason


def stop_to_wire(reason: ir.StopReason, has_tool_calls: bool) -> str:
    if has_tool_calls:
        return "tool_use"
    wire = _STOP_TO_WIRE.get(reason, "end_turn")
    return "end_turn" if wire == "tool_use" else wire


# ---------------------------------------------------------------- usage


def usage_to_wire(usage: ir.Usage | None) -> dict[str, Any]:
    if usage is None:
        return {"input_tokens": 0, "output_tokens": 0}
    wire: dict[str, Any] = {
        "input_tokens": max(0, usage.input_tokens - usage.cached_tokens - usage.cache_write_tokens),
        "output_tokens": usage.output_tokens,
        "cache_creation_input_tokens": usage.cache_write_tokens,
        "cache_read_input_tokens": usage.cached_tokens,
    }
    if usage.reasoning_tokens:
        wire["output_tokens_details"] = {"thinking_tokens": usage.reasoning_tokens}
    return wire


# ---------------------------------------------------------------- ids and JSON text


def message_id(value: str) -> str:
    if not value:
        return ir.new_id(MESSAGE_ID_PREFIX)
    return value if value.startswith(MESSAGE_ID_PREFIX) else MESSAGE_ID_PREFIX + value


_INVALID_TOOL_ID_CHARS = re.compile(r"[^a-zA-Z0-9_-]")


def upstream_tool_id(value: str) -> str:
    """Anthropic only takes ids matching ^[a-zA-Z0-9_-]+$. Ids replayed from
    other formats are rewritten the same way in tool_use and tool_result, so
    the pairing holds; the client never sees these rewritten ids."""
    return _INVALID_TOOL_ID_CHARS.sub("_", value) or "call_"


def dump_json(value: Any) -> str:
    return orjson.dumps(value).decode()

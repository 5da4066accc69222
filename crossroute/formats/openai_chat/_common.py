"""Wire facts shared by both directions: stop reasons, usage, ids, tool calls."""

from __future__ import annotations

from typing import Any

import orjson

from crossroute.custom_tools import wrap_input
from crossroute.ir import Format, Image, Part, Reasoning, StopReason, ToolCall, Usage, signature_for_client

NAME: Format = "openai-chat"
# Chat's only signature slot is Google's `extra_content.google.thought_signature`.
SIGNATURE_FAMILY = "gemini"
ID_PREFIX = "chatcmpl-"

_FINISH_BY_STOP: dict[str, str] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "content_filter": "content_filter",
    "error": "stop",
}

_STOP_BY_FINISH: dict[str, StopReason] = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "content_filter",
}


def finish_reason_for(stop_reason: StopReason, has_tool_calls: bool) -> str:
    if has_tool_calls:
        return "tool_calls"
    return _FINISH_BY_STOP.get(stop_reason, "stop")


def stop_reason_for(finish_reason: object, has_tool_calls: bool) -> StopReason:
    if has_tool_calls:
        return "tool_use"
    if isinstance(finish_reason, str):
        return _STOP_BY_FINISH.get(finish_reason, "end_turn")
    return "end_turn"


def client_id(upstream_id: str) -> str:
    """The id shown to a Chat client: always `chatcmpl-` prefixed."""
    if not upstream_id:
        return ""
    return upstream_id if upstream_id.startswith(ID_PREFIX) else ID_PREFIX + upstream_id


# ---------------------------------------------------------------- text of an upstream message or delta


def reasoning_text_of(message: dict[str, Any]) -> str:
    """`reasoning_content` (DeepSeek/Qwen style), or `reasoning` as some servers name it."""
    reasoning = message.get("reasoning_content") or message.get("reasoning")
    return reasoning if isinstance(reasoning, str) else ""


def answer_texts_of(message: dict[str, Any]) -> list[str]:
    """The non-empty `content` and `refusal` strings, in that order."""
    texts = (message.get("content"), message.get("refusal"))
    return [text for text in texts if isinstance(text, str) and text]


# ---------------------------------------------------------------- usage


def usage_to_wire(usage: Usage) -> dict[str, Any]:
    prompt_details: dict[str, int] = {"cached_tokens": usage.cached_tokens}
    if usage.cache_write_tokens:
        prompt_details["cache_write_tokens"] = usage.cache_write_tokens
    return {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.total_tokens,
        "prompt_tokens_details": prompt_details,
        "completion_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
    }


# ---------------------------------------------------------------- tool calls


def tool_call_to_wire(call: ToolCall, *, native_custom: bool, signature: str | None) -> dict[str, Any]:
    wire: dict[str, Any]
    if call.kind == "custom" and native_custom:
        wire = {"id": call.id, "type": "custom", "custom": {"name": call.name, "input": call.arguments}}
    else:
        arguments = call.arguments or "{}"
        if call.kind == "custom":
            arguments = wrap_input(call.arguments)
        wire = {"id": call.id, "type": "function", "function": {"name": call.name, "arguments": arguments}}
    if signature:
        wire["extra_content"] = {"google": {"thought_signature": signature}}
    return wire


def tool_calls_to_wire(parts: list[Part], *, native_custom: bool) -> list[dict[str, Any]]:
    """The tool calls among `parts`, each with the Gemini signature that came
    right before it (other families' signatures have no place in Chat)."""
    calls: list[dict[str, Any]] = []
    signature: str | None = None
    for part in parts:
        if isinstance(part, ToolCall):
            calls.append(tool_call_to_wire(part, native_custom=native_custom, signature=signature))
        if isinstance(part, Reasoning) and part.signature and part.origin == SIGNATURE_FAMILY:
            signature = signature_for_client(part.signature, part.origin, SIGNATURE_FAMILY)
        else:
            signature = None
    return calls


def thought_signature_of(call: dict[str, Any]) -> str | None:
    """Google's OpenAI-compat place for a Gemini thought signature on a tool call."""
    extra = call.get("extra_content")
    google = extra.get("google") if isinstance(extra, dict) else None
    signature = google.get("thought_signature") if isinstance(google, dict) else None
    return signature if isinstance(signature, str) and signature else None


def arguments_text(value: object) -> str:
    """Tool-call arguments as JSON text; some servers send an object instead."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    return orjson.dumps(value).decode()


# ---------------------------------------------------------------- images


def image_from_url(url: str, detail: str | None) -> Image:
    """An image_url value as an ir.Image; data: URLs are split into bytes and type."""
    if url.startswith("data:") and ";base64," in url:
        media_type, data = url[5:].split(";base64,", 1)
        return Image(data=data, media_type=media_type or None, detail=detail)
    return Image(url=url, detail=detail)


def image_to_wire(image: Image) -> dict[str, Any] | None:
    url = image.as_data_url()
    if not url:
        return None
    image_url: dict[str, Any] = {"url": url}
    if image.detail:
        image_url["detail"] = image.detail
    return {"type": "image_url", "image_url": image_url}

"""Non-streamed `chat.completion` bodies: from an upstream, and for a client."""

from __future__ import annotations

from typing import Any

from crossroute.formats.openai_chat._common import (
    SIGNATURE_FAMILY,
    answer_texts_of,
    arguments_text,
    client_id,
    finish_reason_for,
    reasoning_text_of,
    stop_reason_for,
    thought_signature_of,
    tool_calls_to_wire,
    usage_to_wire,
)
from crossroute.formats.openai_chat.errors import error_from_object
from crossroute.formats.openai_chat.usage import read_usage
from crossroute.ir import (
    GatewayError,
    Part,
    Reasoning,
    Request,
    Response,
    Text,
    ToolCall,
    new_id,
)


def _malformed(what: str) -> GatewayError:
    return GatewayError(502, f"upstream returned a malformed chat completion: {what}", kind="server")


# ---------------------------------------------------------------- upstream -> IR


def parse_response(body: object) -> Response:
    if not isinstance(body, dict):
        raise _malformed("the body is not a JSON object")
    error = error_from_object(0, body) if "error" in body else None
    if error is not None:
        raise error
    choices = body.get("choices")
    if not isinstance(choices, list):
        raise _malformed("'choices' is missing")
    choice = _first_choice(choices)
    message = choice.get("message") if choice else None
    parts = message_parts(message) if isinstance(message, dict) else []
    has_calls = any(isinstance(p, ToolCall) for p in parts)
    response = Response(
        id=_str(body.get("id")) or new_id("chatcmpl-"),
        model=_str(body.get("model")),
        parts=parts,
        stop_reason=stop_reason_for(choice.get("finish_reason") if choice else None, has_calls),
        usage=read_usage(body.get("usage")),
    )
    created = body.get("created")
    if isinstance(created, int) and not isinstance(created, bool):
        response.created = created
    return response


def _first_choice(choices: list[Any]) -> dict[str, Any] | None:
    for choice in choices:
        if isinstance(choice, dict) and choice.get("index", 0) == 0:
            return choice
    return None


def _str(value: object) -> str:
    return value if isinstance(value, str) else ""


def message_parts(message: dict[str, Any]) -> list[Part]:
    """Reasoning first, then the answer text, then the tool calls."""
    parts: list[Part] = []
    reasoning = reasoning_text_of(message)
    if reasoning:
        parts.append(Reasoning(text=reasoning))
    parts.extend(Text(text) for text in answer_texts_of(message))
    calls = message.get("tool_calls")
    for call in calls if isinstance(calls, list) else []:
        if isinstance(call, dict):
            parts.extend(_tool_call_parts(call))
    legacy = message.get("function_call")
    if isinstance(legacy, dict) and isinstance(legacy.get("name"), str):
        parts.append(
            ToolCall(new_id("call_"), legacy["name"], arguments_text(legacy.get("arguments")) or "{}")
        )
    return parts


def _tool_call_parts(call: dict[str, Any]) -> list[Part]:
    call_id = _str(call.get("id")) or new_id("call_")
    custom = call.get("custom")
    function = call.get("function")
    if call.get("type") == "custom" and isinstance(custom, dict):
        tool_call = ToolCall(call_id, _str(custom.get("name")), _str(custom.get("input")), kind="custom")
    elif isinstance(function, dict) and isinstance(function.get("name"), str):
        tool_call = ToolCall(call_id, function["name"], arguments_text(function.get("arguments")) or "{}")
    else:
        raise _malformed("a tool call has no function name")
    signature = thought_signature_of(call)
    if signature is None:
        return [tool_call]
    return [Reasoning(text="", signature=signature, origin=SIGNATURE_FAMILY), tool_call]


# ---------------------------------------------------------------- IR -> client


def render_response(resp: Response, req: Request) -> dict[str, Any]:
    calls = resp.tool_calls()
    body: dict[str, Any] = {
        "id": client_id(resp.id) or new_id("chatcmpl-"),
        "object": "chat.completion",
        "created": resp.created,
        "model": resp.model or req.model,
        "choices": [
            {
                "index": 0,
                "message": _client_message(resp),
                "finish_reason": finish_reason_for(resp.stop_reason, bool(calls)),
                "logprobs": None,
            }
        ],
    }
    if resp.usage is not None:
        body["usage"] = usage_to_wire(resp.usage)
    return body


def _client_message(resp: Response) -> dict[str, Any]:
    text = resp.text()
    calls = tool_calls_to_wire(resp.parts, native_custom=True)
    message: dict[str, Any] = {
        "role": "assistant",
        "content": text if text or not calls else None,
        "refusal": None,
    }
    reasoning = "".join(p.text for p in resp.parts if isinstance(p, Reasoning))
    if reasoning:
        message["reasoning_content"] = reasoning
    if calls:
        message["tool_calls"] = calls
    return message

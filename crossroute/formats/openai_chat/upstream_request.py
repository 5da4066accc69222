"""An ir.Request as a Chat Completions body for an OpenAI-compatible upstream."""

from __future__ import annotations

from typing import Any

from crossroute.formats.openai_chat._common import NAME, image_to_wire, tool_calls_to_wire
from crossroute.ir import (
    Image,
    Message,
    Part,
    Reasoning,
    Request,
    ResponseFormat,
    Text,
    Tool,
    ToolChoice,
    ToolResult,
)
from crossroute.reasoning import effort_of

_EMPTY_OBJECT_SCHEMA: dict[str, Any] = {"type": "object", "properties": {}}
_CUSTOM_INPUT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"input": {"type": "string"}},
    "required": ["input"],
}


def render_request(req: Request, model: str) -> dict[str, Any]:
    same_format = req.source_format == NAME
    body: dict[str, Any] = dict(req.extras) if same_format else {}
    body.pop("stream_options", None)
    body["model"] = model
    body["messages"] = _messages(req, native_custom=same_format)
    if req.tools:
        body["tools"] = [_tool(tool, native_custom=same_format) for tool in req.tools]
        if req.tool_choice is not None:
            body["tool_choice"] = _tool_choice(req.tool_choice, req.tools, native_custom=same_format)
        if req.parallel_tool_calls is not None:
            body["parallel_tool_calls"] = req.parallel_tool_calls
    _sampling(req, body, same_format)
    if req.reasoning is not None:
        effort = effort_of(req.reasoning)
        if effort is not None and effort != "auto":
            body["reasoning_effort"] = effort
    if req.response_format is not None:
        body["response_format"] = _response_format(req.response_format)
    body["stream"] = req.stream
    if req.stream:
        options = req.extras.get("stream_options") if same_format else None
        body["stream_options"] = {**(options if isinstance(options, dict) else {}), "include_usage": True}
    return body


def _sampling(req: Request, body: dict[str, Any], same_format: bool) -> None:
    if req.max_tokens is not None:
        body["max_completion_tokens"] = req.max_tokens
    if req.temperature is not None:
        body["temperature"] = req.temperature
    if req.top_p is not None:
        body["top_p"] = req.top_p
    # top_k is not an OpenAI parameter; only pass on what a Chat client itself sent.
    if req.top_k is not None and same_format:
        body["top_k"] = req.top_k
    if req.stop:
        body["stop"] = list(req.stop)
    if req.user is not None:
        body["user"] = req.user


# ---------------------------------------------------------------- messages


def _messages(req: Request, *, native_custom: bool) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    if req.system:
        out.append({"role": "system", "content": "\n\n".join(t.text for t in req.system)})
    for message in req.messages:
        out.extend(_message(message, native_custom))
    return out


def _message(message: Message, native_custom: bool) -> list[dict[str, Any]]:
    if message.role == "system":
        return [{"role": "system", "content": _joined_text(message.parts, "\n\n")}]
    if message.role == "assistant":
        return [_assistant(message.parts, native_custom)]
    # Tool results (wherever a format put them) must directly follow the calls.
    results = [p for p in message.parts if isinstance(p, ToolResult)]
    out = _tool_messages(results)
    content = [p for p in message.parts if isinstance(p, Text | Image)]
    if content or (message.role == "user" and not results):
        out.append({"role": "user", "content": _user_content(content)})
    return out


def _joined_text(parts: list[Part], separator: str) -> str:
    return separator.join(p.text for p in parts if isinstance(p, Text))


def _user_content(parts: list[Text | Image]) -> str | list[dict[str, Any]]:
    """A plain string when there is only text (what every compatible server
    accepts); content parts only when images are present."""
    if all(isinstance(p, Text) for p in parts):
        return "\n\n".join(p.text for p in parts if isinstance(p, Text))
    wire: list[dict[str, Any]] = []
    for part in parts:
        if isinstance(part, Text):
            wire.append({"type": "text", "text": part.text})
        elif (image := image_to_wire(part)) is not None:
            wire.append(image)
    return wire


def _assistant(parts: list[Part], native_custom: bool) -> dict[str, Any]:
    calls = tool_calls_to_wire(parts, native_custom=native_custom)
    text = _joined_text(parts, "")
    wire: dict[str, Any] = {"role": "assistant", "content": text if text or not calls else None}
    reasoning = "".join(p.text for p in parts if isinstance(p, Reasoning))
    if reasoning:
        wire["reasoning_content"] = reasoning
    if calls:
        wire["tool_calls"] = calls
    return wire


def _tool_messages(results: list[ToolResult]) -> list[dict[str, Any]]:
    """One `tool` message per result. Chat tool messages hold text only, so
    images from results follow in one user message after them."""
    out: list[dict[str, Any]] = []
    images: list[Text | Image] = []
    for result in results:
        out.append({"role": "tool", "tool_call_id": result.call_id, "content": result.text()})
        result_images = [p for p in result.content if isinstance(p, Image)]
        if result_images:
            images.append(Text(f"Images returned by tool call {result.call_id}:"))
            images.extend(result_images)
    if images:
        out.append({"role": "user", "content": _user_content(images)})
    return out


# ---------------------------------------------------------------- tools


def _tool(tool: Tool, *, native_custom: bool) -> dict[str, Any]:
    if tool.kind == "custom" and native_custom:
        custom: dict[str, Any] = {"name": tool.name}
        if tool.description:
            custom["description"] = tool.description
        if tool.custom_format:
            custom["format"] = _chat_custom_format(tool.custom_format)
        return {"type": "custom", "custom": custom}
    function: dict[str, Any] = {"name": tool.name}
    if tool.description:
        function["description"] = tool.description
    if tool.kind == "custom":
        function["parameters"] = _CUSTOM_INPUT_SCHEMA
    else:
        function["parameters"] = tool.parameters if tool.parameters is not None else _EMPTY_OBJECT_SCHEMA
    if tool.strict is not None:
        function["strict"] = tool.strict
    return {"type": "function", "function": function}


def _chat_custom_format(ir_format: dict[str, Any]) -> dict[str, Any]:
    """Back from the IR's Responses shape to Chat's nested grammar."""
    if ir_format.get("type") != "grammar" or "grammar" in ir_format:
        return ir_format
    return {
        "type": "grammar",
        "grammar": {"definition": ir_format.get("definition"), "syntax": ir_format.get("syntax")},
    }


def _tool_choice(choice: ToolChoice, tools: list[Tool], *, native_custom: bool) -> str | dict[str, Any]:
    if choice.mode != "tool" or not choice.name:
        return "required" if choice.mode == "tool" else choice.mode
    is_custom = any(t.name == choice.name and t.kind == "custom" for t in tools)
    if is_custom and native_custom:
        return {"type": "custom", "custom": {"name": choice.name}}
    return {"type": "function", "function": {"name": choice.name}}


def _response_format(response_format: ResponseFormat) -> dict[str, Any]:
    if response_format.type != "json_schema":
        return {"type": response_format.type}
    spec: dict[str, Any] = {
        "name": response_format.name or "response",
        "schema": response_format.schema if response_format.schema is not None else _EMPTY_OBJECT_SCHEMA,
    }
    if response_format.strict is not None:
        spec["strict"] = response_format.strict
    return {"type": "json_schema", "json_schema": spec}

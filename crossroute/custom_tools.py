"""Responses `custom` tools (Codex's apply_patch) for providers that only know
functions: each becomes a function with one string argument `input`, and the
calls coming back become custom calls again with the raw input. Formats whose
calls carry an object (Anthropic, Gemini) wrap a custom call's input the same way."""

from __future__ import annotations

import dataclasses
from typing import Any

import orjson

from crossroute import ir

INPUT_SCHEMA = {
    "type": "object",
    "properties": {"input": {"type": "string", "description": "The raw input for this tool."}},
    "required": ["input"],
}


def custom_tool_names(req: ir.Request) -> frozenset[str]:
    return frozenset(t.name for t in req.tools if t.kind == "custom")


def lower_request(req: ir.Request) -> ir.Request:
    """A copy of `req` with custom tools and calls in function form."""
    tools = [_as_function_tool(t) if t.kind == "custom" else t for t in req.tools]
    messages = [_lower_message(m) for m in req.messages]
    return dataclasses.replace(req, tools=tools, messages=messages)


def _as_function_tool(tool: ir.Tool) -> ir.Tool:
    description = tool.description or ""
    grammar = (tool.custom_format or {}).get("definition")
    if grammar:
        description += f"\n\nThe `input` string must follow this grammar:\n{grammar}"
    return ir.Tool(tool.name, description.strip() or None, INPUT_SCHEMA, kind="function")


def _lower_message(message: ir.Message) -> ir.Message:
    if not any(isinstance(p, ir.ToolCall) and p.kind == "custom" for p in message.parts):
        return message
    parts: list[ir.Part] = [
        ir.ToolCall(p.id, p.name, wrap_input(p.arguments), "function")
        if isinstance(p, ir.ToolCall) and p.kind == "custom" else p
        for p in message.parts
    ]
    return ir.Message(message.role, parts)


def wrap_input(raw_input: str) -> str:
    """A custom call's raw input as function arguments: one string argument `input`."""
    return orjson.dumps({"input": raw_input}).decode()


def unwrap_input(arguments: str) -> str:
    try:
        value = orjson.loads(arguments or "{}")
    except orjson.JSONDecodeError:
        return arguments
    if isinstance(value, dict) and isinstance(value.get("input"), str):
        return value["input"]
    return arguments


def arguments_object(arguments: str, kind: str = "function") -> dict[str, Any]:
    """A call's arguments as a JSON object (formats such as Anthropic and Gemini
    carry an object): a custom call's raw input as {"input": ...}; arguments
    that are not a JSON object give {}."""
    if kind == "custom":
        return {"input": arguments}
    try:
        value = orjson.loads(arguments) if arguments else {}
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def raise_response(resp: ir.Response, names: frozenset[str]) -> ir.Response:
    for part in resp.parts:
        if isinstance(part, ir.ToolCall) and part.name in names:
            part.kind = "custom"
            part.arguments = unwrap_input(part.arguments)
    return resp


class CallRaiser:
    """Turns streamed function calls of custom tools back into custom calls.
    Their JSON argument pieces are held until the call ends, then sent as the
    unwrapped raw input in one delta."""

    def __init__(self, names: frozenset[str]) -> None:
        self.names = names
        self._held: dict[int, list[str]] = {}

    def feed(self, events: list[ir.Event]) -> list[ir.Event]:
        out: list[ir.Event] = []
        for event in events:
            if isinstance(event, ir.ToolCallDelta) and event.index in self._held:
                self._held[event.index].append(event.arguments)
                continue
            out += self._release()
            if isinstance(event, ir.ToolCallStart) and event.name in self.names:
                event = ir.ToolCallStart(event.index, event.id, event.name, "custom")
                self._held[event.index] = []
            out.append(event)
        return out

    def close(self) -> list[ir.Event]:
        return self._release()

    def _release(self) -> list[ir.Event]:
        released: list[ir.Event] = [ir.ToolCallDelta(i, unwrap_input("".join(p))) for i, p in self._held.items()]
        self._held.clear()
        return released

"""IR messages to plain JSON and back, for the response store."""

from __future__ import annotations

import dataclasses
from typing import Any

from crossroute import ir

_PART_TYPES: dict[str, type] = {
    "text": ir.Text,
    "image": ir.Image,
    "reasoning": ir.Reasoning,
    "tool_call": ir.ToolCall,
    "tool_result": ir.ToolResult,
}
_TYPE_NAMES = {cls: name for name, cls in _PART_TYPES.items()}


def part_to_json(part: ir.Part) -> dict[str, Any]:
    data = {f.name: getattr(part, f.name) for f in dataclasses.fields(part)}  # type: ignore[arg-type]
    if isinstance(part, ir.ToolResult):
        data["content"] = [part_to_json(p) for p in part.content]
    data["type"] = _TYPE_NAMES[type(part)]
    return data


def part_from_json(data: dict[str, Any]) -> ir.Part:
    fields = dict(data)
    cls = _PART_TYPES[fields.pop("type")]
    if cls is ir.ToolResult:
        fields["content"] = [part_from_json(p) for p in fields.get("content", [])]
    part: ir.Part = cls(**fields)
    return part


def messages_to_json(messages: list[ir.Message]) -> list[dict[str, Any]]:
    return [{"role": m.role, "parts": [part_to_json(p) for p in m.parts]} for m in messages]


def messages_from_json(data: list[dict[str, Any]]) -> list[ir.Message]:
    return [ir.Message(m["role"], [part_from_json(p) for p in m["parts"]]) for m in data]

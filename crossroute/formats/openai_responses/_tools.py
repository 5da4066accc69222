"""Tools and tool_choice, both directions.

Function and custom tools map onto ir.Tool. `namespace` tools are flattened
(their raw form is kept in extras["tool_namespaces"] so a same-format hop and
the client's own call items can carry the namespace again). Hosted tools
(web_search, file_search, mcp, tool_search, ...) exist only on OpenAI: they are
kept in extras["hosted_tools"] for a same-format hop and otherwise dropped.
"""

from __future__ import annotations

from typing import Any

from crossroute import ir
from crossroute.formats._input import (
    bad_request,
    optional_bool,
    optional_dict,
    optional_str,
    required_dict,
    required_list,
    required_str,
)
from crossroute.formats.openai_responses._common import get_list, get_str

HOSTED_TOOLS = "hosted_tools"
TOOL_NAMESPACES = "tool_namespaces"
TOOL_CHOICE = "tool_choice"
EMPTY_SCHEMA: dict[str, Any] = {"type": "object", "properties": {}}


# ---------------------------------------------------------------- parse (client -> IR)


def parse_tools(value: Any, extras: dict[str, Any]) -> list[ir.Tool]:
    if value is None:
        return []
    tools: list[ir.Tool] = []
    hosted: list[dict[str, Any]] = []
    namespaces: list[dict[str, Any]] = []
    for i, raw in enumerate(required_list(value, "tools")):
        param = f"tools[{i}]"
        tool = required_dict(raw, param)
        kind = required_str(tool.get("type"), f"{param}.type")
        if kind in ("function", "custom"):
            tools.append(_parse_tool(tool, param))
        elif kind == "namespace":
            members = required_list(tool.get("tools") or [], f"{param}.tools")
            for j, member in enumerate(members):
                member_param = f"{param}.tools[{j}]"
                member_dict = required_dict(member, member_param)
                if member_dict.get("type") in ("function", "custom"):
                    tools.append(_parse_tool(member_dict, member_param))
            namespaces.append(tool)
        else:
            hosted.append(tool)
    if hosted:
        extras[HOSTED_TOOLS] = hosted
    if namespaces:
        extras[TOOL_NAMESPACES] = namespaces
    return tools


def _parse_tool(tool: dict[str, Any], param: str) -> ir.Tool:
    name = required_str(tool.get("name"), f"{param}.name")
    description = optional_str(tool.get("description"), f"{param}.description")
    if tool.get("type") == "custom":
        custom_format = optional_dict(tool.get("format"), f"{param}.format")
        return ir.Tool(name, description, kind="custom", custom_format=custom_format)
    parameters = optional_dict(tool.get("parameters"), f"{param}.parameters")
    strict = optional_bool(tool.get("strict"), f"{param}.strict")
    return ir.Tool(name, description, parameters, strict=strict)


def parse_tool_choice(value: Any, extras: dict[str, Any]) -> ir.ToolChoice | None:
    if value is None:
        return None
    if isinstance(value, str):
        if value not in ("auto", "none", "required"):
            raise bad_request(f"unknown tool_choice '{value}'", "tool_choice")
        return ir.ToolChoice(value)  # type: ignore[arg-type]
    choice = required_dict(value, "tool_choice")
    kind = required_str(choice.get("type"), "tool_choice.type")
    if kind in ("function", "custom"):
        return ir.ToolChoice("tool", required_str(choice.get("name"), "tool_choice.name"))
    # Not expressible exactly in the IR: approximate, and keep the original
    # for a same-format hop (extras are merged back only there).
    extras[TOOL_CHOICE] = choice
    if kind == "allowed_tools":
        return _allowed_tools_choice(choice)
    return ir.ToolChoice("auto")


def _allowed_tools_choice(choice: dict[str, Any]) -> ir.ToolChoice:
    mode = optional_str(choice.get("mode"), "tool_choice.mode") or "auto"
    if mode not in ("auto", "required"):
        raise bad_request(f"unknown tool_choice.mode '{mode}'", "tool_choice.mode")
    names = [get_str(t, "name") for t in required_list(choice.get("tools") or [], "tool_choice.tools")]
    if mode == "required" and len(names) == 1 and names[0]:
        return ir.ToolChoice("tool", names[0])
    return ir.ToolChoice(mode)  # type: ignore[arg-type]


def namespace_of_tools(extras: dict[str, Any]) -> dict[str, str]:
    """tool name -> namespace name, from the client's namespace tools."""
    mapping: dict[str, str] = {}
    raw = extras.get(TOOL_NAMESPACES)
    for namespace in raw if isinstance(raw, list) else []:
        ns_name = get_str(namespace, "name")
        for member in get_list(namespace, "tools"):
            member_name = get_str(member, "name")
            if ns_name and member_name:
                mapping[member_name] = ns_name
    return mapping


# ---------------------------------------------------------------- render (IR -> wire)


def render_tool(tool: ir.Tool) -> dict[str, Any]:
    if tool.kind == "custom":
        out: dict[str, Any] = {"type": "custom", "name": tool.name}
        if tool.description:
            out["description"] = tool.description
        if tool.custom_format is not None:
            out["format"] = tool.custom_format
        return out
    out = {"type": "function", "name": tool.name}
    if tool.description:
        out["description"] = tool.description
    out["parameters"] = tool.parameters if tool.parameters is not None else EMPTY_SCHEMA
    # Responses treats a missing `strict` as true, which schemas written for
    # other APIs rarely satisfy; say false unless the client asked.
    out["strict"] = bool(tool.strict)
    return out


def render_tools(tools: list[ir.Tool], extras: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Flat tools; with `extras` (a same-format hop) namespaces and hosted tools come back."""
    if extras is None:
        return [render_tool(t) for t in tools]
    namespaces = {get_str(ns, "name"): ns for ns in extras.get(TOOL_NAMESPACES) or [] if isinstance(ns, dict)}
    member_of = namespace_of_tools(extras)
    rendered: list[dict[str, Any]] = []
    emitted: set[str] = set()
    for tool in tools:
        ns_name = member_of.get(tool.name)
        if ns_name is None:
            rendered.append(render_tool(tool))
        elif ns_name not in emitted:
            emitted.add(ns_name)
            rendered.append(namespaces[ns_name])
    rendered.extend(t for t in extras.get(HOSTED_TOOLS) or [] if isinstance(t, dict))
    return rendered


def render_tool_choice(choice: ir.ToolChoice | None, tools: list[ir.Tool]) -> str | dict[str, Any] | None:
    if choice is None:
        return None
    if choice.mode != "tool":
        return choice.mode
    kind = next((t.kind for t in tools if t.name == choice.name), "function")
    return {"type": kind, "name": choice.name}

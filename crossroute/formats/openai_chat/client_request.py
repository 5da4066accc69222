"""A Chat Completions request from a client, as an ir.Request."""

from __future__ import annotations

from typing import Any, cast

from crossroute.formats.openai_chat.client_messages import MessageReader
from crossroute.formats.openai_chat.common import FORMAT
from crossroute.formats.openai_chat.fields import (
    invalid,
    optional_bool,
    optional_count,
    optional_dict,
    optional_list,
    optional_number,
    optional_str,
    required_dict,
    required_str,
)
from crossroute.ir import Effort, ReasoningConfig, Request, ResponseFormat, Tool, ToolChoice
from crossroute.reasoning import EFFORTS

# Top-level fields the IR models; everything else is kept in `extras`.
_MODELED = frozenset(
    {
        "model",
        "messages",
        "tools",
        "functions",
        "tool_choice",
        "function_call",
        "parallel_tool_calls",
        "max_tokens",
        "max_completion_tokens",
        "temperature",
        "top_p",
        "top_k",
        "stop",
        "reasoning_effort",
        "response_format",
        "stream",
        "user",
    }
)


def parse_request(body: object, *, model: str | None = None, stream: bool | None = None) -> Request:
    if not isinstance(body, dict):
        raise invalid("the request body must be a JSON object", None)
    req = Request(model=_model(body, model), source_format=FORMAT)
    messages = optional_list(body, "messages", "messages")
    if not messages:
        raise invalid("'messages' is required and must be a non-empty array", "messages")
    MessageReader(req).read(messages)
    req.tools = _tools(body)
    req.tool_choice, req.tools = _tool_choice(body, req.tools)
    req.parallel_tool_calls = optional_bool(body, "parallel_tool_calls", "parallel_tool_calls")
    req.max_tokens = optional_count(body, "max_completion_tokens", "max_completion_tokens")
    if req.max_tokens is None:
        req.max_tokens = optional_count(body, "max_tokens", "max_tokens")
    req.temperature = optional_number(body, "temperature", "temperature")
    req.top_p = optional_number(body, "top_p", "top_p")
    req.top_k = optional_count(body, "top_k", "top_k")
    req.stop = _stop(body.get("stop"))
    req.reasoning = _reasoning(body.get("reasoning_effort"))
    req.response_format = _response_format(body)
    req.stream = _stream(body, stream)
    req.user = optional_str(body, "user", "user")
    req.extras = {key: value for key, value in body.items() if key not in _MODELED}
    return req


def _model(body: dict[str, Any], override: str | None) -> str:
    if override:
        return override
    return required_str(body, "model", "model")


def _stream(body: dict[str, Any], override: bool | None) -> bool:
    if override is not None:
        return override
    return bool(optional_bool(body, "stream", "stream"))


def _stop(value: object) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return list(value)
    raise invalid("'stop' must be a string or an array of strings", "stop")


def _reasoning(value: object) -> ReasoningConfig | None:
    if value is None:
        return None
    if isinstance(value, str) and value in EFFORTS:
        return ReasoningConfig(effort=cast(Effort, value))
    allowed = ", ".join(sorted(EFFORTS - {"auto"}))
    raise invalid(f"'reasoning_effort' must be one of {allowed}", "reasoning_effort")


# ---------------------------------------------------------------- tools


def _tools(body: dict[str, Any]) -> list[Tool]:
    tools = optional_list(body, "tools", "tools")
    if tools is not None:
        return [_tool(raw, f"tools[{i}]") for i, raw in enumerate(tools)]
    functions = optional_list(body, "functions", "functions") or []
    return [_function_tool(raw, f"functions[{i}]") for i, raw in enumerate(functions)]


def _tool(raw: object, path: str) -> Tool:
    if not isinstance(raw, dict):
        raise invalid(f"'{path}' must be an object", path)
    kind = raw.get("type", "function")
    if kind == "function":
        return _function_tool(required_dict(raw, "function", f"{path}.function"), f"{path}.function")
    if kind == "custom":
        return _custom_tool(required_dict(raw, "custom", f"{path}.custom"), f"{path}.custom")
    raise invalid(f"'{path}.type' must be 'function' or 'custom'", f"{path}.type")


def _function_tool(raw: object, path: str) -> Tool:
    if not isinstance(raw, dict):
        raise invalid(f"'{path}' must be an object", path)
    return Tool(
        name=required_str(raw, "name", f"{path}.name"),
        description=optional_str(raw, "description", f"{path}.description"),
        parameters=optional_dict(raw, "parameters", f"{path}.parameters"),
        strict=optional_bool(raw, "strict", f"{path}.strict"),
    )


def _custom_tool(raw: dict[str, Any], path: str) -> Tool:
    return Tool(
        name=required_str(raw, "name", f"{path}.name"),
        description=optional_str(raw, "description", f"{path}.description"),
        kind="custom",
        custom_format=_custom_format(optional_dict(raw, "format", f"{path}.format")),
    )


def _custom_format(chat_format: dict[str, Any] | None) -> dict[str, Any] | None:
    """Chat nests a grammar (`{type:"grammar", grammar:{definition, syntax}}`);
    the IR keeps the Responses shape (`{type:"grammar", syntax, definition}`)."""
    if chat_format is None or chat_format.get("type") != "grammar":
        return chat_format
    grammar = chat_format.get("grammar")
    if not isinstance(grammar, dict):
        return chat_format
    return {"type": "grammar", "syntax": grammar.get("syntax"), "definition": grammar.get("definition")}


def _tool_choice(body: dict[str, Any], tools: list[Tool]) -> tuple[ToolChoice | None, list[Tool]]:
    """The choice, and the tools left once an `allowed_tools` subset is applied
    (the IR has no subset, so the closest is to offer only those tools)."""
    if "tool_choice" not in body and "function_call" in body:
        return _legacy_function_choice(body["function_call"]), tools
    value = body.get("tool_choice")
    if value is None:
        return None, tools
    if isinstance(value, str):
        return _choice_mode(value, "tool_choice"), tools
    if not isinstance(value, dict):
        raise invalid("'tool_choice' must be a string or an object", "tool_choice")
    kind = value.get("type")
    if kind in ("function", "custom"):
        named = required_dict(value, kind, f"tool_choice.{kind}")
        return ToolChoice("tool", required_str(named, "name", f"tool_choice.{kind}.name")), tools
    if kind == "allowed_tools":
        return _allowed_tools(required_dict(value, "allowed_tools", "tool_choice.allowed_tools"), tools)
    raise invalid("'tool_choice.type' must be function, custom or allowed_tools", "tool_choice.type")


def _choice_mode(value: object, param: str) -> ToolChoice:
    if value in ("auto", "none", "required"):
        return ToolChoice(cast(Any, value))
    raise invalid(f"'{param}' must be one of none, auto, required", param)


def _allowed_tools(allowed: dict[str, Any], tools: list[Tool]) -> tuple[ToolChoice, list[Tool]]:
    choice = _choice_mode(allowed.get("mode", "auto"), "tool_choice.allowed_tools.mode")
    names = {
        _allowed_name(raw) for raw in optional_list(allowed, "tools", "tool_choice.allowed_tools.tools") or []
    }
    names.discard(None)
    if not names:
        return choice, tools
    return choice, [tool for tool in tools if tool.name in names]


def _allowed_name(raw: object) -> str | None:
    if not isinstance(raw, dict):
        return None
    kind = raw.get("type")
    named = raw.get(kind if isinstance(kind, str) else "function")
    name = named.get("name") if isinstance(named, dict) else raw.get("name")
    return name if isinstance(name, str) else None


def _legacy_function_choice(value: object) -> ToolChoice | None:
    if value is None:
        return None
    if isinstance(value, dict):
        return ToolChoice("tool", required_str(value, "name", "function_call.name"))
    if value in ("auto", "none"):
        return ToolChoice(cast(Any, value))
    raise invalid("'function_call' must be none, auto or {name}", "function_call")


# ---------------------------------------------------------------- output format


def _response_format(body: dict[str, Any]) -> ResponseFormat | None:
    raw = optional_dict(body, "response_format", "response_format")
    if raw is None:
        return None
    kind = raw.get("type")
    if kind in ("text", "json_object"):
        return ResponseFormat(cast(Any, kind))
    if kind != "json_schema":
        raise invalid(
            "'response_format.type' must be text, json_object or json_schema", "response_format.type"
        )
    spec = required_dict(raw, "json_schema", "response_format.json_schema")
    return ResponseFormat(
        "json_schema",
        schema=optional_dict(spec, "schema", "response_format.json_schema.schema"),
        name=optional_str(spec, "name", "response_format.json_schema.name"),
        strict=optional_bool(spec, "strict", "response_format.json_schema.strict"),
    )

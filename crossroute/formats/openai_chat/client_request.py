"""A Chat Completions request from a client, as an ir.Request."""

from __future__ import annotations

from typing import Any, cast

from crossroute.formats._input import (
    bad_request,
    list_or_empty,
    non_empty_str,
    optional_bool,
    optional_dict,
    optional_int,
    optional_list,
    optional_number,
    optional_str,
    required_dict,
)
from crossroute.formats.openai_chat._client_messages import MessageReader
from crossroute.formats.openai_chat._common import NAME
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
        raise bad_request("the request body must be a JSON object")
    req = Request(model=_model(body, model), source_format=NAME)
    messages = optional_list(body.get("messages"), "messages")
    if not messages:
        raise bad_request("'messages' is required and must be a non-empty array", "messages")
    MessageReader(req).read(messages)
    req.tools = _tools(body)
    req.tool_choice, req.tools = _tool_choice(body, req.tools)
    req.parallel_tool_calls = optional_bool(body.get("parallel_tool_calls"), "parallel_tool_calls")
    req.max_tokens = _count(body, "max_completion_tokens")
    if req.max_tokens is None:
        req.max_tokens = _count(body, "max_tokens")
    req.temperature = optional_number(body.get("temperature"), "temperature")
    req.top_p = optional_number(body.get("top_p"), "top_p")
    req.top_k = _count(body, "top_k")
    req.stop = _stop(body.get("stop"))
    req.reasoning = _reasoning(body.get("reasoning_effort"))
    req.response_format = _response_format(body)
    req.stream = _stream(body, stream)
    req.user = optional_str(body.get("user"), "user")
    req.extras = {key: value for key, value in body.items() if key not in _MODELED}
    return req


def _model(body: dict[str, Any], override: str | None) -> str:
    if override:
        return override
    return non_empty_str(body.get("model"), "model")


def _count(body: dict[str, Any], key: str) -> int | None:
    """A top-level token count; a whole float such as 1024.0 is accepted."""
    return optional_int(body.get(key), key, minimum=0, whole_floats=True)


def _stream(body: dict[str, Any], override: bool | None) -> bool:
    if override is not None:
        return override
    return bool(optional_bool(body.get("stream"), "stream"))


def _stop(value: object) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return list(value)
    raise bad_request("'stop' must be a string or an array of strings", "stop")


def _reasoning(value: object) -> ReasoningConfig | None:
    if value is None:
        return None
    if isinstance(value, str) and value in EFFORTS:
        return ReasoningConfig(effort=cast(Effort, value))
    allowed = ", ".join(sorted(EFFORTS - {"auto"}))
    raise bad_request(f"'reasoning_effort' must be one of {allowed}", "reasoning_effort")


# ---------------------------------------------------------------- tools


def _tools(body: dict[str, Any]) -> list[Tool]:
    tools = optional_list(body.get("tools"), "tools")
    if tools is not None:
        return [_tool(raw, f"tools[{i}]") for i, raw in enumerate(tools)]
    functions = list_or_empty(body.get("functions"), "functions")
    return [_function_tool(raw, f"functions[{i}]") for i, raw in enumerate(functions)]


def _tool(raw: object, path: str) -> Tool:
    raw = required_dict(raw, path)
    kind = raw.get("type", "function")
    if kind == "function":
        return _function_tool(required_dict(raw.get("function"), f"{path}.function"), f"{path}.function")
    if kind == "custom":
        return _custom_tool(required_dict(raw.get("custom"), f"{path}.custom"), f"{path}.custom")
    raise bad_request(f"'{path}.type' must be 'function' or 'custom'", f"{path}.type")


def _function_tool(raw: object, path: str) -> Tool:
    raw = required_dict(raw, path)
    return Tool(
        name=non_empty_str(raw.get("name"), f"{path}.name"),
        description=optional_str(raw.get("description"), f"{path}.description"),
        parameters=optional_dict(raw.get("parameters"), f"{path}.parameters"),
        strict=optional_bool(raw.get("strict"), f"{path}.strict"),
    )


def _custom_tool(raw: dict[str, Any], path: str) -> Tool:
    return Tool(
        name=non_empty_str(raw.get("name"), f"{path}.name"),
        description=optional_str(raw.get("description"), f"{path}.description"),
        kind="custom",
        custom_format=_custom_format(optional_dict(raw.get("format"), f"{path}.format")),
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
        raise bad_request("'tool_choice' must be a string or an object", "tool_choice")
    kind = value.get("type")
    if kind in ("function", "custom"):
        named = required_dict(value.get(kind), f"tool_choice.{kind}")
        return ToolChoice("tool", non_empty_str(named.get("name"), f"tool_choice.{kind}.name")), tools
    if kind == "allowed_tools":
        return _allowed_tools(required_dict(value.get("allowed_tools"), "tool_choice.allowed_tools"), tools)
    raise bad_request("'tool_choice.type' must be function, custom or allowed_tools", "tool_choice.type")


def _choice_mode(value: object, param: str) -> ToolChoice:
    if value in ("auto", "none", "required"):
        return ToolChoice(cast(Any, value))
    raise bad_request(f"'{param}' must be one of none, auto, required", param)


def _allowed_tools(allowed: dict[str, Any], tools: list[Tool]) -> tuple[ToolChoice, list[Tool]]:
    choice = _choice_mode(allowed.get("mode", "auto"), "tool_choice.allowed_tools.mode")
    names = {
        _allowed_name(raw) for raw in list_or_empty(allowed.get("tools"), "tool_choice.allowed_tools.tools")
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
        return ToolChoice("tool", non_empty_str(value.get("name"), "function_call.name"))
    if value in ("auto", "none"):
        return ToolChoice(cast(Any, value))
    raise bad_request("'function_call' must be none, auto or {name}", "function_call")


# ---------------------------------------------------------------- output format


def _response_format(body: dict[str, Any]) -> ResponseFormat | None:
    raw = optional_dict(body.get("response_format"), "response_format")
    if raw is None:
        return None
    kind = raw.get("type")
    if kind in ("text", "json_object"):
        return ResponseFormat(cast(Any, kind))
    if kind != "json_schema":
        raise bad_request(
            "'response_format.type' must be text, json_object or json_schema", "response_format.type"
        )
    spec = required_dict(raw.get("json_schema"), "response_format.json_schema")
    return ResponseFormat(
        "json_schema",
        schema=optional_dict(spec.get("schema"), "response_format.json_schema.schema"),
        name=optional_str(spec.get("name"), "response_format.json_schema.name"),
        strict=optional_bool(spec.get("strict"), "response_format.json_schema.strict"),
    )

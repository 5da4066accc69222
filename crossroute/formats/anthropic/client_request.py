"""A client's Anthropic Messages body -> ir.Request.

Choices where the wire has no IR twin:
- `document` blocks: plain-text sources (`text`, `content`) become text;
  PDF / URL / file documents become a short text note saying a document was
  attached and not forwarded (the IR has no document part).
- `search_result` blocks become text (title, source, content).
- Server-tool blocks replayed in history (`server_tool_use`,
  `*_tool_result`, ...) are dropped: they only make sense to Anthropic's own
  servers. Server tools in `tools` are kept in `extras["server_tools"]`.
- The raw `thinking` object is kept in `extras["thinking"]` so a same-format
  hop can send it unchanged (adaptive, display); see upstream_request.
"""

from __future__ import annotations

from typing import Any, cast

from crossroute import ir
from crossroute.formats._input import (
    bad_request,
    dict_or_empty,
    non_empty_str,
    optional_bool,
    optional_dict,
    optional_int,
    optional_number,
    optional_str,
    required_dict,
    required_list,
    required_str,
)
from crossroute.formats.anthropic._common import OWN_FAMILY, dump_json
from crossroute.reasoning import EFFORTS

_MODELLED_FIELDS = frozenset(
    "model messages system tools tool_choice thinking output_config output_format max_tokens"
    " stop_sequences temperature top_p top_k metadata stream".split()
)

_DROPPED_BLOCK_TYPES = frozenset({"server_tool_use", "mcp_tool_use", "container_upload", "compaction"})
_ROLES = ("user", "assistant", "system")


def parse_request(
    body: Any, *, model: str | None = None, stream: bool | None = None, count_only: bool = False
) -> ir.Request:
    """`count_only` reads a /v1/messages/count_tokens body, where max_tokens is absent."""
    body = required_dict(body, "body")
    req = ir.Request(model=_model(body, model), source_format="anthropic")
    req.system = _system(body.get("system"))
    req.messages = _messages(body.get("messages"))
    req.tools, server_tools = _tools(body.get("tools"))
    req.tool_choice, req.parallel_tool_calls = _tool_choice(body.get("tool_choice"))
    output_config = dict_or_empty(body.get("output_config"), "output_config")
    req.reasoning = reasoning_from_wire(body.get("thinking"), output_config.get("effort"))
    req.response_format = _response_format(output_config.get("format"), "output_config.format") or _response_format(
        body.get("output_format"), "output_format"
    )
    req.max_tokens = optional_int(body.get("max_tokens"), "max_tokens", minimum=0)
    if req.max_tokens is None and not count_only:
        raise bad_request("`max_tokens` is required", "max_tokens")
    req.stop = _stop_sequences(body.get("stop_sequences"))
    req.temperature = optional_number(body.get("temperature"), "temperature")
    req.top_p = optional_number(body.get("top_p"), "top_p")
    req.top_k = optional_int(body.get("top_k"), "top_k", minimum=0)
    req.user, leftover_metadata = _metadata(body.get("metadata"))
    req.stream = stream if stream is not None else bool(optional_bool(body.get("stream"), "stream"))
    req.extras = _extras(body, server_tools, output_config, leftover_metadata)
    return req


def _model(body: dict[str, Any], model: str | None) -> str:
    return non_empty_str(model if model is not None else body.get("model"), "model")


def _extras(
    body: dict[str, Any],
    server_tools: list[dict[str, Any]],
    output_config: dict[str, Any],
    metadata: dict[str, Any],
) -> dict[str, Any]:
    extras = {key: value for key, value in body.items() if key not in _MODELLED_FIELDS}
    if server_tools:
        extras["server_tools"] = server_tools
    rest = {k: v for k, v in output_config.items() if k not in ("effort", "format")}
    if rest:
        extras["output_config"] = rest
    if metadata:
        extras["metadata"] = metadata
    if isinstance(body.get("thinking"), dict):
        extras["thinking"] = body["thinking"]
    return extras


# ---------------------------------------------------------------- system and messages


def _system(value: Any) -> list[ir.Text]:
    if value is None:
        return []
    if isinstance(value, str):
        return [ir.Text(value)] if value else []
    texts = []
    for i, block in enumerate(required_list(value, "system")):
        param = f"system[{i}]"
        block = required_dict(block, param)
        if block.get("type") != "text":
            raise bad_request(f"`{param}.type` must be \"text\"", f"{param}.type")
        texts.append(ir.Text(required_str(block.get("text"), f"{param}.text")))
    return texts


def _messages(value: Any) -> list[ir.Message]:
    raw = required_list(value, "messages")
    if not raw:
        raise bad_request("`messages` must contain at least one message", "messages")
    tool_names: dict[str, str] = {}
    messages: list[ir.Message] = []
    for i, item in enumerate(raw):
        messages.extend(_message(required_dict(item, f"messages[{i}]"), f"messages[{i}]", tool_names))
    return messages


def _message(item: dict[str, Any], param: str, tool_names: dict[str, str]) -> list[ir.Message]:
    role = item.get("role")
    if role not in _ROLES:
        raise bad_request(f"`{param}.role` must be one of {', '.join(_ROLES)}", f"{param}.role")
    parts = _content(item.get("content"), f"{param}.content", role, tool_names)
    results: list[ir.Part] = [p for p in parts if isinstance(p, ir.ToolResult)]
    if results and role != "user":
        raise bad_request(f"`{param}`: tool_result blocks are only allowed in user messages", f"{param}.content")
    rest: list[ir.Part] = [p for p in parts if not isinstance(p, ir.ToolResult)]
    if role == "system":
        if any(not isinstance(p, ir.Text) for p in rest):
            raise bad_request(f"`{param}`: a system message may only hold text", f"{param}.content")
        return [ir.Message("system", rest)]
    messages = [ir.Message("tool", results)] if results else []
    if rest or not results:
        messages.append(ir.Message(role, rest))
    return messages


def _content(value: Any, param: str, role: str, tool_names: dict[str, str]) -> list[ir.Part]:
    if isinstance(value, str):
        return [ir.Text(value)]
    parts: list[ir.Part] = []
    for i, block in enumerate(required_list(value, param)):
        part = _block(required_dict(block, f"{param}[{i}]"), f"{param}[{i}]", role, tool_names)
        if part is not None:
            parts.append(part)
    return parts


def _block(block: dict[str, Any], param: str, role: str, tool_names: dict[str, str]) -> ir.Part | None:
    part = _text_or_media(block, param)
    if part is not None:
        return part
    kind = block.get("type")
    if kind == "thinking":
        return _thinking(block, param)
    if kind == "redacted_thinking":
        data, origin = ir.signature_from_client(required_str(block.get("data"), f"{param}.data"), OWN_FAMILY)
        return ir.Reasoning(signature=data, origin=origin, redacted=True)
    if kind == "tool_use":
        return _tool_use(block, param, tool_names)
    if kind == "tool_result":
        return _tool_result(block, param, tool_names)
    if isinstance(kind, str) and (kind in _DROPPED_BLOCK_TYPES or kind.endswith("_tool_result")):
        return None
    raise bad_request(f"`{param}.type`: unsupported content block type {kind!r}", f"{param}.type")


def _image(block: dict[str, Any], param: str) -> ir.Image:
    source = required_dict(block.get("source"), f"{param}.source")
    kind = source.get("type")
    if kind == "base64":
        return ir.Image(
            data=required_str(source.get("data"), f"{param}.source.data"),
            media_type=optional_str(source.get("media_type"), f"{param}.source.media_type"),
        )
    if kind == "url":
        return ir.Image(url=required_str(source.get("url"), f"{param}.source.url"))
    raise bad_request(
        f"`{param}.source.type`: image source {kind!r} is not supported (use base64 or url)", f"{param}.source.type"
    )


def _document(block: dict[str, Any], param: str) -> ir.Text:
    source = required_dict(block.get("source"), f"{param}.source")
    title = block.get("title") if isinstance(block.get("title"), str) else None
    kind = source.get("type")
    if kind == "text":
        body = required_str(source.get("data"), f"{param}.source.data")
    elif kind == "content":
        content = source.get("content")
        body = content if isinstance(content, str) else _texts_of(content, f"{param}.source.content")
    else:
        media = source.get("media_type") if isinstance(source.get("media_type"), str) else kind
        name = f" {title!r}" if title else ""
        return ir.Text(f"[document{name} ({media}) attached; not forwarded by the gateway]")
    return ir.Text(f"{title}\n\n{body}" if title else body)


def _search_result(block: dict[str, Any], param: str) -> ir.Text:
    title = block.get("title") if isinstance(block.get("title"), str) else ""
    source = block.get("source") if isinstance(block.get("source"), str) else ""
    body = _texts_of(block.get("content"), f"{param}.content")
    header = " - ".join(x for x in (title, source) if x)
    return ir.Text(f"{header}\n\n{body}" if header else body)


def _texts_of(value: Any, param: str) -> str:
    texts = []
    for i, block in enumerate(required_list(value, param)):
        block = required_dict(block, f"{param}[{i}]")
        if block.get("type") == "text":
            texts.append(required_str(block.get("text"), f"{param}[{i}].text"))
    return "\n".join(texts)


def _thinking(block: dict[str, Any], param: str) -> ir.Reasoning:
    text = optional_str(block.get("thinking"), f"{param}.thinking") or ""
    value = optional_str(block.get("signature"), f"{param}.signature")
    if not value:  # a block we showed without a signature comes back with ""
        return ir.Reasoning(text=text)
    signature, origin = ir.signature_from_client(value, OWN_FAMILY)
    return ir.Reasoning(text=text, signature=signature, origin=origin)


def _tool_use(block: dict[str, Any], param: str, tool_names: dict[str, str]) -> ir.ToolCall:
    call_id = required_str(block.get("id"), f"{param}.id")
    name = required_str(block.get("name"), f"{param}.name")
    arguments = dict_or_empty(block.get("input"), f"{param}.input")
    tool_names[call_id] = name
    return ir.ToolCall(call_id, name, dump_json(arguments))


def _tool_result(block: dict[str, Any], param: str, tool_names: dict[str, str]) -> ir.ToolResult:
    call_id = required_str(block.get("tool_use_id"), f"{param}.tool_use_id")
    content = block.get("content")
    parts: list[ir.Text | ir.Image] = []
    if isinstance(content, str):
        parts = [ir.Text(content)]
    elif content is not None:
        for i, item in enumerate(required_list(content, f"{param}.content")):
            parts.append(_result_part(required_dict(item, f"{param}.content[{i}]"), f"{param}.content[{i}]"))
    is_error = bool(optional_bool(block.get("is_error"), f"{param}.is_error"))
    return ir.ToolResult(call_id, parts, name=tool_names.get(call_id), is_error=is_error)


def _result_part(block: dict[str, Any], param: str) -> ir.Text | ir.Image:
    part = _text_or_media(block, param)
    if part is None:
        kind = block.get("type")
        raise bad_request(f"`{param}.type`: unsupported tool_result content type {kind!r}", f"{param}.type")
    return part


def _text_or_media(block: dict[str, Any], param: str) -> ir.Text | ir.Image | None:
    """A block of a type allowed both in a message and in a tool_result; None for any other type."""
    kind = block.get("type")
    if kind == "text":
        return ir.Text(required_str(block.get("text"), f"{param}.text"))
    if kind == "image":
        return _image(block, param)
    if kind == "document":
        return _document(block, param)
    if kind == "search_result":
        return _search_result(block, param)
    return None


# ---------------------------------------------------------------- tools


def _tools(value: Any) -> tuple[list[ir.Tool], list[dict[str, Any]]]:
    if value is None:
        return [], []
    tools: list[ir.Tool] = []
    server_tools: list[dict[str, Any]] = []
    for i, item in enumerate(required_list(value, "tools")):
        tool = required_dict(item, f"tools[{i}]")
        kind = tool.get("type")
        if kind is None or kind == "custom":
            tools.append(_function_tool(tool, f"tools[{i}]"))
        elif isinstance(kind, str):
            server_tools.append(tool)
        else:
            raise bad_request(f"`tools[{i}].type` must be a string", f"tools[{i}].type")
    return tools, server_tools


def _function_tool(tool: dict[str, Any], param: str) -> ir.Tool:
    return ir.Tool(
        name=non_empty_str(tool.get("name"), f"{param}.name"),
        description=optional_str(tool.get("description"), f"{param}.description"),
        parameters=optional_dict(tool.get("input_schema"), f"{param}.input_schema"),
        strict=optional_bool(tool.get("strict"), f"{param}.strict"),
    )


def _tool_choice(value: Any) -> tuple[ir.ToolChoice | None, bool | None]:
    if value is None:
        return None, None
    choice = required_dict(value, "tool_choice")
    kind = choice.get("type")
    serial = optional_bool(choice.get("disable_parallel_tool_use"), "tool_choice.disable_parallel_tool_use")
    parallel = False if serial else None
    if kind == "auto":
        return ir.ToolChoice("auto"), parallel
    if kind == "any":
        return ir.ToolChoice("required"), parallel
    if kind == "none":
        return ir.ToolChoice("none"), parallel
    if kind == "tool":
        return ir.ToolChoice("tool", required_str(choice.get("name"), "tool_choice.name")), parallel
    raise bad_request("`tool_choice.type` must be one of auto, any, tool, none", "tool_choice.type")


# ---------------------------------------------------------------- reasoning and output


def reasoning_from_wire(thinking: Any, wire_effort: Any) -> ir.ReasoningConfig | None:
    """ReasoningConfig for a `thinking` object and `output_config.effort`."""
    effort = _effort(wire_effort)
    if thinking is None:
        return ir.ReasoningConfig(effort=effort) if effort else None
    thinking = required_dict(thinking, "thinking")
    kind = thinking.get("type")
    summary = _display(thinking.get("display"))
    if kind == "enabled":
        budget = optional_int(thinking.get("budget_tokens"), "thinking.budget_tokens", minimum=0)
        if budget is None:
            return ir.ReasoningConfig(effort=effort or "auto", summary=summary)
        return ir.ReasoningConfig(effort=effort, budget=budget, summary=summary)
    if kind in ("adaptive", "between_tools"):
        return ir.ReasoningConfig(effort=effort or "auto", summary=summary)
    if kind == "disabled":
        return ir.ReasoningConfig(effort="none")
    raise bad_request("`thinking.type` must be one of enabled, adaptive, disabled", "thinking.type")


def _effort(value: Any) -> ir.Effort | None:
    if value is None:
        return None
    if not isinstance(value, str) or value not in EFFORTS:
        raise bad_request(f"`output_config.effort` must be one of {', '.join(sorted(EFFORTS))}", "output_config.effort")
    return cast(ir.Effort, value)


def _display(value: Any) -> bool:
    if value is None:
        return True  # thinking is shown (summarized) unless the client asks for it omitted
    if value not in ("summarized", "omitted"):
        raise bad_request("`thinking.display` must be summarized or omitted", "thinking.display")
    return value == "summarized"


def _response_format(value: Any, param: str) -> ir.ResponseFormat | None:
    if value is None:
        return None
    fmt = required_dict(value, param)
    if fmt.get("type") != "json_schema":
        raise bad_request(f"`{param}.type` must be \"json_schema\"", f"{param}.type")
    return ir.ResponseFormat("json_schema", schema=required_dict(fmt.get("schema"), f"{param}.schema"))


def _stop_sequences(value: Any) -> list[str]:
    if value is None:
        return []
    return [required_str(s, f"stop_sequences[{i}]") for i, s in enumerate(required_list(value, "stop_sequences"))]


def _metadata(value: Any) -> tuple[str | None, dict[str, Any]]:
    if value is None:
        return None, {}
    metadata = required_dict(value, "metadata")
    user = optional_str(metadata.get("user_id"), "metadata.user_id")
    return user, {k: v for k, v in metadata.items() if k != "user_id"}

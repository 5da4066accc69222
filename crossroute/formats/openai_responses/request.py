"""Requests: a client's Responses body -> ir.Request, and ir.Request -> an upstream body."""

from __future__ import annotations

from typing import Any

from crossroute import ir
from crossroute.formats._input import (
    bad_request,
    non_empty_str,
    optional_bool,
    optional_dict,
    optional_int,
    optional_list,
    optional_number,
    optional_str,
    required_dict,
    required_str,
)
from crossroute.formats.openai_responses.common import FORMAT
from crossroute.formats.openai_responses.items import InputParser, ItemRenderer
from crossroute.formats.openai_responses.tools import (
    HOSTED_TOOLS,
    TOOL_NAMESPACES,
    namespace_of_tools,
    parse_tool_choice,
    parse_tools,
    render_tool_choice,
    render_tools,
)
from crossroute.reasoning import EFFORTS, effort_of

ENCRYPTED_REASONING = "reasoning.encrypted_content"
# Top-level fields the IR models; everything else goes to extras.
MODELED = frozenset(
    {
        "model", "input", "instructions", "tools", "tool_choice", "parallel_tool_calls", "max_output_tokens",
        "temperature", "top_p", "reasoning", "text", "stream", "user",
    }
)


# ---------------------------------------------------------------- parse (client -> IR)


def parse_request(body: Any, *, model: str | None = None, stream: bool | None = None) -> ir.Request:
    body = required_dict(body, "body")
    model = model or non_empty_str(body.get("model"), "model")
    extras = {k: v for k, v in body.items() if k not in MODELED}
    _check_include(body.get("include"))
    parser = InputParser()
    instructions = optional_str(body.get("instructions"), "instructions")
    if instructions:
        parser.system.append(ir.Text(instructions))
    _parse_input(body.get("input"), parser)
    req = ir.Request(
        model=model,
        messages=parser.messages,
        system=parser.system,
        tools=parse_tools(body.get("tools"), extras),
        tool_choice=parse_tool_choice(body.get("tool_choice"), extras),
        parallel_tool_calls=optional_bool(body.get("parallel_tool_calls"), "parallel_tool_calls"),
        max_tokens=optional_int(body.get("max_output_tokens"), "max_output_tokens"),
        temperature=optional_number(body.get("temperature"), "temperature"),
        top_p=optional_number(body.get("top_p"), "top_p"),
        reasoning=_parse_reasoning(optional_dict(body.get("reasoning"), "reasoning")),
        response_format=_parse_text(optional_dict(body.get("text"), "text"), extras),
        stream=stream if stream is not None else bool(optional_bool(body.get("stream"), "stream")),
        user=optional_str(body.get("user"), "user"),
        extras=extras,
        source_format=FORMAT,
    )
    return req


def _parse_input(value: Any, parser: InputParser) -> None:
    if value is None:
        return
    if isinstance(value, str):
        parser.messages.append(ir.Message("user", [ir.Text(value)]))
    elif isinstance(value, list):
        parser.feed_all(value)
    else:
        raise bad_request("'input' must be a string or an array of items", "input")


def _check_include(value: Any) -> None:
    """Kept as sent for a same-format hop, but merged with the gateway's own entries, so strings only."""
    for index, entry in enumerate(optional_list(value, "include") or ()):
        required_str(entry, f"include[{index}]")


def _parse_reasoning(value: dict[str, Any] | None) -> ir.ReasoningConfig | None:
    if value is None:
        return None
    effort = optional_str(value.get("effort"), "reasoning.effort")
    if effort is not None and effort not in EFFORTS:
        raise bad_request(f"unknown reasoning.effort '{effort}'", "reasoning.effort")
    summary = optional_str(value.get("summary"), "reasoning.summary") or optional_str(
        value.get("generate_summary"), "reasoning.generate_summary"
    )
    return ir.ReasoningConfig(effort=effort, summary=summary is not None)  # type: ignore[arg-type]


def _parse_text(value: dict[str, Any] | None, extras: dict[str, Any]) -> ir.ResponseFormat | None:
    if value is None:
        return None
    rest = {k: v for k, v in value.items() if k != "format"}
    if rest:
        extras["text"] = rest  # verbosity and friends, for a same-format hop
    fmt = optional_dict(value.get("format"), "text.format")
    if fmt is None:
        return None
    kind = optional_str(fmt.get("type"), "text.format.type")
    if kind == "text":
        return ir.ResponseFormat("text")
    if kind == "json_object":
        return ir.ResponseFormat("json_object")
    if kind == "json_schema":
        return ir.ResponseFormat(
            "json_schema",
            schema=optional_dict(fmt.get("schema"), "text.format.schema"),
            name=optional_str(fmt.get("name"), "text.format.name"),
            strict=optional_bool(fmt.get("strict"), "text.format.strict"),
        )
    raise bad_request(f"unknown text.format.type '{kind}'", "text.format.type")


# ---------------------------------------------------------------- render (IR -> upstream)


def render_request(req: ir.Request, model: str) -> dict[str, Any]:
    same_format = req.source_format == FORMAT
    extras = req.extras if same_format else None
    namespaces = namespace_of_tools(req.extras) if same_format else {}
    body: dict[str, Any] = {"model": model}
    instructions = "\n\n".join(t.text for t in req.system)
    if instructions:
        body["instructions"] = instructions
    body["input"] = ItemRenderer("upstream", namespaces).render(req.messages)
    body["store"] = False
    if req.reasoning is not None or _has_reasoning(req.messages):
        body["include"] = [ENCRYPTED_REASONING]
    if req.tools or (extras and extras.get(HOSTED_TOOLS)):
        body["tools"] = render_tools(req.tools, extras)
    _set(body, "tool_choice", render_tool_choice(req.tool_choice, req.tools))
    _set(body, "parallel_tool_calls", req.parallel_tool_calls)
    _set(body, "reasoning", render_reasoning(req.reasoning))
    _set(body, "max_output_tokens", req.max_tokens)
    _set(body, "temperature", req.temperature)
    _set(body, "top_p", req.top_p)
    _set(body, "text", render_text(req.response_format))
    body["stream"] = req.stream
    if same_format:
        _set(body, "user", req.user)
        _merge_extras(body, req.extras)
    return body


def _set(body: dict[str, Any], key: str, value: Any) -> None:
    if value is not None:
        body[key] = value


def _has_reasoning(messages: list[ir.Message]) -> bool:
    return any(isinstance(p, ir.Reasoning) for m in messages for p in m.parts)


def render_reasoning(config: ir.ReasoningConfig | None) -> dict[str, Any] | None:
    if config is None:
        return None
    out: dict[str, Any] = {}
    effort = effort_of(config)
    if effort is not None and effort != "auto":  # "auto" = the model's default
        out["effort"] = effort
    # Clients of other formats show reasoning text unless they opted out, so ask for it.
    if config.summary or (config.summary is None and effort != "none"):
        out["summary"] = "auto"
    return out or None


def render_text(fmt: ir.ResponseFormat | None) -> dict[str, Any] | None:
    if fmt is None:
        return None
    if fmt.type != "json_schema":
        return {"format": {"type": fmt.type}}
    out: dict[str, Any] = {"type": "json_schema", "name": fmt.name or "response", "schema": fmt.schema or {}}
    if fmt.strict is not None:
        out["strict"] = fmt.strict
    return {"format": out}


# The gateway keeps the conversation state itself (history is expanded before
# rendering), so these never reach an upstream, even of the same format.
GATEWAY_STATE = frozenset({"store", "previous_response_id"})


def _merge_extras(body: dict[str, Any], extras: dict[str, Any]) -> None:
    """A same-format hop: the client's other fields go through as sent."""
    for key, value in extras.items():
        if key in (HOSTED_TOOLS, TOOL_NAMESPACES) or key in GATEWAY_STATE:
            continue
        if key == "text" and isinstance(value, dict):
            body["text"] = {**value, **body.get("text", {})}
        elif key == "include" and isinstance(value, list):
            body["include"] = list(dict.fromkeys([*value, *body.get("include", [])]))
        else:
            body[key] = value

"""A client's Responses body -> ir.Request."""

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
from crossroute.formats.openai_responses._common import NAME
from crossroute.formats.openai_responses._items import InputParser
from crossroute.formats.openai_responses._tools import (
    parse_tool_choice,
    parse_tools,
)
from crossroute.reasoning import EFFORTS

# Top-level fields the IR models; everything else goes to extras.
MODELED = frozenset(
    {
        "model", "input", "instructions", "tools", "tool_choice", "parallel_tool_calls", "max_output_tokens",
        "temperature", "top_p", "reasoning", "text", "stream", "user",
    }
)


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
        source_format=NAME,
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

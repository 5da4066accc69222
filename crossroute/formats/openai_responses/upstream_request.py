"""ir.Request -> the body for a Responses upstream."""

from __future__ import annotations

from typing import Any

from crossroute import ir
from crossroute.formats.openai_responses._common import NAME
from crossroute.formats.openai_responses._items import ItemRenderer
from crossroute.formats.openai_responses._tools import (
    HOSTED_TOOLS,
    TOOL_NAMESPACES,
    namespace_of_tools,
    render_tool_choice,
    render_tools,
)
from crossroute.reasoning import effort_of

ENCRYPTED_REASONING = "reasoning.encrypted_content"


def render_request(req: ir.Request, model: str) -> dict[str, Any]:
    same_format = req.source_format == NAME
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

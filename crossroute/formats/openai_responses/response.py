"""Whole responses: an upstream's Response object -> ir.Response, and ir.Response -> the client's."""

from __future__ import annotations

from typing import Any

from crossroute import ir
from crossroute.formats.openai_responses._common import (
    get_dict,
    get_list,
    get_str,
    render_usage,
    response_error,
    response_id,
    status_of,
    stop_reason_of,
)
from crossroute.formats.openai_responses._items import output_items, parse_output_items
from crossroute.formats.openai_responses._tools import (
    HOSTED_TOOLS,
    TOOL_CHOICE,
    namespace_of_tools,
    render_tool,
    render_tool_choice,
)
from crossroute.formats.openai_responses.upstream_request import render_reasoning, render_text
from crossroute.formats.openai_responses.usage import read_usage

# ---------------------------------------------------------------- upstream -> IR


def parse_response(body: Any) -> ir.Response:
    if not isinstance(body, dict) or not isinstance(body.get("output", []), list):
        raise ir.GatewayError(502, "upstream returned an invalid Responses body", kind="server")
    status = get_str(body, "status")
    if status == "failed":
        raise response_error(body.get("error"), "upstream response failed")
    parts = parse_output_items(get_list(body, "output"))
    has_calls = any(isinstance(p, ir.ToolCall) for p in parts)
    reason = get_str(get_dict(body, "incomplete_details"), "reason")
    created = body.get("created_at")
    return ir.Response(
        id=get_str(body, "id") or ir.new_id("resp_"),
        model=get_str(body, "model") or "",
        parts=parts,
        stop_reason=stop_reason_of(status, reason, has_calls),
        usage=read_usage(body.get("usage")),
        created=int(created) if isinstance(created, int | float) and not isinstance(created, bool) else 0,
    )


# ---------------------------------------------------------------- IR -> client


def render_response(resp: ir.Response, req: ir.Request) -> dict[str, Any]:
    status, reason = status_of(resp.stop_reason)
    error = {"code": "server_error", "message": "the upstream model failed"} if status == "failed" else None
    return response_body(
        req,
        id=response_id(resp.id),
        model=resp.model or req.model,
        created_at=resp.created,
        status=status,
        output=output_items(resp.parts, namespace_of_tools(req.extras)),
        usage=resp.usage,
        incomplete_reason=reason,
        error=error,
    )


def response_body(
    req: ir.Request,
    *,
    id: str,
    model: str,
    created_at: int,
    status: str,
    output: list[dict[str, Any]],
    usage: ir.Usage | None = None,
    incomplete_reason: str | None = None,
    error: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A full Response object, echoing the request's settings as OpenAI does."""
    extras = req.extras
    raw_text = extras.get("text")
    text_extras: dict[str, Any] = raw_text if isinstance(raw_text, dict) else {}
    text = {**text_extras, **(render_text(req.response_format) or {"format": {"type": "text"}})}
    body: dict[str, Any] = {
        "id": id,
        "object": "response",
        "created_at": created_at,
        "status": status,
        "error": error,
        "incomplete_details": {"reason": incomplete_reason} if incomplete_reason else None,
        "instructions": "\n\n".join(t.text for t in req.system) or None,
        "max_output_tokens": req.max_tokens,
        "model": model,
        "output": output,
        "parallel_tool_calls": req.parallel_tool_calls if req.parallel_tool_calls is not None else True,
        "previous_response_id": _str_or_none(extras.get("previous_response_id")),
        "reasoning": _echo_reasoning(req.reasoning),
        "store": extras.get("store") if isinstance(extras.get("store"), bool) else True,
        "temperature": req.temperature,
        "text": text,
        "tool_choice": _echo_tool_choice(req),
        "tools": [render_tool(t) for t in req.tools] + [t for t in extras.get(HOSTED_TOOLS) or [] if isinstance(t, dict)],
        "top_p": req.top_p,
        "usage": render_usage(usage),
        "metadata": extras.get("metadata") if isinstance(extras.get("metadata"), dict) else {},
    }
    if req.user is not None:
        body["user"] = req.user
    return body


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _echo_reasoning(config: ir.ReasoningConfig | None) -> dict[str, Any]:
    rendered = render_reasoning(config) or {}
    return {"effort": rendered.get("effort"), "summary": rendered.get("summary")}


def _echo_tool_choice(req: ir.Request) -> str | dict[str, Any]:
    original = req.extras.get(TOOL_CHOICE)
    if isinstance(original, dict):
        return original
    return render_tool_choice(req.tool_choice, req.tools) or "auto"

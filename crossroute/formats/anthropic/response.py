"""Whole (non-streamed) Anthropic messages, both directions."""

from __future__ import annotations

from typing import Any

from crossroute import ir
from crossroute.custom_tools import arguments_object
from crossroute.formats.anthropic._common import (
    OWN_FAMILY,
    dump_json,
    message_id,
    stop_from_wire,
    stop_to_wire,
    usage_to_wire,
)
from crossroute.formats.anthropic.usage import read_usage


def _malformed(what: str) -> ir.GatewayError:
    return ir.GatewayError(502, f"upstream sent a malformed Anthropic message: {what}", kind="server")


# ---------------------------------------------------------------- upstream -> IR


def parse_response(body: Any) -> ir.Response:
    if not isinstance(body, dict):
        raise _malformed("the body is not an object")
    content = body.get("content")
    if not isinstance(content, list):
        raise _malformed("`content` is not an array")
    parts = [part for block in content if (part := block_to_part(block)) is not None]
    has_calls = any(isinstance(p, ir.ToolCall) for p in parts)
    return ir.Response(
        id=body["id"] if isinstance(body.get("id"), str) and body["id"] else ir.new_id("msg_"),
        model=body["model"] if isinstance(body.get("model"), str) else "",
        parts=parts,
        stop_reason=stop_from_wire(body.get("stop_reason"), has_calls),
        usage=read_usage(body.get("usage")),
    )


def block_to_part(block: Any) -> ir.Part | None:
    """One response content block as an IR part; server-tool blocks give None."""
    if not isinstance(block, dict):
        return None
    kind = block.get("type")
    if kind == "text":
        return ir.Text(_str(block.get("text")))
    if kind == "thinking":
        signature = _str(block.get("signature"))
        return ir.Reasoning(text=_str(block.get("thinking")), signature=signature or None, origin=OWN_FAMILY)
    if kind == "redacted_thinking":
        return ir.Reasoning(signature=_str(block.get("data")), origin=OWN_FAMILY, redacted=True)
    if kind == "tool_use":
        arguments = block.get("input")
        return ir.ToolCall(
            id=_str(block.get("id")) or ir.new_id("call_"),
            name=_str(block.get("name")),
            arguments=dump_json(arguments if isinstance(arguments, dict) else {}),
        )
    return None


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


# ---------------------------------------------------------------- IR -> client


def render_response(resp: ir.Response, req: ir.Request) -> dict[str, Any]:
    content = [block for part in resp.parts if (block := part_to_block(part)) is not None]
    has_calls = any(isinstance(p, ir.ToolCall) for p in resp.parts)
    return {
        "id": message_id(resp.id),
        "type": "message",
        "role": "assistant",
        "model": resp.model or req.model,
        "content": content,
        "stop_reason": stop_to_wire(resp.stop_reason, has_calls),
        "stop_sequence": None,
        "usage": usage_to_wire(resp.usage),
    }


def part_to_block(part: ir.Part) -> dict[str, Any] | None:
    if isinstance(part, ir.Text):
        return {"type": "text", "text": part.text} if part.text else None
    if isinstance(part, ir.Reasoning):
        return reasoning_to_block(part)
    if isinstance(part, ir.ToolCall):
        return {"type": "tool_use", "id": part.id, "name": part.name, "input": arguments_object(part.arguments, part.kind)}
    return None


def reasoning_to_block(part: ir.Reasoning) -> dict[str, Any] | None:
    """A thinking block for a client. Reasoning without a signature still gets a
    well-formed block with signature "" (read back as "no signature")."""
    signature = ir.signature_for_client(part.signature, part.origin, OWN_FAMILY) if part.signature else ""
    if part.redacted and part.origin == OWN_FAMILY and signature:
        return {"type": "redacted_thinking", "data": signature}
    if not part.text and not signature:
        return None
    return {"type": "thinking", "thinking": part.text, "signature": signature}

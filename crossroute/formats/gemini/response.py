"""GenerateContentResponse <-> ir.Response, plus the part-level pieces the stream code shares."""

from __future__ import annotations

from typing import Any

from crossroute import ir
from crossroute.custom_tools import arguments_object
from crossroute.formats.gemini._wire import (
    OWN_FAMILY,
    blocked_prompt,
    client_signature,
    field,
    finish_reason_for,
    stop_reason_from,
    text_of,
    usage_metadata,
)
from crossroute.formats.gemini.errors import error_from_body
from crossroute.formats.gemini.usage import read_usage

# ---------------------------------------------------------------- upstream -> IR


def parse_response(body: Any) -> ir.Response:
    if isinstance(body, list) and len(body) == 1:
        body = body[0]
    if not isinstance(body, dict):
        raise ir.GatewayError(502, "upstream sent a malformed generateContent response", kind="server")
    if isinstance(body.get("error"), dict):
        raise error_from_body(body, 502)
    candidate = first_candidate(body)
    parts = decode_parts(candidate_parts(candidate))
    has_calls = any(isinstance(p, ir.ToolCall) for p in parts)
    if candidate is None and blocked_prompt(body):
        stop: ir.StopReason = "content_filter"
    else:
        stop = stop_reason_from(finish_of(candidate), has_calls=has_calls)
    return ir.Response(
        id=response_id(body) or ir.new_id("gen-"),
        model=model_version(body),
        parts=parts,
        stop_reason=stop,
        usage=read_usage(field(body, "usageMetadata")),
    )


def first_candidate(body: dict[str, Any]) -> dict[str, Any] | None:
    candidates = field(body, "candidates")
    if isinstance(candidates, list) and candidates and isinstance(candidates[0], dict):
        return candidates[0]
    return None


def candidate_parts(candidate: dict[str, Any] | None) -> list[Any]:
    content = field(candidate, "content") if candidate else None
    parts = field(content, "parts") if isinstance(content, dict) else None
    return parts if isinstance(parts, list) else []


def finish_of(candidate: dict[str, Any] | None) -> str | None:
    finish = field(candidate, "finishReason") if candidate else None
    return finish if isinstance(finish, str) else None


def response_id(body: dict[str, Any]) -> str | None:
    value = field(body, "responseId")
    return value if isinstance(value, str) and value else None


def model_version(body: dict[str, Any]) -> str:
    value = field(body, "modelVersion")
    return value if isinstance(value, str) else ""


def decode_parts(raw_parts: list[Any]) -> list[ir.Part]:
    """Upstream parts -> IR parts. A signature on a non-thought part becomes an
    empty Reasoning just before it; calls without an id get one invented."""
    out: list[ir.Part] = []
    for raw in raw_parts:
        if isinstance(raw, dict):
            out.extend(_decode_part(raw))
    return out


def _decode_part(part: dict[str, Any]) -> list[ir.Part]:
    if len(part) == 1 and isinstance(part.get("text"), str):  # most streamed parts: only a piece of text
        return [ir.Text(part["text"])] if part["text"] else []
    raw_signature = field(part, "thoughtSignature")
    signature = raw_signature if isinstance(raw_signature, str) and raw_signature else None
    text = field(part, "text")
    text = text if isinstance(text, str) else ""
    if field(part, "thought") is True:
        return [ir.Reasoning(text, signature, origin=OWN_FAMILY)] if text or signature else []
    out: list[ir.Part] = [ir.Reasoning("", signature, origin=OWN_FAMILY)] if signature else []
    if text:
        out.append(ir.Text(text))
    call = field(part, "functionCall")
    if isinstance(call, dict) and isinstance(field(call, "name"), str):
        call_id = field(call, "id")
        args = field(call, "args")
        out.append(
            ir.ToolCall(
                call_id if isinstance(call_id, str) and call_id else ir.new_id("call_"),
                field(call, "name"),
                text_of(args if isinstance(args, dict) else {}),
            )
        )
    blob = field(part, "inlineData")
    if isinstance(blob, dict) and isinstance(field(blob, "data"), str):
        mime = field(blob, "mimeType")
        out.append(ir.Image(data=field(blob, "data"), media_type=mime if isinstance(mime, str) else None))
    return out


# ---------------------------------------------------------------- IR -> client


def render_response(resp: ir.Response, req: ir.Request) -> dict[str, Any]:
    writer = ClientParts()
    parts: list[dict[str, Any]] = []
    for part in resp.parts:
        if isinstance(part, ir.Text):
            parts += writer.text(part.text)
        elif isinstance(part, ir.Reasoning):
            if part.text and not part.redacted:
                parts += writer.thought(part.text)
            if part.signature is not None:
                parts += writer.signature(part.signature, part.origin, redacted=part.redacted)
        elif isinstance(part, ir.ToolCall):
            parts += writer.call(part.id, part.name, arguments_object(part.arguments, part.kind))
        elif isinstance(part, ir.Image):
            parts += writer.image(part)
    parts += writer.flush()
    has_calls = bool(resp.tool_calls())
    candidate: dict[str, Any] = {
        "content": {"role": "model", "parts": parts},
        "finishReason": finish_reason_for("tool_use" if has_calls else resp.stop_reason),
        "index": 0,
    }
    body: dict[str, Any] = {"candidates": [candidate]}
    if resp.usage is not None:
        body["usageMetadata"] = usage_metadata(resp.usage)
    body["modelVersion"] = resp.model
    body["responseId"] = resp.id
    return body


class ClientParts:
    """Builds the parts a Gemini client sees, for whole responses and streams alike.

    Where a signature goes: a Gemini signature rides on the next text or
    functionCall part, as Gemini itself sends it (Gemini CLI keeps signatures
    only there). A foreign signature that closes a thought is sent as an
    empty thought part right after it, so the client's replay puts it back on
    that thought; a redacted block is an empty thought part on its own.
    """

    def __init__(self) -> None:
        self.pending: str | None = None
        self.open_thought = False

    def text(self, text: str) -> list[dict[str, Any]]:
        if not text:
            return []
        self.open_thought = False
        return [self._signed({"text": text})]

    def thought(self, text: str) -> list[dict[str, Any]]:
        if not text:
            return []
        out = self.flush()
        out.append({"text": text, "thought": True})
        self.open_thought = True
        return out

    def signature(
        self, signature: str, origin: str | None, *, redacted: bool = False
    ) -> list[dict[str, Any]]:
        value = client_signature(signature, origin)
        foreign = origin not in (None, OWN_FAMILY)
        if redacted or (foreign and self.open_thought):
            out = self.flush()
            out.append({"text": "", "thought": True, "thoughtSignature": value})
            self.open_thought = False
            return out
        out = self.flush()
        self.pending = value
        self.open_thought = False
        return out

    def call(self, call_id: str, name: str, args: dict[str, Any]) -> list[dict[str, Any]]:
        self.open_thought = False
        return [self._signed({"functionCall": {"id": call_id, "name": name, "args": args}})]

    def image(self, image: ir.Image) -> list[dict[str, Any]]:
        inline = image.inline()
        if inline is None:
            return []
        self.open_thought = False
        return [self._signed({"inlineData": {"mimeType": inline[0], "data": inline[1]}})]

    def flush(self) -> list[dict[str, Any]]:
        """A signature nothing came after: alone on an empty text part."""
        if self.pending is None:
            return []
        part = {"text": "", "thoughtSignature": self.pending}
        self.pending = None
        return [part]

    def _signed(self, part: dict[str, Any]) -> dict[str, Any]:
        if self.pending is not None:
            part["thoughtSignature"] = self.pending
            self.pending = None
        return part

"""streamGenerateContent, IR events -> client bytes: `data:` frames with
?alt=sse, else one JSON array written incrementally."""

from __future__ import annotations

from typing import Any

import orjson

from crossroute import ir
from crossroute.custom_tools import arguments_object
from crossroute.formats.gemini._wire import finish_reason_for, usage_metadata
from crossroute.formats.gemini.errors import render_error
from crossroute.formats.gemini.response import ClientParts


class StreamEncoder:
    """IR events -> streamGenerateContent bytes for a Gemini client.

    Text and thoughts go out as they come. Tool calls are held until their
    arguments are complete (the next event that is not a tool-call event) and
    sent whole, as Gemini does. Finish sends the last chunk with finishReason
    and usageMetadata; an error ends the stream with an {"error": ...} chunk,
    which google-genai raises on.
    """

    def __init__(self, req: ir.Request, *, sse: bool = True) -> None:
        self.req = req
        self.sse = sse
        self.id = ""
        self.model = req.model
        self._parts = ClientParts()
        self._calls: dict[int, ir.ToolCall] = {}
        self._sent_calls = False
        self._chunks_sent = 0
        self._ended = False
        self._closed = False

    def encode(self, event: ir.Event) -> bytes:
        if self._ended:
            return b""
        if isinstance(event, ir.StreamStart):
            self.id, self.model = event.id, event.model or self.model
            return b""
        if isinstance(event, ir.ToolCallStart):
            self._calls[event.index] = ir.ToolCall(event.id, event.name, "", event.kind)
            return b""
        if isinstance(event, ir.ToolCallDelta):
            if event.index in self._calls:
                self._calls[event.index].arguments += event.arguments
            return b""
        if isinstance(event, ir.StreamError):
            return self._error(event.error)
        parts = self._flush_calls()
        if isinstance(event, ir.TextDelta):
            parts += self._parts.text(event.text)
        elif isinstance(event, ir.ReasoningDelta):
            parts += self._reasoning(event)
        elif isinstance(event, ir.Finish):
            return self._finish(parts, event)
        return self._emit(self._chunk(parts)) if parts else b""

    def close(self) -> bytes:
        if self._closed:
            return b""
        out = b""
        if not self._ended:
            out = self._error(ir.GatewayError(502, "upstream stream ended before it finished", kind="server"))
        self._closed = True
        if not self.sse:
            out += b"[]" if self._chunks_sent == 0 else b"]"
        return out

    # ------------------------------------------------------------ pieces

    def _reasoning(self, event: ir.ReasoningDelta) -> list[dict[str, Any]]:
        parts = self._parts.thought(event.text) if event.text and not event.redacted else []
        if event.signature is not None:
            parts += self._parts.signature(event.signature, event.origin, redacted=event.redacted)
        return parts

    def _flush_calls(self) -> list[dict[str, Any]]:
        parts: list[dict[str, Any]] = []
        for index in sorted(self._calls):
            call = self._calls[index]
            parts += self._parts.call(call.id, call.name, arguments_object(call.arguments or "{}", call.kind))
        if self._calls:
            self._sent_calls = True
            self._calls.clear()
        return parts

    def _finish(self, parts: list[dict[str, Any]], event: ir.Finish) -> bytes:
        parts += self._parts.flush()
        stop = "tool_use" if self._sent_calls else event.stop_reason
        chunk = self._chunk(parts, finish=finish_reason_for(stop))
        if event.usage is not None:
            chunk["usageMetadata"] = usage_metadata(event.usage)
        self._ended = True
        return self._emit(chunk)

    def _error(self, error: ir.GatewayError) -> bytes:
        self._ended = True
        self._calls.clear()
        if self.sse:
            # Gemini writes a mid-stream error as bare JSON, not as an SSE event; the JS SDK (Gemini CLI)
            # only raises on that form, and the Python SDK reads both.
            self._chunks_sent += 1
            return orjson.dumps(render_error(error)) + b"\r\n\r\n"
        return self._emit(render_error(error))

    def _chunk(self, parts: list[dict[str, Any]], *, finish: str | None = None) -> dict[str, Any]:
        candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}} if parts else {}
        candidate["index"] = 0
        if finish is not None:
            candidate["finishReason"] = finish
        if not self.id:
            self.id = ir.new_id("gen-")
        return {"candidates": [candidate], "modelVersion": self.model, "responseId": self.id}

    def _emit(self, chunk: dict[str, Any]) -> bytes:
        data = orjson.dumps(chunk)
        self._chunks_sent += 1
        if self.sse:
            return b"data: " + data + b"\r\n\r\n"
        return (b"[" if self._chunks_sent == 1 else b",\r\n") + data

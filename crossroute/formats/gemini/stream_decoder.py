"""streamGenerateContent, upstream bytes -> IR events.

Gemini streams carry whole function calls and only new parts per chunk, no
terminator, and `finishReason` on the last chunk. With ?alt=sse every chunk is
a `data:` frame; without it the body is one JSON array written incrementally.
"""

from __future__ import annotations

from typing import Any

import orjson

from crossroute import ir
from crossroute.formats.gemini._wire import (
    blocked_prompt,
    field,
    stop_reason_from,
)
from crossroute.formats.gemini.errors import error_from_body
from crossroute.formats.gemini.response import (
    candidate_parts,
    decode_parts,
    finish_of,
    first_candidate,
    model_version,
    response_id,
)
from crossroute.formats.gemini.usage import add_usage, read_usage
from crossroute.sse import SSEParser

_RAW_KEEP = 1 << 20  # bytes kept to read a body that turns out not to be SSE
_BLOCKED = "__blocked_prompt__"


class StreamDecoder:
    def __init__(self) -> None:
        self._sse = SSEParser()
        self._raw = bytearray()
        self._framed = False
        self._started = False
        self._done = False
        self._finish: str | None = None
        self._usage_metadata: dict[str, Any] | None = None  # the chunks' counts added up; read at the end
        self._calls = 0
        self._in_text = False  # the last event was answer text

    def feed(self, chunk: bytes) -> list[ir.Event]:
        if not self._framed and len(self._raw) < _RAW_KEEP:
            self._raw += chunk
        events: list[ir.Event] = []
        for frame in self._sse.feed(chunk):
            self._framed = True
            events += self._data(frame.data)
        return events

    def close(self) -> list[ir.Event]:
        events: list[ir.Event] = []
        for frame in self._sse.close():
            self._framed = True
            events += self._data(frame.data)
        if not self._framed and self._raw.strip():
            events += self._data(self._raw.decode("utf-8", errors="replace"))
        elif self._sse.stray:  # a bare JSON error written into the SSE stream
            events += self._stray_error("\n".join(self._sse.stray))
        if not self._done:
            events += self._end()
        return events

    def _stray_error(self, text: str) -> list[ir.Event]:
        try:
            parsed = orjson.loads(text)
        except orjson.JSONDecodeError:
            return []
        if isinstance(parsed, dict) and isinstance(parsed.get("error"), dict):
            return self._chunk(parsed)
        return []

    # ------------------------------------------------------------ chunks

    def _data(self, data: str) -> list[ir.Event]:
        if self._done:
            return []
        if data.strip() == "[DONE]":
            return self._end(clean=True)
        try:
            parsed = orjson.loads(data)
        except orjson.JSONDecodeError:
            return self._fail(ir.GatewayError(502, "upstream sent a malformed stream chunk", kind="server"))
        chunks = parsed if isinstance(parsed, list) else [parsed]
        events: list[ir.Event] = []
        for chunk in chunks:
            if not self._done and isinstance(chunk, dict):
                events += self._chunk(chunk)
        return events

    def _chunk(self, chunk: dict[str, Any]) -> list[ir.Event]:
        if isinstance(chunk.get("error"), dict):
            return self._fail(error_from_body(chunk, None))
        events: list[ir.Event] = []
        if not self._started:
            self._started = True
            events.append(_stream_start(chunk))
        metadata = field(chunk, "usageMetadata")
        if isinstance(metadata, dict):
            self._usage_metadata = add_usage(self._usage_metadata, metadata)
        candidate = first_candidate(chunk)
        parts = decode_parts(candidate_parts(candidate))
        for position, part in enumerate(parts):
            following = parts[position + 1] if position + 1 < len(parts) else None
            if self._splits_text(part, following):
                continue
            events += self._part_events(part)
            self._in_text = isinstance(part, ir.Text)
        finish = finish_of(candidate)
        if finish:
            self._finish = finish
        elif candidate is None and blocked_prompt(chunk):
            self._finish = _BLOCKED
        return events

    def _splits_text(self, part: ir.Part, following: ir.Part | None) -> bool:
        """Gemini often signs the last piece of a streamed answer. That signature
        is optional to replay (only function-call signatures are checked), and
        passing it on would cut one answer into two, so it is dropped."""
        return (self._in_text and isinstance(part, ir.Reasoning) and not part.text
                and isinstance(following, ir.Text))

    def _part_events(self, part: ir.Part) -> list[ir.Event]:
        if isinstance(part, ir.Text):
            return [ir.TextDelta(part.text)]
        if isinstance(part, ir.Reasoning):
            events: list[ir.Event] = []
            if part.text:
                events.append(ir.ReasoningDelta(text=part.text, origin=part.origin))
            if part.signature is not None:
                events.append(ir.ReasoningDelta(signature=part.signature, origin=part.origin))
            return events
        if isinstance(part, ir.ToolCall):
            index, self._calls = self._calls, self._calls + 1
            return [ir.ToolCallStart(index, part.id, part.name), ir.ToolCallDelta(index, part.arguments)]
        return []  # the IR stream has no event for generated images

    # ------------------------------------------------------------ endings

    def _end(self, *, clean: bool = False) -> list[ir.Event]:
        self._done = True
        events: list[ir.Event] = []
        if not self._started:
            if not clean:
                return [ir.StreamError(ir.GatewayError(502, "upstream stream was empty", kind="server"))]
            events.append(ir.StreamStart(ir.new_id("gen-"), ""))
        if self._finish is None and not clean:
            error = ir.GatewayError(502, "upstream stream ended without a finishReason", kind="server")
            return events + [ir.StreamError(error)]
        if self._finish == _BLOCKED:
            stop: ir.StopReason = "content_filter"
        else:
            stop = stop_reason_from(self._finish, has_calls=self._calls > 0)
        return events + [ir.Finish(stop, read_usage(self._usage_metadata))]

    def _fail(self, error: ir.GatewayError) -> list[ir.Event]:
        self._done = True
        return [ir.StreamError(error)]


def _stream_start(chunk: dict[str, Any]) -> ir.StreamStart:
    return ir.StreamStart(response_id(chunk) or ir.new_id("gen-"), model_version(chunk))

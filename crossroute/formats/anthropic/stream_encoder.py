"""IR events -> an Anthropic SSE stream for a client (always with `event:` lines).

Blocks get indexes from a running counter; a block of another kind closes the
open one. A thinking block is closed right after its signature_delta; a
thinking block that never gets a signature keeps the `signature: ""` of its
content_block_start, which is well formed and reads back as "no signature".
A custom tool call (raw string input) is streamed as the object {"input": ...}.
"""

from __future__ import annotations

from typing import Any

import orjson

from crossroute import ir
from crossroute.formats.anthropic._common import OWN_FAMILY, message_id, stop_to_wire, usage_to_wire
from crossroute.formats.anthropic.errors import render_error
from crossroute.sse import frame


class StreamEncoder:
    def __init__(self, req: ir.Request) -> None:
        self._req = req
        self._started = False
        self._ended = False
        self._start_usage: ir.Usage | None = None
        self._next_index = 0
        self._open_kind: str | None = None  # "text", "thinking" or "tool_use"
        self._open_index = -1
        self._open_call: int | None = None
        self._call_blocks: dict[int, int] = {}  # IR call index -> block index
        self._custom_calls: set[int] = set()

    def encode(self, event: ir.Event) -> bytes:
        if self._ended:
            return b""
        if isinstance(event, ir.StreamStart):
            return self._start(event) if not self._started else b""
        out = b"" if self._started else self._start(ir.StreamStart(ir.new_id("msg_"), self._req.model))
        if isinstance(event, ir.TextDelta):
            out += self._text(event)
        elif isinstance(event, ir.ReasoningDelta):
            out += self._reasoning(event)
        elif isinstance(event, ir.ToolCallStart):
            out += self._tool_start(event)
        elif isinstance(event, ir.ToolCallDelta):
            out += self._tool_delta(event)
        elif isinstance(event, ir.Finish):
            out += self._finish(event)
        elif isinstance(event, ir.StreamError):
            out += self._error(event.error)
        return out

    def close(self) -> bytes:
        if self._ended:
            return b""
        return self._error(ir.GatewayError(502, "upstream stream ended before it finished", kind="server"))

    # ------------------------------------------------------------ message level

    def _start(self, event: ir.StreamStart) -> bytes:
        self._started = True
        self._start_usage = event.usage
        message: dict[str, Any] = {
            "id": message_id(event.id),
            "type": "message",
            "role": "assistant",
            "model": event.model or self._req.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": usage_to_wire(event.usage),
        }
        return _event("message_start", {"type": "message_start", "message": message})

    def _finish(self, event: ir.Finish) -> bytes:
        out = self._close_block()
        self._ended = True
        usage = usage_to_wire(event.usage or self._start_usage)
        delta = {"stop_reason": stop_to_wire(event.stop_reason, bool(self._call_blocks)), "stop_sequence": None}
        out += _event("message_delta", {"type": "message_delta", "delta": delta, "usage": usage})
        return out + _event("message_stop", {"type": "message_stop"})

    def _error(self, error: ir.GatewayError) -> bytes:
        self._ended = True
        return _event("error", render_error(error))

    # ------------------------------------------------------------ blocks

    def _open_block(self, kind: str, content_block: dict[str, Any]) -> bytes:
        out = self._close_block()
        self._open_kind, self._open_index = kind, self._next_index
        self._next_index += 1
        payload = {"type": "content_block_start", "index": self._open_index, "content_block": content_block}
        return out + _event("content_block_start", payload)

    def _close_block(self) -> bytes:
        if self._open_kind is None:
            return b""
        out = b""
        if self._open_call is not None and self._open_call in self._custom_calls:
            out += self._delta(self._open_index, {"type": "input_json_delta", "partial_json": '"}'})
        out += _event("content_block_stop", {"type": "content_block_stop", "index": self._open_index})
        self._open_kind, self._open_call = None, None
        return out

    def _delta(self, index: int, delta: dict[str, Any]) -> bytes:
        return _event("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta})

    def _text(self, event: ir.TextDelta) -> bytes:
        if not event.text:
            return b""
        out = b"" if self._open_kind == "text" else self._open_block("text", {"type": "text", "text": ""})
        return out + _TEXT_DELTA % (self._open_index, orjson.dumps(event.text))

    def _reasoning(self, event: ir.ReasoningDelta) -> bytes:
        if event.redacted:
            return self._redacted(event)
        out = b""
        if event.text or event.signature:
            out += self._ensure_thinking()
        if event.text:
            out += self._delta(self._open_index, {"type": "thinking_delta", "thinking": event.text})
        if event.signature:
            signature = ir.signature_for_client(event.signature, event.origin, OWN_FAMILY)
            out += self._delta(self._open_index, {"type": "signature_delta", "signature": signature})
            out += self._close_block()  # a signature ends its thinking block
        return out

    def _ensure_thinking(self) -> bytes:
        if self._open_kind == "thinking":
            return b""
        return self._open_block("thinking", {"type": "thinking", "thinking": "", "signature": ""})

    def _redacted(self, event: ir.ReasoningDelta) -> bytes:
        if not event.signature:
            return b""
        if event.origin not in (None, OWN_FAMILY):  # only Anthropic mints redacted data; keep it replayable
            return self._reasoning(ir.ReasoningDelta(signature=event.signature, origin=event.origin))
        out = self._open_block("redacted_thinking", {"type": "redacted_thinking", "data": event.signature})
        return out + self._close_block()

    def _tool_start(self, event: ir.ToolCallStart) -> bytes:
        block = {"type": "tool_use", "id": event.id, "name": event.name, "input": {}}
        out = self._open_block("tool_use", block)
        self._open_call = event.index
        self._call_blocks[event.index] = self._open_index
        if event.kind == "custom":
            self._custom_calls.add(event.index)
            out += self._delta(self._open_index, {"type": "input_json_delta", "partial_json": '{"input":"'})
        return out

    def _tool_delta(self, event: ir.ToolCallDelta) -> bytes:
        # Deltas of an already closed call (interleaved upstream calls, never seen in
        # practice) still go to that call's block: SDKs accumulate by index.
        block_index = self._call_blocks.get(event.index)
        if block_index is None or not event.arguments:
            return b""
        piece = event.arguments
        if event.index in self._custom_calls:
            piece = orjson.dumps(piece).decode()[1:-1]  # the raw text, escaped inside the JSON string
        return self._delta(block_index, {"type": "input_json_delta", "partial_json": piece})


_TEXT_DELTA = (b'event: content_block_delta\ndata: {"type":"content_block_delta","index":%d,'
               b'"delta":{"type":"text_delta","text":%s}}\n\n')  # most of a stream, built without a dict


def _event(name: str, payload: dict[str, Any]) -> bytes:
    return frame(orjson.dumps(payload), name)

"""An upstream's Anthropic SSE stream -> IR events."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from crossroute import ir
from crossroute.formats.anthropic._common import OWN_FAMILY, dump_json, stop_from_wire
from crossroute.formats.anthropic.errors import error_from_object, status_for_error_type
from crossroute.formats.anthropic.usage import add_usage, read_usage
from crossroute.sse import SSEFrame, SSEParser


@dataclass(slots=True)
class _Block:
    kind: str  # "text", "thinking", "tool_use", or "other" (ignored)
    call_index: int = -1
    has_arguments: bool = False


class StreamDecoder:
    """Feed raw bytes cut anywhere; get IR events. Finish comes at message_stop
    (or at EOF after a message_delta); any other early end is a StreamError."""

    def __init__(self) -> None:
        self._sse = SSEParser()
        self._blocks: dict[int, _Block] = {}
        self._calls = 0
        self._usage: dict[str, Any] | None = None  # the wire counts, frames merged
        self._stop_reason: Any = None
        self._saw_delta = False
        self._done = False

    def feed(self, chunk: bytes) -> list[ir.Event]:
        return self._frames(self._sse.feed(chunk))

    def close(self) -> list[ir.Event]:
        events = self._frames(self._sse.close())
        if self._done:
            return events
        self._done = True
        if self._saw_delta:  # message_stop lost; the answer itself is complete
            return [*events, self._finish()]
        return [*events, ir.StreamError(ir.GatewayError(502, "upstream stream ended before message_stop"))]

    # ------------------------------------------------------------ frames

    def _frames(self, frames: list[SSEFrame]) -> list[ir.Event]:
        events: list[ir.Event] = []
        for frame in frames:
            if self._done:
                break
            events.extend(self._frame(frame))
        return events

    def _frame(self, frame: SSEFrame) -> list[ir.Event]:
        try:
            data = orjson.loads(frame.data)
        except orjson.JSONDecodeError:
            return self._fail(ir.GatewayError(502, f"upstream sent malformed stream data: {frame.data[:200]!r}"))
        if not isinstance(data, dict):
            return self._fail(ir.GatewayError(502, "upstream sent a stream event that is not an object"))
        kind = data.get("type") if isinstance(data.get("type"), str) else frame.event
        handler = _HANDLERS.get(kind or "")
        return handler(self, data) if handler else []

    def _fail(self, error: ir.GatewayError) -> list[ir.Event]:
        self._done = True
        return [ir.StreamError(error)]

    # ------------------------------------------------------------ events

    def _message_start(self, data: dict[str, Any]) -> list[ir.Event]:
        message = _obj(data.get("message"))
        usage = message.get("usage")
        if isinstance(usage, dict):
            self._usage = add_usage(self._usage, usage)
        return [
            ir.StreamStart(
                id=_str(message.get("id")) or ir.new_id("msg_"),
                model=_str(message.get("model")),
                usage=read_usage(self._usage),
            )
        ]

    def _block_start(self, data: dict[str, Any]) -> list[ir.Event]:
        block = _obj(data.get("content_block"))
        index = _index(data)
        kind = block.get("type")
        if kind == "text":
            self._blocks[index] = _Block("text")
            text = _str(block.get("text"))
            return [ir.TextDelta(text)] if text else []
        if kind == "thinking":
            self._blocks[index] = _Block("thinking")
            return self._thinking_start(block)
        if kind == "redacted_thinking":
            self._blocks[index] = _Block("other")
            return [ir.ReasoningDelta(signature=_str(block.get("data")), origin=OWN_FAMILY, redacted=True)]
        if kind == "tool_use":
            return self._tool_start(index, block)
        self._blocks[index] = _Block("other")
        return []

    def _thinking_start(self, block: dict[str, Any]) -> list[ir.Event]:
        events: list[ir.Event] = []
        text = _str(block.get("thinking"))
        if text:
            events.append(ir.ReasoningDelta(text=text, origin=OWN_FAMILY))
        signature = _str(block.get("signature"))
        if signature:
            events.append(ir.ReasoningDelta(signature=signature, origin=OWN_FAMILY))
        return events

    def _tool_start(self, index: int, block: dict[str, Any]) -> list[ir.Event]:
        call = _Block("tool_use", call_index=self._calls)
        self._calls += 1
        self._blocks[index] = call
        call_id = _str(block.get("id")) or ir.new_id("call_")
        events: list[ir.Event] = [ir.ToolCallStart(call.call_index, call_id, _str(block.get("name")))]
        arguments = block.get("input")
        if isinstance(arguments, dict) and arguments:  # the whole input came at once
            call.has_arguments = True
            events.append(ir.ToolCallDelta(call.call_index, dump_json(arguments)))
        return events

    def _block_delta(self, data: dict[str, Any]) -> list[ir.Event]:
        block = self._blocks.get(_index(data))
        delta = _obj(data.get("delta"))
        kind = delta.get("type")
        if kind == "text_delta":
            text = _str(delta.get("text"))
            return [ir.TextDelta(text)] if text else []
        if kind == "thinking_delta":
            text = _str(delta.get("thinking"))
            return [ir.ReasoningDelta(text=text, origin=OWN_FAMILY)] if text else []
        if kind == "signature_delta":
            signature = _str(delta.get("signature"))
            return [ir.ReasoningDelta(signature=signature, origin=OWN_FAMILY)] if signature else []
        if kind == "input_json_delta" and block is not None and block.kind == "tool_use":
            piece = _str(delta.get("partial_json"))
            if not piece:
                return []
            block.has_arguments = True
            return [ir.ToolCallDelta(block.call_index, piece)]
        return []

    def _block_stop(self, data: dict[str, Any]) -> list[ir.Event]:
        block = self._blocks.get(_index(data))
        if block is not None and block.kind == "tool_use" and not block.has_arguments:
            block.has_arguments = True
            return [ir.ToolCallDelta(block.call_index, "{}")]  # a call without input has input {}
        return []

    def _message_delta(self, data: dict[str, Any]) -> list[ir.Event]:
        self._saw_delta = True
        delta = data.get("delta")
        if isinstance(delta, dict) and delta.get("stop_reason") is not None:
            self._stop_reason = delta["stop_reason"]
        usage = data.get("usage")
        if isinstance(usage, dict):
            self._usage = add_usage(self._usage, usage)
        return []

    def _message_stop(self, data: dict[str, Any]) -> list[ir.Event]:
        self._done = True
        return [self._finish()]

    def _error(self, data: dict[str, Any]) -> list[ir.Event]:
        error = _obj(data.get("error"))
        status = status_for_error_type(error.get("type"))
        return self._fail(error_from_object(status, error))

    def _finish(self) -> ir.Finish:
        stop = stop_from_wire(self._stop_reason, has_tool_calls=self._calls > 0)
        return ir.Finish(stop, read_usage(self._usage))


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _index(data: dict[str, Any]) -> int:
    index = data.get("index")
    return index if isinstance(index, int) else -1


def _ignore(decoder: StreamDecoder, data: dict[str, Any]) -> list[ir.Event]:
    return []


_HANDLERS = {
    "message_start": StreamDecoder._message_start,
    "content_block_start": StreamDecoder._block_start,
    "content_block_delta": StreamDecoder._block_delta,
    "content_block_stop": StreamDecoder._block_stop,
    "message_delta": StreamDecoder._message_delta,
    "message_stop": StreamDecoder._message_stop,
    "error": StreamDecoder._error,
    "ping": _ignore,
}

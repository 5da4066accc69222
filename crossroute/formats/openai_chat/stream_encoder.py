"""IR events as a `chat.completion.chunk` SSE stream for a Chat client."""

from __future__ import annotations

import time
from typing import Any

import orjson

from crossroute.formats.openai_chat._common import (
    SIGNATURE_FAMILY,
    client_id,
    finish_reason_for,
    usage_to_wire,
)
from crossroute.formats.openai_chat.errors import render_error
from crossroute.ir import (
    Event,
    Finish,
    GatewayError,
    ReasoningDelta,
    Request,
    StreamError,
    StreamStart,
    TextDelta,
    ToolCallDelta,
    ToolCallStart,
    Usage,
    new_id,
    signature_for_client,
)
from crossroute.sse import frame

_DONE = b"data: [DONE]\n\n"

_TEXT_TAIL = b'},"finish_reason":null,"logprobs":null}]}\n\n'


class StreamEncoder:
    def __init__(self, req: Request) -> None:
        self._req = req
        stream_options = req.extras.get("stream_options")
        self._include_usage = isinstance(stream_options, dict) and bool(stream_options.get("include_usage"))
        self._id = ""
        self._model = req.model
        self._created = int(time.time())
        self._text_head = b""
        self._started = False
        self._ended = False
        self._start_usage: Usage | None = None
        self._custom_calls: set[int] = set()
        self._saw_tool_call = False
        self._signature: str | None = None  # a Gemini signature for the next tool call

    def encode(self, event: Event) -> bytes:
        if self._ended:
            return b""
        if isinstance(event, StreamError):
            return self._error(event.error)
        if isinstance(event, StreamStart):
            return self._start(event)
        out = b"" if self._started else self._start(StreamStart(new_id(""), self._model))
        if isinstance(event, Finish):
            return out + self._finish(event)
        if isinstance(event, ReasoningDelta):
            return out + self._reasoning(event)
        if isinstance(event, TextDelta) and event.text:
            out += self._text_head + orjson.dumps(event.text) + _TEXT_TAIL
        elif isinstance(event, ToolCallStart):
            out += self._tool_call_start(event)
        elif isinstance(event, ToolCallDelta):
            out += self._tool_call_delta(event)
        self._signature = None  # it belongs only to a call that comes right after it
        return out

    def close(self) -> bytes:
        if self._ended:
            return b""
        return self._error(GatewayError(502, "upstream stream ended before it finished", kind="server"))

    # ------------------------------------------------------------ events

    def _start(self, event: StreamStart) -> bytes:
        if self._started:
            return b""
        self._started = True
        self._id = client_id(event.id) or new_id("chatcmpl-")
        self._model = event.model or self._req.model
        self._start_usage = event.usage
        # a text chunk is this prefix, the JSON string and _TEXT_TAIL: most of a stream, built without a dict
        self._text_head = b'data: {"id":%s,"object":"chat.completion.chunk","created":%d,"model":%s,' \
            b'"choices":[{"index":0,"delta":{"content":' % (orjson.dumps(self._id), self._created,
                                                            orjson.dumps(self._model))
        return self._delta({"role": "assistant", "content": ""})

    def _reasoning(self, event: ReasoningDelta) -> bytes:
        if event.signature and event.origin == SIGNATURE_FAMILY and not event.redacted:
            self._signature = signature_for_client(event.signature, event.origin, SIGNATURE_FAMILY)
        elif event.text:
            self._signature = None
        if not event.text:
            return b""
        return self._delta({"reasoning_content": event.text})

    def _tool_call_start(self, event: ToolCallStart) -> bytes:
        self._saw_tool_call = True
        call: dict[str, Any] = {"index": event.index, "id": event.id}
        if event.kind == "custom":
            self._custom_calls.add(event.index)
            call.update(type="custom", custom={"name": event.name, "input": ""})
        else:
            call.update(type="function", function={"name": event.name, "arguments": ""})
        if self._signature:
            call["extra_content"] = {"google": {"thought_signature": self._signature}}
        return self._delta({"tool_calls": [call]})

    def _tool_call_delta(self, event: ToolCallDelta) -> bytes:
        if not event.arguments:
            return b""
        if event.index in self._custom_calls:
            call: dict[str, Any] = {"index": event.index, "custom": {"input": event.arguments}}
        else:
            call = {"index": event.index, "function": {"arguments": event.arguments}}
        return self._delta({"tool_calls": [call]})

    def _finish(self, event: Finish) -> bytes:
        self._ended = True
        finish_reason = finish_reason_for(event.stop_reason, self._saw_tool_call)
        out = self._chunk([{"index": 0, "delta": {}, "finish_reason": finish_reason, "logprobs": None}])
        usage = event.usage or self._start_usage
        if self._include_usage and usage is not None:
            out += self._chunk([], usage=usage_to_wire(usage))
        return out + _DONE

    def _error(self, error: GatewayError) -> bytes:
        self._ended = True
        return frame(orjson.dumps(render_error(error))) + _DONE

    # ------------------------------------------------------------ framing

    def _delta(self, delta: dict[str, Any]) -> bytes:
        return self._chunk([{"index": 0, "delta": delta, "finish_reason": None, "logprobs": None}])

    def _chunk(self, choices: list[dict[str, Any]], usage: dict[str, Any] | None = None) -> bytes:
        chunk: dict[str, Any] = {
            "id": self._id,
            "object": "chat.completion.chunk",
            "created": self._created,
            "model": self._model,
            "choices": choices,
        }
        if usage is not None:
            chunk["usage"] = usage
        return frame(orjson.dumps(chunk))

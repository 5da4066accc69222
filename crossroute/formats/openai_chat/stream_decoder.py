"""An upstream's `chat.completion.chunk` SSE stream, as IR events."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

from crossroute.formats.openai_chat._common import (
    SIGNATURE_FAMILY,
    answer_texts_of,
    arguments_text,
    reasoning_text_of,
    stop_reason_for,
    thought_signature_of,
)
from crossroute.formats.openai_chat.errors import error_from_object
from crossroute.formats.openai_chat.usage import read_usage
from crossroute.ir import (
    Event,
    Finish,
    GatewayError,
    ReasoningDelta,
    StreamError,
    StreamStart,
    TextDelta,
    ToolCallDelta,
    ToolCallStart,
    Usage,
    new_id,
)
from crossroute.sse import SSEParser

# Keys for calls that arrive without a usable `index` (never clash with real ones).
_SYNTHETIC_KEY_BASE = 1 << 30


@dataclass(slots=True)
class _Call:
    """A tool call being streamed, keyed by the upstream's index. It is
    announced (ToolCallStart) once its name is known; argument pieces seen
    before that wait in `pending`."""

    id: str
    name: str = ""
    kind: Literal["function", "custom"] = "function"
    ordinal: int | None = None
    signature: str | None = None
    pending: list[str] = field(default_factory=list)


class StreamDecoder:
    def __init__(self) -> None:
        self._sse = SSEParser()
        self._started = False
        self._ended = False  # Finish or StreamError has been emitted
        self._finish_reason: str | None = None
        self._usage: Usage | None = None
        self._calls: dict[int, _Call] = {}
        self._last_key: int | None = None
        self._ordinals = 0

    def feed(self, chunk: bytes) -> list[Event]:
        events: list[Event] = []
        for sse_frame in self._sse.feed(chunk):
            self._take(sse_frame.data, events)
        return events

    def close(self) -> list[Event]:
        events: list[Event] = []
        for sse_frame in self._sse.close():
            self._take(sse_frame.data, events)
        if self._ended:
            return events
        if self._finish_reason is not None:
            self._finish(events)
        else:
            self._fail(GatewayError(502, "upstream stream ended before it finished", kind="server"), events)
        return events

    # ------------------------------------------------------------ frames

    def _take(self, data: str, events: list[Event]) -> None:
        if self._ended:
            return
        if data.strip() == "[DONE]":
            # An explicit end: a stream that ends with [DONE] but never said
            # why it stopped is treated as a normal stop.
            self._finish(events)
            return
        try:
            chunk = orjson.loads(data)
        except orjson.JSONDecodeError:
            self._fail(
                GatewayError(502, "upstream sent a stream chunk that is not JSON", kind="server"), events
            )
            return
        if not isinstance(chunk, dict):
            self._fail(
                GatewayError(502, "upstream sent a stream chunk that is not an object", kind="server"), events
            )
            return
        if chunk.get("error"):
            error = error_from_object(0, chunk) or GatewayError(502, "upstream stream failed", kind="server")
            self._fail(error, events)
            return
        self._chunk(chunk, events)

    def _chunk(self, chunk: dict[str, Any], events: list[Event]) -> None:
        text = _only_text(chunk) if self._started else None
        if text is not None:
            if text:
                events.append(TextDelta(text))
            return
        self._start(chunk, events)
        usage = read_usage(chunk.get("usage"))
        if usage is not None:
            self._usage = usage
        choices = chunk.get("choices")
        for choice in choices if isinstance(choices, list) else []:
            if isinstance(choice, dict) and choice.get("index", 0) == 0:
                self._choice(choice, events)
        # Finish waits for the usage chunk that follows finish_reason (or [DONE] / EOF).
        if self._finish_reason is not None and usage is not None:
            self._finish(events)

    def _start(self, chunk: dict[str, Any], events: list[Event]) -> None:
        if self._started:
            return
        self._started = True
        upstream_id, model = chunk.get("id"), chunk.get("model")
        events.append(
            StreamStart(
                id=upstream_id if isinstance(upstream_id, str) and upstream_id else new_id("chatcmpl-"),
                model=model if isinstance(model, str) else "",
            )
        )

    def _choice(self, choice: dict[str, Any], events: list[Event]) -> None:
        delta = choice.get("delta")
        if isinstance(delta, dict):
            self._delta(delta, events)
        finish_reason = choice.get("finish_reason")
        if isinstance(finish_reason, str) and finish_reason:
            self._finish_reason = finish_reason

    def _delta(self, delta: dict[str, Any], events: list[Event]) -> None:
        reasoning = reasoning_text_of(delta)
        if reasoning:
            events.append(ReasoningDelta(text=reasoning))
        events.extend(TextDelta(text) for text in answer_texts_of(delta))
        tool_calls = delta.get("tool_calls")
        for fragment in tool_calls if isinstance(tool_calls, list) else []:
            if isinstance(fragment, dict):
                self._tool_fragment(fragment, events)
        legacy = delta.get("function_call")
        if isinstance(legacy, dict):
            self._tool_fragment({"index": _SYNTHETIC_KEY_BASE - 1, "function": legacy}, events)

    # ------------------------------------------------------------ tool calls

    def _tool_fragment(self, fragment: dict[str, Any], events: list[Event]) -> None:
        call = self._call_for(fragment)
        name, piece, kind = _fragment_fields(fragment)
        if call.ordinal is None:
            call.name = call.name or name
            call.kind = kind or call.kind
            call.signature = call.signature or thought_signature_of(fragment)
            call.id = _text(fragment.get("id")) or call.id
        if piece:
            call.pending.append(piece)
        if call.ordinal is None and call.name:
            self._announce(call, events)
        if call.ordinal is not None and call.pending:
            events.append(ToolCallDelta(call.ordinal, "".join(call.pending)))
            call.pending.clear()

    def _call_for(self, fragment: dict[str, Any]) -> _Call:
        key = fragment.get("index")
        fragment_id = _text(fragment.get("id"))
        has_new_id = bool(fragment_id)
        if not isinstance(key, int) or isinstance(key, bool):
            key = self._last_key if self._last_key is not None and not has_new_id else None
        call = self._calls.get(key) if key is not None else None
        # Some compatible servers send every call with index 0: a different id
        # on an announced call means a new call.
        if call is not None and has_new_id and call.ordinal is not None and fragment_id != call.id:
            call = None
            key = None
        if key is None:
            key = _SYNTHETIC_KEY_BASE + len(self._calls)
        if call is None:
            call = _Call(id=fragment_id if has_new_id else new_id("call_"))
            self._calls[key] = call
        self._last_key = key
        return call

    def _announce(self, call: _Call, events: list[Event]) -> None:
        if call.signature:
            events.append(ReasoningDelta(signature=call.signature, origin=SIGNATURE_FAMILY))
        call.ordinal = self._ordinals
        self._ordinals += 1
        events.append(ToolCallStart(call.ordinal, call.id, call.name, call.kind))

    # ------------------------------------------------------------ endings

    def _finish(self, events: list[Event]) -> None:
        if not self._started:
            self._start({}, events)
        has_calls = self._ordinals > 0
        events.append(Finish(stop_reason_for(self._finish_reason, has_calls), self._usage))
        self._ended = True

    def _fail(self, error: GatewayError, events: list[Event]) -> None:
        events.append(StreamError(error))
        self._ended = True


def _fragment_fields(fragment: dict[str, Any]) -> tuple[str, str, Literal["function", "custom"] | None]:
    """(name, argument piece, kind) of one tool-call fragment."""
    custom = fragment.get("custom")
    if fragment.get("type") == "custom" or isinstance(custom, dict):
        custom = custom if isinstance(custom, dict) else {}
        return _text(custom.get("name")), _text(custom.get("input")), "custom"
    function = fragment.get("function")
    if not isinstance(function, dict):
        return "", "", None
    return _text(function.get("name")), arguments_text(function.get("arguments")), None


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _only_text(chunk: dict[str, Any]) -> str | None:
    """The text of a chunk that carries nothing else (most of a stream), else None."""
    choices = chunk.get("choices")
    if chunk.get("usage") is not None or type(choices) is not list or len(choices) != 1:
        return None
    choice = choices[0]
    if type(choice) is not dict or choice.get("index", 0) != 0 or choice.get("finish_reason") is not None:
        return None
    delta = choice.get("delta")
    if type(delta) is not dict:
        return None
    content = delta.get("content")
    if type(content) is not str or len(delta) > (2 if "role" in delta else 1):
        return None
    return content

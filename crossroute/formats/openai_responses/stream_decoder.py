"""An upstream's Responses SSE stream -> IR events.

The output is built from the streamed items, never from the terminal
response's `output` (Codex's backend sends it empty) unless no item came at
all. Whole values in `.done` events and `output_item.done` are used only
when no delta carried them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import orjson

from crossroute import ir
from crossroute.formats.openai_responses._common import (
    FAMILY,
    get_dict,
    get_int,
    get_list,
    get_str,
    response_error,
    stop_reason_of,
    summary_text,
)
from crossroute.formats.openai_responses._items import message_texts, upstream_call_id
from crossroute.formats.openai_responses.usage import read_usage
from crossroute.sse import SSEParser

TERMINAL = ("response.completed", "response.incomplete", "response.failed", "error")


@dataclass(slots=True)
class _Item:
    kind: str
    item_id: str | None
    ordinal: int = -1  # tool-call ordinal
    streamed: bool = False  # a delta (text, arguments, reasoning) came for it
    summary_index: int = 0


class StreamDecoder:
    def __init__(self) -> None:
        self._parser = SSEParser()
        self._started = False
        self._finished = False
        self._calls = 0
        self._by_index: dict[int, _Item] = {}
        self._by_id: dict[str, _Item] = {}

    def feed(self, chunk: bytes) -> list[ir.Event]:
        events: list[ir.Event] = []
        for frame in self._parser.feed(chunk):
            self._frame(frame.data, frame.event, events)
        return events

    def close(self) -> list[ir.Event]:
        events: list[ir.Event] = []
        for frame in self._parser.close():
            self._frame(frame.data, frame.event, events)
        if not self._finished:
            self._finished = True
            error = ir.GatewayError(502, "upstream stream ended before response.completed", kind="server")
            events.append(ir.StreamError(error))
        return events

    # ---------------------------------------------------------------- dispatch

    def _frame(self, data: str, event_name: str | None, out: list[ir.Event]) -> None:
        if self._finished:
            return
        try:
            payload = orjson.loads(data)
        except orjson.JSONDecodeError:
            return  # keep-alives and other non-JSON noise
        if not isinstance(payload, dict):
            return
        kind = get_str(payload, "type") or event_name or ""
        if kind in TERMINAL:
            self._terminal(kind, payload, out)
            return
        if kind in ("response.created", "response.in_progress", "response.queued"):
            self._start(get_dict(payload, "response"), out)
            return
        self._start({}, out)
        handler = _HANDLERS.get(kind)
        if handler is not None:
            handler(self, payload, out)

    def _start(self, response: dict[str, Any], out: list[ir.Event]) -> None:
        if not self._started:
            self._started = True
            out.append(ir.StreamStart(get_str(response, "id") or ir.new_id("resp_"), get_str(response, "model") or ""))

    # ---------------------------------------------------------------- items

    def _item_for(self, payload: dict[str, Any]) -> _Item | None:
        item_id = get_str(payload, "item_id")
        if item_id is not None and item_id in self._by_id:
            return self._by_id[item_id]
        index = payload.get("output_index")
        return self._by_index.get(index) if isinstance(index, int) else None

    def _item_added(self, payload: dict[str, Any], out: list[ir.Event]) -> None:
        raw = get_dict(payload, "item")
        self._register(payload, raw, out)

    def _register(self, payload: dict[str, Any], raw: dict[str, Any], out: list[ir.Event]) -> _Item:
        item = _Item(get_str(raw, "type") or "", get_str(raw, "id"))
        if item.kind in ("function_call", "custom_tool_call"):
            item.ordinal = self._calls
            self._calls += 1
            kind: Literal["function", "custom"] = "custom" if item.kind == "custom_tool_call" else "function"
            out.append(ir.ToolCallStart(item.ordinal, upstream_call_id(raw), get_str(raw, "name") or "", kind))
        index = payload.get("output_index")
        if isinstance(index, int):
            self._by_index[index] = item
        if item.item_id is not None:
            self._by_id[item.item_id] = item
        return item

    def _item_done(self, payload: dict[str, Any], out: list[ir.Event]) -> None:
        raw = get_dict(payload, "item")
        item = self._item_for({"item_id": get_str(raw, "id"), "output_index": payload.get("output_index")})
        if item is None:
            item = self._register(payload, raw, out)
        if item.kind == "message" and not item.streamed:
            out.extend(ir.TextDelta(t) for t in message_texts(raw) if t)
        elif item.kind == "reasoning":
            self._reasoning_done(item, raw, out)
        elif item.ordinal >= 0 and not item.streamed:
            value = get_str(raw, "input" if item.kind == "custom_tool_call" else "arguments")
            if value:
                out.append(ir.ToolCallDelta(item.ordinal, value))
        item.streamed = True

    def _reasoning_done(self, item: _Item, raw: dict[str, Any], out: list[ir.Event]) -> None:
        if not item.streamed:
            text = summary_text(raw)
            if text:
                out.append(ir.ReasoningDelta(text, origin=FAMILY, id=item.item_id))
        signature = get_str(raw, "encrypted_content")
        if signature is not None:
            out.append(ir.ReasoningDelta(signature=signature, origin=FAMILY, id=item.item_id))

    # ---------------------------------------------------------------- deltas

    def _text_delta(self, payload: dict[str, Any], out: list[ir.Event]) -> None:
        item = self._item_for(payload)
        if item is not None:
            item.streamed = True
        delta = get_str(payload, "delta")
        if delta:
            out.append(ir.TextDelta(delta))

    def _text_done(self, payload: dict[str, Any], out: list[ir.Event]) -> None:
        item = self._item_for(payload)
        if item is not None and not item.streamed:
            item.streamed = True
            text = get_str(payload, "text") or get_str(payload, "refusal")
            if text:
                out.append(ir.TextDelta(text))

    def _arguments_delta(self, payload: dict[str, Any], out: list[ir.Event]) -> None:
        item = self._item_for(payload)
        delta = get_str(payload, "delta")
        if item is not None and item.ordinal >= 0 and delta:
            item.streamed = True
            out.append(ir.ToolCallDelta(item.ordinal, delta))

    def _arguments_done(self, payload: dict[str, Any], out: list[ir.Event]) -> None:
        item = self._item_for(payload)
        value = get_str(payload, "arguments") or get_str(payload, "input")
        if item is not None and item.ordinal >= 0 and not item.streamed:
            item.streamed = True
            if value:
                out.append(ir.ToolCallDelta(item.ordinal, value))

    def _reasoning_delta(self, payload: dict[str, Any], out: list[ir.Event]) -> None:
        item = self._item_for(payload)
        delta = get_str(payload, "delta")
        if not delta:
            return
        item_id = item.item_id if item is not None else get_str(payload, "item_id")
        index = get_int(payload, "summary_index")
        if item is not None:
            if item.streamed and index != item.summary_index:
                delta = "\n\n" + delta  # a new summary part
            item.summary_index = index
            item.streamed = True
        out.append(ir.ReasoningDelta(delta, origin=FAMILY, id=item_id))

    # ---------------------------------------------------------------- end

    def _terminal(self, kind: str, payload: dict[str, Any], out: list[ir.Event]) -> None:
        self._finished = True
        response = get_dict(payload, "response")
        if kind == "error":
            self._start({}, out)
            out.append(ir.StreamError(response_error(payload, "upstream stream error")))
            return
        self._start(response, out)
        if kind == "response.failed":
            out.append(ir.StreamError(response_error(response.get("error"), "upstream response failed")))
            return
        if not self._by_index and not self._by_id:
            self._replay_output(get_list(response, "output"), out)
        reason = get_str(get_dict(response, "incomplete_details"), "reason")
        status = "incomplete" if kind == "response.incomplete" else get_str(response, "status")
        stop = stop_reason_of(status, reason, self._calls > 0)
        out.append(ir.Finish(stop, read_usage(response.get("usage"))))

    def _replay_output(self, items: list[Any], out: list[ir.Event]) -> None:
        """A backend that streamed no items: take the terminal response's output."""
        for index, raw in enumerate(items):
            if isinstance(raw, dict):
                self._item_done({"output_index": index, "item": raw}, out)


_HANDLERS = {
    "response.output_item.added": StreamDecoder._item_added,
    "response.output_item.done": StreamDecoder._item_done,
    "response.output_text.delta": StreamDecoder._text_delta,
    "response.refusal.delta": StreamDecoder._text_delta,
    "response.output_text.done": StreamDecoder._text_done,
    "response.refusal.done": StreamDecoder._text_done,
    "response.function_call_arguments.delta": StreamDecoder._arguments_delta,
    "response.custom_tool_call_input.delta": StreamDecoder._arguments_delta,
    "response.function_call_arguments.done": StreamDecoder._arguments_done,
    "response.custom_tool_call_input.done": StreamDecoder._arguments_done,
    "response.reasoning_summary_text.delta": StreamDecoder._reasoning_delta,
    "response.reasoning_text.delta": StreamDecoder._reasoning_delta,
}

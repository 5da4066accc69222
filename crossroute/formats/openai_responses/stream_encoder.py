"""IR events -> a client's Responses SSE stream.

Event order (what the SDK's stream helper and Codex check): response.created,
response.in_progress, then per item output_item.added -> its part and delta
events -> output_item.done with the complete item, and finally
response.completed / response.incomplete (or response.failed) with the whole
output and usage. Text and reasoning items are closed as soon as something
else starts; tool calls stay open until a non-call item or the end, so
arguments of parallel calls may interleave.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import orjson

from crossroute import ir
from crossroute.formats.openai_responses._common import (
    FAMILY,
    REDACTED_PREFIX,
    response_error_code,
    response_id,
    status_of,
)
from crossroute.formats.openai_responses._items import message_item, output_text_part
from crossroute.formats.openai_responses._tools import namespace_of_tools
from crossroute.formats.openai_responses.response import response_body
from crossroute.sse import frame

# most of a stream, built without a dict
_TEXT_DELTA = (b'event: response.output_text.delta\ndata: {"type":"response.output_text.delta","sequence_number":%d,'
               b'"item_id":%s,"output_index":%d,"content_index":0,"delta":%s,"logprobs":[]}\n\n')


@dataclass(slots=True)
class _Open:
    """An output item being streamed; `item` is its final form, kept current."""

    output_index: int
    item: dict[str, Any]
    text: list[str] = field(default_factory=list)

    @property
    def item_id(self) -> str:
        return str(self.item["id"])

    @property
    def kind(self) -> str:
        return str(self.item["type"])


class StreamEncoder:
    def __init__(self, req: ir.Request) -> None:
        self._req = req
        self._namespaces = namespace_of_tools(req.extras)
        self._seq = 0
        self.response_id: str | None = None
        self._model = req.model
        self._created = int(time.time())
        self._output: list[dict[str, Any]] = []  # final items by output_index
        self._done: set[int] = set()  # output indexes whose output_item.done was sent
        self._block: _Open | None = None  # the open message or reasoning item
        self._calls: dict[int, _Open] = {}  # open tool calls by IR ordinal
        self._ended = False

    # ---------------------------------------------------------------- public

    def encode(self, event: ir.Event) -> bytes:
        if self._ended:
            return b""
        out: list[bytes] = []
        if isinstance(event, ir.StreamStart):
            self._start(out, event.id, event.model)
            return b"".join(out)
        self._start(out)
        if isinstance(event, ir.TextDelta):
            self._text(event.text, out)
        elif isinstance(event, ir.ReasoningDelta):
            self._reasoning(event, out)
        elif isinstance(event, ir.ToolCallStart):
            self._call_start(event, out)
        elif isinstance(event, ir.ToolCallDelta):
            self._call_delta(event, out)
        elif isinstance(event, ir.Finish):
            self._finish(event, out)
        elif isinstance(event, ir.StreamError):
            self._fail(event.error, out)
        return b"".join(out)

    def close(self) -> bytes:
        if self._ended:
            return b""
        out: list[bytes] = []
        self._start(out)
        self._fail(ir.GatewayError(502, "upstream stream ended before it finished", kind="server"), out)
        return b"".join(out)

    # ---------------------------------------------------------------- framing

    def _emit(self, out: list[bytes], kind: str, **fields: Any) -> None:
        payload = {"type": kind, "sequence_number": self._seq, **fields}
        self._seq += 1
        out.append(frame(orjson.dumps(payload), kind))

    def _response(self, status: str, **fields: Any) -> dict[str, Any]:
        assert self.response_id is not None
        return response_body(
            self._req, id=self.response_id, model=self._model, created_at=self._created, status=status, **fields
        )

    def _start(self, out: list[bytes], upstream_id: str | None = None, model: str | None = None) -> None:
        if self.response_id is not None:
            return
        self.response_id = response_id(upstream_id)
        self._model = model or self._req.model
        skeleton = self._response("in_progress", output=[])
        self._emit(out, "response.created", response=skeleton)
        self._emit(out, "response.in_progress", response=skeleton)

    def _add_item(self, item: dict[str, Any], out: list[bytes]) -> _Open:
        opened = _Open(len(self._output), item)
        self._output.append(item)
        added = {**item, "status": "in_progress"} if "status" in item else item
        self._emit(out, "response.output_item.added", output_index=opened.output_index, item=added)
        return opened

    def _item_done(self, opened: _Open, out: list[bytes]) -> None:
        self._done.add(opened.output_index)
        self._emit(out, "response.output_item.done", output_index=opened.output_index, item=opened.item)

    # ---------------------------------------------------------------- text

    def _text(self, text: str, out: list[bytes]) -> None:
        if not text:
            return
        block = self._block
        if block is None or block.kind != "message":
            self._close_all(out)
            block = self._open_message(out)
        block.text.append(text)
        out.append(_TEXT_DELTA % (self._seq, orjson.dumps(block.item_id), block.output_index, orjson.dumps(text)))
        self._seq += 1

    def _open_message(self, out: list[bytes]) -> _Open:
        opened = self._add_item(message_item(ir.new_id("msg_"), "", status="in_progress"), out)
        self._block = opened
        ids = {"item_id": opened.item_id, "output_index": opened.output_index, "content_index": 0}
        self._emit(out, "response.content_part.added", **ids, part=output_text_part(""))
        return opened

    def _close_message(self, block: _Open, out: list[bytes]) -> None:
        text = "".join(block.text)
        ids = {"item_id": block.item_id, "output_index": block.output_index, "content_index": 0}
        self._emit(out, "response.output_text.done", **ids, text=text, logprobs=[])
        self._emit(out, "response.content_part.done", **ids, part=output_text_part(text))
        block.item.update(status="completed", content=[output_text_part(text)])
        self._item_done(block, out)

    # ---------------------------------------------------------------- reasoning

    def _reasoning(self, event: ir.ReasoningDelta, out: list[bytes]) -> None:
        if not event.text and event.signature is None:
            return
        block = self._block
        continues = (
            block is not None
            and block.kind == "reasoning"
            and not event.redacted
            and (event.id is None or event.id == block.item_id or not event.id.startswith("rs_"))
        )
        if not continues:
            self._close_all(out)
            block = self._open_reasoning(event, out)
        assert block is not None
        if event.text:
            self._reasoning_text(block, event.text, out)
        if event.signature is not None:
            block.item["encrypted_content"] = ir.signature_for_client(event.signature, event.origin, FAMILY)
            self._close_reasoning(block, out)  # a signature ends its reasoning block

    def _open_reasoning(self, event: ir.ReasoningDelta, out: list[bytes]) -> _Open:
        if event.redacted:
            item_id = ir.new_id(REDACTED_PREFIX)
        else:
            item_id = event.id if event.id and event.id.startswith("rs_") else ir.new_id("rs_")
        self._block = self._add_item({"id": item_id, "type": "reasoning", "summary": []}, out)
        return self._block

    def _reasoning_text(self, block: _Open, text: str, out: list[bytes]) -> None:
        ids = {"item_id": block.item_id, "output_index": block.output_index, "summary_index": 0}
        if not block.text:
            self._emit(out, "response.reasoning_summary_part.added", **ids, part={"type": "summary_text", "text": ""})
        block.text.append(text)
        self._emit(out, "response.reasoning_summary_text.delta", **ids, delta=text)

    def _close_reasoning(self, block: _Open, out: list[bytes]) -> None:
        if block.text:
            text = "".join(block.text)
            ids = {"item_id": block.item_id, "output_index": block.output_index, "summary_index": 0}
            self._emit(out, "response.reasoning_summary_text.done", **ids, text=text)
            self._emit(out, "response.reasoning_summary_part.done", **ids, part={"type": "summary_text", "text": text})
            block.item["summary"] = [{"type": "summary_text", "text": text}]
        self._item_done(block, out)
        self._block = None

    # ---------------------------------------------------------------- tool calls

    def _call_start(self, event: ir.ToolCallStart, out: list[bytes]) -> None:
        self._close_block(out)
        if event.kind == "custom":
            item = {"id": ir.new_id("ctc_"), "type": "custom_tool_call", "call_id": event.id, "name": event.name,
                    "input": ""}
        else:
            item = {"id": ir.new_id("fc_"), "type": "function_call", "call_id": event.id, "name": event.name,
                    "arguments": "", "status": "completed"}
        if event.name in self._namespaces:
            item["namespace"] = self._namespaces[event.name]
        if event.index in self._calls:  # a reused ordinal: the earlier call is over
            self._close_call(self._calls.pop(event.index), out)
        self._calls[event.index] = self._add_item(item, out)

    def _call_delta(self, event: ir.ToolCallDelta, out: list[bytes]) -> None:
        call = self._calls.get(event.index)
        if call is None or not event.arguments:
            return  # unknown or already finished call
        call.text.append(event.arguments)
        kind = "response.custom_tool_call_input.delta" if call.kind == "custom_tool_call" else (
            "response.function_call_arguments.delta"
        )
        self._emit(out, kind, item_id=call.item_id, output_index=call.output_index, delta=event.arguments)

    def _close_call(self, call: _Open, out: list[bytes]) -> None:
        value = "".join(call.text)
        ids = {"item_id": call.item_id, "output_index": call.output_index}
        if call.kind == "custom_tool_call":
            call.item["input"] = value
            self._emit(out, "response.custom_tool_call_input.done", **ids, input=value)
        else:
            call.item["arguments"] = value or "{}"
            self._emit(out, "response.function_call_arguments.done", **ids, arguments=call.item["arguments"])
        self._item_done(call, out)

    # ---------------------------------------------------------------- closing

    def _close_block(self, out: list[bytes]) -> None:
        block, self._block = self._block, None
        if block is None:
            return
        if block.kind == "message":
            self._close_message(block, out)
        else:
            self._close_reasoning(block, out)

    def _close_all(self, out: list[bytes]) -> None:
        self._close_block(out)
        for call in sorted(self._calls.values(), key=lambda c: c.output_index):
            self._close_call(call, out)
        self._calls.clear()

    def _finish(self, event: ir.Finish, out: list[bytes]) -> None:
        self._close_all(out)
        self._ended = True
        status, reason = status_of(event.stop_reason)
        if status == "failed":
            error = {"code": "server_error", "message": "the upstream model failed"}
            self._emit(out, "response.failed", response=self._response(status, output=self._output, error=error))
            return
        kind = "response.incomplete" if status == "incomplete" else "response.completed"
        response = self._response(status, output=self._output, usage=event.usage, incomplete_reason=reason)
        self._emit(out, kind, response=response)

    def _fail(self, err: ir.GatewayError, out: list[bytes]) -> None:
        """End with response.failed; items still open are left unfinished, as OpenAI does."""
        self._ended = True
        done = [item for index, item in enumerate(self._output) if index in self._done]
        error = {"code": response_error_code(err), "message": err.message}
        self._emit(out, "response.failed", response=self._response("failed", output=done, error=error))

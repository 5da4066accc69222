"""Fake OpenAI Responses upstream: POST /v1/responses (stateless, like store:false)."""

from __future__ import annotations

import copy
from typing import Any

import orjson
from aiohttp import web

from . import openai_common as oc
from .script import Usage, estimate_tokens, new_id, resolve_usage, split_pieces
from .wire import (
    Exchange,
    FakeState,
    Issued,
    Rejection,
    Sink,
    is_int,
    next_turn,
    open_stream,
    refuse_non_stream,
    run_stream,
)

KNOWN_FIELDS = frozenset(
    {
        "model", "input", "instructions", "tools", "tool_choice", "parallel_tool_calls", "max_tool_calls",
        "reasoning", "max_output_tokens", "temperature", "top_p", "top_logprobs", "truncation", "text", "store",
        "previous_response_id", "conversation", "include", "prompt_cache_key", "prompt_cache_retention",
        "metadata", "service_tier", "background", "stream", "stream_options", "user", "safety_identifier",
        "prompt", "client_metadata", "context_management",
    }
)  # fmt: skip
MESSAGE_ROLES = ("user", "assistant", "system", "developer")
INPUT_PARTS = ("input_text", "input_image", "input_file")
OUTPUT_PARTS = ("output_text", "refusal")
HOSTED_ITEMS = frozenset(
    {
        "web_search_call", "file_search_call", "computer_call", "computer_call_output", "local_shell_call",
        "local_shell_call_output", "mcp_call", "mcp_list_tools", "mcp_approval_request", "mcp_approval_response",
        "image_generation_call", "code_interpreter_call", "tool_search_call", "tool_search_output", "compaction",
        "shell_call", "shell_call_output", "apply_patch_call", "apply_patch_call_output",
    }
)  # fmt: skip
EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh", "max")
SUMMARIES = ("auto", "concise", "detailed")


class OpenAIResponses(oc.OpenAIServer):
    name = "openai-responses"

    async def serve(
        self, op: str, request: web.Request, body: dict[str, Any], state: FakeState
    ) -> web.StreamResponse:
        validate(body, state.issued)
        turn = await next_turn(state, body)
        exchange = Exchange(request, body, turn, state.issued, body["model"])
        plan = Plan(exchange)
        if body.get("stream") is True:
            return await stream_reply(exchange, plan)
        await refuse_non_stream(request, turn)
        final = plan.response(plan.final_status(), plan.final_items(), plan.usage_object())
        return web.Response(
            body=orjson.dumps(final),
            content_type="application/json",
            headers={**oc.response_headers(), **turn.headers},
        )


# ----------------------------------------------------------------- validation


def validate(body: dict[str, Any], issued: Issued) -> None:
    for key in body:
        if key not in KNOWN_FIELDS:
            raise Rejection(400, f"Unknown parameter: '{key}'.", param=key, code="unknown_parameter")
    oc.require_str(body, "model", "model", non_empty=True)
    if body.get("input") is None:
        raise oc.missing("input")
    if body.get("previous_response_id") is not None:
        raise Rejection(
            400,
            f"Previous response with id '{body['previous_response_id']}' not found.",
            param="previous_response_id",
            code="previous_response_not_found",
        )
    if not isinstance(body["input"], str):
        check_items(oc.require_list(body["input"], "input"), issued)
    if body.get("instructions") is not None and not isinstance(body["instructions"], str):
        raise oc.invalid_type("instructions", "a string", body["instructions"])
    check_tools(body)
    check_options(body)


def check_items(items: list[Any], issued: Issued) -> None:
    calls: dict[str, set[str]] = {"function_call": set(), "custom_tool_call": set()}
    for index, item in enumerate(items):
        param = f"input[{index}]"
        item = oc.require_obj(item, param)
        kind = item.get("type", "message" if "role" in item else None)
        if kind is None:
            raise oc.missing(f"{param}.type")
        if kind == "message":
            check_message(item, param)
        elif kind in ("function_call", "custom_tool_call"):
            calls[kind].add(check_call_item(item, kind, param))
        elif kind in ("function_call_output", "custom_tool_call_output"):
            check_call_output(item, kind, param)
        elif kind == "reasoning":
            check_reasoning_item(item, param, issued)
        elif kind == "item_reference":
            raise Rejection(404, f"Item with id '{item.get('id')}' not found.", param=param)
        elif not isinstance(kind, str) or kind not in HOSTED_ITEMS:
            raise oc.invalid_value(
                f"{param}.type", kind, ("message", "function_call", "function_call_output", "reasoning")
            )
    check_outputs_answer_calls(items, calls)


def check_message(item: dict[str, Any], param: str) -> None:
    role = oc.require_str(item, "role", f"{param}.role")
    if role not in MESSAGE_ROLES:
        raise oc.invalid_value(f"{param}.role", role, MESSAGE_ROLES)
    content = item.get("content")
    if content is None:
        raise oc.missing(f"{param}.content")
    if isinstance(content, str):
        return
    allowed = OUTPUT_PARTS if role == "assistant" else INPUT_PARTS
    for index, part in enumerate(oc.require_list(content, f"{param}.content")):
        where = f"{param}.content[{index}]"
        part = oc.require_obj(part, where)
        kind = oc.require_str(part, "type", f"{where}.type")
        if kind not in allowed:
            raise oc.invalid_value(f"{where}.type", kind, allowed)
        if kind in ("input_text", "output_text"):
            oc.require_str(part, "text", f"{where}.text")
        elif kind == "refusal":
            oc.require_str(part, "refusal", f"{where}.refusal")
        elif kind == "input_image" and part.get("image_url") is None and part.get("file_id") is None:
            raise oc.missing(f"{where}.image_url")


def check_call_item(item: dict[str, Any], kind: str, param: str) -> str:
    call_id = oc.require_str(item, "call_id", f"{param}.call_id", non_empty=True)
    oc.require_str(item, "name", f"{param}.name", non_empty=True)
    oc.require_str(item, "arguments" if kind == "function_call" else "input", f"{param}.arguments")
    return call_id


def check_call_output(item: dict[str, Any], kind: str, param: str) -> None:
    oc.require_str(item, "call_id", f"{param}.call_id", non_empty=True)
    output = item.get("output")
    if output is None:
        raise oc.missing(f"{param}.output")
    if not isinstance(output, str):
        for index, part in enumerate(oc.require_list(output, f"{param}.output")):
            part = oc.require_obj(part, f"{param}.output[{index}]")
            kind = oc.require_str(part, "type", f"{param}.output[{index}].type")
            if kind not in INPUT_PARTS:
                raise oc.invalid_value(f"{param}.output[{index}].type", kind, INPUT_PARTS)


def check_reasoning_item(item: dict[str, Any], param: str, issued: Issued) -> None:
    oc.require_str(item, "id", f"{param}.id")
    oc.require_list(item.get("summary"), f"{param}.summary")
    encrypted = item.get("encrypted_content")
    if encrypted is None:
        return
    if not isinstance(encrypted, str):
        raise oc.invalid_type(f"{param}.encrypted_content", "a string", encrypted)
    if encrypted not in issued.responses:
        raise Rejection(
            400,
            f"The encrypted content for item {item['id']} could not be verified.",
            param=f"{param}.encrypted_content",
            code="invalid_encrypted_content",
        )


def check_outputs_answer_calls(items: list[dict[str, Any]], calls: dict[str, set[str]]) -> None:
    for item in items:
        kind = item.get("type")
        if kind == "function_call_output" and item["call_id"] not in calls["function_call"]:
            raise Rejection(
                400,
                f"No tool call found for function call output with call_id {item['call_id']}.",
                param="input",
            )
        if kind == "custom_tool_call_output" and item["call_id"] not in calls["custom_tool_call"]:
            raise Rejection(
                400,
                f"No tool call found for custom tool call output with call_id {item['call_id']}.",
                param="input",
            )


def check_tools(body: dict[str, Any]) -> None:
    if body.get("tools") is None:
        return
    for index, tool in enumerate(oc.require_list(body["tools"], "tools")):
        param = f"tools[{index}]"
        tool = oc.require_obj(tool, param)
        kind = oc.require_str(tool, "type", f"{param}.type")
        if kind in ("function", "custom"):
            # A Chat-style {"type":"function","function":{...}} lands here without a flat name.
            if tool.get("name") is None:
                raise oc.missing(f"{param}.name")
            oc.check_function_name(tool["name"], f"{param}.name")
        if kind == "function" and tool.get("parameters") is not None:
            oc.require_obj(tool["parameters"], f"{param}.parameters")
        if kind == "namespace":
            oc.require_str(tool, "name", f"{param}.name")
            oc.require_list(tool.get("tools"), f"{param}.tools")


def check_options(body: dict[str, Any]) -> None:
    oc.check_bool(body, "stream")
    oc.check_bool(body, "store")
    oc.check_number(body, "temperature", 0, 2)
    oc.check_number(body, "top_p", 0, 1)
    limit = body.get("max_output_tokens")
    if limit is not None and (not is_int(limit) or limit < 16):
        raise Rejection(
            400,
            f"Invalid 'max_output_tokens': integer below minimum value. Expected a value >= 16, but got {limit} instead.",
            param="max_output_tokens",
            code="integer_below_min_value",
        )
    reasoning = body.get("reasoning")
    if reasoning is not None:
        reasoning = oc.require_obj(reasoning, "reasoning")
        if reasoning.get("effort") is not None and reasoning["effort"] not in EFFORTS:
            raise oc.invalid_value("reasoning.effort", reasoning["effort"], EFFORTS)
        if reasoning.get("summary") is not None and reasoning["summary"] not in SUMMARIES:
            raise oc.invalid_value("reasoning.summary", reasoning["summary"], SUMMARIES)
    if body.get("include") is not None:
        for index, entry in enumerate(oc.require_list(body["include"], "include")):
            if not isinstance(entry, str):
                raise oc.invalid_type(f"include[{index}]", "a string", entry)
    check_text_format(body.get("text"))
    choice = body.get("tool_choice")
    if isinstance(choice, str) and choice not in ("none", "auto", "required"):
        raise oc.invalid_value("tool_choice", choice, ("none", "auto", "required"))
    if choice is not None and not isinstance(choice, str):
        oc.require_str(oc.require_obj(choice, "tool_choice"), "type", "tool_choice.type")


def check_text_format(text: Any) -> None:
    if text is None:
        return
    fmt = oc.require_obj(text, "text").get("format")
    if fmt is None:
        return
    fmt = oc.require_obj(fmt, "text.format")
    kind = oc.require_str(fmt, "type", "text.format.type")
    if kind == "json_schema":
        oc.require_str(fmt, "name", "text.format.name")
        oc.require_obj(fmt.get("schema"), "text.format.schema")
    elif kind not in ("text", "json_object"):
        raise oc.invalid_value("text.format.type", kind, ("text", "json_object", "json_schema"))


# ----------------------------------------------------------------- answers


class Plan:
    """The output items of one answer, with ids fixed, shared by the stream and the plain reply."""

    def __init__(self, exchange: Exchange) -> None:
        self.exchange = exchange
        self.turn = exchange.turn
        self.id = new_id("resp_", 16)
        self.created_at = oc.now()
        body = exchange.body
        reasoning = body.get("reasoning") or {}
        self.effort = reasoning.get("effort")
        self.summary_mode = reasoning.get("summary")
        self.wants_encrypted = "reasoning.encrypted_content" in (body.get("include") or [])
        self.items: list[dict[str, Any]] = []
        if self.effort != "none" and (self.turn.reasoning or self.turn.signature):
            self.items.append(self.reasoning_item())
        if self.turn.text or not self.turn.tool_calls:
            self.items.append(self.message_item())
        self.items.extend(self.call_item(spec.name, spec.args, spec.id) for spec in self.turn.tool_calls)

    def reasoning_item(self) -> dict[str, Any]:
        summary = (
            [{"type": "summary_text", "text": self.turn.reasoning}]
            if self.summary_mode and self.turn.reasoning
            else []
        )
        item: dict[str, Any] = {"id": new_id("rs_", 16), "type": "reasoning", "summary": summary}
        if self.wants_encrypted:
            signature = self.turn.signature or new_id("enc_", 24)
            self.exchange.issued.responses.add(signature)
            item["encrypted_content"] = signature
        return item

    def message_item(self) -> dict[str, Any]:
        part = {"type": "output_text", "text": self.turn.text, "annotations": [], "logprobs": []}
        status = "completed" if self.turn.stop == "stop" else "incomplete"
        return {
            "id": new_id("msg_", 16),
            "type": "message",
            "role": "assistant",
            "status": status,
            "content": [part],
        }

    def call_item(self, name: str, args: dict[str, Any], call_id: str | None) -> dict[str, Any]:
        return {
            "id": new_id("fc_", 16),
            "type": "function_call",
            "status": "completed",
            "call_id": call_id or new_id("call_", 12),
            "name": name,
            "arguments": oc.dump_args(args),
        }

    def final_items(self) -> list[dict[str, Any]]:
        return copy.deepcopy(self.items)

    def final_status(self) -> str:
        return "completed" if self.turn.stop == "stop" else "incomplete"

    def usage(self) -> Usage:
        body = self.exchange.body
        prompt = estimate_tokens(body.get("input"), body.get("instructions"), body.get("tools"))
        return resolve_usage(
            self.turn, prompt, [item["arguments"] for item in self.items if "arguments" in item]
        )

    def usage_object(self) -> dict[str, Any]:
        usage = self.usage()
        return {
            "input_tokens": usage.input,
            "input_tokens_details": {"cached_tokens": usage.cached, "cache_write_tokens": 0},
            "output_tokens": usage.output,
            "output_tokens_details": {"reasoning_tokens": usage.reasoning},
            "total_tokens": usage.input + usage.output,
        }

    def response(
        self,
        status: str,
        output: list[dict[str, Any]],
        usage: dict[str, Any] | None,
        error: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        body = self.exchange.body
        incomplete = None
        if status == "incomplete":
            incomplete = {"reason": "max_output_tokens" if self.turn.stop == "length" else "content_filter"}
        return {
            "id": self.id,
            "object": "response",
            "created_at": self.created_at,
            "status": status,
            "background": False,
            "error": error,
            "incomplete_details": incomplete,
            "instructions": body.get("instructions"),
            "max_output_tokens": body.get("max_output_tokens"),
            "max_tool_calls": body.get("max_tool_calls"),
            "model": self.exchange.model,
            "output": output,
            "parallel_tool_calls": body.get("parallel_tool_calls", True),
            "previous_response_id": None,
            "reasoning": {"effort": self.effort, "summary": self.summary_mode},
            "service_tier": "default",
            "store": body.get("store", True),
            "temperature": body.get("temperature", 1.0),
            "text": body.get("text") or {"format": {"type": "text"}, "verbosity": "medium"},
            "tool_choice": body.get("tool_choice", "auto"),
            "tools": body.get("tools") or [],
            "top_p": body.get("top_p", 1.0),
            "truncation": body.get("truncation", "disabled"),
            "usage": usage,
            "user": None,
            "metadata": body.get("metadata") or {},
        }


class EventWriter:
    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.sequence = 0
        self.done: list[dict[str, Any]] = []

    def event(self, kind: str, **fields: Any) -> bytes:
        payload = {"type": kind, "sequence_number": self.sequence, **fields}
        self.sequence += 1
        return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"

    def failed(self, status: int, message: str) -> bytes:
        code = oc.error_type(status)[1] or ("server_error" if status >= 500 else "invalid_request_error")
        response = self.plan.response(
            "failed", copy.deepcopy(self.done), None, {"code": code, "message": message}
        )
        return self.event("response.failed", response=response)


async def stream_reply(
    exchange: Exchange, plan: Plan, headers: dict[str, str] | None = None
) -> web.StreamResponse:
    headers = {**oc.response_headers(), **exchange.turn.headers, **(headers or {})}
    response = await open_stream(exchange.request, "text/event-stream; charset=utf-8", headers)
    writer = EventWriter(plan)
    sink = Sink(exchange.request, response, exchange.turn, writer.failed)

    async def body() -> None:
        await sink.send(writer.event("response.created", response=plan.response("in_progress", [], None)))
        await sink.send(writer.event("response.in_progress", response=plan.response("in_progress", [], None)))
        for index, item in enumerate(plan.final_items()):
            if item["type"] == "reasoning":
                await stream_reasoning(sink, writer, index, item)
            elif item["type"] == "message":
                await stream_message(sink, writer, index, item)
            else:
                await stream_call(sink, writer, index, item)
            await sink.send(writer.event("response.output_item.done", output_index=index, item=item))
            writer.done.append(item)
        await sink.finishing()
        status = plan.final_status()
        final = plan.response(status, plan.final_items(), plan.usage_object())
        await sink.send(writer.event(f"response.{status}", response=final))

    return await run_stream(response, body)


async def stream_reasoning(sink: Sink, writer: EventWriter, index: int, item: dict[str, Any]) -> None:
    added = {"id": item["id"], "type": "reasoning", "summary": []}
    await sink.send(writer.event("response.output_item.added", output_index=index, item=added))
    turn = writer.plan.turn
    if not item["summary"]:
        return
    ids = {"item_id": item["id"], "output_index": index, "summary_index": 0}
    empty = {"type": "summary_text", "text": ""}
    await sink.send(writer.event("response.reasoning_summary_part.added", **ids, part=empty))
    for piece in split_pieces(turn.reasoning, turn.chunk_text):
        await sink.content(writer.event("response.reasoning_summary_text.delta", **ids, delta=piece))
    await sink.send(writer.event("response.reasoning_summary_text.done", **ids, text=turn.reasoning))
    full = {"type": "summary_text", "text": turn.reasoning}
    await sink.send(writer.event("response.reasoning_summary_part.done", **ids, part=full))


async def stream_message(sink: Sink, writer: EventWriter, index: int, item: dict[str, Any]) -> None:
    added = {**item, "status": "in_progress", "content": []}
    await sink.send(writer.event("response.output_item.added", output_index=index, item=added))
    ids = {"item_id": item["id"], "output_index": index, "content_index": 0}
    empty = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
    await sink.send(writer.event("response.content_part.added", **ids, part=empty))
    turn = writer.plan.turn
    for piece in split_pieces(turn.text, turn.chunk_text):
        await sink.content(writer.event("response.output_text.delta", **ids, delta=piece, logprobs=[]))
    await sink.send(writer.event("response.output_text.done", **ids, text=turn.text, logprobs=[]))
    await sink.send(writer.event("response.content_part.done", **ids, part=item["content"][0]))


async def stream_call(sink: Sink, writer: EventWriter, index: int, item: dict[str, Any]) -> None:
    added = {**item, "status": "in_progress", "arguments": ""}
    await sink.send(writer.event("response.output_item.added", output_index=index, item=added))
    ids = {"item_id": item["id"], "output_index": index}
    for piece in oc.split_arguments(item["arguments"], writer.plan.turn.chunk_text):
        await sink.content(writer.event("response.function_call_arguments.delta", **ids, delta=piece))
    done = {**ids, "name": item["name"], "arguments": item["arguments"]}
    await sink.send(writer.event("response.function_call_arguments.done", **done))

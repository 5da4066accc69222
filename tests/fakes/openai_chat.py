"""Fake OpenAI Chat Completions upstream: POST /v1/chat/completions."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from . import openai_common as oc
from .script import Turn, Usage, estimate_tokens, new_id, resolve_usage, split_pieces
from .wire import (
    Exchange,
    FakeState,
    Rejection,
    Sink,
    next_turn,
    open_stream,
    refuse_non_stream,
    run_stream,
)

ROLES = ("system", "assistant", "user", "function", "tool", "developer")
USER_PART_TYPES = ("text", "image_url", "input_audio", "file")
EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh", "max")
ORPHAN_TOOL = "Invalid parameter: messages with role 'tool' must be a response to a preceeding message with 'tool_calls'."


class OpenAIChat(oc.OpenAIServer):
    name = "openai-chat"

    async def serve(
        self, op: str, request: web.Request, body: dict[str, Any], state: FakeState
    ) -> web.StreamResponse:
        validate(body)
        turn = await next_turn(state, body)
        exchange = Exchange(request, body, turn, state.issued, body["model"])
        if body.get("stream") is True:
            return await stream_reply(exchange)
        await refuse_non_stream(request, turn)
        return web.Response(
            body=orjson.dumps(completion(exchange)),
            content_type="application/json",
            headers={**oc.response_headers(), **turn.headers},
        )


# ----------------------------------------------------------------- validation


def validate(body: dict[str, Any]) -> None:
    if body.get("model") is None:
        raise Rejection(400, "you must provide a model parameter", param=None)
    oc.require_str(body, "model", "model", non_empty=True)
    if "messages" not in body or body["messages"] is None:
        raise oc.missing("messages")
    messages = oc.require_list(body["messages"], "messages", non_empty=True)
    for index, message in enumerate(messages):
        check_message(message, f"messages[{index}]")
    check_tool_sequence(messages)
    tools = check_tools(body)
    check_tool_choice(body, tools)
    check_generation_params(body)


def check_message(message: Any, param: str) -> None:
    message = oc.require_obj(message, param)
    role = oc.require_str(message, "role", f"{param}.role")
    if role not in ROLES:
        raise oc.invalid_value(f"{param}.role", role, ROLES)
    if role in ("system", "developer"):
        check_text_content(message.get("content"), f"{param}.content", required=True)
    elif role == "user":
        check_user_content(message.get("content"), f"{param}.content")
    elif role == "assistant":
        check_assistant(message, param)
    elif role == "tool":
        oc.require_str(message, "tool_call_id", f"{param}.tool_call_id")
        check_text_content(message.get("content"), f"{param}.content", required=True)
    else:
        oc.require_str(message, "name", f"{param}.name")


def check_text_content(
    content: Any, param: str, *, required: bool, extra_types: tuple[str, ...] = ()
) -> None:
    if content is None:
        if required:
            raise oc.missing(param)
        return
    if isinstance(content, str):
        return
    for index, part in enumerate(oc.require_list(content, param)):
        part = oc.require_obj(part, f"{param}[{index}]")
        kind = oc.require_str(part, "type", f"{param}[{index}].type")
        allowed = ("text", *extra_types)
        if kind not in allowed:
            raise oc.invalid_value(f"{param}[{index}].type", kind, allowed)
        if kind == "text":
            oc.require_str(part, "text", f"{param}[{index}].text")
        elif kind == "refusal":
            oc.require_str(part, "refusal", f"{param}[{index}].refusal")


def check_user_content(content: Any, param: str) -> None:
    if content is None:
        raise oc.missing(param)
    if isinstance(content, str):
        return
    for index, part in enumerate(oc.require_list(content, param)):
        where = f"{param}[{index}]"
        part = oc.require_obj(part, where)
        kind = oc.require_str(part, "type", f"{where}.type")
        if kind not in USER_PART_TYPES:
            raise oc.invalid_value(f"{where}.type", kind, USER_PART_TYPES)
        if kind == "text":
            oc.require_str(part, "text", f"{where}.text")
        elif kind == "image_url":
            image = oc.require_obj(part.get("image_url"), f"{where}.image_url")
            url = oc.require_str(image, "url", f"{where}.image_url.url")
            if not url.startswith(("http://", "https://", "data:")):
                raise Rejection(
                    400, f"Invalid '{where}.image_url.url': expected a URL.", param=f"{where}.image_url.url"
                )
        elif kind == "input_audio":
            audio = oc.require_obj(part.get("input_audio"), f"{where}.input_audio")
            oc.require_str(audio, "data", f"{where}.input_audio.data")
        else:
            oc.require_obj(part.get("file"), f"{where}.file")


def check_assistant(message: dict[str, Any], param: str) -> None:
    tool_calls = message.get("tool_calls")
    has_calls = tool_calls is not None or message.get("function_call") is not None
    if message.get("content") is None and not has_calls:
        raise Rejection(
            400,
            f"Invalid value for '{param}.content': expected a string, got null.",
            param=f"{param}.content",
        )
    check_text_content(message.get("content"), f"{param}.content", required=False, extra_types=("refusal",))
    if message.get("reasoning_content") is not None and not isinstance(message["reasoning_content"], str):
        raise oc.invalid_type(f"{param}.reasoning_content", "a string", message["reasoning_content"])
    if tool_calls is not None:
        for index, call in enumerate(oc.require_list(tool_calls, f"{param}.tool_calls", non_empty=True)):
            check_tool_call(call, f"{param}.tool_calls[{index}]")


def check_tool_call(call: Any, param: str) -> None:
    call = oc.require_obj(call, param)
    oc.require_str(call, "id", f"{param}.id", non_empty=True)
    kind = oc.require_str(call, "type", f"{param}.type")
    if kind == "function":
        function = oc.require_obj(call.get("function"), f"{param}.function")
        oc.require_str(function, "name", f"{param}.function.name")
        oc.require_str(function, "arguments", f"{param}.function.arguments")
    elif kind == "custom":
        custom = oc.require_obj(call.get("custom"), f"{param}.custom")
        oc.require_str(custom, "name", f"{param}.custom.name")
        oc.require_str(custom, "input", f"{param}.custom.input")
    else:
        raise oc.invalid_value(f"{param}.type", kind, ("function", "custom"))


def check_tool_sequence(messages: list[dict[str, Any]]) -> None:
    """Tool messages answer the assistant right before them, and all of its calls get answered."""
    expected: set[str] = set()
    unanswered: list[str] = []
    for index, message in enumerate(messages):
        if message["role"] == "tool":
            call_id = message["tool_call_id"]
            if call_id not in expected:
                raise Rejection(400, ORPHAN_TOOL, param=f"messages.[{index}].role")
            if call_id in unanswered:
                unanswered.remove(call_id)
            continue
        if unanswered:
            raise unanswered_calls(unanswered, index)
        calls = message.get("tool_calls") if message["role"] == "assistant" else None
        ids = [call["id"] for call in calls or []]
        expected, unanswered = set(ids), list(ids)
    if unanswered:
        raise unanswered_calls(unanswered, len(messages) - 1)


def unanswered_calls(ids: list[str], index: int) -> Rejection:
    return Rejection(
        400,
        "An assistant message with 'tool_calls' must be followed by tool messages responding to each "
        f"'tool_call_id'. The following tool_call_ids did not have response messages: {', '.join(ids)}",
        param=f"messages.[{index}].role",
    )


def check_tools(body: dict[str, Any]) -> list[Any]:
    if body.get("tools") is None:
        return []
    tools = oc.require_list(body["tools"], "tools")
    for index, tool in enumerate(tools):
        param = f"tools[{index}]"
        tool = oc.require_obj(tool, param)
        kind = oc.require_str(tool, "type", f"{param}.type")
        if kind == "function":
            function = oc.require_obj(tool.get("function"), f"{param}.function")
            oc.check_function_name(function.get("name"), f"{param}.function.name")
            if function.get("parameters") is not None:
                oc.require_obj(function["parameters"], f"{param}.function.parameters")
        elif kind == "custom":
            custom = oc.require_obj(tool.get("custom"), f"{param}.custom")
            oc.check_function_name(custom.get("name"), f"{param}.custom.name")
        else:
            raise oc.invalid_value(f"{param}.type", kind, ("function", "custom"))
    return tools


def check_tool_choice(body: dict[str, Any], tools: list[Any]) -> None:
    for key in ("tool_choice", "parallel_tool_calls"):
        if body.get(key) is not None and not tools:
            raise Rejection(
                400,
                f"Invalid value for '{key}': '{key}' is only allowed when 'tools' are specified.",
                param=key,
            )
    choice = body.get("tool_choice")
    if choice is None or isinstance(choice, str) and choice in ("none", "auto", "required"):
        return
    if isinstance(choice, str):
        raise oc.invalid_value("tool_choice", choice, ("none", "auto", "required"))
    choice = oc.require_obj(choice, "tool_choice")
    kind = oc.require_str(choice, "type", "tool_choice.type")
    if kind in ("function", "custom"):
        named = oc.require_obj(choice.get(kind), f"tool_choice.{kind}")
        oc.require_str(named, "name", f"tool_choice.{kind}.name")
    elif kind != "allowed_tools":
        raise oc.invalid_value("tool_choice.type", kind, ("function", "custom", "allowed_tools"))


def check_generation_params(body: dict[str, Any]) -> None:
    oc.check_bool(body, "stream")
    if body.get("stream_options") is not None:
        if body.get("stream") is not True:
            raise Rejection(
                400,
                "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
                param="stream_options",
            )
        oc.require_obj(body["stream_options"], "stream_options")
    oc.check_number(body, "temperature", 0, 2)
    oc.check_number(body, "top_p", 0, 1)
    for key in ("max_tokens", "max_completion_tokens", "n"):
        oc.check_positive_int(body, key)
    stop = body.get("stop")
    if stop is not None and not isinstance(stop, str):
        stops = oc.require_list(stop, "stop")
        if len(stops) > 4 or not all(isinstance(s, str) for s in stops):
            raise Rejection(400, "Invalid 'stop': expected at most 4 strings.", param="stop")
    effort = body.get("reasoning_effort")
    if effort is not None and effort not in EFFORTS:
        raise oc.invalid_value("reasoning_effort", effort, EFFORTS)
    check_response_format(body.get("response_format"))


def check_response_format(value: Any) -> None:
    if value is None:
        return
    fmt = oc.require_obj(value, "response_format")
    kind = oc.require_str(fmt, "type", "response_format.type")
    if kind == "json_schema":
        schema = oc.require_obj(fmt.get("json_schema"), "response_format.json_schema")
        oc.require_str(schema, "name", "response_format.json_schema.name")
    elif kind not in ("text", "json_object"):
        raise oc.invalid_value("response_format.type", kind, ("text", "json_object", "json_schema"))


# ----------------------------------------------------------------- answers


def finish_reason(turn: Turn) -> str:
    if turn.stop != "stop":
        return turn.stop
    return "tool_calls" if turn.tool_calls else "stop"


def call_ids(turn: Turn) -> list[str]:
    return [spec.id or new_id("call_", 12) for spec in turn.tool_calls]


def usage_object(usage: Usage) -> dict[str, Any]:
    return {
        "prompt_tokens": usage.input,
        "completion_tokens": usage.output,
        "total_tokens": usage.input + usage.output,
        "prompt_tokens_details": {"cached_tokens": usage.cached, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": usage.reasoning,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def turn_usage(exchange: Exchange) -> Usage:
    arguments = [oc.dump_args(spec.args) for spec in exchange.turn.tool_calls]
    return resolve_usage(
        exchange.turn, estimate_tokens(exchange.body.get("messages"), exchange.body.get("tools")), arguments
    )


def completion(exchange: Exchange) -> dict[str, Any]:
    turn = exchange.turn
    message: dict[str, Any] = {
        "role": "assistant",
        "content": turn.text if turn.text or not turn.tool_calls else None,
        "refusal": None,
        "annotations": [],
    }
    if turn.reasoning:
        message["reasoning_content"] = turn.reasoning
    if turn.tool_calls:
        message["tool_calls"] = [
            {
                "id": call_id,
                "type": "function",
                "function": {"name": spec.name, "arguments": oc.dump_args(spec.args)},
            }
            for spec, call_id in zip(turn.tool_calls, call_ids(turn), strict=True)
        ]
    return {
        "id": new_id("chatcmpl-"),
        "object": "chat.completion",
        "created": oc.now(),
        "model": exchange.model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish_reason(turn), "logprobs": None}],
        "usage": usage_object(turn_usage(exchange)),
        "system_fingerprint": "fp_fake",
        "service_tier": "default",
    }


class ChunkWriter:
    def __init__(self, exchange: Exchange) -> None:
        self.exchange = exchange
        self.id = new_id("chatcmpl-")
        self.created = oc.now()
        options = exchange.body.get("stream_options") or {}
        self.include_usage = options.get("include_usage") is True

    def chunk(self, delta: dict[str, Any], finish: str | None = None) -> bytes:
        payload: dict[str, Any] = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.exchange.model,
            "system_fingerprint": "fp_fake",
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }
        if self.include_usage:
            payload["usage"] = None
        return sse(payload)

    def usage_chunk(self) -> bytes:
        payload = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.exchange.model,
            "system_fingerprint": "fp_fake",
            "choices": [],
            "usage": usage_object(turn_usage(self.exchange)),
        }
        return sse(payload)


def sse(payload: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\n\n"


def error_frame(status: int, message: str) -> bytes:
    return sse({"error": oc.error_object(status, message)})


async def stream_reply(exchange: Exchange) -> web.StreamResponse:
    turn = exchange.turn
    response = await open_stream(exchange.request, "text/event-stream; charset=utf-8",
                                 {**oc.response_headers(), **exchange.turn.headers})
    sink = Sink(exchange.request, response, turn, error_frame)
    writer = ChunkWriter(exchange)
    return await run_stream(response, lambda: write_chunks(sink, writer, turn))


async def write_chunks(sink: Sink, writer: ChunkWriter, turn: Turn) -> None:
    """The turn as chat.completion.chunk events, through the sink (which applies the turn's faults)."""
    await sink.send(writer.chunk({"role": "assistant", "content": "", "refusal": None}))
    for piece in split_pieces(turn.reasoning, turn.chunk_text):
        await sink.content(writer.chunk({"reasoning_content": piece}))
    for piece in split_pieces(turn.text, turn.chunk_text):
        await sink.content(writer.chunk({"content": piece}))
    for index, (spec, call_id) in enumerate(zip(turn.tool_calls, call_ids(turn), strict=True)):
        opening = {
            "index": index,
            "id": call_id,
            "type": "function",
            "function": {"name": spec.name, "arguments": ""},
        }
        await sink.content(writer.chunk({"tool_calls": [opening]}))
        for piece in split_pieces(oc.dump_args(spec.args), turn.chunk_text):
            await sink.content(
                writer.chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
            )
    await sink.finishing()
    await sink.send(writer.chunk({}, finish_reason(turn)))
    if writer.include_usage:
        await sink.send(writer.usage_chunk())
    await sink.send(b"data: [DONE]\n\n")

"""Fake Anthropic Messages upstream: POST /v1/messages and /v1/messages/count_tokens.

It plays an older model: no `system` role inside `messages`.
"""

from __future__ import annotations

import re
from typing import Any

import orjson
from aiohttp import web

from .script import Turn, Usage, estimate_tokens, new_id, resolve_usage, split_pieces
from .wire import (
    Exchange,
    FakeState,
    Issued,
    ProtocolServer,
    Rejection,
    Sink,
    is_int,
    is_number,
    next_turn,
    open_stream,
    refuse_non_stream,
    retry_headers,
    run_stream,
    type_name,
)

MESSAGE_FIELDS = frozenset(
    {
        "model", "messages", "max_tokens", "system", "metadata", "stop_sequences", "stream", "temperature",
        "top_p", "top_k", "tools", "tool_choice", "thinking", "service_tier", "container", "mcp_servers",
        "context_management", "output_config", "output_format", "cache_control", "speed", "inference_geo",
    }
)  # fmt: skip
COUNT_FIELDS = frozenset(
    {
        "model", "messages", "system", "tools", "tool_choice", "thinking", "mcp_servers", "context_management",
        "output_config", "output_format", "cache_control", "speed",
    }
)  # fmt: skip
USER_BLOCKS = ("text", "image", "document", "tool_result", "search_result", "container_upload")
ASSISTANT_BLOCKS = (
    "text", "thinking", "redacted_thinking", "tool_use", "server_tool_use", "web_search_tool_result",
    "web_fetch_tool_result", "code_execution_tool_result", "mcp_tool_use", "mcp_tool_result",
)  # fmt: skip
TOOL_RESULT_BLOCKS = ("text", "image", "document", "search_result")
IMAGE_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")
TOOL_ID = re.compile(r"^[a-zA-Z0-9_-]+$")
TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,128}$")
SERVER_TOOL_TYPE = re.compile(r"^[a-z_]+_\d{8}$")
THINKING_DOCS = (
    "Please consult our documentation at https://docs.claude.com/en/docs/build-with-claude/extended-thinking"
)
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    409: "conflict_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}


def error_type(status: int) -> str:
    return ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")


def error_body(status: int, message: str) -> dict[str, Any]:
    return {
        "type": "error",
        "error": {"type": error_type(status), "message": message},
        "request_id": new_id("req_"),
    }


def bad(message: str) -> Rejection:
    return Rejection(400, message)


class Anthropic(ProtocolServer):
    name = "anthropic"

    def check_auth(self, request: web.Request, api_key: str | None) -> None:
        if api_key is not None:
            key = request.headers.get("x-api-key")
            if key is None:
                scheme, _, token = request.headers.get("Authorization", "").partition(" ")
                key = token.strip() if scheme.lower() == "bearer" else None
            if key is None:
                raise Rejection(401, "x-api-key header is required")
            if key != api_key:
                raise Rejection(401, "invalid x-api-key")
        if not request.headers.get("anthropic-version"):
            raise bad("anthropic-version: header is required")

    def error_response(self, rejection: Rejection) -> web.Response:
        headers = {"request-id": new_id("req_"), **retry_headers(rejection)}
        if rejection.status == 429:
            headers["anthropic-ratelimit-requests-remaining"] = "0"
        return web.Response(
            status=rejection.status,
            body=orjson.dumps(error_body(rejection.status, rejection.message)),
            content_type="application/json",
            headers=headers,
        )

    async def serve(
        self, op: str, request: web.Request, body: dict[str, Any], state: FakeState
    ) -> web.StreamResponse:
        if op == "count_tokens":
            validate(body, state.issued, counting=True)
            tokens = estimate_tokens(body.get("messages"), body.get("system"), body.get("tools"))
            return web.json_response({"input_tokens": tokens})
        validate(body, state.issued, counting=False)
        turn = await next_turn(state, body)
        exchange = Exchange(request, body, turn, state.issued, body["model"])
        plan = Plan(exchange)
        if body.get("stream") is True:
            return await stream_reply(exchange, plan)
        await refuse_non_stream(request, turn)
        return web.Response(
            body=orjson.dumps(plan.message()), content_type="application/json", headers={**headers(), **turn.headers}
        )


def headers() -> dict[str, str]:
    return {"request-id": new_id("req_")}


# ----------------------------------------------------------------- validation


def validate(body: dict[str, Any], issued: Issued, *, counting: bool) -> None:
    allowed = COUNT_FIELDS if counting else MESSAGE_FIELDS
    for key in body:
        if key not in allowed:
            raise bad(f"{key}: Extra inputs are not permitted")
    if not isinstance(body.get("model"), str) or not body["model"]:
        raise bad(
            "model: Field required" if body.get("model") is None else "model: Input should be a valid string"
        )
    if not counting:
        check_max_tokens(body.get("max_tokens"))
    check_system(body.get("system"))
    turns = merged_turns(body.get("messages"))
    for index, (role, blocks) in enumerate(turns):
        for position, block in enumerate(blocks):
            check_block(block, role, f"messages.{index}.content.{position}", issued)
    check_tool_pairing(turns)
    check_tools(body.get("tools"))
    check_tool_choice(body.get("tool_choice"))
    check_sampling(body, counting)


def check_max_tokens(value: Any) -> None:
    if value is None:
        raise bad("max_tokens: Field required")
    if not is_int(value):
        raise bad("max_tokens: Input should be a valid integer")
    if value < 1:
        raise bad("max_tokens: Input should be greater than or equal to 1")


def check_system(system: Any) -> None:
    if system is None or isinstance(system, str):
        return
    if not isinstance(system, list):
        raise bad("system: Input should be a valid list")
    for index, block in enumerate(system):
        if not isinstance(block, dict) or block.get("type") != "text":
            raise bad(f"system.{index}.type: Input should be 'text'")
        check_text(block, f"system.{index}")


def merged_turns(messages: Any) -> list[tuple[str, list[Any]]]:
    """Validate the message list and merge consecutive same-role turns, as the API does."""
    if messages is None:
        raise bad("messages: Field required")
    if not isinstance(messages, list):
        raise bad("messages: Input should be a valid list")
    if not messages:
        raise bad("messages: at least one message is required")
    turns: list[tuple[str, list[Any]]] = []
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            raise bad(f"messages.{index}: Input should be a valid dictionary")
        role = message.get("role")
        if role not in ("user", "assistant"):
            raise bad(f"messages.{index}.role: Input should be 'user' or 'assistant'")
        blocks = content_blocks(message.get("content"), index, last=index == len(messages) - 1, role=role)
        if turns and turns[-1][0] == role:
            turns[-1][1].extend(blocks)
        else:
            turns.append((role, blocks))
    if turns[0][0] != "user":
        raise bad('messages: first message must use the "user" role')
    return turns


def content_blocks(content: Any, index: int, *, last: bool, role: str) -> list[Any]:
    if content is None:
        raise bad(f"messages.{index}.content: Field required")
    if isinstance(content, str):
        if not content and not (last and role == "assistant"):
            raise bad(
                f"messages.{index}: all messages must have non-empty content except for the optional final assistant message"
            )
        return [{"type": "text", "text": content}] if content else []
    if not isinstance(content, list):
        raise bad(f"messages.{index}.content: Input should be a valid list")
    if not content and not (last and role == "assistant"):
        raise bad(
            f"messages.{index}: all messages must have non-empty content except for the optional final assistant message"
        )
    return list(content)


def check_block(block: Any, role: str, where: str, issued: Issued) -> None:
    if not isinstance(block, dict):
        raise bad(f"{where}: Input should be a valid dictionary")
    kind = block.get("type")
    allowed = USER_BLOCKS if role == "user" else ASSISTANT_BLOCKS
    if kind not in allowed:
        if kind in USER_BLOCKS or kind in ASSISTANT_BLOCKS:
            raise bad(f"{where}: `{kind}` blocks are not allowed in `{role}` messages")
        raise bad(f"{where}: Input tag '{kind}' found using 'type' does not match any of the expected tags")
    if kind == "text":
        check_text(block, where)
    elif kind == "image":
        check_image(block, where)
    elif kind == "tool_use":
        check_tool_use(block, where)
    elif kind == "tool_result":
        check_tool_result(block, where)
    elif kind == "thinking":
        check_thinking(block, where, issued)
    elif kind == "redacted_thinking":
        if not isinstance(block.get("data"), str) or block["data"] not in issued.anthropic:
            raise bad(f"{where}: Invalid `data` in `redacted_thinking` block")


def check_text(block: dict[str, Any], where: str) -> None:
    text = block.get("text")
    if not isinstance(text, str):
        raise bad(f"{where}.text: Input should be a valid string")
    if not text:
        raise bad("messages: text content blocks must be non-empty")
    if not text.strip():
        raise bad("messages: text content blocks must contain non-whitespace text")


def check_image(block: dict[str, Any], where: str) -> None:
    source = block.get("source")
    if not isinstance(source, dict):
        raise bad(f"{where}.source: Field required")
    kind = source.get("type")
    if kind == "base64":
        if source.get("media_type") not in IMAGE_TYPES:
            raise bad(
                f"{where}.source.base64.media_type: Input should be {', '.join(repr(t) for t in IMAGE_TYPES)}"
            )
        if not isinstance(source.get("data"), str):
            raise bad(f"{where}.source.base64.data: Field required")
    elif kind == "url":
        if not isinstance(source.get("url"), str):
            raise bad(f"{where}.source.url.url: Field required")
    elif kind != "file":
        raise bad(
            f"{where}.source: Input tag '{kind}' found using 'type' does not match any of the expected tags"
        )


def check_tool_use(block: dict[str, Any], where: str) -> None:
    call_id = block.get("id")
    if not isinstance(call_id, str) or not TOOL_ID.match(call_id):
        raise bad(f"{where}.tool_use.id: String should match pattern '^[a-zA-Z0-9_-]+$'")
    if not isinstance(block.get("name"), str) or not block["name"]:
        raise bad(f"{where}.tool_use.name: Field required")
    if not isinstance(block.get("input"), dict):
        raise bad(f"{where}.tool_use.input: Input should be a valid dictionary")


def check_tool_result(block: dict[str, Any], where: str) -> None:
    if not isinstance(block.get("tool_use_id"), str) or not TOOL_ID.match(block["tool_use_id"]):
        raise bad(f"{where}.tool_result.tool_use_id: String should match pattern '^[a-zA-Z0-9_-]+$'")
    if block.get("is_error") is not None and not isinstance(block["is_error"], bool):
        raise bad(f"{where}.tool_result.is_error: Input should be a valid boolean")
    content = block.get("content")
    if content is None or isinstance(content, str):
        return
    if not isinstance(content, list):
        raise bad(f"{where}.tool_result.content: Input should be a valid list")
    for index, part in enumerate(content):
        if not isinstance(part, dict) or part.get("type") not in TOOL_RESULT_BLOCKS:
            raise bad(
                f"{where}.tool_result.content.{index}: Input tag found using 'type' does not match any of the expected tags"
            )
        if part["type"] == "text":
            check_text(part, f"{where}.tool_result.content.{index}")
        elif part["type"] == "image":
            check_image(part, f"{where}.tool_result.content.{index}")


def check_thinking(block: dict[str, Any], where: str, issued: Issued) -> None:
    if not isinstance(block.get("thinking"), str):
        raise bad(f"{where}.thinking.thinking: Field required")
    signature = block.get("signature")
    if not isinstance(signature, str):
        raise bad(f"{where}.thinking.signature: Field required")
    if signature not in issued.anthropic:
        raise bad(f"{where}: Invalid signature in thinking block")


def check_tool_pairing(turns: list[tuple[str, list[Any]]]) -> None:
    for index, (role, blocks) in enumerate(turns):
        if role != "user":
            continue
        results = [b["tool_use_id"] for b in blocks if b.get("type") == "tool_result"]
        previous = turns[index - 1][1] if index > 0 else []
        calls = [b["id"] for b in previous if b.get("type") == "tool_use"]
        unexpected = [r for r in results if r not in calls]
        if unexpected:
            raise bad(
                f"messages.{index}.content.0: unexpected `tool_use_id` found in `tool_result` blocks: "
                f"{', '.join(unexpected)}. Each `tool_result` block must have a corresponding `tool_use` block "
                "in the previous message."
            )
    for index, (role, blocks) in enumerate(turns):
        if role != "assistant":
            continue
        calls = [b["id"] for b in blocks if b.get("type") == "tool_use"]
        following = turns[index + 1][1] if index + 1 < len(turns) else []
        answered = {b.get("tool_use_id") for b in following if b.get("type") == "tool_result"}
        missing = [c for c in calls if c not in answered]
        if missing:
            raise bad(
                f"messages.{index + 1}: `tool_use` ids were found without `tool_result` blocks immediately after: "
                f"{', '.join(missing)}. Each `tool_use` block must have a corresponding `tool_result` block "
                "in the next message."
            )


def check_tools(tools: Any) -> None:
    if tools is None:
        return
    if not isinstance(tools, list):
        raise bad("tools: Input should be a valid list")
    names: set[str] = set()
    for index, tool in enumerate(tools):
        if not isinstance(tool, dict):
            raise bad(f"tools.{index}: Input should be a valid dictionary")
        kind = tool.get("type")
        if kind not in (None, "custom"):
            if not isinstance(kind, str) or not SERVER_TOOL_TYPE.match(kind):
                raise bad(
                    f"tools.{index}: Input tag '{kind}' found using 'type' does not match any of the expected tags"
                )
            continue
        name = tool.get("name")
        if not isinstance(name, str) or not TOOL_NAME.match(name):
            raise bad(f"tools.{index}.custom.name: String should match pattern '^[a-zA-Z0-9_-]{{1,128}}$'")
        if name in names:
            raise bad("tools: Tool names must be unique.")
        names.add(name)
        schema = tool.get("input_schema")
        if not isinstance(schema, dict):
            raise bad(f"tools.{index}.custom.input_schema: Field required")
        if schema.get("type") != "object":
            raise bad(f"tools.{index}.custom.input_schema.type: Input should be 'object'")
        if tool.get("description") is not None and not isinstance(tool["description"], str):
            raise bad(f"tools.{index}.custom.description: Input should be a valid string")


def check_tool_choice(choice: Any) -> None:
    if choice is None:
        return
    if not isinstance(choice, dict) or choice.get("type") not in ("auto", "any", "tool", "none"):
        raise bad(
            "tool_choice: Input tag found using 'type' does not match any of the expected tags: 'auto', 'any', 'tool', 'none'"
        )
    if choice["type"] == "tool" and not isinstance(choice.get("name"), str):
        raise bad("tool_choice.tool.name: Field required")


def check_sampling(body: dict[str, Any], counting: bool) -> None:
    for key in ("temperature", "top_p"):
        value = body.get(key)
        if value is not None and (not is_number(value) or not 0 <= value <= 1):
            raise bad(f"{key}: Input should be a number between 0 and 1, got {type_name(value)} {value!r}")
    if body.get("top_k") is not None and not is_int(body["top_k"]):
        raise bad("top_k: Input should be a valid integer")
    stops = body.get("stop_sequences")
    if stops is not None and (not isinstance(stops, list) or not all(isinstance(s, str) for s in stops)):
        raise bad("stop_sequences: Input should be a valid list of strings")
    if body.get("stream") is not None and not isinstance(body["stream"], bool):
        raise bad("stream: Input should be a valid boolean")
    thinking = body.get("thinking")
    if thinking is None:
        return
    if not isinstance(thinking, dict) or thinking.get("type") not in ("enabled", "disabled", "adaptive"):
        raise bad(
            "thinking: Input tag found using 'type' does not match any of the expected tags: 'enabled', 'disabled', 'adaptive'"
        )
    if thinking["type"] == "disabled":
        return
    if thinking["type"] == "enabled":
        check_budget(thinking.get("budget_tokens"), None if counting else body["max_tokens"])
    if body.get("temperature") is not None and body["temperature"] != 1:
        raise bad(
            f"`temperature` may only be set to 1 when thinking is enabled or in adaptive mode. {THINKING_DOCS}"
        )
    if body.get("top_k") is not None:
        raise bad(f"`top_k` must be unset when thinking is enabled. {THINKING_DOCS}")
    if body.get("top_p") is not None and body["top_p"] < 0.95:
        raise bad(
            f"`top_p` must be greater than or equal to 0.95 or unset when thinking is enabled. {THINKING_DOCS}"
        )
    check_tool_turn_starts_with_thinking(body.get("messages"))


def check_tool_turn_starts_with_thinking(messages: Any) -> None:
    """With thinking on, the last assistant turn of a tool loop must start with its thinking block."""
    if not isinstance(messages, list):
        return
    assistant = next((m for m in reversed(messages) if isinstance(m, dict) and m.get("role") == "assistant"), None)
    if assistant is None or not isinstance(assistant.get("content"), list) or not assistant["content"]:
        return
    blocks = [b for b in assistant["content"] if isinstance(b, dict)]
    first = blocks[0].get("type") if blocks else None
    if any(b.get("type") == "tool_use" for b in blocks) and first not in ("thinking", "redacted_thinking"):
        raise bad(
            f"messages: Expected `thinking` or `redacted_thinking`, but found `{first}`. When `thinking` is enabled, "
            "a final `assistant` message must start with a thinking block (preceding the lastmost set of "
            f"`tool_use` and `tool_result` blocks). {THINKING_DOCS}"
        )


def check_budget(budget: Any, max_tokens: int | None) -> None:
    if budget is None:
        raise bad("thinking.enabled.budget_tokens: Field required")
    if not is_int(budget):
        raise bad("thinking.enabled.budget_tokens: Input should be a valid integer")
    if budget < 1024:
        raise bad("thinking.enabled.budget_tokens: Input should be greater than or equal to 1024")
    if max_tokens is not None and budget >= max_tokens:
        raise bad(f"`max_tokens` must be greater than `thinking.budget_tokens`. {THINKING_DOCS}")


# ----------------------------------------------------------------- answers


def stop_reason(turn: Turn) -> str:
    if turn.stop == "length":
        return "max_tokens"
    if turn.stop == "content_filter":
        return "refusal"
    return "tool_use" if turn.tool_calls else "end_turn"


class Plan:
    """The content blocks of one answer (ids and signature fixed), shared by stream and plain reply."""

    def __init__(self, exchange: Exchange) -> None:
        self.exchange = exchange
        self.turn = exchange.turn
        self.id = new_id("msg_", 12)
        thinking = exchange.body.get("thinking") or {}
        # With thinking on, a turn that calls tools always starts with a (signed) thinking block,
        # as the real API's models do; that is what lets the replayed turn pass the rule above.
        self.thinks = thinking.get("type") in ("enabled", "adaptive") and bool(
            self.turn.reasoning or self.turn.signature or self.turn.tool_calls
        )
        self.thinking_text = "" if thinking.get("display") == "omitted" else self.turn.reasoning
        self.signature = ""
        if self.thinks:
            self.signature = self.turn.signature or new_id("sig_", 24)
            exchange.issued.anthropic.add(self.signature)
        self.calls = [
            {"type": "tool_use", "id": spec.id or new_id("toolu_", 12), "name": spec.name, "input": spec.args}
            for spec in self.turn.tool_calls
        ]

    def blocks(self) -> list[dict[str, Any]]:
        blocks: list[dict[str, Any]] = []
        if self.thinks:
            blocks.append({"type": "thinking", "thinking": self.thinking_text, "signature": self.signature})
        if self.turn.text:
            blocks.append({"type": "text", "text": self.turn.text})
        return blocks + self.calls

    def usage(self) -> Usage:
        body = self.exchange.body
        prompt = estimate_tokens(body.get("messages"), body.get("system"), body.get("tools"))
        arguments = [orjson.dumps(call["input"]).decode() for call in self.calls]
        return resolve_usage(self.turn, prompt, arguments)

    def usage_object(self, *, output: int | None = None) -> dict[str, Any]:
        usage = self.usage()
        return {
            "input_tokens": usage.input - usage.cached,
            "output_tokens": usage.output if output is None else output,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": usage.cached,
            "service_tier": "standard",
        }

    def message(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": "message",
            "role": "assistant",
            "model": self.exchange.model,
            "content": self.blocks(),
            "stop_reason": stop_reason(self.turn),
            "stop_sequence": None,
            "usage": self.usage_object(),
        }


def event(kind: str, payload: dict[str, Any]) -> bytes:
    return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps({"type": kind, **payload}) + b"\n\n"


def error_frame(status: int, message: str) -> bytes:
    return b"event: error\ndata: " + orjson.dumps(error_body(status, message)) + b"\n\n"


async def stream_reply(exchange: Exchange, plan: Plan) -> web.StreamResponse:
    response = await open_stream(exchange.request, "text/event-stream; charset=utf-8",
                                 {**headers(), **exchange.turn.headers})
    sink = Sink(exchange.request, response, exchange.turn, error_frame)
    turn = exchange.turn

    async def body() -> None:
        start = {**plan.message(), "content": [], "stop_reason": None, "usage": plan.usage_object(output=1)}
        await sink.send(event("message_start", {"message": start}))
        await sink.send(event("ping", {}))
        for index, block in enumerate(plan.blocks()):
            await stream_block(sink, turn, index, block)
        await sink.finishing()
        usage = plan.usage_object()
        usage.pop("service_tier")
        delta = {"stop_reason": stop_reason(turn), "stop_sequence": None}
        await sink.send(event("message_delta", {"delta": delta, "usage": usage}))
        await sink.send(event("message_stop", {}))

    return await run_stream(response, body)


async def stream_block(sink: Sink, turn: Turn, index: int, block: dict[str, Any]) -> None:
    kind = block["type"]
    if kind == "thinking":
        opening: dict[str, Any] = {"type": "thinking", "thinking": "", "signature": ""}
        pieces = [
            {"type": "thinking_delta", "thinking": p}
            for p in split_pieces(block["thinking"], turn.chunk_text)
        ]
    elif kind == "text":
        opening = {"type": "text", "text": ""}
        pieces = [{"type": "text_delta", "text": p} for p in split_pieces(block["text"], turn.chunk_text)]
    else:
        opening = {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}
        arguments = orjson.dumps(block["input"]).decode()
        pieces = [
            {"type": "input_json_delta", "partial_json": p}
            for p in ["", *split_pieces(arguments, turn.chunk_text)]
        ]
    await sink.send(event("content_block_start", {"index": index, "content_block": opening}))
    for delta in pieces:
        await sink.content(event("content_block_delta", {"index": index, "delta": delta}))
    if kind == "thinking":
        signature = {"type": "signature_delta", "signature": block["signature"]}
        await sink.send(event("content_block_delta", {"index": index, "delta": signature}))
    await sink.send(event("content_block_stop", {"index": index}))

"""Fake Gemini upstream: /v1beta/models/{model}:generateContent, :streamGenerateContent, :countTokens (also /v1)."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from . import gemini_request as gr
from .script import Turn, Usage, estimate_tokens, new_id, resolve_usage, split_pieces
from .wire import (
    Exchange,
    FakeState,
    ProtocolServer,
    Rejection,
    Sink,
    next_turn,
    open_stream,
    refuse_non_stream,
    retry_headers,
    run_stream,
)

STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "NOT_IMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
METHODS = ("generateContent", "streamGenerateContent", "countTokens")


def status_name(status: int) -> str:
    return STATUS_NAMES.get(status, "INTERNAL" if status >= 500 else "FAILED_PRECONDITION")


def error_object(rejection: Rejection) -> dict[str, Any]:
    details: list[dict[str, Any]] = []
    if rejection.reason is not None:
        details.append(
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": rejection.reason,
                "domain": "googleapis.com",
                "metadata": {"service": "generativelanguage.googleapis.com"},
            }
        )
    if rejection.status == 400 and rejection.param and rejection.reason is None:
        violation = {"field": rejection.param, "description": rejection.message}
        details.append({"@type": "type.googleapis.com/google.rpc.BadRequest", "fieldViolations": [violation]})
    if rejection.retry_after is not None:
        delay = f"{rejection.retry_after:g}s"
        details.append({"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": delay})
    error: dict[str, Any] = {
        "code": rejection.status,
        "message": rejection.message,
        "status": status_name(rejection.status),
    }
    if details:
        error["details"] = details
    return {"error": error}


class Gemini(ProtocolServer):
    name = "gemini"

    def check_auth(self, request: web.Request, api_key: str | None) -> None:
        if api_key is None:
            return
        given = request.headers.get("x-goog-api-key") or request.query.get("key")
        if given != api_key:
            raise Rejection(400, "API key not valid. Please pass a valid API key.", reason="API_KEY_INVALID")

    def error_response(self, rejection: Rejection) -> web.Response:
        return web.Response(
            status=rejection.status,
            body=orjson.dumps(error_object(rejection)),
            content_type="application/json",
            headers=retry_headers(rejection),
        )

    async def serve(
        self, op: str, request: web.Request, body: dict[str, Any], state: FakeState
    ) -> web.StreamResponse:
        model, method = op.rsplit(":", 1) if ":" in op else (op, "")
        if method not in METHODS:
            raise Rejection(404, f"Method {method or op} is not found for models/{model}.")
        if method == "countTokens":
            counted = gr.validate_count(body, state.issued)
            tokens = prompt_tokens(counted)
            return web.json_response(
                {"totalTokens": tokens, "promptTokensDetails": [{"modality": "TEXT", "tokenCount": tokens}]}
            )
        checked = gr.validate_generate(body, state.issued)
        turn = await next_turn(state, body)
        exchange = Exchange(request, checked, turn, state.issued, model.removeprefix("models/"))
        plan = Plan(exchange)
        if method == "streamGenerateContent":
            return await stream_reply(exchange, plan, sse=request.query.get("alt") == "sse")
        await refuse_non_stream(request, turn)
        return web.Response(body=orjson.dumps(plan.whole()), content_type="application/json")


def prompt_tokens(body: dict[str, Any]) -> int:
    return estimate_tokens(body.get("contents"), body.get("systemInstruction"), body.get("tools"))


# ----------------------------------------------------------------- answers


def finish_reason(turn: Turn) -> str:
    return {"stop": "STOP", "length": "MAX_TOKENS", "content_filter": "SAFETY"}[turn.stop]


class Plan:
    """Parts of one answer; the signature rides on the first call, else on the last text part."""

    def __init__(self, exchange: Exchange) -> None:
        self.exchange = exchange
        self.turn = exchange.turn
        self.id = new_id("", 11)
        config = exchange.body.get("generationConfig") or {}
        thinking = config.get("thinkingConfig") or {}
        self.shows_thoughts = thinking.get("includeThoughts") is True and bool(self.turn.reasoning)
        self.calls = [self.call_part(spec.name, spec.args, spec.id) for spec in self.turn.tool_calls]
        signature = self.turn.signature
        if signature is not None and self.calls:
            self.calls[0]["thoughtSignature"] = signature
            for call in self.calls:
                exchange.issued.gemini_calls[
                    gr.call_key(call["functionCall"]["name"], call["functionCall"]["args"])
                ] = signature

    @staticmethod
    def call_part(name: str, args: dict[str, Any], call_id: str | None) -> dict[str, Any]:
        call: dict[str, Any] = {"name": name, "args": args}
        if call_id is not None:
            call["id"] = call_id
        return {"functionCall": call}

    def text_signature(self) -> str | None:
        """The signature for the last text (or thought) part when there is no call to carry it."""
        return self.turn.signature if not self.calls else None

    def whole(self) -> dict[str, Any]:
        parts: list[dict[str, Any]] = []
        if self.shows_thoughts:
            parts.append({"text": self.turn.reasoning, "thought": True})
        if self.turn.text:
            parts.append({"text": self.turn.text})
        if not parts and not self.calls:
            parts.append({"text": ""})
        signature = self.text_signature()
        if signature is not None and parts:
            parts[-1]["thoughtSignature"] = signature
        return self.chunk(parts + self.calls, final=True)

    def chunk(self, parts: list[dict[str, Any]], *, final: bool) -> dict[str, Any]:
        candidate: dict[str, Any] = {"content": {"parts": parts, "role": "model"}, "index": 0}
        if final:
            candidate["finishReason"] = finish_reason(self.turn)
        usage = (
            self.usage_metadata()
            if final
            else {"promptTokenCount": self.usage().input, "totalTokenCount": self.usage().input}
        )
        return {
            "candidates": [candidate],
            "usageMetadata": usage,
            "modelVersion": self.exchange.model,
            "responseId": self.id,
        }

    def usage(self) -> Usage:
        arguments = [orjson.dumps(c["functionCall"]["args"]).decode() for c in self.calls]
        return resolve_usage(self.turn, prompt_tokens(self.exchange.body), arguments)

    def usage_metadata(self) -> dict[str, Any]:
        usage = self.usage()
        metadata: dict[str, Any] = {
            "promptTokenCount": usage.input,
            "candidatesTokenCount": usage.output - usage.reasoning,
            "totalTokenCount": usage.input + usage.output,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": usage.input}],
        }
        if usage.cached:
            metadata["cachedContentTokenCount"] = usage.cached
        if usage.reasoning:
            metadata["thoughtsTokenCount"] = usage.reasoning
        return metadata

    def stream_parts(self) -> list[list[dict[str, Any]]]:
        """The parts of each content chunk, in order."""
        chunks: list[list[dict[str, Any]]] = []
        if self.shows_thoughts:
            chunks.extend(
                [{"text": p, "thought": True}]
                for p in split_pieces(self.turn.reasoning, self.turn.chunk_text)
            )
        chunks.extend([{"text": p}] for p in split_pieces(self.turn.text, self.turn.chunk_text))
        signature = self.text_signature()
        if signature is not None:
            if chunks:
                chunks[-1][0]["thoughtSignature"] = signature
            else:
                chunks.append([{"text": "", "thoughtSignature": signature}])
        if self.calls:
            chunks.append(list(self.calls))
        return chunks


class Framer:
    """SSE `data:` frames, or the elements of one JSON array written bit by bit."""

    def __init__(self, sse: bool) -> None:
        self.sse = sse
        self.first = True

    def frame(self, payload: dict[str, Any]) -> bytes:
        data = orjson.dumps(payload)
        if self.sse:
            return b"data: " + data + b"\r\n\r\n"
        prefix = b"[" if self.first else b",\r\n"
        self.first = False
        return prefix + data

    def close(self) -> bytes:
        if self.sse:
            return b""
        return b"[]" if self.first else b"]"

    def error(self, status: int, message: str) -> bytes:
        return self.frame(error_object(Rejection(status, message))) + self.close()


async def stream_reply(exchange: Exchange, plan: Plan, *, sse: bool) -> web.StreamResponse:
    framer = Framer(sse)
    content_type = "text/event-stream" if sse else "application/json; charset=UTF-8"
    response = await open_stream(exchange.request, content_type, {})
    sink = Sink(exchange.request, response, exchange.turn, framer.error)

    async def body() -> None:
        for parts in plan.stream_parts():
            await sink.content(framer.frame(plan.chunk(parts, final=False)))
        await sink.finishing()
        await sink.send(framer.frame(plan.chunk([{"text": ""}], final=True)))
        tail = framer.close()
        if tail:
            await sink.send(tail)

    return await run_stream(response, body)


def models_body(models: tuple[str, ...]) -> dict[str, Any]:
    return {"models": [model_entry(name) for name in models]}


def model_entry(name: str) -> dict[str, Any]:
    return {
        "name": f"models/{name}",
        "version": "001",
        "displayName": name,
        "description": "A fake model.",
        "inputTokenLimit": 1048576,
        "outputTokenLimit": 65536,
        "supportedGenerationMethods": ["generateContent", "countTokens", "streamGenerateContent"],
        "thinking": True,
    }

"""One usage reader per format: the translated path (parse_response, StreamDecoder) and the
passthrough sniffer (usage_in on the body, UsageSniffer beside the stream bytes) count the
same tokens, cached, cache-write and reasoning ones included; and so does the gateway's /metrics."""

from __future__ import annotations

import socketserver
from collections.abc import Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import httpx2 as httpx
import orjson
import pytest

from crossroute import ir
from crossroute.formats import anthropic, gemini, openai_chat, openai_responses
from crossroute.usage_sniffer import UsageSniffer, usage_in
from tests.conftest import CLIENT_KEY
from tests.gateway_runner import RunningGateway
from tests.raw_upstream import ThreadedUpstream


@dataclass(frozen=True)
class Case:
    name: str
    fmt: ModuleType
    body: dict[str, Any]  # the non-stream answer
    stream: bytes  # the same answer streamed, its usage where the format puts it
    expected: ir.Usage


def _sse(frames: list[tuple[str | None, Any]]) -> bytes:
    out = b""
    for event, data in frames:
        if event is not None:
            out += b"event: " + event.encode() + b"\n"
        out += b"data: " + (data if isinstance(data, bytes) else orjson.dumps(data)) + b"\n\n"
    return out


# ---------------------------------------------------------------- Chat Completions


def _chat(name: str, usage: dict[str, Any], expected: ir.Usage) -> Case:
    base = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "m"}
    body = {"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "m",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi there"},
                         "finish_reason": "stop"}], "usage": usage}
    stream = _sse([
        (None, {**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}], "usage": None}),
        (None, {**base, "choices": [{"index": 0, "delta": {"content": "Hi there"}}], "usage": None}),
        (None, {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}], "usage": None}),
        (None, {**base, "choices": [], "usage": usage}),
        (None, b"[DONE]"),
    ])
    return Case("chat-" + name, openai_chat, body, stream, expected)


CHAT = [
    _chat("plain", {"prompt_tokens": 12, "completion_tokens": 34, "total_tokens": 46}, ir.Usage(12, 34)),
    _chat("cached-and-reasoning",
          {"prompt_tokens": 1200, "completion_tokens": 340, "total_tokens": 1540,
           "prompt_tokens_details": {"cached_tokens": 1024, "audio_tokens": 0},
           "completion_tokens_details": {"reasoning_tokens": 256, "audio_tokens": 0,
                                         "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}},
          ir.Usage(1200, 340, cached_tokens=1024, reasoning_tokens=256)),
    _chat("deepseek-cache-hit",
          {"prompt_tokens": 90, "completion_tokens": 10, "total_tokens": 100,
           "prompt_cache_hit_tokens": 64, "prompt_cache_miss_tokens": 26},
          ir.Usage(90, 10, cached_tokens=64)),
]


# ---------------------------------------------------------------- Anthropic Messages


def _anthropic(name: str, start: dict[str, Any], delta: dict[str, Any], final: dict[str, Any],
               expected: ir.Usage) -> Case:
    """`start`: message_start's usage; `delta`: message_delta's; `final`: the non-stream body's."""
    message = {"id": "msg_1", "type": "message", "role": "assistant", "model": "m", "stop_reason": None,
               "stop_sequence": None}
    body = {**message, "content": [{"type": "text", "text": "Hi there"}], "stop_reason": "end_turn",
            "usage": final}
    stream = _sse([
        ("message_start", {"type": "message_start", "message": {**message, "content": [], "usage": start}}),
        ("content_block_start", {"type": "content_block_start", "index": 0,
                                 "content_block": {"type": "text", "text": ""}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                 "delta": {"type": "text_delta", "text": "Hi there"}}),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                           "usage": delta}),
        ("message_stop", {"type": "message_stop"}),
    ])
    return Case("anthropic-" + name, anthropic, body, stream, expected)


_CACHED = {"input_tokens": 12, "cache_creation_input_tokens": 50, "cache_read_input_tokens": 100}
ANTHROPIC = [
    _anthropic("plain", {"input_tokens": 12, "output_tokens": 1}, {"output_tokens": 34},
               {"input_tokens": 12, "output_tokens": 34}, ir.Usage(12, 34)),
    # The cache counts come only in message_start; message_delta has the output alone.
    _anthropic("cache-read-and-write-in-start-only", {**_CACHED, "output_tokens": 1}, {"output_tokens": 34},
               {**_CACHED, "output_tokens": 34},
               ir.Usage(162, 34, cached_tokens=100, cache_write_tokens=50)),
    # Newer API: message_delta repeats the cumulative input counts.
    _anthropic("cumulative-delta", {**_CACHED, "output_tokens": 1}, {**_CACHED, "output_tokens": 34},
               {**_CACHED, "output_tokens": 34},
               ir.Usage(162, 34, cached_tokens=100, cache_write_tokens=50)),
    _anthropic("null-cache-fields", {"input_tokens": 12, "cache_creation_input_tokens": None,
                                     "cache_read_input_tokens": None, "output_tokens": 1},
               {"output_tokens": 34, "input_tokens": None},
               {"input_tokens": 12, "cache_creation_input_tokens": None, "cache_read_input_tokens": None,
                "output_tokens": 34},
               ir.Usage(12, 34)),
]


# ---------------------------------------------------------------- Responses


def _responses(name: str, usage: dict[str, Any], expected: ir.Usage) -> Case:
    message = {"id": "msg_1", "type": "message", "status": "completed", "role": "assistant",
               "content": [{"type": "output_text", "text": "Hi there", "annotations": []}]}
    response = {"id": "resp_1", "object": "response", "created_at": 1, "model": "m", "status": "in_progress",
                "output": [], "usage": None}
    body = {**response, "status": "completed", "output": [message], "usage": usage}
    stream = _sse([
        ("response.created", {"type": "response.created", "sequence_number": 0, "response": response}),
        ("response.output_item.added", {"type": "response.output_item.added", "sequence_number": 1,
                                        "output_index": 0, "item": {**message, "status": "in_progress",
                                                                    "content": []}}),
        ("response.output_text.delta", {"type": "response.output_text.delta", "sequence_number": 2,
                                        "item_id": "msg_1", "output_index": 0, "content_index": 0,
                                        "delta": "Hi there"}),
        ("response.output_item.done", {"type": "response.output_item.done", "sequence_number": 3,
                                       "output_index": 0, "item": message}),
        ("response.completed", {"type": "response.completed", "sequence_number": 4, "response": body}),
    ])
    return Case("responses-" + name, openai_responses, body, stream, expected)


RESPONSES = [
    _responses("plain", {"input_tokens": 12, "output_tokens": 34, "total_tokens": 46}, ir.Usage(12, 34)),
    _responses("cached-and-reasoning",
               {"input_tokens": 1200, "input_tokens_details": {"cached_tokens": 1024},
                "output_tokens": 340, "output_tokens_details": {"reasoning_tokens": 256}, "total_tokens": 1540},
               ir.Usage(1200, 340, cached_tokens=1024, reasoning_tokens=256)),
]


# ---------------------------------------------------------------- Gemini


def _gemini(name: str, first: dict[str, Any], last: dict[str, Any], expected: ir.Usage,
            key: str = "usageMetadata") -> Case:
    """`first`: the running usage on the first chunk; `last`: on the final chunk."""
    def chunk(text: str, usage: dict[str, Any], finish: str | None) -> dict[str, Any]:
        candidate: dict[str, Any] = {"content": {"role": "model", "parts": [{"text": text}]}, "index": 0}
        if finish:
            candidate["finishReason"] = finish
        return {"candidates": [candidate], key: usage, "modelVersion": "m", "responseId": "r1"}

    body = chunk("Hi there", {**first, **last}, "STOP")  # a whole answer reports every count
    stream = _sse([(None, chunk("Hi ", first, None)), (None, chunk("there", last, "STOP"))])
    return Case("gemini-" + name, gemini, body, stream, expected)


GEMINI = [
    _gemini("plain", {"promptTokenCount": 12, "totalTokenCount": 12},
            {"promptTokenCount": 12, "candidatesTokenCount": 34, "totalTokenCount": 46}, ir.Usage(12, 34)),
    _gemini("thoughts-and-cached-content",
            {"promptTokenCount": 1200, "cachedContentTokenCount": 1024, "totalTokenCount": 1200},
            {"promptTokenCount": 1200, "cachedContentTokenCount": 1024, "candidatesTokenCount": 84,
             "thoughtsTokenCount": 256, "totalTokenCount": 1540},
            ir.Usage(1200, 340, cached_tokens=1024, reasoning_tokens=256)),
    _gemini("tool-use-prompt",
            {"promptTokenCount": 12, "totalTokenCount": 12},
            {"promptTokenCount": 12, "toolUsePromptTokenCount": 30, "candidatesTokenCount": 34,
             "totalTokenCount": 76},
            ir.Usage(42, 34)),
    # A last chunk that leaves the prompt count out keeps the one reported before.
    _gemini("prompt-count-left-out-at-the-end", {"promptTokenCount": 12, "totalTokenCount": 12},
            {"candidatesTokenCount": 34, "totalTokenCount": 46}, ir.Usage(12, 34)),
    # proto-JSON: snake_case names, int64 written as strings.
    _gemini("proto-json", {"prompt_token_count": "12"},
            {"prompt_token_count": "12", "candidates_token_count": "34", "thoughts_token_count": "6"},
            ir.Usage(12, 40, reasoning_tokens=6), key="usage_metadata"),
]

CASES = CHAT + ANTHROPIC + RESPONSES + GEMINI


def _decoded(case: Case) -> ir.Usage | None:
    decoder = case.fmt.StreamDecoder()
    events = decoder.feed(case.stream) + decoder.close()
    finishes = [event for event in events if isinstance(event, ir.Finish)]
    assert len(finishes) == 1, events
    usage: ir.Usage | None = finishes[0].usage
    return usage


def _sniffed(stream: bytes, piece: int, dialect: Any = None) -> ir.Usage | None:
    sniffer = UsageSniffer(dialect)
    for start in range(0, len(stream), piece):
        sniffer.feed(stream[start:start + piece])
    return sniffer.close()


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_translated_and_passthrough_bodies_read_the_same_usage(case: Case) -> None:
    assert case.fmt.parse_response(case.body).usage == case.expected
    assert usage_in(orjson.loads(orjson.dumps(case.body))) == case.expected
    assert usage_in(case.body, dialect=case.fmt.usage) == case.expected


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_translated_and_passthrough_streams_read_the_same_usage(case: Case) -> None:
    assert _decoded(case) == case.expected
    for piece in (len(case.stream), 7):  # whole, and cut mid-line
        assert _sniffed(case.stream, piece) == case.expected
    assert _sniffed(case.stream, 64, dialect=case.fmt.usage) == case.expected


def test_a_stream_without_usage_reads_none_on_both_paths() -> None:
    case = _chat("none", {}, ir.Usage())
    stream = case.stream.replace(b',"usage":{}', b"")
    assert _decoded(Case(case.name, case.fmt, case.body, stream, case.expected)) is None
    assert _sniffed(stream, len(stream)) is None


# ---------------------------------------------------------------- through the gateway

# Tool-use prompt tokens: the passthrough path left them out of the input count.
GEMINI_ANSWER = next(case for case in GEMINI if case.name == "gemini-tool-use-prompt")
GEMINI_MODEL = "gemini-usage"
_HEADERS = {"authorization": f"Bearer {CLIENT_KEY}"}


class _GeminiUpstream(ThreadedUpstream):
    """Answers every Gemini call with GEMINI_ANSWER, streamed or whole."""

    def __init__(self) -> None:
        super().__init__(_GeminiHandler)


class _GeminiHandler(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        self.connection.settimeout(10)
        target = self.rfile.readline().decode("latin-1").split(" ")[1]
        length = 0
        while (line := self.rfile.readline().strip()):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        self.rfile.read(length)
        if ":streamGenerateContent" in target:
            head, body = b"content-type: text/event-stream\r\n", GEMINI_ANSWER.stream
        else:
            body = orjson.dumps(GEMINI_ANSWER.body)
            head = b"content-type: application/json\r\ncontent-length: %d\r\n" % len(body)
        self.wfile.write(b"HTTP/1.1 200 OK\r\n" + head + b"connection: close\r\n\r\n" + body)
        self.wfile.flush()


@pytest.fixture(scope="module")
def usage_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningGateway]:
    upstream = _GeminiUpstream()
    config = {"server": {"api_keys": [CLIENT_KEY]},
              "providers": [{"name": "up-gemini", "kind": "gemini", "base_url": upstream.url, "api_keys": ["k"],
                             "models": [{"name": GEMINI_MODEL}]}]}
    try:
        with RunningGateway(config, tmp_path_factory.mktemp("usage") / "s.db") as running:
            yield running
    finally:
        upstream.stop()


def _input_tokens_counted(gateway: RunningGateway) -> int:
    metrics = httpx.get(gateway.url + "/metrics", headers=_HEADERS, timeout=10).text
    line = next((line for line in metrics.splitlines()
                 if line.startswith("crossroute_input_tokens_total") and f'"{GEMINI_MODEL}"' in line), None)
    return 0 if line is None else int(line.rsplit(" ", 1)[1])


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "body"])
def test_the_gateway_counts_the_same_input_passed_through_and_translated(stream: bool,
                                                                         usage_gateway: RunningGateway) -> None:
    action = "streamGenerateContent?alt=sse" if stream else "generateContent"
    passthrough = (f"/v1beta/models/{GEMINI_MODEL}:{action}", {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]})
    translated = ("/v1/chat/completions",
                  {"model": GEMINI_MODEL, "messages": [{"role": "user", "content": "hi"}], "stream": stream})
    for path, body in (passthrough, translated):
        before = _input_tokens_counted(usage_gateway)
        reply = httpx.post(usage_gateway.url + path, json=body, headers=_HEADERS, timeout=20)
        assert reply.status_code == 200, reply.text
        assert _input_tokens_counted(usage_gateway) - before == GEMINI_ANSWER.expected.input_tokens, path

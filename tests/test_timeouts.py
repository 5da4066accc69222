"""Per-provider `timeouts: {connect, first_byte, idle}` against upstreams on
127.0.0.1 that stall: before connecting, before the head, mid-body and
mid-stream; through the real gateway, passthrough and translated. Each test
sets one timeout small and the others large, so the answer's timing shows
which one acted (bounds are generous: 10 s against a 0.5 s timeout)."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx2 as httpx
import pytest

from tests.gateway_runner import RunningGateway
from tests.test_upstream_limits import Answer, BadUpstream

SMALL = 0.5
LARGE = 30.0
WITHIN = 10.0
STALL_LIMIT = 20.0  # how long a stalling upstream waits for the gateway to hang up


@dataclass(frozen=True)
class Case:
    """A client request and the provider kind it reaches (same format: passthrough)."""

    name: str
    path: str
    body: dict
    kind: str


def chat(model: str, stream: bool) -> dict:
    return {"model": model, "messages": [{"role": "user", "content": "hi"}], "stream": stream, "max_tokens": 10}


GEMINI_BODY = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}


def cases(stream: bool) -> list[Case]:
    gemini_path = "/v1beta/models/m-gem:" + ("streamGenerateContent?alt=sse" if stream else "generateContent")
    return [
        Case("chat-passthrough", "/v1/chat/completions", chat("m-chat", stream), "openai"),
        Case("anthropic-to-chat", "/v1/messages", chat("m-chat", stream), "openai"),
        Case("gemini-passthrough", gemini_path, GEMINI_BODY, "gemini"),
        Case("chat-to-gemini", "/v1/chat/completions", chat("m-gem", stream), "gemini"),
    ]


# The first event of a streamed answer, in the provider's format, before the stall.
FIRST_EVENT = {
    "openai": b'data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m",'
              b'"choices":[{"index":0,"delta":{"role":"assistant","content":"Hel"},"finish_reason":null}]}\n\n',
    "gemini": b'data: {"candidates":[{"content":{"role":"model","parts":[{"text":"Hel"}]},"index":0}]}\n\n',
}
STREAM_HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
BODY_HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 500\r\n\r\n"


def stall_after(prefix: bytes) -> Answer:
    """Send `prefix`, then nothing: wait for the gateway to hang up (recorded as cut_off)."""
    def answer(upstream: BadUpstream, sock: socket.socket) -> None:
        if prefix:
            upstream.send(sock, prefix)
        sock.settimeout(STALL_LIMIT)
        try:
            if sock.recv(1) == b"":
                upstream.cut_off.set()
        except TimeoutError:
            pass
    return answer


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def config(base_url: str, **timeouts: float) -> dict:
    return {"providers": [
        {"name": "slow-chat", "kind": "openai", "base_url": base_url, "api_keys": ["k"], "models": ["m-chat"],
         "timeouts": timeouts},
        {"name": "slow-gem", "kind": "gemini", "base_url": base_url, "api_keys": ["k"], "models": ["m-gem"],
         "timeouts": timeouts},
    ]}


@pytest.fixture
def stalling(tmp_path: Path) -> Iterator[Callable[..., tuple[BadUpstream, RunningGateway]]]:
    started: list[tuple[BadUpstream, RunningGateway]] = []

    def start(answer: Answer, **timeouts: float) -> tuple[BadUpstream, RunningGateway]:
        upstream = BadUpstream(answer)
        started.append((upstream, RunningGateway(config(upstream.url, **timeouts), tmp_path / "state.sqlite3")))
        return started[-1]

    yield start
    for upstream, gateway in started:
        gateway.stop()
        upstream.stop()


def post(gateway: RunningGateway, case: Case) -> tuple[httpx.Response, float]:
    began = time.monotonic()
    response = httpx.post(gateway.url + case.path, json=case.body, timeout=LARGE * 2,
                          headers={"anthropic-version": "2023-06-01"})
    return response, time.monotonic() - began


def provider_of(case: Case) -> str:
    return "slow-gem" if case.kind == "gemini" else "slow-chat"


# ---------------------------------------------------------------- before the body


@pytest.mark.parametrize("case", cases(stream=False), ids=lambda c: c.name)
def test_no_head_within_first_byte_is_a_504_in_the_client_format(stalling, case: Case) -> None:
    upstream, gateway = stalling(stall_after(b""), first_byte=SMALL, idle=LARGE)
    response, took = post(gateway, case)
    assert response.status_code == 504
    assert f"provider {provider_of(case)} did not answer in time" in response.json()["error"]["message"]
    assert took < WITHIN
    assert upstream.cut_off.wait(WITHIN)  # the connection is not kept for a late answer


def test_connect_timeout_is_the_providers(stalling, tmp_path: Path) -> None:
    """A listener whose backlog is full never completes a connection."""
    with socket.socket() as listener, socket.socket() as filler:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        filler.connect(listener.getsockname())
        base_url = f"http://127.0.0.1:{listener.getsockname()[1]}/v1"
        cfg = config(base_url, connect=SMALL, first_byte=LARGE, idle=LARGE)
        with RunningGateway(cfg, tmp_path / "c.sqlite3") as gateway:
            response, took = post(gateway, cases(stream=False)[0])
    assert response.status_code == 504
    assert "provider slow-chat did not answer in time" in response.json()["error"]["message"]
    assert took < WITHIN


# ---------------------------------------------------------------- a body that stalls


@pytest.mark.parametrize("case", cases(stream=False), ids=lambda c: c.name)
def test_a_body_that_stalls_for_idle_is_a_504_naming_the_provider(stalling, case: Case) -> None:
    upstream, gateway = stalling(stall_after(BODY_HEAD + b'{"id": "x", '), first_byte=LARGE, idle=SMALL)
    response, took = post(gateway, case)
    assert response.status_code == 504
    message = response.json()["error"]["message"]
    assert message == f"provider {provider_of(case)} stopped sending its answer (nothing for 0.5 s)"
    assert took < WITHIN
    assert upstream.cut_off.wait(WITHIN)


# ---------------------------------------------------------------- a stream that stalls

LAST_EVENT = {  # how each client format's stream ends: its error event, then its terminator if it has one
    "/v1/chat/completions": b"data: [DONE]",
    "/v1/messages": b'event: error\ndata: {"type":"error","error":{"type":"timeout_error"',
    "/v1beta": b'{"error":{"code":504',  # Gemini's stream carries an error as a bare JSON object
}


@pytest.mark.parametrize("case", cases(stream=True), ids=lambda c: c.name)
def test_a_stream_silent_for_idle_ends_with_the_error_event_and_closes_upstream(stalling, case: Case) -> None:
    first = STREAM_HEAD + chunk(FIRST_EVENT[case.kind])
    upstream, gateway = stalling(stall_after(first), first_byte=LARGE, idle=SMALL)
    response, took = post(gateway, case)
    assert response.status_code == 200  # the stream had begun
    text = response.content
    assert b"Hel" in text  # what came before the stall reached the client
    assert f"provider {provider_of(case)} sent nothing for 0.5 s mid-stream".encode() in text
    last = next(event for prefix, event in LAST_EVENT.items() if case.path.startswith(prefix))
    assert text.replace(b"\r\n", b"\n").rstrip().rsplit(b"\n\n", 1)[-1].startswith(last)
    assert took < WITHIN
    assert upstream.cut_off.wait(WITHIN)  # the upstream connection was closed, not left open


def test_a_slow_but_steady_stream_is_not_cut(stalling) -> None:
    """idle is the gap between reads, not a bound on the whole answer."""
    pieces = [FIRST_EVENT["openai"]] * 6 + [b"data: [DONE]\n\n"]

    def answer(upstream: BadUpstream, sock: socket.socket) -> None:
        upstream.send(sock, STREAM_HEAD)
        for piece in pieces:
            time.sleep(SMALL / 3)
            upstream.send(sock, chunk(piece))
        upstream.send(sock, b"0\r\n\r\n")

    _, gateway = stalling(answer, first_byte=LARGE, idle=SMALL)
    response, _ = post(gateway, cases(stream=True)[0])
    assert response.status_code == 200
    assert response.content.count(b"Hel") == 6
    assert b"mid-stream" not in response.content
    assert response.content.endswith(b"data: [DONE]\n\n")

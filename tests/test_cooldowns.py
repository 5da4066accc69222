"""Faults through the real gateway: a 429 rests its account until the reset
time the upstream gave (each form), a 401 rests it, a 500 moves on, every
account resting answers at once, retries stay within max_attempts, fallbacks
follow, and a lease ends with its stream."""

from __future__ import annotations

import email.utils
import threading
import time
from collections import deque
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx2 as httpx
import orjson
import pytest

from tests.conftest import CLIENT_KEY
from tests.gateway_runner import RunningGateway

HEADERS = {"authorization": f"Bearer {CLIENT_KEY}", "anthropic-version": "2023-06-01"}
REST = 40  # seconds an upstream asks for in these tests


class Answer:
    def __init__(self, status: int = 200, headers: dict[str, str] | None = None, body: Any = None,
                 stream: bool = False) -> None:
        self.status, self.headers, self.body, self.stream = status, headers or {}, body, stream


def chat_answer(text: str = "ok") -> dict[str, Any]:
    return {"id": "c1", "object": "chat.completion", "created": 1, "model": "m",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}}


def openai_error(status: int, message: str, code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": "rate_limit_error" if status == 429 else "api_error", "code": code}}


class ScriptedUpstream:
    """An upstream on 127.0.0.1 that answers queued Answers (then 200s) with the
    headers they name, and records the key of every request it gets."""

    def __init__(self) -> None:
        self.answers: deque[Answer] = deque()
        self.keys: list[str] = []
        self.midway = threading.Event()  # a streamed answer waits here after its first event
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                self.rfile.read(int(self.headers.get("content-length", 0)))
                key = self.headers.get("authorization", "").removeprefix("Bearer ") or \
                    self.headers.get("x-goog-api-key", "")
                upstream.keys.append(key)
                answer = upstream.answers.popleft() if upstream.answers else Answer(body=chat_answer(f"from {key}"))
                if answer.stream:
                    upstream.stream(self)
                    return
                payload = orjson.dumps(answer.body)
                self.send_response(answer.status)
                for name, value in {"content-type": "application/json", **answer.headers}.items():
                    self.send_header(name, value)
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def stream(self, handler: BaseHTTPRequestHandler) -> None:
        handler.protocol_version = "HTTP/1.0"
        handler.send_response(200)
        handler.send_header("content-type", "text/event-stream")
        handler.end_headers()
        chunk = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m",
                 "choices": [{"index": 0, "delta": {"content": "half"}, "finish_reason": None}]}
        handler.wfile.write(b"data: " + orjson.dumps(chunk) + b"\n\n")
        handler.wfile.flush()
        self.midway.wait(10)
        chunk["choices"] = [{"index": 0, "delta": {}, "finish_reason": "stop"}]
        handler.wfile.write(b"data: " + orjson.dumps(chunk) + b"\n\ndata: [DONE]\n\n")
        handler.close_connection = True

    def close(self) -> None:
        self.midway.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def upstream() -> Iterator[ScriptedUpstream]:
    scripted = ScriptedUpstream()
    yield scripted
    scripted.close()


def provider(name: str, base_url: str, keys: list[str], model: str, kind: str = "openai") -> dict[str, Any]:
    return {"name": name, "kind": kind, "base_url": base_url, "api_keys": keys,
            "models": [{"name": model, "upstream": f"{model}-real"}]}


def serving(tmp_path: Path, *providers: dict[str, Any], routing: dict[str, Any] | None = None) -> RunningGateway:
    config: dict[str, Any] = {"server": {"api_keys": [CLIENT_KEY]}, "providers": list(providers)}
    if routing:
        config["routing"] = routing
    return RunningGateway(config, tmp_path / "state.sqlite3")


def chat(gw: RunningGateway, model: str = "m", stream: bool = False) -> httpx.Response:
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}], "stream": stream}
    return httpx.post(f"{gw.url}/v1/chat/completions", json=body, headers=HEADERS, timeout=20)


def rfc3339_in(seconds: float) -> str:
    return datetime.fromtimestamp(time.time() + seconds, UTC).isoformat().replace("+00:00", "Z")


def reset_form(form: str) -> tuple[str, dict[str, str], Any]:
    """(provider kind, headers, body) of a 429 that names its reset time one way; times from now."""
    if form == "retry-after-seconds":
        return "openai", {"retry-after": str(REST)}, None
    if form == "retry-after-date":
        return "openai", {"retry-after": email.utils.formatdate(time.time() + REST + 1, usegmt=True)}, None
    if form == "x-ratelimit-reset":
        return "openai", {"x-ratelimit-reset-requests": f"{REST}s", "x-ratelimit-remaining-requests": "0",
                          "x-ratelimit-reset-tokens": "10ms"}, None
    if form == "anthropic-reset":
        return "openai", {"anthropic-ratelimit-requests-reset": rfc3339_in(REST + 1)}, None
    retry_info = {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{REST}s"}
    return "gemini", {}, {"error": {"code": 429, "message": "Resource has been exhausted",
                                    "status": "RESOURCE_EXHAUSTED", "details": [retry_info]}}


RESET_FORMS = ["retry-after-seconds", "retry-after-date", "x-ratelimit-reset", "anthropic-reset", "gemini-retry-info"]


@pytest.mark.parametrize("form", RESET_FORMS)
def test_a_429_rests_its_key_until_the_reset_the_upstream_gave(form: str, upstream: ScriptedUpstream,
                                                               tmp_path: Path) -> None:
    kind, headers, body = reset_form(form)
    base = f"{upstream.url}/v1" if kind == "openai" else upstream.url
    with serving(tmp_path, provider("p", base, ["k1"], "m", kind)) as gw:
        upstream.answers.append(Answer(429, headers, body or openai_error(429, "slow down")))
        first = chat(gw)
        assert first.status_code == 429
        again = [chat(gw) for _ in range(3)]
        assert upstream.keys == ["k1"]  # the resting key was not called again
        for response in again:
            assert response.status_code == 429
            assert REST - 3 <= int(response.headers["retry-after"]) <= REST + 1
            assert response.json()["error"]["code"] == "all_accounts_resting"


def test_a_429_moves_the_request_to_the_next_key_which_serves_until_the_first_is_back(
        upstream: ScriptedUpstream, tmp_path: Path) -> None:
    with serving(tmp_path, provider("p", f"{upstream.url}/v1", ["k1", "k2"], "m")) as gw:
        upstream.answers.append(Answer(429, {"retry-after": "1"}, openai_error(429, "slow down")))
        assert chat(gw).json()["choices"][0]["message"]["content"] == "from k2"
        assert [chat(gw).status_code for _ in range(3)] == [200] * 3
        assert upstream.keys == ["k1", "k2", "k2", "k2", "k2"]
        deadline = time.monotonic() + 10
        while "k1" not in upstream.keys[5:] and time.monotonic() < deadline:  # back at its reset time
            time.sleep(0.3)
            chat(gw)
        assert "k1" in upstream.keys[5:]


def test_every_key_resting_is_answered_at_once_in_the_clients_format(upstream: ScriptedUpstream,
                                                                    tmp_path: Path) -> None:
    with serving(tmp_path, provider("p", f"{upstream.url}/v1", ["k1", "k2"], "m")) as gw:
        upstream.answers.extend([Answer(429, {"retry-after": "90"}, openai_error(429, "slow")),
                                 Answer(429, {"retry-after": "30"}, openai_error(429, "slow"))])
        assert chat(gw).status_code == 429
        body = {"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}
        refused = httpx.post(f"{gw.url}/v1/messages", json=body, headers=HEADERS, timeout=20)
        assert refused.status_code == 429
        assert refused.json()["type"] == "error" and refused.json()["error"]["type"] == "rate_limit_error"
        assert 28 <= int(refused.headers["retry-after"]) <= 30  # the soonest of the two resets
        assert upstream.keys == ["k1", "k2"]


def test_a_401_rests_the_key_and_a_500_only_moves_on(upstream: ScriptedUpstream, tmp_path: Path) -> None:
    with serving(tmp_path, provider("p", f"{upstream.url}/v1", ["k1", "k2", "k3"], "m")) as gw:
        upstream.answers.extend([Answer(401, {}, openai_error(401, "revoked key", "invalid_api_key")),
                                 Answer(500, {}, openai_error(500, "boom"))])
        assert chat(gw).status_code == 200  # k1 401, k2 500, k3 answers
        assert upstream.keys == ["k1", "k2", "k3"]
        assert all(chat(gw).status_code == 200 for _ in range(6))
        assert upstream.keys.count("k1") == 1  # never again after its 401
        assert upstream.keys[3:].count("k2") == 3  # a 500 does not rest a key


def test_retries_stop_at_max_attempts(upstream: ScriptedUpstream, tmp_path: Path) -> None:
    with serving(tmp_path, provider("p", f"{upstream.url}/v1", ["k1", "k2", "k3", "k4"], "m"),
                 routing={"max_attempts": 2}) as gw:
        upstream.answers.extend(Answer(503, {}, openai_error(503, "down")) for _ in range(4))
        assert chat(gw).status_code == 503
        assert len(upstream.keys) == 2


def test_fallbacks_follow_in_order_and_context_length_is_not_retried_on_the_same_model(
        upstream: ScriptedUpstream, tmp_path: Path) -> None:
    with serving(tmp_path, provider("small", f"{upstream.url}/v1", ["s1", "s2"], "m"),
                 provider("big", f"{upstream.url}/v1", ["b1"], "m-big"),
                 routing={"fallbacks": {"m": ["m-big"]}}) as gw:
        upstream.answers.append(Answer(400, {}, openai_error(400, "maximum context length is 8192 tokens",
                                                             "context_length_exceeded")))
        answered = chat(gw)
        assert answered.status_code == 200 and answered.json()["choices"][0]["message"]["content"] == "from b1"
        assert upstream.keys == ["s1", "b1"]  # not s2: no key of that model has a longer context
        upstream.keys.clear()
        upstream.answers.extend([Answer(429, {"retry-after": "60"}, openai_error(429, "slow")),
                                 Answer(429, {"retry-after": "60"}, openai_error(429, "slow"))])
        assert chat(gw).json()["choices"][0]["message"]["content"] == "from b1"
        assert upstream.keys == ["s2", "s1", "b1"]
        upstream.keys.clear()
        assert chat(gw).json()["choices"][0]["message"]["content"] == "from b1"  # m rests: straight to m-big
        assert upstream.keys == ["b1"]


def test_the_lease_ends_with_the_stream_not_with_its_headers(upstream: ScriptedUpstream, tmp_path: Path) -> None:
    with serving(tmp_path, provider("p", f"{upstream.url}/v1", ["k1"], "m")) as gw:
        state = gw.app.account_state
        upstream.answers.append(Answer(stream=True))
        body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": True}
        with httpx.stream("POST", f"{gw.url}/v1/chat/completions", json=body, headers=HEADERS, timeout=20) as stream:
            lines = stream.iter_lines()
            assert next(line for line in lines if line.startswith("data: "))  # the client has a byte
            assert state.in_flight("p#0") == 1 and state.view("p#0").requests == 0
            upstream.midway.set()
            rest = list(lines)
        assert "data: [DONE]" in rest
        deadline = time.monotonic() + 10
        while state.in_flight("p#0") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert (state.in_flight("p#0"), state.view("p#0").requests) == (0, 1)

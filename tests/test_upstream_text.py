"""Upstream text relayed to clients: configured secrets an upstream echoes are
scrubbed (error bodies, in-stream error events; passthrough and translated, in
all four formats), a redirect is a 502 that says so, and an unreachable
provider is named without its address."""

from __future__ import annotations

import socket
import socketserver
import time
from collections.abc import Iterator
from typing import Any

import httpx2 as httpx
import orjson
import pytest

from crossroute import logs
from crossroute.providers.redaction import Redactor, header_secrets
from tests.conftest import CLIENT_KEY, MODELS
from tests.gateway_runner import RunningGateway, free_port
from tests.raw_upstream import ThreadedUpstream

KINDS = tuple(MODELS)
PROVIDER_KEY = "sk-live-SECRET/0123456789+abcdef"
HEADER_SECRET = "hdr-SECRET-4242424242"
SECRETS = (PROVIDER_KEY, HEADER_SECRET, PROVIDER_KEY.replace("/", "\\/"))
HEADERS = {"authorization": f"Bearer {CLIENT_KEY}", "anthropic-version": "2023-06-01"}
PAUSE = 0.05  # an upstream's in-stream error comes after some work, not in the same write as the content


# ---------------------------------------------------------------- an upstream that echoes what it was sent


def _format_of(path: str) -> str:
    if path.startswith("/v1/chat/completions"):
        return "openai"
    if path.startswith("/v1/responses"):
        return "openai-responses"
    if path.startswith("/v1/messages"):
        return "anthropic"
    return "gemini"


def _error_body(kind: str, status: int, message: str) -> bytes:
    if kind == "anthropic":
        return orjson.dumps({"type": "error", "error": {"type": "authentication_error", "message": message}})
    if kind == "gemini":  # some encoders write "/" as "\/"
        body = orjson.dumps({"error": {"code": status, "message": message, "status": "INVALID_ARGUMENT"}})
        return body.replace(b"/", b"\\/")
    return orjson.dumps({"error": {"message": message, "type": "invalid_request_error", "param": None,
                                   "code": "invalid_api_key"}})


def _stream_events(kind: str, message: str) -> tuple[bytes, bytes]:
    """A first event, and the in-stream error event that follows it."""
    if kind == "anthropic":
        start = {"type": "message_start", "message": {"id": "msg_1", "type": "message", "role": "assistant",
                                                      "content": [], "model": "m", "stop_reason": None,
                                                      "usage": {"input_tokens": 1, "output_tokens": 0}}}
        error = {"type": "error", "error": {"type": "api_error", "message": message}}
        return (b"event: message_start\ndata: " + orjson.dumps(start) + b"\n\n",
                b"event: error\ndata: " + orjson.dumps(error) + b"\n\n")
    if kind == "openai-responses":
        created = {"type": "response.created", "sequence_number": 0,
                   "response": {"id": "resp_1", "object": "response", "status": "in_progress", "output": []}}
        error = {"type": "error", "sequence_number": 1, "code": "server_error", "message": message}
        return (b"event: response.created\ndata: " + orjson.dumps(created) + b"\n\n",
                b"event: error\ndata: " + orjson.dumps(error) + b"\n\n")
    if kind == "gemini":
        chunk = {"candidates": [{"content": {"role": "model", "parts": [{"text": "hi"}]}, "index": 0}]}
        error = {"error": {"code": 500, "message": message, "status": "INTERNAL"}}
        return b"data: " + orjson.dumps(chunk) + b"\n\n", b"data: " + orjson.dumps(error) + b"\n\n"
    chunk = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m",
             "choices": [{"index": 0, "delta": {"role": "assistant", "content": "hi"}, "finish_reason": None}]}
    error = {"error": {"message": message, "type": "server_error", "param": None, "code": None}}
    return b"data: " + orjson.dumps(chunk) + b"\n\n", b"data: " + orjson.dumps(error) + b"\n\n"


class EchoingUpstream(ThreadedUpstream):
    """Answers every request per `mode`, echoing the key and configured header it received."""

    def __init__(self) -> None:
        self.mode = "error-401"
        self.calls = 0
        super().__init__(_EchoHandler)


class _EchoHandler(socketserver.StreamRequestHandler):
    server: EchoingUpstream

    def handle(self) -> None:
        self.connection.settimeout(10)
        request_line = self.rfile.readline().decode("latin-1")
        headers: dict[str, str] = {}
        while (line := self.rfile.readline().decode("latin-1").strip()):
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        self.rfile.read(int(headers.get("content-length", "0")))
        self.server.calls += 1
        key = headers.get("x-api-key") or headers.get("x-goog-api-key") or \
            headers.get("authorization", "").removeprefix("Bearer ")
        message = f"Incorrect API key provided: {key} (extra token {headers.get('x-extra-token')})"
        kind = _format_of(request_line.split(" ")[1])
        mode = self.server.mode
        if mode == "redirect":
            self.wfile.write(b"HTTP/1.1 302 Found\r\nContent-Length: 0\r\n\r\n")
        elif mode.startswith("error-"):
            status = int(mode.removeprefix("error-"))
            body = _error_body(kind, status, message)
            self.wfile.write(b"HTTP/1.1 %d Error\r\ncontent-type: application/json\r\ncontent-length: %d\r\n"
                             b"connection: close\r\n\r\n%s" % (status, len(body), body))
        else:
            first, error = _stream_events(kind, message)
            self.wfile.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n" + first)
            self.wfile.flush()
            time.sleep(PAUSE)
            self.wfile.write(error)
        self.wfile.flush()


# ---------------------------------------------------------------- the gateway in front of it


def _config(base: str, extra: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    bases = {"openai": f"{base}/v1", "openai-responses": f"{base}/v1", "anthropic": base, "gemini": base}
    providers = [{"name": f"up-{kind}", "kind": kind, "base_url": bases[kind], "api_keys": [PROVIDER_KEY],
                  "headers": {"x-extra-token": HEADER_SECRET}, "models": [{"name": model}]}
                 for kind, model in MODELS.items()]
    return {"server": {"api_keys": [CLIENT_KEY]}, "providers": providers + (extra or [])}


@pytest.fixture(scope="module")
def echo() -> Iterator[EchoingUpstream]:
    upstream = EchoingUpstream()
    yield upstream
    upstream.stop()


@pytest.fixture(scope="module")
def unreachable_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def echo_gateway(echo: EchoingUpstream, unreachable_port: int,
                 tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningGateway]:
    dead = {"name": "dead", "kind": "openai", "base_url": f"http://127.0.0.1:{unreachable_port}/v1",
            "api_keys": ["k"], "models": ["dead-model"]}
    with RunningGateway(_config(echo.url, [dead]), tmp_path_factory.mktemp("echo") / "s.db") as running:
        yield running


def ask(gateway: RunningGateway, client: str, model: str, stream: bool = False) -> httpx.Response:
    text = [{"role": "user", "content": "hi"}]
    if client == "gemini":
        action = "streamGenerateContent?alt=sse" if stream else "generateContent"
        path, body = f"/v1beta/models/{model}:{action}", {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    elif client == "anthropic":
        path, body = "/v1/messages", {"model": model, "max_tokens": 5, "messages": text, "stream": stream}
    elif client == "openai-responses":
        path, body = "/v1/responses", {"model": model, "input": "hi", "store": False, "stream": stream}
    else:
        path, body = "/v1/chat/completions", {"model": model, "messages": text, "stream": stream}
    return httpx.post(gateway.url + path, json=body, headers=HEADERS, timeout=20)


def assert_no_secret(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text
    assert "SECRET" not in text  # not even a piece of one


PAIRS = [(client, kind) for client in KINDS for kind in KINDS]
PAIR_IDS = [f"{client}-to-{kind}" for client, kind in PAIRS]


@pytest.mark.parametrize("status", [401, 400])
@pytest.mark.parametrize("client,kind", PAIRS, ids=PAIR_IDS)
def test_a_key_echoed_in_an_upstream_error_is_redacted(client: str, kind: str, status: int, echo: EchoingUpstream,
                                                       echo_gateway: RunningGateway) -> None:
    echo.mode = f"error-{status}"
    echo_gateway.app.account_state.reset()  # the last case's 401 rested the key
    response = ask(echo_gateway, client, MODELS[kind])
    assert response.status_code == status, response.text
    assert "[redacted]" in response.text
    assert_no_secret(response.text)


@pytest.mark.parametrize("client,kind", PAIRS, ids=PAIR_IDS)
def test_a_key_echoed_in_an_in_stream_error_event_is_redacted(client: str, kind: str, echo: EchoingUpstream,
                                                              echo_gateway: RunningGateway) -> None:
    echo.mode = "stream-error"
    response = ask(echo_gateway, client, MODELS[kind], stream=True)
    assert response.status_code == 200
    assert "[redacted]" in response.text, response.text
    assert_no_secret(response.text)


@pytest.mark.parametrize("client,kind", PAIRS, ids=PAIR_IDS)
def test_an_upstream_redirect_is_a_502_that_says_so(client: str, kind: str, echo: EchoingUpstream,
                                                    echo_gateway: RunningGateway) -> None:
    echo.mode = "redirect"
    response = ask(echo_gateway, client, MODELS[kind])
    assert response.status_code == 502, response.text
    assert f"provider up-{kind} answered with a redirect (302), which the gateway does not follow" in response.text


@pytest.mark.parametrize("client", KINDS)
def test_an_unreachable_provider_is_named_without_its_address(client: str, unreachable_port: int,
                                                              echo_gateway: RunningGateway) -> None:
    response = ask(echo_gateway, client, "dead-model")
    assert response.status_code == 502, response.text
    assert "provider dead is unreachable" in response.text
    assert str(unreachable_port) not in response.text and "127.0.0.1" not in response.text


def test_the_log_keeps_the_address_of_an_unreachable_provider(unreachable_port: int, echo_gateway: RunningGateway,
                                                              caplog: pytest.LogCaptureFixture,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(logs, "_throttle", logs.Throttle())  # earlier tests' warnings would hold this one back
    with caplog.at_level("WARNING", logger="crossroute"):
        ask(echo_gateway, "openai", "dead-model")
    assert any(f"127.0.0.1:{unreachable_port}" in record.getMessage() for record in caplog.records)


def test_the_echoing_upstream_really_sends_the_key(echo: EchoingUpstream) -> None:
    """The fixture itself: without the gateway between, the key is right there."""
    echo.mode = "error-401"
    with socket.create_connection(("127.0.0.1", echo.server_address[1]), timeout=10) as sock:
        sock.sendall(f"POST /v1/messages HTTP/1.1\r\nx-api-key: {PROVIDER_KEY}\r\ncontent-length: 0\r\n\r\n".encode())
        answer = sock.makefile("rb").read()
    assert PROVIDER_KEY.encode() in answer


# ---------------------------------------------------------------- which configured values count as secrets


def test_credential_like_headers_and_scheme_tokens_are_secrets() -> None:
    found = header_secrets({"Authorization": "Bearer tok-123456", "x-portkey-api-key": "pk-abcdef",
                             "x-session": "sess-999999", "anthropic-beta": "tools-2024", "x-title": "my app"})
    assert sorted(found) == ["pk-abcdef", "sess-999999", "tok-123456"]
    redactor = Redactor(["sk-abc", "sk-abcdef", "abc"])  # "abc" is too short to hunt for
    assert redactor.text("keys sk-abcdef and sk-abc, abc") == "keys [redacted] and [redacted], abc"

"""The gateway's own HTTP/1.1 server, spoken to over raw sockets: keep-alive,
pipelining, HTTP/1.0, Expect, chunked bodies, refusals and a graceful stop."""

from __future__ import annotations

import http.client
import socket
import threading
import time
from pathlib import Path
from typing import Any, BinaryIO

import httpx2 as httpx
import orjson
import pytest

from tests.conftest import CLIENT_KEY, MODELS, gateway_config
from tests.fakes import FakeUpstream, Turn
from tests.gateway_runner import RunningGateway


class _SharedFile:
    """Lets several http.client responses read one after another from one socket's buffer."""

    def __init__(self, sock: socket.socket) -> None:
        self.file: BinaryIO = sock.makefile("rb")

    def makefile(self, *_: Any, **__: Any) -> _SharedFile:
        return self

    def __getattr__(self, name: str) -> Any:
        return getattr(self.file, name)

    def close(self) -> None:
        """http.client closes its file after each response; the next one still needs it."""


def connect(gateway: RunningGateway) -> socket.socket:
    return socket.create_connection(("127.0.0.1", gateway.port), timeout=10)


def read_response(shared: _SharedFile) -> tuple[http.client.HTTPResponse, bytes]:
    response = http.client.HTTPResponse(shared)  # type: ignore[arg-type]
    response.begin()
    return response, response.read()


def request(method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None,
            version: str = "HTTP/1.1") -> bytes:
    lines = [f"{method} {path} {version}", "Host: gateway", f"Authorization: Bearer {CLIENT_KEY}"]
    if body:
        lines.append(f"Content-Length: {len(body)}")
    if method == "POST":
        lines.append("Content-Type: application/json")
    lines.extend(f"{k}: {v}" for k, v in (headers or {}).items())
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def chat(text: str, stream: bool = False) -> bytes:
    return orjson.dumps({"model": MODELS["openai"], "stream": stream, "messages": [{"role": "user", "content": text}]})


def closed_by_server(shared: _SharedFile) -> bool:
    return shared.file.read(1) == b""


def test_keep_alive_carries_pipelined_requests_in_order(gateway: RunningGateway, clean_fake: FakeUpstream) -> None:
    clean_fake.script(Turn(text="first answer"), Turn(text="second answer"))
    with connect(gateway) as sock:
        shared = _SharedFile(sock)
        sock.sendall(request("POST", "/v1/chat/completions", chat("a")) + request("GET", "/health")
                     + request("POST", "/v1/chat/completions", chat("b")))
        answers = [read_response(shared) for _ in range(3)]
    assert [r.status for r, _ in answers] == [200, 200, 200]
    assert orjson.loads(answers[0][1])["choices"][0]["message"]["content"] == "first answer"
    assert orjson.loads(answers[1][1])["status"] == "ok"
    assert orjson.loads(answers[2][1])["choices"][0]["message"]["content"] == "second answer"
    assert all(r.getheader("connection") is None for r, _ in answers)


def test_connection_close_is_honoured(gateway: RunningGateway) -> None:
    with connect(gateway) as sock:
        shared = _SharedFile(sock)
        sock.sendall(request("GET", "/health", headers={"Connection": "close"}))
        response, _ = read_response(shared)
        assert response.status == 200
        assert response.getheader("connection") == "close"
        assert closed_by_server(shared)


def test_http10_stream_ends_with_the_connection(gateway: RunningGateway, clean_fake: FakeUpstream) -> None:
    clean_fake.script(Turn(text="old client"))
    with connect(gateway) as sock:
        sock.sendall(request("POST", "/v1/chat/completions", chat("x", stream=True), version="HTTP/1.0"))
        raw = b""
        while chunk := sock.recv(65536):
            raw += chunk
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert b"transfer-encoding" not in head.lower()
    assert body.rstrip().endswith(b"data: [DONE]")
    chunks = [orjson.loads(line[6:]) for line in body.splitlines() if line.startswith(b"data: {")]
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"]) == "old client"


def test_expect_100_continue_gets_the_interim_answer(gateway: RunningGateway, clean_fake: FakeUpstream) -> None:
    clean_fake.script(Turn(text="after continue"))
    body = chat("x")
    with connect(gateway) as sock:
        head = request("POST", "/v1/chat/completions", headers={"Content-Length": str(len(body)),
                                                                  "Expect": "100-continue"})
        sock.sendall(head)
        assert sock.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(body)
        response, payload = read_response(_SharedFile(sock))
    assert response.status == 200
    assert orjson.loads(payload)["choices"][0]["message"]["content"] == "after continue"


def test_chunked_request_body_is_read(gateway: RunningGateway, clean_fake: FakeUpstream) -> None:
    clean_fake.script(Turn(text="chunked in"))
    body = chat("x")
    middle = len(body) // 2
    framed = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in (body[:middle], body[middle:])) + b"0\r\n\r\n"
    with connect(gateway) as sock:
        sock.sendall(request("POST", "/v1/chat/completions", headers={"Transfer-Encoding": "chunked"}) + framed)
        response, payload = read_response(_SharedFile(sock))
    assert response.status == 200
    assert orjson.loads(payload)["choices"][0]["message"]["content"] == "chunked in"


def test_percent_encoded_gemini_path(gateway: RunningGateway, clean_fake: FakeUpstream) -> None:
    clean_fake.script(Turn(text="decoded"))
    response = httpx.post(f"{gateway.url}/v1beta/models/{MODELS['gemini']}%3AgenerateContent",
                          headers={"x-goog-api-key": CLIENT_KEY},
                          json={"contents": [{"role": "user", "parts": [{"text": "x"}]}]})
    assert response.status_code == 200
    assert response.json()["candidates"][0]["content"]["parts"][0]["text"] == "decoded"


def test_declared_oversized_body_is_refused_before_it_arrives(gateway: RunningGateway) -> None:
    with connect(gateway) as sock:
        shared = _SharedFile(sock)
        sock.sendall(request("POST", "/v1/messages", headers={"Content-Length": str(10**12)}))
        response, payload = read_response(shared)
        assert response.status == 413
        assert orjson.loads(payload)["error"]["type"] == "request_too_large"  # Anthropic's shape, for its path
        assert closed_by_server(shared)


def test_malformed_http_is_a_400_and_the_gateway_stays_up(gateway: RunningGateway) -> None:
    with connect(gateway) as sock:
        shared = _SharedFile(sock)
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: banana\r\n\r\n")
        response, payload = read_response(shared)
        assert response.status == 400
        assert orjson.loads(payload)["error"]["message"] == "malformed HTTP request"
        assert closed_by_server(shared)
    assert httpx.get(gateway.url + "/health").status_code == 200


def test_upgrade_request_is_answered_as_http(gateway: RunningGateway) -> None:
    with connect(gateway) as sock:
        shared = _SharedFile(sock)
        sock.sendall(request("GET", "/v1/responses", headers={"Connection": "Upgrade", "Upgrade": "websocket",
                                                               "Sec-WebSocket-Version": "13",
                                                               "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}))
        response, payload = read_response(shared)
        assert response.status == 404
        assert orjson.loads(payload)["error"]["message"] == "no route for GET /v1/responses"
        assert closed_by_server(shared)


def test_stop_lets_a_request_in_flight_finish(tmp_path: Path, clean_fake: FakeUpstream) -> None:
    clean_fake.script(Turn(text="finished anyway", delay=1.0))
    gw = RunningGateway(gateway_config(clean_fake.url), tmp_path / "s.db")
    result: dict[str, Any] = {}

    def call() -> None:
        result["response"] = httpx.post(gw.url + "/v1/chat/completions", content=chat("x"), timeout=10,
                                        headers={"authorization": f"Bearer {CLIENT_KEY}",
                                                 "content-type": "application/json"})

    thread = threading.Thread(target=call)
    thread.start()
    time.sleep(0.4)
    gw.stop()
    thread.join()
    assert result["response"].status_code == 200
    assert result["response"].json()["choices"][0]["message"]["content"] == "finished anyway"
    with pytest.raises(httpx.TransportError):  # nothing listens any more
        httpx.get(gw.url + "/health", timeout=2)


def test_a_refused_request_waits_for_the_one_before_it(gateway: RunningGateway, clean_fake: FakeUpstream) -> None:
    clean_fake.script(Turn(text="answered first", delay=0.5))
    oversized = request("POST", "/v1/messages", headers={"Content-Length": str(10**12)})
    with connect(gateway) as sock:
        shared = _SharedFile(sock)
        sock.sendall(request("POST", "/v1/chat/completions", chat("a")) + oversized)
        first, first_body = read_response(shared)
        second, second_body = read_response(shared)
        assert closed_by_server(shared)
    assert first.status == 200
    assert orjson.loads(first_body)["choices"][0]["message"]["content"] == "answered first"
    assert second.status == 413 and orjson.loads(second_body)["error"]["type"] == "request_too_large"

"""What a client may make the gateway's own server hold, and what a web page
may make it do: deadlines, size caps, the connection cap, the key checked at
the head, back-pressure on unread replies, Expect in order; Origin, Host and
the JSON content type. Spoken to over raw sockets."""

from __future__ import annotations

import resource
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import orjson
import pytest

from tests.conftest import CLIENT_KEY, gateway_config
from tests.fakes import FakeUpstream, Turn
from tests.gateway_runner import RunningGateway, free_port
from tests.test_cli import CLI, wait_until_healthy
from tests.test_http_server import _SharedFile, chat, closed_by_server, connect, read_response, request

ORIGIN = "https://app.example"


@pytest.fixture(scope="module")
def limited(fake: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningGateway]:
    config = gateway_config(fake.url)
    config["server"].update(head_timeout_seconds=1, body_timeout_seconds=1, keep_alive_seconds=2,
                            max_head_bytes=16 * 1024, max_headers=20, max_url_bytes=1024)
    with RunningGateway(config, tmp_path_factory.mktemp("limited") / "s.db") as running:
        yield running


@pytest.fixture(scope="module")
def keyless(fake: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningGateway]:
    config = gateway_config(fake.url)
    config["server"] = {"api_keys": [], "cors_origins": [ORIGIN], "allowed_hosts": ["gateway.lan"]}
    with RunningGateway(config, tmp_path_factory.mktemp("keyless") / "s.db") as running:
        yield running


def error_of(payload: bytes) -> dict:
    return orjson.loads(payload)["error"]


def refused_with(sock: socket.socket, status: int) -> dict:
    """The answer is `status` in the client's format, and the connection closes after it."""
    shared = _SharedFile(sock)
    response, payload = read_response(shared)
    assert response.status == status, payload
    assert closed_by_server(shared)
    return dict(orjson.loads(payload))


# ---------------------------------------------------------------- deadlines


@pytest.mark.parametrize("after_a_request", [False, True])
def test_a_head_that_never_ends_gets_408(limited: RunningGateway, after_a_request: bool) -> None:
    with connect(limited) as sock:
        if after_a_request:  # the deadline is armed for every request on a keep-alive connection
            sock.sendall(request("GET", "/health"))
            assert read_response(_SharedFile(sock))[0].status == 200
        sock.sendall(b"GET /v1/models HTTP/1.1\r\nHost: gateway\r\nX-Slow: ")
        assert refused_with(sock, 408)["error"]["message"] == "the request was not received in time"


def test_a_body_that_stops_coming_gets_408_in_the_client_format(limited: RunningGateway) -> None:
    with connect(limited) as sock:
        sock.sendall(request("POST", "/v1/messages", headers={"Content-Length": "1000"}) + b'{"model":')
        answer = refused_with(sock, 408)
    assert answer["type"] == "error"  # Anthropic's shape, for its path
    assert answer["error"]["message"] == "the request was not received in time"


def test_a_body_that_keeps_coming_is_not_cut_off(limited: RunningGateway, clean_fake: FakeUpstream) -> None:
    clean_fake.script(Turn(text="slow but steady"))
    body = chat("x")
    with connect(limited) as sock:
        sock.sendall(request("POST", "/v1/chat/completions", headers={"Content-Length": str(len(body))}))
        for start in range(0, len(body), len(body) // 4 + 1):  # 4 pieces over ~1.6 s, past the 1 s limit in all
            time.sleep(0.4)
            sock.sendall(body[start:start + len(body) // 4 + 1])
        response, payload = read_response(_SharedFile(sock))
    assert response.status == 200
    assert orjson.loads(payload)["choices"][0]["message"]["content"] == "slow but steady"


def test_an_idle_connection_is_closed_after_keep_alive_seconds(limited: RunningGateway) -> None:
    with connect(limited) as sock:
        assert sock.recv(1) == b""  # within the socket's 10 s timeout, not 75 s


# ---------------------------------------------------------------- sizes


def test_a_head_over_the_cap_gets_431(limited: RunningGateway) -> None:
    with connect(limited) as sock:
        sock.sendall(request("GET", "/v1/models", headers={"X-Pad": "p" * 20_000}))
        assert refused_with(sock, 431)["error"]["message"] == "the request head is larger than 16384 bytes"


def test_an_endless_header_is_cut_off_while_it_is_read(limited: RunningGateway) -> None:
    """Not buffered (and re-copied) until it ends: the connection ends after about the cap."""
    sent = 0
    with connect(limited) as sock:
        sock.sendall(b"GET /v1/models HTTP/1.1\r\nHost: gateway\r\nX-Pad: ")
        piece = b"p" * 65536
        with pytest.raises(OSError):  # reset, or the write side shut by the server
            while sent < 64 * 1024 * 1024:
                sock.sendall(piece)
                sent += len(piece)
                time.sleep(0.001)
    assert sent < 16 * 1024 * 1024


def test_too_many_header_lines_get_431(limited: RunningGateway) -> None:
    with connect(limited) as sock:
        sock.sendall(request("GET", "/v1/models", headers={f"X-H{i}": "v" for i in range(30)}))
        assert refused_with(sock, 431)["error"]["message"] == "the request has more than 20 header lines"


def test_a_long_url_gets_414_before_the_head_ends(limited: RunningGateway) -> None:
    with connect(limited) as sock:
        sock.sendall(b"GET /v1/models?pad=" + b"u" * 2000)  # no end of line: refused while still reading
        assert refused_with(sock, 414)["error"]["message"] == "the URL is longer than 1024 bytes"


def test_http09_is_refused(gateway: RunningGateway) -> None:
    with connect(gateway) as sock:
        sock.sendall(b"GET /v1/models\r\n\r\n")
        assert refused_with(sock, 400)["error"]["message"] == "HTTP/0.9 is not supported; use HTTP/1.1"


# ---------------------------------------------------------------- the key, at the head


def test_the_key_is_checked_before_the_body_is_read(gateway: RunningGateway) -> None:
    head = (b"POST /v1/messages HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json\r\n"
            b"Content-Length: 30000000\r\n\r\n")
    with connect(gateway) as sock:
        sock.sendall(head + b"x" * 1000)
        answer = refused_with(sock, 401)
    assert answer["type"] == "error" and answer["error"]["type"] == "authentication_error"  # Anthropic's shape


def test_expect_100_continue_is_not_promised_to_a_refused_request(gateway: RunningGateway) -> None:
    head = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json\r\n"
            b"Content-Length: 100\r\nExpect: 100-continue\r\n\r\n")
    with connect(gateway) as sock:
        sock.sendall(head)
        shared = _SharedFile(sock)
        response, _ = read_response(shared)  # http.client would skip a 100; the first line read is the answer
        assert response.status == 401


def test_expect_100_continue_waits_for_the_replies_before_it(gateway: RunningGateway,
                                                            clean_fake: FakeUpstream) -> None:
    clean_fake.script(Turn(text="first", delay=0.5), Turn(text="second"))
    body = chat("b")
    waiting = request("POST", "/v1/chat/completions", headers={"Content-Length": str(len(body)),
                                                                "Expect": "100-continue"})
    with connect(gateway) as sock:
        sock.sendall(request("POST", "/v1/chat/completions", chat("a")) + waiting)
        shared = _SharedFile(sock)
        first, first_body = read_response(shared)  # before any 100 Continue
        assert shared.file.readline() == b"HTTP/1.1 100 Continue\r\n" and shared.file.readline() == b"\r\n"
        sock.sendall(body)
        second, second_body = read_response(shared)
    assert orjson.loads(first_body)["choices"][0]["message"]["content"] == "first"
    assert orjson.loads(second_body)["choices"][0]["message"]["content"] == "second"


# ---------------------------------------------------------------- browsers (keyless gateway)


def keyless_post(gw: RunningGateway, headers: dict[str, str], body: bytes | None = None) -> httpx.Response:
    return httpx.post(gw.url + "/v1/chat/completions", content=body or chat("x"), headers=headers, timeout=10)


def test_a_foreign_origin_is_refused(keyless: RunningGateway, clean_fake: FakeUpstream) -> None:
    response = keyless_post(keyless, {"origin": "https://evil.example", "content-type": "text/plain"})
    assert response.status_code == 403
    assert response.json()["error"]["message"] == ("requests from the web origin 'https://evil.example' are not "
                                                    "allowed; list it in server.cors_origins")
    assert "access-control-allow-origin" not in response.headers
    assert clean_fake.requests == []


def test_an_allowed_origin_gets_cors_headers_and_its_preflight(keyless: RunningGateway,
                                                               clean_fake: FakeUpstream) -> None:
    clean_fake.script(Turn(text="from a page"))
    preflight = httpx.options(keyless.url + "/v1/chat/completions", headers={
        "origin": ORIGIN, "access-control-request-method": "POST",
        "access-control-request-headers": "authorization, content-type"})
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == ORIGIN
    assert "POST" in preflight.headers["access-control-allow-methods"]
    assert preflight.headers["access-control-allow-headers"] == "authorization, content-type"
    response = keyless_post(keyless, {"origin": ORIGIN, "content-type": "application/json"})
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == ORIGIN
    assert response.json()["choices"][0]["message"]["content"] == "from a page"


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded",
                                          "multipart/form-data; boundary=x"])
def test_a_post_that_is_not_json_gets_415(keyless: RunningGateway, clean_fake: FakeUpstream,
                                          content_type: str | None) -> None:
    response = keyless_post(keyless, {"content-type": content_type} if content_type else {})
    assert response.status_code == 415
    assert response.json()["error"]["message"] == "the request body must be JSON (Content-Type: application/json)"
    assert clean_fake.requests == []


@pytest.mark.parametrize("content_type", ["application/json; charset=utf-8", "Application/JSON",
                                          "application/vnd.api+json"])
def test_json_content_types_are_accepted(keyless: RunningGateway, clean_fake: FakeUpstream,
                                         content_type: str) -> None:
    clean_fake.script(Turn(text="json"))
    assert keyless_post(keyless, {"content-type": content_type}).status_code == 200


@pytest.mark.parametrize(("host", "status"), [("evil.example", 403), ("evil.example:8317", 403),
                                              ("localhost", 200), ("127.0.0.1:8317", 200), ("[::1]:8317", 200),
                                              ("app.localhost", 200), ("gateway.lan:80", 200)])
def test_host_names_without_keys(keyless: RunningGateway, host: str, status: int) -> None:
    """DNS rebinding: a page under a name that resolves to 127.0.0.1 may not use a keyless gateway."""
    with connect(keyless) as sock:
        sock.sendall(f"GET /v1/models HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        response, payload = read_response(_SharedFile(sock))
    assert response.status == status, payload
    if status == 403:
        assert error_of(payload)["message"] == (f"the Host {host!r} is not served here; list it in "
                                                "server.allowed_hosts")


def test_any_host_name_with_keys(gateway: RunningGateway) -> None:
    response = httpx.get(gateway.url + "/v1/models", headers={"host": "gateway.example.com",
                                                              "authorization": f"Bearer {CLIENT_KEY}"})
    assert response.status_code == 200


def test_over_the_cap_with_nothing_to_evict_a_connection_gets_a_short_503(fake: FakeUpstream, tmp_path: Path) -> None:
    config = gateway_config(fake.url)
    config["server"]["max_connections"] = 1
    fake.script(Turn(text="kept", delay=1.0))
    with RunningGateway(config, tmp_path / "s.db") as gw, connect(gw) as busy:
        busy.sendall(request("POST", "/v1/chat/completions", chat("x")))  # being answered: not evicted
        time.sleep(0.3)
        with connect(gw) as extra:
            assert extra.recv(200).startswith(b"HTTP/1.1 503 ")
        _, payload = read_response(_SharedFile(busy))
    assert orjson.loads(payload)["choices"][0]["message"]["content"] == "kept"
    fake.clear()


# ---------------------------------------------------------------- processes: the connection cap, back-pressure


def _serve(tmp_path: Path, port: int, extra: str = "", open_files: int | None = None) -> subprocess.Popen[str]:
    config = tmp_path / "c.yaml"
    config.write_text(f"server: {{port: {port}{extra}}}\nstate: {{path: {tmp_path / 's.db'}}}\n")

    def limit_open_files() -> None:
        if open_files is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (open_files, open_files))

    process = subprocess.Popen([*CLI, "serve", "--config", str(config), "--workers", "1"], stderr=subprocess.PIPE,
                               text=True, preexec_fn=limit_open_files)
    wait_until_healthy(port)
    return process


def _stop(process: subprocess.Popen[str]) -> None:
    process.send_signal(signal.SIGTERM)
    process.communicate(timeout=30)


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_health_answers_with_more_idle_sockets_than_open_files(tmp_path: Path) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 1300:
        pytest.skip("this test needs 1,300 open files in the test process")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 1300), hard))
    port = free_port()
    process = _serve(tmp_path, port, open_files=1024)
    idle: list[socket.socket] = []
    try:
        for _ in range(1050):
            idle.append(socket.create_connection(("127.0.0.1", port), timeout=10))
        time.sleep(0.5)
        answered = sum(httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).status_code == 200 for _ in range(61))
        assert answered == 61
    finally:
        for sock in idle:
            sock.close()
        _stop(process)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_unread_pipelined_replies_stop_the_reading(tmp_path: Path) -> None:
    """A client that sends requests and reads no answer: the gateway stops reading instead of queueing replies
    (before: all 400,000 read and +270 MB)."""
    port = free_port()
    process = _serve(tmp_path, port)
    try:
        before = _rss_kib(process.pid)
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.setblocking(False)
            view = memoryview(b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n" * 400_000)
            deadline, progress = time.monotonic() + 20, time.monotonic()
            while view and time.monotonic() < deadline and time.monotonic() - progress < 2:
                try:
                    view = view[sock.send(view):]
                    progress = time.monotonic()
                except BlockingIOError:
                    time.sleep(0.05)
            time.sleep(1.0)
            grown = _rss_kib(process.pid) - before
        assert len(view) > 0, "the gateway read every request although no answer was read"
        assert grown < 50 * 1024, f"RSS grew by {grown} KiB"
    finally:
        _stop(process)

"""Stopping and supervision of `crossroute serve` processes: SIGTERM drains
(new connections refused at once, streams ended in their format after the
grace period), workers die with their supervisor, a restart binds right after
any death, SIGHUP does not kill (it reloads: test_reload.py)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import orjson
import pytest

from tests.gateway_runner import free_port
from tests.raw_upstream import read_request
from tests.test_cli import CLI, children_of, wait_until_healthy

_FIRST_CHUNK = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "m-real",
                "choices": [{"index": 0, "delta": {"role": "assistant", "content": "partial"}, "finish_reason": None}]}


class StallingUpstream:
    """An OpenAI-compatible upstream that starts every stream and never finishes it."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.stopped = threading.Event()
        self.held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        self.listener.settimeout(0.2)
        while not self.stopped.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        conn.settimeout(10)
        read_request(conn)
        event = b"data: " + orjson.dumps(_FIRST_CHUNK) + b"\n\n"
        conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
                     + b"%x\r\n%s\r\n" % (len(event), event))
        self.held.append(conn)  # and nothing more, until the test ends

    def close(self) -> None:
        self.stopped.set()
        self.listener.close()
        for conn in self.held:
            conn.close()


@pytest.fixture
def stalling() -> Iterator[StallingUpstream]:
    upstream = StallingUpstream()
    yield upstream
    upstream.close()


def start_gateway(tmp_path: Path, port: int, workers: int, upstream_port: int | None = None) -> subprocess.Popen[str]:
    provider = (f"providers: [{{name: stall, kind: openai, base_url: 'http://127.0.0.1:{upstream_port}/v1', "
                "api_keys: [up], models: [m]}]\n") if upstream_port else ""
    config = tmp_path / f"c{port}.yaml"
    config.write_text(f"server: {{port: {port}, shutdown_grace_seconds: 1}}\nstate: {{path: {tmp_path / 's.db'}}}\n"
                      + provider)
    process = subprocess.Popen([*CLI, "serve", "--config", str(config), "--workers", str(workers)],
                               stderr=subprocess.PIPE, text=True)
    wait_until_healthy(port)
    return process


def open_stream(port: int, path: str, body: dict) -> socket.socket:
    """A streamed request on a raw socket, once its first event has arrived."""
    payload = orjson.dumps(body)
    sock = socket.create_connection(("127.0.0.1", port), timeout=15)
    sock.sendall(f"POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                 f"Content-Length: {len(payload)}\r\n\r\n".encode() + payload)
    received = b""
    while b"partial" not in received:
        chunk = sock.recv(65536)
        assert chunk, received
        received += chunk
    return sock


def read_to_end(sock: socket.socket) -> bytes:
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    return received


def gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def kill_leftovers(pids: set[int]) -> None:
    """Workers a failed test would otherwise leave serving."""
    for pid in pids:
        if not gone(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def wait_for(condition: object, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def test_sigterm_refuses_new_connections_and_ends_streams_in_their_format(tmp_path: Path,
                                                                          stalling: StallingUpstream) -> None:
    port = free_port()
    process = start_gateway(tmp_path, port, workers=2, upstream_port=stalling.port)
    workers = children_of(process.pid)
    try:
        chat_tail, anthropic_tail = _drain_with_two_streams(port, process)
        process.communicate(timeout=20)
    finally:
        process.kill()
        kill_leftovers(workers)
    assert process.returncode == 0
    assert chat_tail.endswith(b"\r\n0\r\n\r\n")  # the chunked body ends properly
    assert b"the gateway is shutting down" in chat_tail and b"data: [DONE]" in chat_tail
    assert anthropic_tail.endswith(b"\r\n0\r\n\r\n")
    assert b"event: error" in anthropic_tail and b"the gateway is shutting down" in anthropic_tail


def _drain_with_two_streams(port: int, process: subprocess.Popen[str]) -> tuple[bytes, bytes]:
    """Two streams open (one passed through, one translated), SIGTERM: new connections must be refused
    at once (the old supervisor kept the socket: they waited, then were reset); what the streams got."""
    messages = [{"role": "user", "content": "x"}]
    chat = open_stream(port, "/v1/chat/completions", {"model": "m", "stream": True, "messages": messages})
    anthropic = open_stream(port, "/v1/messages", {"model": "m", "stream": True, "max_tokens": 10,
                                                   "messages": messages})
    with chat, anthropic:
        process.send_signal(signal.SIGTERM)
        refused = False
        deadline = time.monotonic() + 3
        while not refused and time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                time.sleep(0.02)
            except ConnectionRefusedError:
                refused = True
        assert refused, "new connections were still taken during the drain"
        return read_to_end(chat), read_to_end(anthropic)


@pytest.mark.parametrize("death", ["kill -9 of the supervisor", "kill -9 of a single process", "SIGTERM"])
def test_a_restart_binds_right_after_a_death(tmp_path: Path, death: str) -> None:
    port = free_port()
    process = start_gateway(tmp_path, port, workers=1 if "single" in death else 2)
    workers = children_of(process.pid)
    try:
        process.send_signal(signal.SIGTERM if death == "SIGTERM" else signal.SIGKILL)
        process.communicate(timeout=20)
        wait_for(lambda: all(gone(pid) for pid in workers), 10, "workers outlived their supervisor")
    finally:
        kill_leftovers(workers)
    again = start_gateway(tmp_path, port, workers=2)
    try:
        assert httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200
    finally:
        again.terminate()
        again.communicate(timeout=20)


def test_sighup_keeps_the_supervisor_and_its_workers(tmp_path: Path) -> None:
    port = free_port()
    process = start_gateway(tmp_path, port, workers=2)
    workers = children_of(process.pid)
    try:
        process.send_signal(signal.SIGHUP)
        time.sleep(1.0)
        assert process.poll() is None
        assert children_of(process.pid) == workers
        assert httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=20)
        kill_leftovers(workers)
    assert "Traceback" not in stderr  # what the reload does: tests/test_reload.py
    assert process.returncode == 0

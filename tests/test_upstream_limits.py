"""Upstream answers are bounded: a head, a header count, a body read whole, a
compressed body's inflated size and one SSE event each have a cap, and a cap
passed is a 502 (or the stream's error event) in the client's format naming
the provider, with the upstream connection closed, never a stall."""

from __future__ import annotations

import gzip
import socket
import socketserver
import struct
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx2 as httpx
import orjson
import pytest

from crossroute.sse import MAX_EVENT_BYTES, EventTooLarge, SSEParser
from crossroute.upstream_http import MAX_BODY_BYTES, MAX_HEAD_BYTES, MAX_HEADERS, MAX_INFLATED_BYTES
from crossroute.usage_sniffer import UsageSniffer
from tests.gateway_runner import RunningGateway, free_port
from tests.raw_upstream import read_request

MiB = 1 << 20
CHAT = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
Answer = Callable[["BadUpstream", socket.socket], None]


class BadUpstream:
    """A TCP server on 127.0.0.1 that reads each request and answers with what
    the test's `answer` writes; it counts what it could send before the
    gateway hung up."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.sent = 0
        self.cut_off = threading.Event()  # the gateway closed the connection while we were still writing
        self.writing = threading.Event()
        outer = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                sock: socket.socket = self.request
                sock.settimeout(30)
                read_request(sock)
                try:
                    outer.answer(outer, sock)
                except OSError:
                    outer.cut_off.set()

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def send(self, sock: socket.socket, data: bytes) -> None:
        self.writing.set()
        sock.sendall(data)
        self.sent += len(data)

    def send_endless(self, sock: socket.socket, piece: bytes, total: int) -> None:
        """`piece` again and again, up to `total` bytes, unless the gateway hangs up first."""
        while self.sent < total:
            self.send(sock, piece)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def gateway_config(upstream: BadUpstream) -> dict:
    return {"providers": [{"name": "bad", "kind": "openai", "base_url": upstream.url, "api_keys": ["k"],
                           "models": ["m"], "timeout": 20}]}


@pytest.fixture
def serve_bad(tmp_path: Path) -> Iterator[Callable[[Answer], tuple[BadUpstream, RunningGateway]]]:
    started: list[tuple[BadUpstream, RunningGateway]] = []

    def start(answer: Answer) -> tuple[BadUpstream, RunningGateway]:
        upstream = BadUpstream(answer)
        started.append((upstream, RunningGateway(gateway_config(upstream), tmp_path / "state.sqlite3")))
        return started[-1]

    yield start
    for upstream, gateway in started:
        gateway.stop()
        upstream.stop()


def chat(gateway: RunningGateway, path: str = "/v1/chat/completions", body: dict | None = None) -> httpx.Response:
    return httpx.post(gateway.url + path, json=body or CHAT, timeout=30)


def error_message(response: httpx.Response) -> str:
    message: str = response.json()["error"]["message"]
    return message


# ---------------------------------------------------------------- head


def test_an_endless_header_value_is_a_502_and_health_stays_answered(serve_bad) -> None:
    def answer(upstream: BadUpstream, sock: socket.socket) -> None:
        upstream.send(sock, b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nx-endless: ")
        upstream.send_endless(sock, b"a" * 65536, 128 * MiB)
        time.sleep(30)  # all sent and the gateway still reading: it should have hung up long before

    upstream, gateway = serve_bad(answer)
    replies: list[httpx.Response] = []
    caller = threading.Thread(target=lambda: replies.append(chat(gateway)))
    caller.start()
    assert upstream.writing.wait(10)
    for _ in range(5):
        assert httpx.get(gateway.url + "/health", timeout=5).status_code == 200
    caller.join(40)
    assert replies and replies[0].status_code == 502
    assert error_message(replies[0]) == f"provider bad sent a response head over {MAX_HEAD_BYTES >> 10} KiB"
    assert upstream.cut_off.wait(10) and upstream.sent < 16 * MiB


def test_a_head_sent_a_byte_at_a_time_times_out_while_health_answers(serve_bad, tmp_path: Path) -> None:
    def answer(upstream: BadUpstream, sock: socket.socket) -> None:
        upstream.send(sock, b"HTTP/1.1 200 OK\r\nx-slow: ")
        for _ in range(1200):  # a minute at most
            upstream.send(sock, b"a")
            time.sleep(0.05)

    upstream = BadUpstream(answer)
    config = gateway_config(upstream)
    config["providers"][0]["timeout"] = 1
    with RunningGateway(config, tmp_path / "state.sqlite3") as gateway:
        replies: list[httpx.Response] = []
        caller = threading.Thread(target=lambda: replies.append(chat(gateway)))
        caller.start()
        assert upstream.writing.wait(10)
        assert httpx.get(gateway.url + "/health", timeout=5).status_code == 200  # the upstream is still sending
        caller.join(15)
    upstream.stop()
    assert replies and replies[0].status_code == 504  # the head within the read timeout, not a byte at a time forever
    assert error_message(replies[0]) == "provider bad did not answer in time"
    assert upstream.cut_off.wait(10)


def test_too_many_headers_is_a_502_in_the_client_format(serve_bad) -> None:
    def answer(upstream: BadUpstream, sock: socket.socket) -> None:
        headers = b"".join(b"x-h%d: 1\r\n" % n for n in range(MAX_HEADERS + 1))
        upstream.send(sock, b"HTTP/1.1 200 OK\r\n" + headers + b"content-length: 2\r\n\r\n{}")

    _, gateway = serve_bad(answer)
    reply = chat(gateway, "/v1/messages", {**CHAT, "max_tokens": 10})
    assert reply.status_code == 502
    assert reply.json()["type"] == "error"  # Anthropic's error shape
    assert reply.json()["error"]["message"] == f"provider bad sent more than {MAX_HEADERS} headers"


@pytest.mark.parametrize("flood", [b"x-h: 1\r\n" * 8192, b"\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: </x>" * 2048],
                         ids=["headers", "interim-answers"])
def test_millions_of_headers_or_endless_interim_answers_stop_at_the_head_cap(flood: bytes, serve_bad) -> None:
    def answer(upstream: BadUpstream, sock: socket.socket) -> None:
        upstream.send(sock, b"HTTP/1.1 103 Early Hints\r\n")
        upstream.send_endless(sock, flood, 64 * MiB)

    upstream, gateway = serve_bad(answer)
    reply = chat(gateway)
    assert reply.status_code == 502
    assert error_message(reply) == f"provider bad sent a response head over {MAX_HEAD_BYTES >> 10} KiB"
    assert upstream.cut_off.wait(10) and upstream.sent < 16 * MiB


# ---------------------------------------------------------------- bodies


def test_a_body_over_the_cap_is_a_502_and_not_read_to_its_end(serve_bad) -> None:
    total = MAX_BODY_BYTES + 16 * MiB

    def answer(upstream: BadUpstream, sock: socket.socket) -> None:
        upstream.send(sock, b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n" % total)
        upstream.send_endless(sock, b" " * 65536, total)

    upstream, gateway = serve_bad(answer)
    reply = chat(gateway)
    assert reply.status_code == 502
    assert error_message(reply) == f"provider bad sent a body over {MAX_BODY_BYTES >> 20} MiB"
    assert upstream.cut_off.wait(10)


def gzip_bomb(inflated_mib: int) -> bytes:
    """About 1 KiB per MiB of zeros: one fully flushed deflate segment repeated, in a gzip frame."""
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    zeros = bytes(MiB)
    segment = packer.compress(zeros) + packer.flush(zlib.Z_FULL_FLUSH)
    crc = 0
    for _ in range(inflated_mib):
        crc = zlib.crc32(zeros, crc)
    trailer = struct.pack("<II", crc, (inflated_mib * MiB) & 0xFFFFFFFF)
    return b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff" + segment * inflated_mib + b"\x03\x00" + trailer


def peak_rss_mib(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:"))) >> 10


def test_a_gzip_bomb_is_a_502_and_memory_stays_bounded(tmp_path: Path) -> None:
    bomb = gzip_bomb(1024)  # about 1 MiB that inflates to 1 GiB

    def answer(upstream: BadUpstream, sock: socket.socket) -> None:
        upstream.send(sock, b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-encoding: gzip\r\n"
                            b"content-length: %d\r\n\r\n" % len(bomb) + bomb)
        time.sleep(5)

    upstream = BadUpstream(answer)
    port = free_port()
    config = tmp_path / "c.yaml"
    config.write_text(orjson.dumps({"server": {"port": port}, "state": {"path": str(tmp_path / "s.db")},
                                    **gateway_config(upstream)}).decode())
    process = subprocess.Popen([sys.executable, "-m", "crossroute.cli", "serve", "--config", str(config),
                                "--workers", "1"], stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                before = httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200 and peak_rss_mib(process.pid)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "gateway did not come up"
                time.sleep(0.1)
        reply = httpx.post(f"http://127.0.0.1:{port}/v1/chat/completions", json=CHAT, timeout=60)
        peak = peak_rss_mib(process.pid)
    finally:
        process.terminate()
        process.wait(10)
        upstream.stop()
    assert reply.status_code == 502
    assert reply.json()["error"]["message"] == (
        f"provider bad sent a compressed body that inflates past {MAX_INFLATED_BYTES >> 20} MiB")
    assert peak - before < 160  # inflated bit by bit as it is read; before the cap, 2.3 GB


def test_a_gzip_bomb_in_a_relayed_stream_ends_it_with_the_error_event(serve_bad) -> None:
    bomb = gzip_bomb(256)

    def answer(upstream: BadUpstream, sock: socket.socket) -> None:
        upstream.send(sock, b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-encoding: gzip\r\n"
                            b"connection: close\r\n\r\n" + bomb)
        time.sleep(10)

    _, gateway = serve_bad(answer)
    with httpx.stream("POST", gateway.url + "/v1/chat/completions", json={**CHAT, "stream": True},
                      timeout=30) as reply:
        received = b"".join(reply.iter_raw())
    assert reply.status_code == 200
    assert MAX_INFLATED_BYTES - MiB <= len(received) < MAX_INFLATED_BYTES + MiB
    assert b"provider bad sent a compressed body that inflates past 64 MiB" in received[-1000:]


def test_gzip_the_gateway_did_not_ask_for_is_still_read(serve_bad) -> None:
    body = orjson.dumps({"id": "c1", "object": "chat.completion", "created": 1, "model": "m", "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "zipped " * 40000}, "finish_reason": "stop"}]})
    packed = gzip.compress(body)

    def answer(upstream: BadUpstream, sock: socket.socket) -> None:
        upstream.send(sock, b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-encoding: gzip\r\n"
                            b"content-length: %d\r\n\r\n" % len(packed) + packed)

    _, gateway = serve_bad(answer)
    reply = chat(gateway, "/v1/messages", {**CHAT, "max_tokens": 10})  # translated: the whole body is parsed
    assert reply.status_code == 200, reply.text
    assert reply.json()["content"][0]["text"] == "zipped " * 40000


# ---------------------------------------------------------------- SSE


def test_an_endless_sse_line_ends_the_stream_with_the_format_error_event(serve_bad) -> None:
    def answer(upstream: BadUpstream, sock: socket.socket) -> None:
        upstream.send(sock, b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\r\n"
                            b'data: {"id":"c1","object":"chat.completion.chunk","model":"m","choices":[{"index":0,'
                            b'"delta":{"content":"hi"}}]}\n\ndata: ')
        upstream.send_endless(sock, b"a" * 65536, MAX_EVENT_BYTES + 32 * MiB)
        time.sleep(30)

    upstream, gateway = serve_bad(answer)
    with httpx.stream("POST", gateway.url + "/v1/messages", json={**CHAT, "max_tokens": 10, "stream": True},
                      timeout=30) as reply:
        text = reply.read().decode()
    assert reply.status_code == 200
    assert "event: error" in text
    assert f"provider bad sent an SSE event over {MAX_EVENT_BYTES >> 20} MiB" in text
    assert upstream.cut_off.wait(10) and upstream.sent < MAX_EVENT_BYTES + 24 * MiB


def test_a_long_sse_line_costs_time_in_proportion_to_its_length() -> None:
    parser = SSEParser()
    piece = b"a" * 16384
    started = time.process_time()
    assert parser.feed(b"data: ") == []
    for _ in range((MAX_EVENT_BYTES - MiB) // len(piece)):
        assert parser.feed(piece) == []
    frames = parser.feed(b"\n\n")
    spent = time.process_time() - started
    assert len(frames) == 1 and len(frames[0].data) == MAX_EVENT_BYTES - MiB
    assert spent < 5  # a bound, not a benchmark: re-copying the line on every read took minutes


@pytest.mark.parametrize("newline", [b"\n", b"\r\n", b"\r"])
def test_an_event_over_the_cap_raises_with_any_line_end(newline: bytes) -> None:
    parser = SSEParser(limit=1000)
    parser.feed(b"data: " + b"x" * 500 + newline)
    with pytest.raises(EventTooLarge):  # many lines, one event
        for _ in range(3):
            parser.feed(b"data: " + b"x" * 500 + newline)
    parser = SSEParser(limit=1000)
    with pytest.raises(EventTooLarge):  # one line, many pieces
        for _ in range(20):
            parser.feed(b"x" * 100)
    parser = SSEParser(limit=1000)  # under the cap, event after event: fine
    frames = [frame for _ in range(20) for frame in parser.feed(b"data: " + b"x" * 500 + newline + newline)]
    assert len(frames + parser.close()) == 20


def test_usage_on_a_long_line_cut_into_many_chunks_is_found() -> None:
    line = b'data: {"type":"response.completed","response":{"output":"' + b"x" * 300_000 + (
        b'","usage":{"input_tokens":7,"output_tokens":9}}}\n\n')
    sniffer = UsageSniffer()
    for start in range(0, len(line), 1000):
        sniffer.feed(line[start:start + 1000])
    usage = sniffer.close()
    assert usage is not None and (usage.input_tokens, usage.output_tokens) == (7, 9)

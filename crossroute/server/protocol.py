"""HTTP/1.1 on asyncio, parsed by httptools: one connection, its requests in
order, and their replies written straight to the socket.

A generic ASGI server costs more per request than everything the gateway does
for a passthrough (message dicts, a task racing each request against a
disconnect watcher); here a dropped connection cancels the request's task
directly, which also closes the upstream request behind it."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections import deque
from http import HTTPStatus
from typing import TYPE_CHECKING, Protocol
from urllib.parse import parse_qsl, unquote

import httptools

from crossroute.server import access_log
from crossroute.server.http import HttpRequest

if TYPE_CHECKING:
    from crossroute.server.http import Reply

log = logging.getLogger("crossroute")



class App(Protocol):
    async def handle(self, request: HttpRequest) -> Reply: ...

    def refuse(self, status: int, raw_path: bytes, message: str) -> Reply:
        """The answer to a request that cannot be read (malformed, too large)."""

KEEP_ALIVE_SECONDS = 75.0  # idle keep-alive connections are closed after this (nginx's default)
_MAX_QUEUED = 8  # pipelined requests held before reading pauses


def _status_line(status: int) -> bytes:
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = ""
    return f"HTTP/1.1 {status} {reason}\r\n".encode("latin-1")


_STATUS_LINES = {status.value: _status_line(status.value) for status in HTTPStatus}


class Connections:
    """The open connections of one server, for a graceful shutdown."""

    def __init__(self) -> None:
        self.open: set[HttpConnection] = set()

    def idle_ones(self) -> list[HttpConnection]:
        return [conn for conn in self.open if conn.task is None]


class HttpConnection(asyncio.Protocol):
    def __init__(self, app: App, max_body_bytes: int, connections: Connections) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.connections = connections
        self.loop = asyncio.get_running_loop()
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.task: asyncio.Task[None] | None = None
        self.queue: deque[HttpRequest | Reply] = deque()  # a Reply: the refusal of a request that could not be read
        self.idle_timer: asyncio.TimerHandle | None = None
        self.closing = False
        self.write_paused = False
        self.drained: asyncio.Future[None] | None = None
        self.unsent: list[bytes] = []
        self.peer = "-"
        self.sent_status, self.sent_bytes, self.first_byte_at = 0, 0, 0.0  # of the reply being written
        # the request being read
        self._url = b""
        self._headers: dict[str, str] = {}
        self._body: list[bytes] = []
        self._size = 0
        self._refused = False
        self.reading = True  # False once the rest of what the client sends is to be ignored
        # the reply being written
        self.keep_alive = True
        self.chunked = True
        self.head_only = False

    # ------------------------------------------------------------ asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.peer = access_log.peer_of(transport)
        self.connections.open.add(self)
        self._arm_idle_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closing = True
        self.transport = None
        self.connections.open.discard(self)
        self._disarm_idle_timer()
        self.queue.clear()
        if self.task is not None:
            self.task.cancel()
        self._wake_writer()

    def data_received(self, data: bytes) -> None:
        if not self.reading:
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self.reading = False  # no upgrades here (Codex tries a WebSocket first): answered as HTTP, then closed
        except httptools.HttpParserError:
            self._reject(400, "malformed HTTP request")

    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        self._wake_writer()

    # ------------------------------------------------------------ httptools callbacks

    def on_message_begin(self) -> None:
        self._disarm_idle_timer()
        self._url = b""
        self._headers = {}
        self._body = []
        self._size = 0
        self._refused = False

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        declared = self._headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_body_bytes:
            self._reject(413)
        elif self._headers.get("expect", "").lower() == "100-continue" and self.transport is not None:
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, body: bytes) -> None:
        if self._refused:
            return
        self._size += len(body)
        if self._size > self.max_body_bytes:
            self._reject(413)
        else:
            self._body.append(body)

    def on_message_complete(self) -> None:
        if self._refused:
            return
        url = httptools.parse_url(self._url)
        query = url.query.decode("latin-1") if url.query else ""
        request = HttpRequest(self.parser.get_method().decode("latin-1"), unquote(url.path.decode("latin-1")),
                              dict(parse_qsl(query, keep_blank_values=True)) if query else {}, self._headers,
                              b"".join(self._body), keep_alive=self.parser.should_keep_alive(),
                              http10=self.parser.get_http_version() == "1.0")
        self.queue.append(request)
        if self.task is None:
            self._next()
        elif len(self.queue) >= _MAX_QUEUED and self.transport is not None:
            self.transport.pause_reading()

    # ------------------------------------------------------------ requests in order

    def _next(self) -> None:
        if self.closing or not self.queue:
            self.task = None
            if not self.closing:
                self._arm_idle_timer()
            return
        item = self.queue.popleft()
        if self.transport is not None and len(self.queue) == _MAX_QUEUED - 1:
            self.transport.resume_reading()
        self.task = self.loop.create_task(self._answer(item))

    async def _answer(self, item: HttpRequest | Reply) -> None:
        if isinstance(item, HttpRequest):
            self.keep_alive, self.chunked, self.head_only = item.keep_alive, not item.http10, item.method == "HEAD"
        else:
            self.keep_alive, self.chunked, self.head_only = False, True, False
        started = access_log.begin(self)
        try:
            reply = await self.app.handle(item) if isinstance(item, HttpRequest) else item
            await reply.send(self)
        except asyncio.CancelledError:
            return
        except Exception as exc:  # the handler answers its own errors; this is the last line
            log.error("unexpected %s while answering a request", type(exc).__name__)
            self.closing = True
        finally:
            access_log.record(self, item, started)
        if not self.keep_alive or self.closing or (not self.reading and not self.queue):
            self.close()  # a refusal still queued goes out first, and closes after itself
        self._next()

    def _reject(self, status: int, message: str = "") -> None:
        """Answer a request that cannot be read and close the connection: the
        rest of what the client sends is not read."""
        self.reading = False
        self._refused = True
        if self.transport is None:
            return
        self.queue.append(self.app.refuse(status, self._url, message))  # after a request still being answered
        if self.task is None:
            self._next()

    def close(self) -> None:
        self.closing = True
        if self.transport is not None:
            self._flush()
            self.transport.close()

    # ------------------------------------------------------------ writing a reply

    def send_whole(self, status: int, headers: bytes, body: bytes) -> None:
        """A reply with a known length, in one write. `headers` are complete lines."""
        if self.transport is None:
            return
        head = b"%s%scontent-length: %d\r\n%s\r\n" % (self._status(status), headers, len(body), self._connection())
        self._flush()
        data = head if self.head_only else head + body
        self.sent_status, self.first_byte_at = status, time.perf_counter()
        self.sent_bytes += len(data)
        self.transport.write(data)

    def start_stream(self, status: int, headers: bytes) -> None:
        if self.transport is None:
            return
        framing = b"transfer-encoding: chunked\r\n" if self.chunked else b""
        self.sent_status, self.first_byte_at = status, time.perf_counter()
        if not self.chunked:
            self.keep_alive = False  # HTTP/1.0: the end of the body is the end of the connection
        self._write_soon(b"%s%s%s%s\r\n" % (self._status(status), headers, framing, self._connection()))

    def write_chunk(self, data: bytes) -> None:
        if self.transport is None or self.head_only or not data:
            return
        self._write_soon(b"%x\r\n%s\r\n" % (len(data), data) if self.chunked else data)

    def end_stream(self) -> None:
        if self.transport is not None and self.chunked and not self.head_only:
            self._write_soon(b"0\r\n\r\n")

    def _write_soon(self, data: bytes) -> None:
        """Stream pieces written in one turn of the loop (the head, an upstream
        read's events, the end) go out in one system call, at the end of the turn."""
        if not self.unsent:
            self.loop.call_soon(self._flush)
        self.unsent.append(data)
        self.sent_bytes += len(data)

    def _flush(self) -> None:
        if self.unsent and self.transport is not None:
            self.transport.write(b"".join(self.unsent))
        self.unsent.clear()

    async def drain(self) -> None:
        """Wait while the client reads slower than the upstream writes."""
        while self.write_paused and self.transport is not None:
            self.drained = self.loop.create_future()
            await self.drained

    def _wake_writer(self) -> None:
        if self.drained is not None and not self.drained.done():
            self.drained.set_result(None)

    def _status(self, status: int) -> bytes:
        return _STATUS_LINES.get(status) or _status_line(status)

    def _connection(self) -> bytes:
        return b"" if self.keep_alive else b"connection: close\r\n"

    # ------------------------------------------------------------ idle connections

    def _arm_idle_timer(self) -> None:
        self._disarm_idle_timer()
        self.idle_timer = self.loop.call_later(KEEP_ALIVE_SECONDS, self.close)

    def _disarm_idle_timer(self) -> None:
        if self.idle_timer is not None:
            self.idle_timer.cancel()
            self.idle_timer = None


class HttpServer:
    """Listens and hands each request to the app; stops gracefully."""

    def __init__(self, app: App, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.connections = Connections()
        self.server: asyncio.Server | None = None

    async def start(self, sock: socket.socket) -> int:
        """Listen on `sock` (bound by the caller, shared by worker processes); the bound port."""
        self.server = await asyncio.get_running_loop().create_server(self._protocol, sock=sock, backlog=4096)
        return int(sock.getsockname()[1])

    def _protocol(self) -> HttpConnection:
        return HttpConnection(self.app, self.max_body_bytes, self.connections)

    async def stop(self, grace: float = 5.0) -> None:
        """Stop listening, let requests in flight finish for up to `grace`
        seconds, then close what is left."""
        if self.server is not None:
            self.server.close()
        deadline = asyncio.get_running_loop().time() + grace
        while self.connections.open and asyncio.get_running_loop().time() < deadline:
            for conn in self.connections.idle_ones():
                conn.close()
            await asyncio.sleep(0.05)
        for conn in list(self.connections.open):
            conn.close()
            if conn.task is not None:
                conn.task.cancel()
        await asyncio.sleep(0)

"""HTTP/1.1 on asyncio, parsed by httptools: one connection, its requests in
order, and their replies written straight to the socket.

A generic ASGI server costs more per request than everything the gateway does
for a passthrough (message dicts, a task racing each request against a
disconnect watcher); here a dropped connection cancels the request's task
directly, which also closes the upstream request behind it.

What a client may make the server hold is bounded: the time to send a head,
the pause between two reads of a body, the size of a head, its URL and its
header count, the connections per worker, and the replies queued for a client
that does not read them (reading stops until it does)."""

from __future__ import annotations

import asyncio
import logging
import math
import socket
import time
from collections import deque
from dataclasses import dataclass
from http import HTTPStatus
from typing import TYPE_CHECKING, NoReturn, Protocol
from urllib.parse import parse_qsl, unquote

import httptools

from crossroute.server import access_log
from crossroute.server.http import HttpRequest

if TYPE_CHECKING:
    from crossroute.config import ServerConfig
    from crossroute.server.http import Reply

log = logging.getLogger("crossroute")


class App(Protocol):
    def admit(self, method: str, path: str, query: dict[str, str], headers: dict[str, str]) -> Reply | None:
        """Decided from the head alone: None to read the request, or the refusal to send before closing."""

    async def handle(self, request: HttpRequest) -> Reply: ...

    def refuse(self, status: int, raw_path: bytes, message: str) -> Reply:
        """The answer to a request that cannot be read (malformed, too large, too slow)."""


@dataclass(frozen=True, slots=True)
class Limits:
    max_body_bytes: int = 32 * 1024 * 1024
    max_head_bytes: int = 64 * 1024
    max_headers: int = 100
    max_url_bytes: int = 8 * 1024
    head_timeout: float = 60.0
    body_timeout: float = 60.0
    keep_alive: float = 75.0
    max_connections: int = 1024

    @classmethod
    def from_config(cls, server: ServerConfig, max_connections: int | None = None) -> Limits:
        return cls(server.max_body_bytes, server.max_head_bytes, server.max_headers, server.max_url_bytes,
                   server.head_timeout_seconds, server.body_timeout_seconds, server.keep_alive_seconds,
                   max_connections or server.max_connections)

    @property
    def tick(self) -> float:
        """How often deadlines are checked: often enough for the shortest of them."""
        return max(0.05, min(1.0, self.head_timeout / 4, self.body_timeout / 4, self.keep_alive / 4))


_MAX_QUEUED = 8  # pipelined requests held before reading pauses
_SLICE = 64 * 1024  # a larger read is parsed in slices, so that reading can pause between them
_NEVER = math.inf
_FINISHED_POLL = 0.1  # seconds between looks at a replaced app's requests
_OVERLOADED = b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"


class _Refused(Exception):
    """Raised in a parser callback to stop parsing what follows a refusal."""


def _status_line(status: int) -> bytes:
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = ""
    return f"HTTP/1.1 {status} {reason}\r\n".encode("latin-1")


_STATUS_LINES = {status.value: _status_line(status.value) for status in HTTPStatus}


@dataclass(slots=True, eq=False)
class Serving:
    """An app and the requests it is answering, their streams included. A reload
    swaps in another app for new requests; this count says when the old one is done."""

    app: App
    in_flight: int = 0


class Connections:
    """The open connections of one server: for deadlines, the cap, and a graceful
    shutdown; and the app their new requests go to."""

    def __init__(self, app: App) -> None:
        self.open: set[HttpConnection] = set()
        self.draining = False  # shutting down: each reply closes its connection
        self.serving = Serving(app)

    def idle_ones(self) -> list[HttpConnection]:
        return [conn for conn in self.open if conn.idle]

    def evict_one(self) -> bool:
        """Make room by closing the connection nearest to its deadline among
        those that hold no admitted request (idle, or still sending a head)."""
        candidates = [conn for conn in self.open if conn.idle or (conn.in_head and conn.task is None)]
        if not candidates:
            return False
        min(candidates, key=lambda conn: conn.deadline).close()
        return True

    def check_deadlines(self, now: float, stall: float) -> None:
        for conn in list(self.open):
            if now >= conn.deadline:
                conn.timed_out()
            elif conn.write_paused and now - conn.paused_at > stall:
                conn.abort()  # a client that reads nothing of its reply


class _Overloaded(asyncio.Protocol):
    """A connection over the cap: a short 503, nothing parsed."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.write(_OVERLOADED)  # type: ignore[attr-defined]
        transport.close()


class HttpConnection(asyncio.Protocol):
    def __init__(self, limits: Limits, connections: Connections) -> None:
        self.limits = limits
        self.max_body_bytes = limits.max_body_bytes
        self.connections = connections
        self.loop = asyncio.get_running_loop()
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.task: asyncio.Task[None] | None = None
        self.queue: deque[HttpRequest | Reply] = deque()  # a Reply: the refusal of a request that could not be read
        self.deadline = _NEVER  # when the current wait for the client (idle, head, body) runs out
        self.closing = False
        self.write_paused = False
        self.paused_at = 0.0
        self.read_paused = False
        self.backlog = b""  # read but not parsed yet: parsing paused for back-pressure
        self.drained: asyncio.Future[None] | None = None
        self.unsent: list[bytes] = []
        self.peer = "-"
        self.sent_status, self.sent_bytes, self.first_byte_at = 0, 0, 0.0  # of the reply being written
        self.reading = True  # False once the rest of what the client sends is to be ignored
        # the request being read
        self.receiving = False  # from its first byte to its end
        self.in_head = False  # from its first byte to the end of its head
        self.counted = False  # the head being read is counted a read at a time, not per header
        self.head_size = 0
        self.header_count = 0
        self.continue_pending = False  # `Expect: 100-continue` to answer once earlier replies are out
        self._url: list[bytes] = []
        self._url_size = 0
        self._headers: dict[str, str] = {}
        self._body: list[bytes] = []
        self._size = 0
        self._method = ""
        self._path = ""
        self._query: dict[str, str] = {}
        self._http10 = False
        # the reply being written
        self.keep_alive = True
        self.chunked = True
        self.head_only = False

    @property
    def idle(self) -> bool:
        return self.task is None and not self.receiving and not self.queue

    # ------------------------------------------------------------ asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.peer = access_log.peer_of(transport)
        self.connections.open.add(self)
        self.deadline = self.loop.time() + self.limits.keep_alive

    def connection_lost(self, exc: Exception | None) -> None:
        self.closing = True
        self.transport = None
        self.connections.open.discard(self)
        self.deadline = _NEVER
        self.queue.clear()
        self.backlog = b""
        if self.task is not None:
            self.task.cancel()
        self._wake_writer()

    def data_received(self, data: bytes) -> None:
        if not self.reading:
            return
        if self.read_paused:  # already read by the transport when reading paused
            self.backlog += data
            return
        self.counted = continued = self.in_head  # a head continued from the last read: counted here, not per header
        if len(data) > _SLICE:
            self._feed_in_slices(data)
        else:
            self._feed(data)
        if self.in_head and self.reading:  # httptools keeps a header until it ends: count what it keeps
            if continued and self.counted:  # still the same head: all of this read was head
                self.head_size += len(data)
            if self.head_size > self.limits.max_head_bytes:
                self._reject(431, f"the request head is larger than {self.limits.max_head_bytes} bytes")

    def _feed(self, data: bytes | memoryview) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self.reading = False  # no upgrades here (Codex tries a WebSocket first): answered as HTTP, then closed
        except httptools.HttpParserError:
            if self.reading:  # else a callback refused the request and stopped the parser
                self._reject(400, "malformed HTTP request")

    def _feed_in_slices(self, data: bytes) -> None:
        view = memoryview(data)
        for start in range(0, len(view), _SLICE):
            if self.read_paused:
                self.backlog = bytes(view[start:])
                return
            self._feed(view[start:start + _SLICE])
            if not self.reading:
                return

    def pause_writing(self) -> None:
        self.write_paused = True
        self.paused_at = self.loop.time()
        self._pause_reading()

    def resume_writing(self) -> None:
        self.write_paused = False
        self._wake_writer()
        self._resume_reading()

    # ------------------------------------------------------------ back-pressure on reading

    def _pause_reading(self) -> None:
        if not self.read_paused and self.transport is not None:
            self.read_paused = True
            self.transport.pause_reading()

    def _resume_reading(self) -> None:
        if not self.read_paused or self.write_paused or len(self.queue) >= _MAX_QUEUED or self.transport is None:
            return
        self.read_paused = False
        backlog, self.backlog = self.backlog, b""
        if backlog:
            self.data_received(backlog)
        if not self.read_paused and self.transport is not None:
            self.transport.resume_reading()

    # ------------------------------------------------------------ httptools callbacks

    def on_message_begin(self) -> None:
        if not self.reading:
            raise _Refused
        self.deadline = self.loop.time() + self.limits.head_timeout
        self.receiving = self.in_head = True
        self.counted = False
        self.head_size = self.header_count = self._url_size = self._size = 0
        self._method = ""
        self._url = []
        self._headers = {}
        self._body = []

    def on_url(self, url: bytes) -> None:
        self._url.append(url)
        self._url_size += len(url)
        if self._url_size > self.limits.max_url_bytes:
            self._refuse_head(414, f"the URL is longer than {self.limits.max_url_bytes} bytes")

    def on_header(self, name: bytes, value: bytes) -> None:
        self.header_count += 1
        if not self.counted:
            self.head_size += len(name) + len(value) + 4
        if self.header_count > self.limits.max_headers:
            self._refuse_head(431, f"the request has more than {self.limits.max_headers} header lines")
        if self.head_size > self.limits.max_head_bytes:
            self._refuse_head(431, f"the request head is larger than {self.limits.max_head_bytes} bytes")
        self._headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        self.in_head = False
        version = self.parser.get_http_version()
        if version != "1.1" and version != "1.0":
            self._refuse_head(400, f"HTTP/{version} is not supported; use HTTP/1.1")
        self._http10 = version == "1.0"
        try:
            url = httptools.parse_url(b"".join(self._url))
        except httptools.HttpParserInvalidURLError:
            self._refuse_head(400, "malformed request target")
        query = url.query.decode("latin-1") if url.query else ""
        self._method = method = self.parser.get_method().decode("latin-1")
        self._path = path = unquote(url.path.decode("latin-1"))
        self._query = dict(parse_qsl(query, keep_blank_values=True)) if query else {}
        refusal = self.connections.serving.app.admit(method, path, self._query, self._headers)
        if refusal is not None:
            self._reject_with(refusal)
            raise _Refused
        headers = self._headers
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_body_bytes:
            self._refuse_head(413)
        if headers.get("expect", "").lower() == "100-continue":
            if self.task is None and not self.queue:
                self._continue()
            else:
                self.continue_pending = True  # after the replies before it, and no body timeout until then
                self.deadline = _NEVER
                return
        self.deadline = self.loop.time() + self.limits.body_timeout

    def on_body(self, body: bytes) -> None:
        self._size += len(body)
        if self._size > self.max_body_bytes:
            self._refuse_head(413)
        self._body.append(body)
        self.deadline = self.loop.time() + self.limits.body_timeout

    def on_message_complete(self) -> None:
        self.receiving = False
        self.deadline = _NEVER
        request = HttpRequest(self._method, self._path, self._query, self._headers, b"".join(self._body),
                              keep_alive=self.parser.should_keep_alive(), http10=self._http10, admitted=True)
        self.queue.append(request)
        if self.task is None:
            self._next()
        elif len(self.queue) >= _MAX_QUEUED:
            self._pause_reading()

    def _refuse_head(self, status: int, message: str = "") -> NoReturn:
        self._reject(status, message)
        raise _Refused

    def _continue(self) -> None:
        self.continue_pending = False
        if self.transport is not None:
            self.flush()
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        self.deadline = self.loop.time() + self.limits.body_timeout

    # ------------------------------------------------------------ requests in order

    def _next(self) -> None:
        if self.closing or not self.queue:
            self.task = None
            if self.closing:
                return
            if self.continue_pending:
                self._continue()
            elif not self.receiving:
                if self.connections.draining:
                    self.close()
                else:
                    self.deadline = self.loop.time() + self.limits.keep_alive
            return
        item = self.queue.popleft()
        if self.read_paused:
            self._resume_reading()
        self.task = self.loop.create_task(self._answer(item))

    async def _answer(self, item: HttpRequest | Reply) -> None:
        if isinstance(item, HttpRequest):
            self.keep_alive = item.keep_alive and not self.connections.draining
            self.chunked, self.head_only = not item.http10, item.method == "HEAD"
        else:
            self.keep_alive, self.chunked, self.head_only = False, True, False
        started = access_log.begin(self)
        serving = self.connections.serving  # to the end of this reply, even if a reload swaps in another app
        serving.in_flight += 1
        reply = None
        try:
            if self.write_paused:  # the client reads none of the replies so far: no more until it does
                await self.drain()
            reply = await serving.app.handle(item) if isinstance(item, HttpRequest) else item
            await reply.send(self)
        except asyncio.CancelledError:
            if reply is None and self.transport is not None and isinstance(item, HttpRequest):  # shutting down
                self.keep_alive = False
                await serving.app.refuse(503, item.path.encode("latin-1"), "the gateway is shutting down").send(self)
            return
        except Exception as exc:  # the handler answers its own errors; this is the last line
            log.error("unexpected %s while answering a request", type(exc).__name__)
            self.closing = True
        finally:
            serving.in_flight -= 1
            access_log.record(self, item, started)
        if not self.keep_alive or self.closing or (not self.reading and not self.queue):
            self.close()  # a refusal still queued goes out first, and closes after itself
        self._next()

    def _reject(self, status: int, message: str = "") -> None:
        self._reject_with(self.connections.serving.app.refuse(status, self.raw_url(), message))

    def raw_url(self) -> bytes:
        """The request target read so far (up to the URL cap)."""
        return b"".join(self._url)[:self.limits.max_url_bytes]

    def refused_target(self) -> tuple[str, str]:
        """Method and path of the request a refusal answers, as far as they were read."""
        if self._method:  # its head was read: refused by the app, or for its body
            return self._method, self._path
        return "-", unquote(self.raw_url().decode("latin-1").partition("?")[0])

    def _reject_with(self, reply: Reply) -> None:
        """Answer a request that cannot be read and close the connection: the
        rest of what the client sends is not read."""
        self.reading = False
        self.receiving = self.in_head = self.continue_pending = False
        self.deadline = _NEVER
        self.backlog = b""
        if self.transport is None:
            return
        self.queue.append(reply)  # after a request still being answered
        if self.task is None:
            self._next()

    def timed_out(self) -> None:
        """The client took too long: to send a head or the next piece of a body, or to send anything."""
        self.deadline = _NEVER
        if self.receiving:
            self._reject(408, "the request was not received in time")
        else:
            self.close()

    def close(self) -> None:
        self.closing = True
        self.deadline = _NEVER
        self.connections.open.discard(self)
        if self.transport is not None:
            self.flush()
            self.transport.close()

    def abort(self) -> None:
        self.closing = True
        if self.transport is not None:
            self.transport.abort()

    # ------------------------------------------------------------ writing a reply

    def send_whole(self, status: int, headers: bytes, body: bytes) -> None:
        """A reply with a known length, in one write. `headers` are complete lines."""
        if self.transport is None:
            return
        head = b"%s%scontent-length: %d\r\n%s\r\n" % (self._status(status), headers, len(body), self._connection())
        self.flush()
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
            self.loop.call_soon(self.flush)
        self.unsent.append(data)
        self.sent_bytes += len(data)

    def flush(self) -> None:
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


class HttpServer:
    """Listens and hands each request to the app; enforces deadlines; stops gracefully."""

    def __init__(self, app: App, limits: Limits) -> None:
        self.limits = limits
        self.connections = Connections(app)
        self.server: asyncio.Server | None = None
        self._ticker: asyncio.TimerHandle | None = None

    async def start(self, sock: socket.socket) -> int:
        """Listen on `sock` (bound by the caller, shared by worker processes); the bound port."""
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(self._protocol, sock=sock, backlog=4096)
        self._ticker = loop.call_later(self.limits.tick, self._tick)
        return int(sock.getsockname()[1])

    def _protocol(self) -> asyncio.Protocol:
        connections = self.connections
        if len(connections.open) >= self.limits.max_connections and not connections.evict_one():
            return _Overloaded()
        return HttpConnection(self.limits, connections)

    def _tick(self) -> None:
        loop = asyncio.get_running_loop()
        self.connections.check_deadlines(loop.time(), self.limits.keep_alive)
        self._ticker = loop.call_later(self.limits.tick, self._tick)

    def swap_app(self, app: App, limits: Limits) -> Serving:
        """New requests go to `app` from now on, and new connections get `limits`;
        what the old app still answers finishes with it (see `finished`)."""
        old = self.connections.serving
        self.connections.serving = Serving(app)
        self.limits = limits
        return old

    @staticmethod
    async def finished(serving: Serving) -> None:
        """Once the requests `serving` was answering have ended (their streams too)."""
        while serving.in_flight:
            await asyncio.sleep(_FINISHED_POLL)

    def stop_listening(self) -> None:
        """New connections are refused from now on (the socket is closed, not just left unaccepted)."""
        if self.server is not None:
            self.server.close()

    async def stop(self, grace: float = 5.0) -> None:
        """Stop listening, close idle connections, let requests in flight
        finish for up to `grace` seconds, then end what is left: a stream with
        its format's error event and terminator."""
        self.stop_listening()
        self.connections.draining = True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        while self.connections.open and loop.time() < deadline:
            for conn in self.connections.idle_ones():
                conn.close()
            await asyncio.sleep(0.05)
        tasks = [conn.task for conn in self.connections.open if conn.task is not None]
        for task in tasks:
            task.cancel()  # a StreamReply cancelled with its client still there writes its ending
        if tasks:
            await asyncio.wait(tasks, timeout=2.0)
        for conn in list(self.connections.open):
            conn.close()
        if self._ticker is not None:
            self._ticker.cancel()
        await asyncio.sleep(0)

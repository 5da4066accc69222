"""The HTTP/1.1 client for upstream calls: pooled keep-alive connections,
responses parsed by httptools, bodies handed over as the socket delivers them.

Every upstream call is a POST of a body already encoded, to a handful of
origins; a general-purpose client spends more per request on what this does
not need (cookies, redirects, payload registries, per-read timers) than the
gateway spends translating."""

from __future__ import annotations

import asyncio
import ssl
import time
import zlib
from collections import deque
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

import httptools

from crossroute import __version__

IDLE_SECONDS = 30.0  # a pooled connection unused this long is closed rather than reused
MAX_IDLE_PER_ORIGIN = 256
USER_AGENT = f"crossroute/{__version__}"
_PAUSE_AT = 1 << 20  # bytes buffered for a slow reader before the upstream socket stops being read
_TARGETS_CACHED = 4096


class UpstreamError(Exception):
    """The connection failed, or broke before the answer was complete."""


class _Stale(UpstreamError):
    """A reused connection closed before any answer: the request can go again on a new one."""


@dataclass(frozen=True, slots=True)
class Origin:
    scheme: str
    host: str
    port: int

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"


def split_url(url: str) -> tuple[Origin, str]:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UpstreamError(f"not an http(s) URL: {url!r}")
    origin = Origin(parts.scheme, parts.hostname, parts.port or (443 if parts.scheme == "https" else 80))
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return origin, target


class UpstreamResponse:
    """Status and headers once they have arrived; the body as it comes."""

    def __init__(self, conn: _Connection, read_timeout: float | None) -> None:
        self._conn = conn
        self._read_timeout = read_timeout
        self.status = 0
        self.reason = ""
        self.headers: dict[str, str] = {}
        self._chunks: deque[bytes] = deque()
        self._buffered = 0
        self._head_done = False
        self._done = False
        self._error: UpstreamError | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._inflate: zlib._Decompress | None = None

    # ------------------------------------------------------------ reading

    async def read(self) -> bytes:
        parts = [chunk async for chunk in self.chunks()]
        return b"".join(parts)

    async def chunks(self) -> AsyncIterator[bytes]:
        """Whatever has arrived, joined, each time something has."""
        while True:
            if self._chunks:
                data = b"".join(self._chunks) if len(self._chunks) > 1 else self._chunks[0]
                self._chunks.clear()
                self._buffered = 0
                self._conn.resume()
                yield data
            elif self._done:
                return
            elif self._error is not None:
                raise self._error
            else:
                await self._wait()

    async def _head(self) -> None:
        while not self._head_done:
            if self._error is not None:
                raise self._error
            await self._wait()

    async def _wait(self) -> None:
        loop = self._conn.loop
        waiter = self._waiter = loop.create_future()
        timer = loop.call_later(self._read_timeout, self._time_out, waiter) if self._read_timeout else None
        try:
            await waiter
        finally:
            self._waiter = None
            if timer is not None:
                timer.cancel()

    @staticmethod
    def _time_out(waiter: asyncio.Future[None]) -> None:
        if not waiter.done():
            waiter.set_exception(TimeoutError())

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    # ------------------------------------------------------------ fed by the connection

    def _got_head(self, status: int) -> None:
        self.status = status
        encoding = self.headers.get("content-encoding", "").lower()
        if encoding in ("gzip", "deflate"):
            self._inflate = zlib.decompressobj(47)  # gzip or zlib framing, told apart by the header
        self._head_done = True
        self._wake()

    def _got_body(self, data: bytes) -> None:
        if self._inflate is not None:
            try:
                data = self._inflate.decompress(data)
            except zlib.error:
                self._failed(UpstreamError("the upstream sent a body that does not decompress"))
                return
        if data:
            self._chunks.append(data)
            self._buffered += len(data)
            if self._buffered > _PAUSE_AT:
                self._conn.pause()
            self._wake()

    def _finished(self) -> None:
        self._done = True
        self._wake()

    def _failed(self, error: UpstreamError) -> None:
        if not self._done and self._error is None:
            self._error = error
            self._wake()

    # ------------------------------------------------------------ after

    def release(self) -> None:
        """Done with it: a complete answer gives its connection back to the pool."""
        if self._done:
            self._conn.reusable_after(self)
        else:
            self._conn.close()

    def close(self) -> None:
        """Abandon it midway: closing the connection tells the upstream to stop."""
        self._conn.close()


class _Connection(asyncio.Protocol):
    def __init__(self, client: UpstreamClient, origin: Origin) -> None:
        self.client = client
        self.origin = origin
        self.loop = asyncio.get_running_loop()
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.response: UpstreamResponse | None = None
        self.uses = 0
        self.idle_since = 0.0
        self.answered = False  # any byte of the current answer seen
        self.keep_alive = False
        self.paused = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        response = self.response
        if response is None:
            return
        if not self.answered and self.uses > 1:
            response._failed(_Stale("the pooled connection was closed by the upstream"))
        elif response._head_done and self._ends_with_close(response):
            response._finished()
        else:
            response._failed(UpstreamError("the upstream closed the connection"))

    def _ends_with_close(self, response: UpstreamResponse) -> bool:
        headers = response.headers
        return "content-length" not in headers and "chunked" not in headers.get("transfer-encoding", "")

    def data_received(self, data: bytes) -> None:
        self.answered = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            if self.response is not None:
                self.response._failed(UpstreamError("the upstream sent malformed HTTP"))
            self.close()

    # httptools callbacks

    def on_status(self, reason: bytes) -> None:
        if self.response is not None:
            self.response.reason = reason.decode("latin-1")

    def on_header(self, name: bytes, value: bytes) -> None:
        if self.response is not None:
            self.response.headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        if self.response is not None:
            status = self.parser.get_status_code()
            if status >= 200:
                self.keep_alive = self.parser.should_keep_alive()
                self.response._got_head(status)
            else:  # an interim answer (103 Early Hints): the real one follows
                self.response.headers = {}

    def on_body(self, body: bytes) -> None:
        if self.response is not None:
            self.response._got_body(body)

    def on_message_complete(self) -> None:
        response = self.response
        if response is not None and response._head_done:
            response._finished()

    # used by the client and the response

    def send(self, request: bytes, read_timeout: float | None) -> UpstreamResponse:
        assert self.transport is not None
        self.uses += 1
        self.answered = False
        self.response = UpstreamResponse(self, read_timeout)
        self.transport.write(request)
        return self.response

    def usable(self, now: float) -> bool:
        return self.transport is not None and not self.transport.is_closing() and now - self.idle_since < IDLE_SECONDS

    def reusable_after(self, response: UpstreamResponse) -> None:
        if self.response is not response:
            return
        self.response = None
        if self.keep_alive and self.transport is not None and not self.paused:
            self.idle_since = time.monotonic()
            self.client._give_back(self)
        else:
            self.close()

    def pause(self) -> None:
        if not self.paused and self.transport is not None:
            self.paused = True
            self.transport.pause_reading()

    def resume(self) -> None:
        if self.paused and self.transport is not None:
            self.paused = False
            self.transport.resume_reading()

    def close(self) -> None:
        self.response = None
        if self.transport is not None:
            self.transport.close()
            self.transport = None


class UpstreamClient:
    """One per process: keep-alive connections pooled per origin."""

    def __init__(self, connect_timeout: float) -> None:
        self.connect_timeout = connect_timeout
        self._idle: dict[Origin, list[_Connection]] = {}
        self._targets: dict[str, tuple[Origin, str]] = {}
        self._tls: ssl.SSLContext | None = None

    async def post(self, url: str, body: bytes, headers: Mapping[str, str],
                   read_timeout: float | None = None) -> UpstreamResponse:
        """Send the request; returns once the status and headers are in.
        Raises UpstreamError (cannot connect, broken) or TimeoutError."""
        origin, target = self._target(url)
        head = [f"POST {target} HTTP/1.1\r\nhost: {origin.host_header}\r\ncontent-length: {len(body)}\r\n"]
        head.extend(f"{name}: {value}\r\n" for name, value in headers.items())
        if "user-agent" not in headers:
            head.append(f"user-agent: {USER_AGENT}\r\n")
        head.append("\r\n")
        request = "".join(head).encode("latin-1") + body
        while True:
            conn = self._pooled(origin) or await self._connect(origin)
            response = conn.send(request, read_timeout)
            try:
                await response._head()
            except _Stale:
                continue  # a fresh connection next time round: _pooled only returns live ones
            except BaseException:
                conn.close()
                raise
            return response

    async def close(self) -> None:
        for conns in self._idle.values():
            for conn in conns:
                conn.close()
        self._idle.clear()

    def _target(self, url: str) -> tuple[Origin, str]:
        found = self._targets.get(url)
        if found is None:
            found = split_url(url)
            if len(self._targets) >= _TARGETS_CACHED:
                self._targets.clear()
            self._targets[url] = found
        return found

    def _pooled(self, origin: Origin) -> _Connection | None:
        conns = self._idle.get(origin)
        now = time.monotonic()
        while conns:
            conn = conns.pop()
            if conn.usable(now):
                return conn
            conn.close()
        return None

    def _give_back(self, conn: _Connection) -> None:
        conns = self._idle.setdefault(conn.origin, [])
        conns.append(conn)
        if len(conns) > MAX_IDLE_PER_ORIGIN:  # after a burst: drop the dead, then the longest idle
            now = time.monotonic()
            live = [c for c in conns if c.usable(now)]
            keep = live[-MAX_IDLE_PER_ORIGIN:]
            kept = {id(c) for c in keep}
            for extra in conns:
                if id(extra) not in kept:
                    extra.close()
            conns[:] = keep

    async def _connect(self, origin: Origin) -> _Connection:
        loop = asyncio.get_running_loop()
        tls = self._tls_context() if origin.scheme == "https" else None
        try:
            async with asyncio.timeout(self.connect_timeout):
                _, conn = await loop.create_connection(lambda: _Connection(self, origin), origin.host, origin.port,
                                                       ssl=tls, server_hostname=origin.host if tls else None)
        except TimeoutError:
            raise
        except (OSError, ssl.SSLError) as exc:
            raise UpstreamError(f"cannot connect to {origin.host_header}: {exc.strerror or exc}") from None
        return conn

    def _tls_context(self) -> ssl.SSLContext:
        if self._tls is None:
            self._tls = ssl.create_default_context()
        return self._tls

"""The HTTP/1.1 client for upstream calls: pooled keep-alive connections,
responses parsed by httptools, bodies handed over as the socket delivers them.

Every upstream call is a POST of a body already encoded, to a handful of
origins; a general-purpose client spends more per request on what this does
not need (cookies, redirects, payload registries, per-read timers) than the
gateway spends translating.

An upstream is trusted with credentials, not with memory: its head, its
header count, a body read whole and a compressed body's inflated size are
capped, and a cap passed fails that answer with an UpstreamLimit (the
connection is closed) rather than growing without bound."""

from __future__ import annotations

import asyncio
import os
import ssl
import time
import zlib
from collections import deque
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

import httptools

from crossroute import __version__
from crossroute.upstream_proxy import (
    DIRECT,
    Proxy,
    ProxyEnvironment,
    ProxyRefused,
    UnusableProxy,
    open_tunnel,
    parse_proxy,
)

IDLE_SECONDS = 30.0  # a pooled connection unused this long is closed rather than reused
MAX_IDLE_PER_ORIGIN = 256
USER_AGENT = f"crossroute/{__version__}"
_PAUSE_AT = 1 << 20  # bytes buffered for a slow reader before the upstream socket stops being read
_TARGETS_CACHED = 4096

# Caps on what an upstream may make the gateway hold. LLM APIs send heads of a
# few KiB and a few dozen headers; bodies and events carry at most some large
# inline images (base64 in JSON), tens of MiB.
MAX_HEAD_BYTES = 256 * 1024  # status line + headers, interim (1xx) answers included; also trailers
MAX_HEADERS = 256
MAX_BODY_BYTES = 64 * 1024 * 1024  # a body read whole (non-streamed answers)
MAX_INFLATED_BYTES = 64 * 1024 * 1024  # a gzip/deflate body after inflating
_INFLATE_STEP = 256 * 1024  # inflate at most this much per step, so the cap is checked as it grows


class UpstreamError(Exception):
    """The connection failed, or broke before the answer was complete."""


class _Stale(UpstreamError):
    """A reused connection closed before any answer: the request can go again on a new one."""


class UpstreamLimit(UpstreamError):
    """The upstream's answer passed one of the caps; the message says what it sent
    ("sent ..."), to follow the provider's name."""


def _size(limit: int) -> str:
    return f"{limit >> 20} MiB" if limit >= 1 << 20 else f"{limit >> 10} KiB"


def head_too_large() -> UpstreamLimit:
    return UpstreamLimit(f"sent a response head over {_size(MAX_HEAD_BYTES)}")


def body_too_large(limit: int) -> UpstreamLimit:
    return UpstreamLimit(f"sent a body over {_size(limit)}")


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


@dataclass(frozen=True, slots=True)
class Route:
    """Where connections for an origin go: straight there, or through a proxy.
    Connections are pooled per route."""

    origin: Origin
    proxy: Proxy | None = None


def split_url(url: str) -> tuple[Origin, str]:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UpstreamError(f"not an http(s) URL: {url!r}")
    origin = Origin(parts.scheme, parts.hostname, parts.port or (443 if parts.scheme == "https" else 80))
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return origin, target


class UpstreamResponse:
    """Status and headers once they have arrived; the body as it comes."""

    def __init__(self, conn: _Connection, head_timeout: float | None, idle_timeout: float | None) -> None:
        self._conn = conn
        self._read_timeout = head_timeout  # the longest wait for the next bytes: of the head, then of the body
        self._idle_timeout = idle_timeout
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
        self._deflated: deque[bytes] | None = None  # compressed body not inflated yet: the reader is behind
        self._inflated = 0

    # ------------------------------------------------------------ reading

    async def read(self, limit: int = MAX_BODY_BYTES) -> bytes:
        """The whole body; UpstreamLimit past `limit` bytes."""
        parts = []
        size = 0
        async for chunk in self.chunks():
            size += len(chunk)
            if size > limit:
                raise body_too_large(limit)
            parts.append(chunk)
        return b"".join(parts)

    async def chunks(self) -> AsyncIterator[bytes]:
        """Whatever has arrived, joined, each time something has."""
        while True:
            if self._chunks:
                data = b"".join(self._chunks) if len(self._chunks) > 1 else self._chunks[0]
                self._chunks.clear()
                self._buffered = 0
                if self._deflated:
                    self._inflate_more()
                if not self._deflated:
                    self._conn.resume()
                yield data
            elif self._error is not None:
                raise self._error
            elif self._done:
                return
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
            self._deflated = deque()
        self._read_timeout = self._idle_timeout
        self._head_done = True
        self._wake()

    def _got_body(self, data: bytes) -> None:
        """Raises UpstreamError (inside the parser's callback) when the body cannot be taken."""
        if self._deflated is not None:
            self._deflated.append(data)
            if self._buffered <= _PAUSE_AT:
                self._inflate_some()
        elif data:
            self._take(data)

    def _inflate_some(self) -> None:
        """Inflate what is waiting, a step at a time, until a reader's worth is
        buffered (the rest waits, compressed, with the socket paused)."""
        inflate, waiting = self._inflate, self._deflated
        assert inflate is not None and waiting is not None
        while waiting and self._buffered <= _PAUSE_AT:
            try:
                plain = inflate.decompress(waiting[0], _INFLATE_STEP)
            except zlib.error:
                raise UpstreamError("the upstream sent a body that does not decompress") from None
            if inflate.unconsumed_tail:
                waiting[0] = inflate.unconsumed_tail
            else:
                waiting.popleft()
            self._inflated += len(plain)
            if self._inflated > MAX_INFLATED_BYTES:
                raise UpstreamLimit(f"sent a compressed body that inflates past {_size(MAX_INFLATED_BYTES)}")
            if plain:
                self._take(plain)
        if waiting:
            self._conn.pause()

    def _inflate_more(self) -> None:
        """The reader caught up: inflate the next part; a failure is the reader's next error."""
        try:
            self._inflate_some()
        except UpstreamError as error:
            self._deflated = deque()
            self._error = error
            self._conn.close()

    def _take(self, data: bytes) -> None:
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
    def __init__(self, client: UpstreamClient, route: Route) -> None:
        self.client = client
        self.route = route
        self.loop = asyncio.get_running_loop()
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.response: UpstreamResponse | None = None
        self.uses = 0
        self.idle_since = 0.0
        self.answered = False  # any byte of the current answer seen
        self.keep_alive = False
        self.paused = False
        # The head is collected until its blank line and parsed in one piece: httptools
        # grows a header by concatenation, quadratic when it comes a few bytes at a time.
        self.in_head = False
        self.head: list[bytes] = []
        self.quiet_bytes = 0  # bytes since the last body byte: the head(s), trailers, chunk framing

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
        self.quiet_bytes += len(data)
        if self.in_head and (self.head or b"\r\n\r\n" not in data):  # the usual head comes whole, in one read
            data = self._head_so_far(data)
            if not data:
                return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            cause = exc.__context__
            self._fail(cause if isinstance(cause, UpstreamError) else UpstreamError("the upstream sent malformed HTTP"))
            return
        if self.quiet_bytes > MAX_HEAD_BYTES:  # interim answers without end, endless trailers or chunk framing
            self._fail(head_too_large() if self.in_head else
                       UpstreamLimit(f"sent over {_size(MAX_HEAD_BYTES)} of trailers or chunk framing"))

    def _head_so_far(self, data: bytes) -> bytes:
        """The bytes to parse now: b"" while the head's blank line is still to come."""
        head = self.head
        if not (_ends_head(data) or (head and _ends_head(head[-1][-3:] + data[:3]))):
            if self.quiet_bytes > MAX_HEAD_BYTES:
                self._fail(head_too_large())
            else:
                head.append(data)
            return b""
        if head:
            head.append(data)
            data = b"".join(head)
            head.clear()
        return data

    def _fail(self, error: UpstreamError) -> None:
        if self.response is not None:
            self.response._failed(error)
        self.close()

    # httptools callbacks

    def on_status(self, reason: bytes) -> None:
        if self.response is not None:
            self.response.reason = reason.decode("latin-1")

    def on_header(self, name: bytes, value: bytes) -> None:
        # not counted here: the head cap bounds how many arrive, the dict keeps one per name
        if self.response is not None:
            self.response.headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        if self.response is not None:
            if len(self.response.headers) > MAX_HEADERS:
                raise UpstreamLimit(f"sent more than {MAX_HEADERS} headers")
            status = self.parser.get_status_code()
            if status >= 200:
                self.in_head = False
                self.keep_alive = self.parser.should_keep_alive()
                self.response._got_head(status)
            else:  # an interim answer (103 Early Hints): the real one follows
                self.response.headers = {}

    def on_body(self, body: bytes) -> None:
        self.quiet_bytes = 0
        if self.response is not None:
            self.response._got_body(body)

    def on_message_complete(self) -> None:
        response = self.response
        if response is not None and response._head_done:
            response._finished()

    # used by the client and the response

    def send(self, request: bytes, head_timeout: float | None, idle_timeout: float | None) -> UpstreamResponse:
        assert self.transport is not None
        self.uses += 1
        self.answered = False
        self.in_head = True
        self.quiet_bytes = 0
        self.response = UpstreamResponse(self, head_timeout, idle_timeout)
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


def _ends_head(data: bytes) -> bool:
    """A blank line is in it; a bare-LF one too, so that the parser refuses it at once."""
    return b"\r\n\r\n" in data or b"\n\n" in data


@dataclass(frozen=True, slots=True)
class _Target:
    """A URL as the client sends it: the route and the start of the request
    head (request line and host; for http through a proxy, the absolute form
    and the proxy's credentials)."""

    route: Route
    head: str


class UpstreamClient:
    """One per process: keep-alive connections pooled per route (origin and proxy).
    The proxy variables of the environment are read once, here."""

    def __init__(self, connect_timeout: float, environ: Mapping[str, str] | None = None) -> None:
        self.connect_timeout = connect_timeout
        self.proxies = ProxyEnvironment(os.environ if environ is None else environ)
        self._idle: dict[Route, list[_Connection]] = {}
        self._targets: dict[str | tuple[str, str], _Target] = {}
        self._tls: ssl.SSLContext | None = None

    async def post(self, url: str, body: bytes, headers: Mapping[str, str],
                   read_timeout: float | None = None, proxy: str | None = None, *,
                   idle_timeout: float | None = None, connect_timeout: float | None = None) -> UpstreamResponse:
        """Send the request; returns once the status and headers are in. `proxy` is
        the provider's setting: None for the environment's, "" or "direct" for none.
        `read_timeout` bounds the wait for the head, `idle_timeout` (default: the
        same) each wait for more of the body, `connect_timeout` (default: the
        client's) the connection. Raises UpstreamError (cannot connect, broken,
        over a cap) or TimeoutError."""
        found = self._target(url, proxy)
        route = found.route
        head = [f"{found.head}content-length: {len(body)}\r\n"]
        head.extend(f"{name}: {value}\r\n" for name, value in headers.items())
        if "user-agent" not in headers:
            head.append(f"user-agent: {USER_AGENT}\r\n")
        if "accept-encoding" not in headers:  # compression buys little on LLM answers and costs CPU to undo
            head.append("accept-encoding: identity\r\n")
        head.append("\r\n")
        request = "".join(head).encode("latin-1") + body
        while True:
            conn = self._pooled(route) or await self._connect(route, connect_timeout or self.connect_timeout)
            response = conn.send(request, read_timeout, read_timeout if idle_timeout is None else idle_timeout)
            try:
                await response._head()
            except _Stale:
                continue  # a fresh connection next time round: _pooled only returns live ones
            except BaseException:
                conn.close()
                raise
            if response.status == 407 and route.proxy is not None:  # from the proxy itself (http, absolute-form)
                response.close()
                raise UpstreamError("the proxy answered 407 to the request")
            return response

    async def close(self) -> None:
        for conns in self._idle.values():
            for conn in conns:
                conn.close()
        self._idle.clear()

    def _target(self, url: str, proxy: str | None) -> _Target:
        key = url if proxy is None else (url, proxy)
        found = self._targets.get(key)
        if found is None:
            found = self._resolve(url, proxy)
            if len(self._targets) >= _TARGETS_CACHED:
                self._targets.clear()
            self._targets[key] = found
        return found

    def _resolve(self, url: str, setting: str | None) -> _Target:
        origin, target = split_url(url)
        try:
            if setting is None:
                proxy = self.proxies.proxy_for(origin.scheme, origin.host, origin.port)
            else:
                proxy = None if setting.strip().lower() in DIRECT else parse_proxy(setting)
        except UnusableProxy as exc:
            raise UpstreamError(str(exc)) from None
        route = Route(origin, proxy)
        host = f"host: {origin.host_header}\r\n"
        if proxy is None or origin.scheme == "https":  # https: a CONNECT tunnel, then the usual request
            return _Target(route, f"POST {target} HTTP/1.1\r\n{host}")
        credentials = f"proxy-authorization: {proxy.authorization}\r\n" if proxy.authorization else ""
        return _Target(route, f"POST http://{origin.host_header}{target} HTTP/1.1\r\n{host}{credentials}")

    def _pooled(self, route: Route) -> _Connection | None:
        conns = self._idle.get(route)
        now = time.monotonic()
        while conns:
            conn = conns.pop()
            if conn.usable(now):
                return conn
            conn.close()
        return None

    def _give_back(self, conn: _Connection) -> None:
        conns = self._idle.setdefault(conn.route, [])
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

    async def _connect(self, route: Route, timeout: float) -> _Connection:
        loop = asyncio.get_running_loop()
        origin, proxy = route.origin, route.proxy
        tls = self._tls_context() if origin.scheme == "https" else None
        try:
            async with asyncio.timeout(timeout):
                if proxy is None:
                    _, conn = await loop.create_connection(lambda: _Connection(self, route), origin.host, origin.port,
                                                           ssl=tls, server_hostname=origin.host if tls else None)
                elif tls is not None:
                    tunnel = await open_tunnel(proxy, origin.host, origin.port)
                    _, conn = await loop.create_connection(lambda: _Connection(self, route), sock=tunnel, ssl=tls,
                                                           server_hostname=origin.host)
                else:
                    _, conn = await loop.create_connection(lambda: _Connection(self, route), proxy.host, proxy.port)
        except TimeoutError:
            raise
        except (OSError, ssl.SSLError) as exc:
            raise UpstreamError(_cannot_connect(route, exc)) from None
        return conn

    def _tls_context(self) -> ssl.SSLContext:
        if self._tls is None:
            self._tls = ssl.create_default_context()
        return self._tls


def _cannot_connect(route: Route, exc: OSError) -> str:
    if route.proxy is None:
        return f"cannot connect to {route.origin.host_header}: {exc.strerror or exc}"
    # through a proxy: neither its address nor its credentials go into the message
    reason = exc.strerror or (str(exc) if isinstance(exc, ProxyRefused | ssl.SSLError) else type(exc).__name__)
    return f"cannot connect through the proxy: {reason}"

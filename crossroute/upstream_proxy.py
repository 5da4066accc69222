"""Forward proxies for the upstream client: which proxy a URL goes through
(providers[].proxy, else HTTPS_PROXY / HTTP_PROXY / ALL_PROXY / NO_PROXY read
once at start) and the CONNECT tunnel that https goes through.

Credentials in a proxy URL become a Proxy-Authorization header and are kept
out of every repr and message; so is the proxy's address, which the client
never needs to see."""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

DIRECT = ("", "direct")  # providers[].proxy values that bypass the environment's proxy
SUPPORTED_SCHEMES = ("http",)
_REPLY_LIMIT = 16384  # a CONNECT reply head larger than this is not a proxy worth talking to


class ProxyRefused(OSError):
    """The proxy would not open the tunnel."""


class UnusableProxy(ValueError):
    """A proxy URL that cannot be used; the message names no credential."""


@dataclass(frozen=True, slots=True)
class Proxy:
    host: str
    port: int
    authorization: str | None = field(default=None, repr=False)  # the Proxy-Authorization value

    def __repr__(self) -> str:
        return "<Proxy>"  # its address and credentials stay out of logs and messages


def parse_proxy(url: str) -> Proxy:
    """`http://[user:pass@]host[:port]`; a bare `host:port` is taken as http."""
    if "://" not in url:
        url = "http://" + url
    try:
        parts = urlsplit(url)
        port = parts.port or 80
    except ValueError:
        raise UnusableProxy("the proxy URL cannot be read (expected http://[user:password@]host:port)") from None
    if parts.scheme not in SUPPORTED_SCHEMES:
        raise UnusableProxy(f"{parts.scheme}:// proxies are not supported; use an http:// proxy "
                            "(HTTPS goes through it with CONNECT)")
    if not parts.hostname:
        raise UnusableProxy("the proxy URL has no host (expected http://[user:password@]host:port)")
    authorization = None
    if parts.username is not None:
        pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        authorization = "Basic " + base64.b64encode(pair.encode()).decode("ascii")
    return Proxy(parts.hostname, port, authorization)


@dataclass(frozen=True, slots=True)
class _Bypass:
    host: str  # lower case, no leading dot; "" with a network
    port: int | None
    network: ipaddress.IPv4Network | ipaddress.IPv6Network | None = None

    def matches(self, host: str, port: int) -> bool:
        if self.port is not None and self.port != port:
            return False
        if self.network is not None:
            try:
                return ipaddress.ip_address(host) in self.network
            except ValueError:
                return False
        return host == self.host or host.endswith("." + self.host)


def _parse_no_proxy(value: str) -> tuple[bool, list[_Bypass]]:
    """(everything bypassed, the entries): host suffixes, `*`, `host:port`, CIDR."""
    entries = []
    for raw in value.split(","):
        entry = raw.strip().lower()
        if not entry:
            continue
        if entry == "*":
            return True, []
        try:
            entries.append(_Bypass("", None, ipaddress.ip_network(entry, strict=False)))
            continue
        except ValueError:
            pass
        host, port = entry, None
        if entry.startswith("["):  # [v6]:port
            host, _, rest = entry[1:].partition("]")
            port = int(rest[1:]) if rest.startswith(":") and rest[1:].isdigit() else None
        elif entry.count(":") == 1:
            name, _, number = entry.partition(":")
            if number.isdigit():
                host, port = name, int(number)
        entries.append(_Bypass(host.lstrip("*").lstrip("."), port))
    return False, entries


class ProxyEnvironment:
    """The proxy variables as they were when the process started."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        def read(name: str) -> tuple[str, str] | None:
            for key in (name.lower(), name.upper()):
                value = environ.get(key, "").strip()
                if value:
                    return key, value
            return None

        fallback = read("ALL_PROXY")
        self._by_scheme = {"https": read("HTTPS_PROXY") or fallback, "http": read("HTTP_PROXY") or fallback}
        no_proxy = read("NO_PROXY")
        self._bypass_all, self._bypass = _parse_no_proxy(no_proxy[1] if no_proxy else "")

    def proxy_for(self, scheme: str, host: str, port: int) -> Proxy | None:
        """The proxy for this origin, None for a direct connection."""
        chosen = self._by_scheme.get(scheme)
        if chosen is None or self._bypass_all:
            return None
        host = host.lower()
        if _is_loopback(host) or any(entry.matches(host, port) for entry in self._bypass):
            return None
        variable, url = chosen
        try:
            return parse_proxy(url)
        except UnusableProxy as exc:
            raise UnusableProxy(f"the proxy in {variable}: {exc}") from None


def _is_loopback(host: str) -> bool:
    """A local model server is never reached through the environment's proxy (as Go and curl's
    newer versions do); a provider's own `proxy:` still applies."""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


async def open_tunnel(proxy: Proxy, host: str, port: int) -> socket.socket:
    """A socket to the proxy with a CONNECT tunnel to host:port open through it."""
    sock = await _connect(proxy.host, proxy.port)
    try:
        loop = asyncio.get_running_loop()
        await loop.sock_sendall(sock, _connect_request(proxy, host, port))
        status = await _reply_status(sock)
    except BaseException:
        sock.close()
        raise
    if status != 200:
        sock.close()
        raise ProxyRefused(f"the proxy answered {status} to CONNECT" if status else "the proxy sent no HTTP answer")
    return sock


def _connect_request(proxy: Proxy, host: str, port: int) -> bytes:
    authority = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    lines = [f"CONNECT {authority} HTTP/1.1", f"host: {authority}"]
    if proxy.authorization:
        lines.append(f"proxy-authorization: {proxy.authorization}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


async def _connect(host: str, port: int) -> socket.socket:
    loop = asyncio.get_running_loop()
    failure: OSError = OSError("no address")
    for family, kind, proto, _, address in await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM):
        sock = socket.socket(family, kind, proto)
        sock.setblocking(False)
        try:
            await loop.sock_connect(sock, address)
        except OSError as exc:
            sock.close()
            failure = exc
            continue
        except BaseException:
            sock.close()
            raise
        return sock
    raise failure


async def _reply_status(sock: socket.socket) -> int:
    """The status of the proxy's answer to CONNECT, once its head is complete
    (the tunnel's own bytes start only after our TLS hello, so none is read)."""
    loop = asyncio.get_running_loop()
    pieces: list[bytes] = []
    size = 0
    tail = b""
    while True:
        piece = await loop.sock_recv(sock, 4096)
        if not piece:
            raise ProxyRefused("the proxy closed the connection during CONNECT")
        pieces.append(piece)
        size += len(piece)
        if b"\r\n\r\n" in tail + piece:
            break
        if size > _REPLY_LIMIT:
            raise ProxyRefused("the proxy sent an oversized answer to CONNECT")
        tail = piece[-3:]
    status_line = b"".join(pieces).split(b"\r\n", 1)[0].split()
    if len(status_line) < 2 or not status_line[0].startswith(b"HTTP/1.") or not status_line[1].isdigit():
        return 0
    return int(status_line[1])

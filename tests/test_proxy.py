"""Upstream calls through a forward proxy: HTTPS_PROXY / HTTP_PROXY / ALL_PROXY /
NO_PROXY and providers[].proxy; https through a CONNECT tunnel, http in
absolute form, credentials as Proxy-Authorization and never in a message.

Loopback never goes through the environment's proxy, so upstreams here are
named UPSTREAM_HOST, which only the test proxy knows (as 127.0.0.1)."""

from __future__ import annotations

import asyncio
import base64
import logging
import ssl
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx2 as httpx
import pytest
import trustme

from crossroute.config import ConfigError, parse_config
from crossroute.server.serve import new_event_loop
from crossroute.upstream_http import UpstreamClient, UpstreamError
from crossroute.upstream_proxy import ProxyEnvironment, parse_proxy
from tests.conftest import MODELS, UPSTREAM_KEY
from tests.fakes import FakeUpstream, Turn
from tests.gateway_runner import RunningGateway, free_port
from tests.test_upstream_http import RawServer, answer, post_and_read, read_request

UPSTREAM_HOST = "upstream.test"


def via_name(url: str) -> str:
    return url.replace("127.0.0.1", UPSTREAM_HOST, 1)


class ForwardProxy:
    """A small HTTP forward proxy on 127.0.0.1, in its own thread: CONNECT
    tunnels and absolute-form requests (passed on in origin form). It records
    (method, target, Proxy-Authorization) for each request and, given
    credentials, answers 407 to any other. It resolves UPSTREAM_HOST to 127.0.0.1."""

    def __init__(self, credentials: str | None = None) -> None:
        self.expected = "Basic " + base64.b64encode(credentials.encode()).decode() if credentials else None
        self.seen: list[tuple[str, str, str | None]] = []
        self.connections = 0
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.Server | None = None
        started = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(started,), daemon=True)
        self._thread.start()
        assert started.wait(10)
        assert self._server is not None
        self.port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"

    def _run(self, started: threading.Event) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(asyncio.start_server(self._serve, "127.0.0.1", 0))
        started.set()
        self._loop.run_forever()

    def stop(self) -> None:
        async def close() -> None:
            assert self._server is not None
            self._server.close()

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        upstream: asyncio.StreamWriter | None = None
        try:
            while True:
                try:
                    method, target, headers, head = await self._request_head(reader)
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                if self.expected and headers.get("proxy-authorization") != self.expected:
                    writer.write(b"HTTP/1.1 407 Proxy Authentication Required\r\nproxy-authenticate: Basic\r\n"
                                 b"content-length: 0\r\n\r\n")
                    await writer.drain()
                    continue
                if method == "CONNECT":
                    host, _, port = target.rpartition(":")
                    up_reader, upstream = await asyncio.open_connection(_resolve(host), int(port))
                    writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
                    await asyncio.gather(_pipe(reader, upstream), _pipe(up_reader, writer))
                    return
                if upstream is None:  # absolute form: one upstream connection per client connection
                    parts = urlsplit(target)
                    up_reader, upstream = await asyncio.open_connection(_resolve(parts.hostname or ""), parts.port)
                    asyncio.ensure_future(_pipe(up_reader, writer))
                length = int(headers.get("content-length", "0"))
                upstream.write(head + await reader.readexactly(length))
        finally:
            if upstream is not None:
                upstream.close()
            writer.close()

    async def _request_head(self, reader: asyncio.StreamReader) -> tuple[str, str, dict[str, str], bytes]:
        raw = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        request_line, *lines = raw.split("\r\n")
        method, target, version = request_line.split(" ")
        headers = {name.strip().lower(): value.strip() for name, _, value in (line.partition(":") for line in lines
                                                                                if line)}
        self.seen.append((method, target, headers.get("proxy-authorization")))
        parts = urlsplit(target)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        kept = [line for line in lines if line and not line.lower().startswith("proxy-")]
        head = "\r\n".join([f"{method} {path} {version}", *kept]) + "\r\n\r\n"
        return method, target, headers, head.encode("latin-1")


def _resolve(host: str) -> str:
    return "127.0.0.1" if host == UPSTREAM_HOST else host


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        writer.close()


@pytest.fixture
def proxy() -> Iterator[ForwardProxy]:
    running = ForwardProxy()
    yield running
    running.stop()


@pytest.fixture
def strict_proxy() -> Iterator[ForwardProxy]:
    running = ForwardProxy(credentials="us@er:p:ss")
    yield running
    running.stop()


@pytest.fixture
def trusted_tls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ssl.SSLContext:
    """A server context whose certificate (for UPSTREAM_HOST) the client trusts through SSL_CERT_FILE."""
    authority = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert(UPSTREAM_HOST).configure_cert(server_context)
    authority.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "ca.pem"))
    return server_context


async def tls_upstream(tls: ssl.SSLContext) -> str:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                await read_request(reader)
            except asyncio.IncompleteReadError:
                return
            writer.write(answer(b'{"secure": true}'))

    return via_name(await RawServer(handler).start(tls))


# ---------------------------------------------------------------- the client


@pytest.mark.parametrize("loop_factory", [asyncio.new_event_loop, new_event_loop], ids=["asyncio", "gateway-loop"])
def test_https_goes_through_a_connect_tunnel_and_one_tunnel_is_reused(
        loop_factory: Callable[[], asyncio.AbstractEventLoop], proxy: ForwardProxy, trusted_tls: ssl.SSLContext) -> None:
    async def two_calls() -> str:
        url = await tls_upstream(trusted_tls)
        client = UpstreamClient(5, environ={"HTTPS_PROXY": proxy.url, "HTTP_PROXY": "http://127.0.0.1:9"})
        try:
            assert await post_and_read(client, url) == (200, b'{"secure": true}')
            assert await post_and_read(client, url) == (200, b'{"secure": true}')
        finally:
            await client.close()
        return url

    with asyncio.Runner(loop_factory=loop_factory) as runner:
        url = runner.run(two_calls())
    assert proxy.seen == [("CONNECT", urlsplit(url).netloc, None)]  # TLS inside: the proxy saw nothing else
    assert proxy.connections == 1


async def test_http_goes_in_absolute_form_with_decoded_credentials(strict_proxy: ForwardProxy) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await read_request(reader)
        assert request.startswith(b"POST /v1/chat/completions HTTP/1.1\r\n") and b"proxy-" not in request.lower()
        writer.write(answer(b'{"plain": true}'))

    url = via_name(await RawServer(handler).start())
    port = strict_proxy.port
    client = UpstreamClient(5, environ={"http_proxy": f"http://us%40er:p%3Ass@127.0.0.1:{port}"})
    try:
        assert await post_and_read(client, url) == (200, b'{"plain": true}')
    finally:
        await client.close()
    assert strict_proxy.seen == [("POST", url, strict_proxy.expected)]


async def test_loopback_no_proxy_and_direct_bypass_the_proxy(proxy: ForwardProxy) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(answer(b"{}"))

    local = await RawServer(handler).start()
    client = UpstreamClient(5, environ={"ALL_PROXY": proxy.url, "NO_PROXY": "example.com, .test"})
    try:
        assert await post_and_read(client, local) == (200, b"{}")  # a local model server: never proxied
        for setting in (None, "direct"):  # bypassed by NO_PROXY, or by the provider's own setting
            with pytest.raises(UpstreamError) as caught:
                await client.post(via_name(local), b"{}", {}, proxy=setting)
            assert "through the proxy" not in str(caught.value)  # a direct try: the name resolves nowhere
    finally:
        await client.close()
    assert proxy.seen == []


async def test_bad_proxy_credentials_fail_without_echoing_them(strict_proxy: ForwardProxy,
                                                               trusted_tls: ssl.SSLContext) -> None:
    url = await tls_upstream(trusted_tls)
    wrong = f"http://us%40er:wrong-secret@127.0.0.1:{strict_proxy.port}"
    client = UpstreamClient(5)
    with pytest.raises(UpstreamError) as caught:
        await client.post(url, b"{}", {}, proxy=wrong)
    message = str(caught.value)
    assert "407" in message
    assert "wrong-secret" not in message and str(strict_proxy.port) not in message and "us@er" not in message


def test_no_proxy_forms() -> None:
    environment = ProxyEnvironment({"HTTPS_PROXY": "http://proxy:3128", "NO_PROXY": ".internal, api.local:8443, "
                                    "10.0.0.0/8, [::1]"})
    assert environment.proxy_for("https", "api.openai.com", 443) == parse_proxy("http://proxy:3128")
    assert environment.proxy_for("https", "llm.internal", 443) is None
    assert environment.proxy_for("https", "internal", 443) is None
    assert environment.proxy_for("https", "api.local", 8443) is None
    assert environment.proxy_for("https", "api.local", 443) is not None
    assert environment.proxy_for("https", "10.1.2.3", 443) is None
    assert environment.proxy_for("https", "::1", 443) is None
    assert environment.proxy_for("https", "127.0.0.2", 443) is None  # loopback, whatever NO_PROXY says
    assert environment.proxy_for("https", "localhost", 443) is None
    assert environment.proxy_for("http", "api.openai.com", 80) is None  # no HTTP_PROXY, no ALL_PROXY
    assert ProxyEnvironment({"https_proxy": "http://a:1", "NO_PROXY": "*"}).proxy_for("https", "x", 443) is None
    assert ProxyEnvironment({"https_proxy": "http://a:1", "HTTPS_PROXY": "http://b:2"}).proxy_for(
        "https", "x", 443) == parse_proxy("http://a:1")
    assert "secret" not in repr(parse_proxy("http://user:secret@proxy:3128"))


# ---------------------------------------------------------------- the gateway


def gateway_with(fake: FakeUpstream, tmp_path: Path, **provider: object) -> RunningGateway:
    config = {"providers": [{"name": "up", "kind": "openai", "base_url": via_name(f"{fake.url}/v1"),
                             "api_keys": [UPSTREAM_KEY], "models": [MODELS["openai"]], **provider}]}
    return RunningGateway(config, tmp_path / "state.sqlite3")


def chat(gateway: RunningGateway) -> httpx.Response:
    return httpx.post(gateway.url + "/v1/chat/completions", timeout=20, trust_env=False,
                      json={"model": MODELS["openai"], "messages": [{"role": "user", "content": "hi"}]})


def test_the_gateway_reaches_a_provider_through_the_environment_proxy(
        proxy: ForwardProxy, clean_fake: FakeUpstream, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("NO_PROXY", "no_proxy", "HTTP_PROXY", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("http_proxy", proxy.url)
    clean_fake.script(Turn(text="through the proxy"))
    with gateway_with(clean_fake, tmp_path) as gateway:
        reply = chat(gateway)
    assert reply.status_code == 200
    assert reply.json()["choices"][0]["message"]["content"] == "through the proxy"
    assert [(method, target) for method, target, _ in proxy.seen] == [
        ("POST", via_name(f"{clean_fake.url}/v1/chat/completions"))]


def test_provider_proxy_overrides_the_environment(
        proxy: ForwardProxy, clean_fake: FakeUpstream, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{free_port()}")  # nothing listens there
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    with gateway_with(clean_fake, tmp_path, proxy=proxy.url) as gateway:
        assert chat(gateway).status_code == 200
    assert len(proxy.seen) == 1
    with gateway_with(clean_fake, tmp_path, proxy="direct") as gateway:
        reply = chat(gateway)
    assert reply.status_code == 502 and "through the proxy" not in reply.text  # a direct try
    assert len(proxy.seen) == 1


@pytest.mark.parametrize("tunnel", [True, False], ids=["connect", "absolute-form"])
def test_a_proxy_that_refuses_is_a_502_naming_the_provider_not_the_proxy(
        tunnel: bool, strict_proxy: ForwardProxy, fake: FakeUpstream, tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    base_url = f"https://{UPSTREAM_HOST}:{free_port()}/v1" if tunnel else via_name(f"{fake.url}/v1")
    proxy_url = f"http://us%40er:wrong-secret@127.0.0.1:{strict_proxy.port}"
    with gateway_with(fake, tmp_path, base_url=base_url, proxy=proxy_url) as gateway:
        reply = chat(gateway)
    assert reply.status_code == 502
    message = reply.json()["error"]["message"]
    assert message == "provider up is unreachable"  # the proxy's answer goes to the log only
    assert [auth for _, _, auth in strict_proxy.seen] == ["Basic " + base64.b64encode(b"us@er:wrong-secret").decode()]
    assert str(strict_proxy.port) not in reply.text and "wrong-secret" not in reply.text and "us@er" not in reply.text
    assert "407" in caplog.text and "wrong-secret" not in caplog.text and "us@er" not in caplog.text


def test_socks_proxy_is_refused_at_load_naming_key_and_line() -> None:
    text = "providers:\n  - name: up\n    kind: openai\n    base_url: http://x/v1\n    proxy: socks5://h:1080\n"
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "c.yaml")
    assert "c.yaml:5: providers[0].proxy: socks5:// proxies are not supported" in str(caught.value)
    for usable in ("", "direct", "http://u:p@h:3128", "h:3128"):
        parse_config(f"providers:\n  - {{name: up, kind: openai, base_url: 'http://x/v1', proxy: '{usable}'}}\n")

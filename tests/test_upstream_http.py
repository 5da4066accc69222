"""The upstream HTTP client against raw servers that misbehave the ways real ones do."""

from __future__ import annotations

import asyncio
import gzip
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
import trustme

from crossroute.upstream_http import UpstreamClient, UpstreamError, UpstreamLimit

Serve = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class RawServer:
    """A TCP server whose connection handler writes whatever bytes a test wants."""

    def __init__(self, handler: Serve) -> None:
        self.handler = handler
        self.connections = 0
        self.server: asyncio.Server | None = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            await self.handler(reader, writer)
        finally:
            writer.close()

    async def start(self, tls: ssl.SSLContext | None = None) -> str:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=tls)
        port = self.server.sockets[0].getsockname()[1]
        return f"{'https' if tls else 'http'}://127.0.0.1:{port}/v1/chat/completions"


async def read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length"))
    return head + await reader.readexactly(length)


def answer(body: bytes, extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n%s\r\n%s" % (
        len(body), extra, body)


@pytest.fixture
async def client() -> AsyncIterator[UpstreamClient]:
    upstream = UpstreamClient(connect_timeout=5)
    yield upstream
    await upstream.close()


async def post_and_read(client: UpstreamClient, url: str, **kw: float) -> tuple[int, bytes]:
    response = await client.post(url, b'{"x": 1}', {"content-type": "application/json"}, **kw)
    body = await response.read()
    response.release()
    return response.status, body


async def test_keep_alive_reuses_one_connection(client: UpstreamClient) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for n in range(3):
            request = await read_request(reader)
            assert request.startswith(b"POST /v1/chat/completions HTTP/1.1\r\n")
            assert b"\r\nhost: 127.0.0.1:" in request and request.endswith(b'{"x": 1}')
            writer.write(answer(b'{"n": %d}' % n))

    server = RawServer(handler)
    url = await server.start()
    assert [await post_and_read(client, url) for _ in range(3)] == [(200, b'{"n": 0}'), (200, b'{"n": 1}'),
                                                                    (200, b'{"n": 2}')]
    assert server.connections == 1


async def test_a_pooled_connection_the_upstream_closed_is_retried_on_a_new_one(client: UpstreamClient) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(answer(b'{"ok": true}'))
        await writer.drain()
        await read_request(reader)  # the next request arrives, and the server hangs up without answering

    server = RawServer(handler)
    url = await server.start()
    assert await post_and_read(client, url) == (200, b'{"ok": true}')
    assert await post_and_read(client, url) == (200, b'{"ok": true}')
    assert server.connections == 2


async def test_a_fresh_connection_closed_without_an_answer_is_an_error(client: UpstreamClient) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)

    server = RawServer(handler)
    url = await server.start()
    with pytest.raises(UpstreamError):
        await post_and_read(client, url)
    assert server.connections == 1


async def test_body_ended_by_close_and_gzip_and_chunked(client: UpstreamClient) -> None:
    packed = gzip.compress(b'{"zipped": true}')
    answers = [
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n" + b'{"to": "close"}',
        answer(packed, b"content-encoding: gzip\r\n"),
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n4\r\ndata\r\n3\r\n: x\r\n0\r\n\r\n",
    ]

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(answers.pop(0))

    server = RawServer(handler)
    url = await server.start()
    assert await post_and_read(client, url) == (200, b'{"to": "close"}')
    assert await post_and_read(client, url) == (200, b'{"zipped": true}')
    assert await post_and_read(client, url) == (200, b"data: x")


async def test_interim_answer_is_skipped(client: UpstreamClient) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 103 Early Hints\r\nlink: </x>\r\n\r\n" + answer(b"{}"))

    server = RawServer(handler)
    url = await server.start()
    response = await client.post(url, b"{}", {})
    assert response.status == 200 and "link" not in response.headers
    assert await response.read() == b"{}"


async def test_stream_broken_midway_raises(client: UpstreamClient) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-length: 1000\r\n\r\ndata: {}\n\n")
        await writer.drain()

    server = RawServer(handler)
    url = await server.start()
    response = await client.post(url, b"{}", {})
    received = []
    with pytest.raises(UpstreamError):
        async for chunk in response.chunks():
            received.append(chunk)
    assert b"".join(received) == b"data: {}\n\n"


async def test_read_timeout(client: UpstreamClient) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await asyncio.sleep(5)

    server = RawServer(handler)
    url = await server.start()
    with pytest.raises(TimeoutError):
        await client.post(url, b"{}", {}, read_timeout=0.3)


async def test_unreachable_upstream_is_an_error_that_names_no_secret(client: UpstreamClient) -> None:
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    with pytest.raises(UpstreamError) as caught:
        await client.post(f"http://127.0.0.1:{port}/v1/x", b"{}", {"authorization": "Bearer sk-secret"})
    assert f"127.0.0.1:{port}" in str(caught.value) and "sk-secret" not in str(caught.value)


async def test_tls_upstream_verified_against_the_system_trust(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    authority = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(server_context)

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(answer(b'{"secure": true}'))

    server = RawServer(handler)
    url = await server.start(server_context)

    untrusting = UpstreamClient(connect_timeout=5)
    with pytest.raises(UpstreamError):
        await post_and_read(untrusting, url)

    authority.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "ca.pem"))
    trusting = UpstreamClient(connect_timeout=5)
    assert await post_and_read(trusting, url) == (200, b'{"secure": true}')
    await trusting.close()


async def test_idle_pool_is_capped_after_a_burst(client: UpstreamClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("crossroute.upstream_http.MAX_IDLE_PER_ORIGIN", 4)

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                await read_request(reader)
            except asyncio.IncompleteReadError:
                return
            await asyncio.sleep(0.05)  # long enough for all of the burst to be open at once
            writer.write(answer(b"{}"))

    server = RawServer(handler)
    url = await server.start()
    assert await asyncio.gather(*(post_and_read(client, url) for _ in range(10))) == [(200, b"{}")] * 10
    assert server.connections == 10
    pooled = client._idle[next(iter(client._idle))]
    assert len(pooled) == 4
    assert await post_and_read(client, url) == (200, b"{}")
    assert server.connections == 10  # the next request reused a pooled connection


async def test_a_head_in_many_small_pieces_is_parsed_whole(client: UpstreamClient) -> None:
    whole = b"HTTP/1.1 103 Early Hints\r\nlink: </x>\r\n\r\n" + answer(b'{"pieces": true}', b"x-long: " + b"v" * 3000
                                                                      + b"\r\n")

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        for start in range(0, len(whole), 7):  # seams anywhere, the blank lines included
            writer.write(whole[start:start + 7])
            await writer.drain()
            await asyncio.sleep(0)

    server = RawServer(handler)
    url = await server.start()
    response = await client.post(url, b"{}", {})
    assert response.status == 200 and response.headers["x-long"] == "v" * 3000
    assert await response.read() == b'{"pieces": true}'


async def test_a_bare_lf_head_is_refused_at_once(client: UpstreamClient) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\ncontent-length: 2\n\n{}")
        await asyncio.sleep(5)

    server = RawServer(handler)
    url = await server.start()
    with pytest.raises(UpstreamError, match="malformed"):
        await client.post(url, b"{}", {}, read_timeout=4)


async def test_endless_trailers_are_cut_off(client: UpstreamClient) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\nx-trailer: ")
        for _ in range(256):  # 16 MiB at most
            writer.write(b"t" * 65536)
            await writer.drain()

    server = RawServer(handler)
    url = await server.start()
    response = await client.post(url, b"{}", {})
    with pytest.raises(UpstreamLimit, match="trailers"):
        await response.read()

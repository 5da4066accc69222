"""Requests as the server reads them, and replies that know how to write themselves."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from crossroute.server.protocol import HttpConnection


@dataclass(slots=True)
class Served:
    """Where a request went, for its access line; filled in by the pipeline."""

    model: str = ""
    provider: str = ""
    account: str = ""  # the account id (`provider#index`), never the key


@dataclass(slots=True)
class HttpRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # names in lower case
    body: bytes = b""
    keep_alive: bool = True
    http10: bool = False
    admitted: bool = False  # the server already had the app admit its head
    served: Served = field(default_factory=Served)


def _header_lines(headers: dict[str, str], content_type: str) -> bytes:
    lines = [f"content-type: {content_type}\r\n"]
    lines.extend(f"{name}: {value}\r\n" for name, value in headers.items())
    return "".join(lines).encode("latin-1")


@dataclass(slots=True)
class JsonReply:
    status: int
    body: Any  # JSON-able, or bytes already encoded
    headers: dict[str, str] = field(default_factory=dict)

    async def send(self, conn: HttpConnection) -> None:
        payload = self.body if isinstance(self.body, bytes) else orjson.dumps(self.body)
        content_type = self.headers.pop("content-type", "application/json")
        conn.send_whole(self.status, _header_lines(self.headers, content_type), payload)


@dataclass(slots=True)
class StreamReply:
    """Streams `chunks` as they come."""

    status: int
    chunks: AsyncIterator[bytes]
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "text/event-stream"
    abort: Callable[[], bytes] | None = None  # the format's error event and terminator, to end the stream early

    async def send(self, conn: HttpConnection) -> None:
        conn.start_stream(self.status, _header_lines({"cache-control": "no-cache", **self.headers}, self.content_type))
        try:
            async for chunk in self.chunks:
                conn.write_chunk(chunk)
                if conn.write_paused:
                    await conn.drain()
        except asyncio.CancelledError:
            if conn.transport is not None and self.abort is not None:  # the server is stopping, the client is there
                conn.write_chunk(self.abort())
                conn.end_stream()
                conn.flush()
            raise
        finally:
            with contextlib.suppress(Exception):
                await self.chunks.aclose()  # type: ignore[attr-defined]
        conn.end_stream()


Reply = JsonReply | StreamReply

"""Open N streaming requests at once through a gateway and hold them until the (slow) upstream ends
them; check every answer with the SDK types of bench/bodies.py.

Used by bench/run.py for the 1,000-open-streams test (wrk cannot hold slow streams it does not count).
Returns a summary: streams completed, errors, time until all were open, time until all ended.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from bodies import BadResponse, check_response


@dataclass
class Result:
    ok: int = 0
    errors: int = 0
    first_error: str = ""
    open_s: float = 0.0      # until every request was sent and its response headers had arrived
    total_s: float = 0.0     # until the last stream ended
    statuses: dict[int, int] = field(default_factory=dict)


async def _read_body(reader: asyncio.StreamReader, head: bytes) -> bytes:
    """The response body by its framing (chunked, Content-Length, or until the server closes): a server
    that keeps the connection open after the last chunk must not look slow."""
    lower = head.lower()
    if b"transfer-encoding: chunked" in lower:
        out = bytearray()
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await reader.readuntil(b"\r\n")
                return bytes(out)
            out += await reader.readexactly(size)
            await reader.readexactly(2)
    for line in lower.split(b"\r\n"):
        if line.startswith(b"content-length:"):
            return await reader.readexactly(int(line.split(b":", 1)[1]))
    return await reader.read()


async def _one(url: str, path: str, body: bytes, headers: dict[str, str], client: str,
               result: Result, opened: list[float], start: float) -> None:
    parts = urlsplit(url)
    try:
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        head = f"POST {path} HTTP/1.1\r\nHost: {parts.netloc}\r\nContent-Length: {len(body)}\r\nConnection: close\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
        writer.write(head.encode() + body)
        await writer.drain()
        raw_head = await reader.readuntil(b"\r\n\r\n")
        opened.append(time.monotonic() - start)
        status = int(raw_head.split(b" ", 2)[1])
        result.statuses[status] = result.statuses.get(status, 0) + 1
        payload = await _read_body(reader, raw_head)
        writer.close()
        if status != 200:
            raise BadResponse(f"HTTP {status}: {payload[:200]!r}")
        # text and framing for every stream; the SDK types (slower, and run in this event loop) for the first
        check_response(client, True, payload, sdk_types=not result.ok)
        result.ok += 1
    except (OSError, asyncio.IncompleteReadError, ValueError, BadResponse) as exc:
        result.errors += 1
        if not result.first_error:
            result.first_error = f"{type(exc).__name__}: {exc}"[:300]


async def run(url: str, path: str, body: bytes, headers: dict[str, str], client: str, n: int,
              timeout: float = 120.0) -> Result:
    result, opened = Result(), []
    start = time.monotonic()
    tasks = [asyncio.create_task(_one(url, path, body, headers, client, result, opened, start)) for _ in range(n)]
    done, pending = await asyncio.wait(tasks, timeout=timeout)
    for task in pending:
        task.cancel()
    result.errors += len(pending)
    if pending and not result.first_error:
        result.first_error = f"{len(pending)} streams still open after {timeout:.0f} s"
    result.total_s = time.monotonic() - start
    result.open_s = max(opened) if opened else 0.0
    return result

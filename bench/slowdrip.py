"""A slow upstream for the open-streams test: every POST gets the Chat Completions SSE body of
bench/bodies.py, one event at a time, spread over DRIP seconds (default 10), chunked, keep-alive.

    python bench/slowdrip.py PORT [DRIP_SECONDS]

Small on purpose (asyncio streams, no dependencies beyond bench/bodies.py): it serves 1,000 open
streams with a few percent of one core, so the gateway is what the test measures.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bodies import chat_chunks  # noqa: E402

EVENTS = [f"data: {json.dumps(c, separators=(',', ':'))}\n\n".encode() for c in chat_chunks()] + [b"data: [DONE]\n\n"]
HEAD = (b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n")


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, drip: float) -> None:
    pause = drip / max(1, len(EVENTS) - 1)
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value.strip())
            if length:
                await reader.readexactly(length)
            writer.write(HEAD)
            for n, event in enumerate(EVENTS):
                if n:
                    await asyncio.sleep(pause)
                writer.write(b"%x\r\n%s\r\n" % (len(event), event))
                await writer.drain()
            writer.write(b"0\r\n\r\n")
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
        pass
    finally:
        writer.close()


async def main(port: int, drip: float) -> None:
    server = await asyncio.start_server(lambda r, w: handle(r, w, drip), "127.0.0.1", port, backlog=4096)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        import uvloop
        uvloop.install()
    except ImportError:
        pass
    asyncio.run(main(int(sys.argv[1]), float(sys.argv[2]) if len(sys.argv) > 2 else 10.0))

"""One access line per request, written when its reply is finished or its
connection drops: who asked what, where it went, and how it went.

No header, query string or body is logged: a client key can travel in any of
them (`?key=` included). The line is formatted only when the access log is on."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from crossroute.logs import ACCESS_LINES, field_value
from crossroute.server.http import HttpRequest

if TYPE_CHECKING:
    from crossroute.server.http import Reply
    from crossroute.server.protocol import HttpConnection

CLIENT_CLOSED = 499  # nginx's status for a client that went away before any reply


def peer_of(transport: asyncio.BaseTransport) -> str:
    """The client's address, once per connection."""
    peer = transport.get_extra_info("peername")
    return str(peer[0]) if isinstance(peer, tuple) else "-"


def begin(conn: HttpConnection) -> float:
    """A reply starts: the connection's counters start from zero."""
    conn.sent_status = 0
    conn.sent_bytes = 0
    conn.first_byte_at = 0.0
    return time.perf_counter()


def record(conn: HttpConnection, item: HttpRequest | Reply, started: float) -> None:
    if not ACCESS_LINES.on:
        return
    now = time.perf_counter()
    if isinstance(item, HttpRequest):
        method, path = item.method, item.path
        served = item.served
        model, provider, account = field_value(served.model), served.provider or "-", served.account or "-"
    else:  # a refusal of a request that could not be read: only its target is known
        method, path = conn.refused_target()  # reading stopped at it
        model = provider = account = "-"
    first_byte = int((conn.first_byte_at - started) * 1e6) if conn.first_byte_at else "-"
    ACCESS_LINES.write((conn.peer, field_value(method), field_value(path), conn.sent_status or CLIENT_CLOSED,
                        model, provider, account, conn.sent_bytes, first_byte, int((now - started) * 1e6)), now)

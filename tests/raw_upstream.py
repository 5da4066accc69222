"""Pieces for upstreams written by hand on a raw socket, for tests of what a
well-behaved fake would never send."""

from __future__ import annotations

import socket


def read_request(sock: socket.socket) -> bytes:
    """One HTTP request with a Content-Length body, read off the socket; its body."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length"))
    while len(body) < length:
        body += sock.recv(65536)
    return body

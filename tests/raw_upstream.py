"""Pieces for upstreams written by hand on a raw socket, for tests of what a
well-behaved fake would never send."""

from __future__ import annotations

import socket
import socketserver
import threading


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


class ThreadedUpstream(socketserver.ThreadingTCPServer):
    """A hand-written upstream on 127.0.0.1, one thread per connection, served
    from a background thread until stop()."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, handler: type[socketserver.BaseRequestHandler]) -> None:
        super().__init__(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.server_address[1]}"
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        self._thread.join(timeout=5)

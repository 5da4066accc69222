"""Running the gateway: one process, or worker processes sharing one socket."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path

from crossroute.config import Config
from crossroute.server.app import Gateway
from crossroute.server.protocol import HttpServer

log = logging.getLogger("crossroute")

GRACE_SECONDS = 5.0  # requests in flight get this long to finish on shutdown
_RESTART_PAUSE = 1.0  # between restarts of a worker that died


def new_event_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency where it builds
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


async def serve(gateway: Gateway, stop: asyncio.Event, *, host: str = "127.0.0.1", port: int = 0,
                sock: socket.socket | None = None, ready: Callable[[int], None] | None = None) -> None:
    """Serve until `stop` is set, then finish what is in flight."""
    server = HttpServer(gateway, gateway.config.server.max_body_bytes)
    try:
        bound = await server.start(sock or listening_socket(host, port))
        if ready is not None:
            ready(bound)
        await stop.wait()
    finally:
        await server.stop(GRACE_SECONDS)
        await gateway.stop()


def listening_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(4096)
    sock.setblocking(False)
    return sock


def run(config: Config, state_path: str | Path, workers: int, announce: Callable[[], None] = lambda: None) -> int:
    """`crossroute serve`: blocks until SIGINT or SIGTERM."""
    sock = listening_socket(config.server.host, config.server.port)
    announce()
    if workers <= 1:
        _run_worker(config, state_path, sock)
        return 0
    return _supervise(config, state_path, sock, workers)


def _run_worker(config: Config, state_path: str | Path, sock: socket.socket) -> None:
    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await serve(Gateway(config, state_path), stop, sock=sock)

    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        runner.run(main())


def _supervise(config: Config, state_path: str | Path, sock: socket.socket, workers: int) -> int:
    """Fork the workers (each its own event loop, store connection and upstream
    pool) and keep them running until told to stop."""
    children: set[int] = set()
    stopping = False

    def stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    for _ in range(workers):
        children.add(_fork_worker(config, state_path, sock))
    while children:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        except InterruptedError:  # pragma: no cover - PEP 475 retries os.wait
            continue
        children.discard(pid)
        if not stopping:
            log.error("worker %d exited (status %d); starting another", pid, status)
            time.sleep(_RESTART_PAUSE)
            children.add(_fork_worker(config, state_path, sock))
    return 0


def _fork_worker(config: Config, state_path: str | Path, sock: socket.socket) -> int:
    pid = os.fork()
    if pid:
        return pid
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    code = 0
    try:
        _run_worker(config, state_path, sock)
    except BaseException:  # noqa: BLE001 - a worker must never return into the supervisor's loop
        log.exception("worker failed")
        code = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)

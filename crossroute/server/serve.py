"""Running the gateway: one process, or worker processes sharing one socket."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import errno
import logging
import math
import os
import resource
import signal
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path

from crossroute.config import Config
from crossroute.server.app import Gateway
from crossroute.server.protocol import HttpServer, Limits

log = logging.getLogger("crossroute")

_RESTART_PAUSE = 1.0  # between restarts of a worker that died
_BIND_PATIENCE = 5.0  # a restart waits this long for a predecessor's workers to let go of the port
_FD_RESERVE = 128  # open files kept for upstream sockets, the store and logs, beside client connections
_PR_SET_PDEATHSIG = 1


def new_event_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency where it builds
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


async def serve(gateway: Gateway, stop: asyncio.Event, *, host: str = "127.0.0.1", port: int = 0,
                sock: socket.socket | None = None, ready: Callable[[int], None] | None = None) -> None:
    """Serve until `stop` is set, then finish what is in flight."""
    config = gateway.config.server
    server = HttpServer(gateway, Limits.from_config(config, connection_cap(config.max_connections)))
    try:
        bound = await server.start(sock or listening_socket(host, port))
        if ready is not None:
            ready(bound)
        await stop.wait()
    finally:
        await server.stop(config.shutdown_grace_seconds)
        await gateway.stop()


def connection_cap(configured: int) -> int:
    """Client connections one worker accepts: the configured number, within the open-files limit."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return configured
    return max(1, min(configured, soft - _FD_RESERVE))


def raise_open_files_limit() -> None:
    """Up to the hard limit: the soft one is often 1024, fewer than the connections a worker may hold."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else 1 << 20
    if soft != resource.RLIM_INFINITY and soft < target:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def listening_socket(host: str, port: int, patience: float = 0.0) -> socket.socket:
    """A socket listening on host:port; with `patience`, waits that long for the port to be let go
    (the workers of a gateway that just died close theirs within moments)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    deadline = time.monotonic() + patience
    while True:
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            sock.close()
            if exc.errno != errno.EADDRINUSE or time.monotonic() >= deadline:
                raise
            time.sleep(0.1)
            continue
        sock.listen(4096)
        sock.setblocking(False)
        return sock


def run(config: Config, state_path: str | Path, workers: int, announce: Callable[[], None] = lambda: None) -> int:
    """`crossroute serve`: blocks until SIGINT or SIGTERM."""
    sock = listening_socket(config.server.host, config.server.port, _BIND_PATIENCE)
    raise_open_files_limit()
    announce()
    if workers <= 1:
        _run_worker(config, state_path, sock)
        return 0
    return _supervise(config, state_path, sock, workers)


def _run_worker(config: Config, state_path: str | Path, sock: socket.socket, supervisor: int | None = None) -> None:
    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        if supervisor is None:
            loop.add_signal_handler(signal.SIGHUP, _reload_not_supported)
        else:
            _watch_supervisor(loop, supervisor, stop)
        await serve(Gateway(config, state_path), stop, sock=sock)

    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        runner.run(main())


def _reload_not_supported(*_: object) -> None:
    log.warning("SIGHUP: reloading the config is not supported yet; still serving with the one loaded at start")


def _watch_supervisor(loop: asyncio.AbstractEventLoop, supervisor: int, stop: asyncio.Event) -> None:
    """Stop when the supervisor is gone (a fallback where PR_SET_PDEATHSIG is missing or came too late)."""
    if os.getppid() != supervisor:
        stop.set()
    else:
        loop.call_later(1.0, _watch_supervisor, loop, supervisor, stop)


def _supervise(config: Config, state_path: str | Path, sock: socket.socket, workers: int) -> int:
    """Fork the workers (each its own event loop, store connection and upstream
    pool) and keep them running until told to stop."""
    children: set[int] = set()
    stopping = False

    def stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        if not stopping:
            stopping = True
            sock.close()  # with the workers' copies closed too, new connections are refused, not left waiting
            signal.alarm(math.ceil(config.server.shutdown_grace_seconds) + 10)
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    def overdue(signum: int, _frame: object) -> None:
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGALRM, overdue)
    signal.signal(signal.SIGHUP, _reload_not_supported)
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
            if not stopping:
                children.add(_fork_worker(config, state_path, sock))
    return 0


def _fork_worker(config: Config, state_path: str | Path, sock: socket.socket) -> int:
    supervisor = os.getpid()
    pid = os.fork()
    if pid:
        return pid
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGALRM):
        signal.signal(signum, signal.SIG_DFL)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    _die_with_parent()
    code = 0
    try:
        if os.getppid() == supervisor:  # else it died before the death signal was set up
            _run_worker(config, state_path, sock, supervisor)
    except BaseException:  # noqa: BLE001 - a worker must never return into the supervisor's loop
        log.exception("worker failed")
        code = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _die_with_parent() -> None:
    """Linux: SIGTERM (a graceful stop) when the supervisor dies, even by SIGKILL."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)

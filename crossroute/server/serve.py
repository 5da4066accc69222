"""Running the gateway: one process, or worker processes sharing one socket;
stopping, supervising and reloading them (the reload itself: reload.py)."""

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

from crossroute.config import Config, ServerConfig
from crossroute.logs import ACCESS_LINES
from crossroute.server.app import Gateway
from crossroute.server.protocol import HttpServer, Limits
from crossroute.server.reload import ConfigSource, LiveGateway, watching

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
                sock: socket.socket | None = None, ready: Callable[[int], None] | None = None,
                source: ConfigSource | None = None, supervised: bool = False) -> None:
    """Serve until `stop` is set, then finish what is in flight. With a config
    `source` (in the main thread only), SIGHUP reloads it."""
    server = HttpServer(gateway, server_limits(gateway.config.server))
    live = LiveGateway(server, gateway, server_limits, source, supervised=supervised)
    try:
        bound = await server.start(sock or listening_socket(host, port))
        gateway.shared.watch_accounts()
        if source is not None:
            _reload_on_sighup(live)
        if ready is not None:
            ready(bound)
        await stop.wait()
    finally:
        live.draining = True
        await server.stop(live.gateway.config.server.shutdown_grace_seconds)
        await live.stop()
        if source is not None:
            asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
            signal.signal(signal.SIGHUP, signal.SIG_IGN)  # the watcher may still send one while the process ends


def _reload_on_sighup(live: LiveGateway) -> None:
    asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, live.reload)
    # A SIGHUP sent while starting waited (blocked) for this handler: it is taken now.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGHUP})


def server_limits(config: ServerConfig) -> Limits:
    return Limits.from_config(config, connection_cap(config.max_connections))


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


def run(config: Config, state_path: str | Path, workers: int, source: ConfigSource | None = None,
        announce: Callable[[], None] = lambda: None) -> int:
    """`crossroute serve`: blocks until SIGINT or SIGTERM; SIGHUP or an edit of the config file reloads it."""
    source = source or ConfigSource(None)
    sock = listening_socket(config.server.host, config.server.port, _BIND_PATIENCE)
    raise_open_files_limit()
    announce()
    if workers > 1:
        return Supervisor(config, state_path, sock, source).run(workers)
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGHUP})  # until the server can reload (the watcher may send one)
    with watching(source.path):
        _run_worker(config, state_path, sock, source)
    return 0


def _run_worker(config: Config, state_path: str | Path, sock: socket.socket, source: ConfigSource,
                supervisor: int | None = None) -> None:
    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        if supervisor is not None:
            _watch_supervisor(loop, supervisor, stop)
        await serve(Gateway(config, state_path), stop, sock=sock, source=source, supervised=supervisor is not None)

    try:
        with asyncio.Runner(loop_factory=new_event_loop) as runner:
            runner.run(main())
    finally:
        ACCESS_LINES.flush()


def _watch_supervisor(loop: asyncio.AbstractEventLoop, supervisor: int, stop: asyncio.Event) -> None:
    """Stop when the supervisor is gone (a fallback where PR_SET_PDEATHSIG is missing or came too late)."""
    if os.getppid() != supervisor:
        stop.set()
    else:
        loop.call_later(1.0, _watch_supervisor, loop, supervisor, stop)


class Supervisor:
    """Forks the workers (each its own event loop, store connection and upstream
    pool), replaces one that dies, passes reloads on, and stops them all."""

    def __init__(self, config: Config, state_path: str | Path, sock: socket.socket, source: ConfigSource) -> None:
        self.config = config  # the latest valid one: a worker started from now on starts from it
        self.reloads = 0
        self.state_path = state_path
        self.sock = sock
        self.source = source
        self.children: set[int] = set()
        self.stopping = False

    def run(self, workers: int) -> int:
        signal.signal(signal.SIGINT, self._stop)
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGALRM, self._overdue)
        signal.signal(signal.SIGHUP, self._reload)
        with watching(self.source.path):  # from before the workers start: no edit falls between
            for _ in range(workers):
                self._start_worker()
            self._keep_workers()
        return 0

    def _keep_workers(self) -> None:
        while self.children:
            try:
                pid, status = os.wait()
            except ChildProcessError:
                break
            except InterruptedError:  # pragma: no cover - PEP 475 retries os.wait
                continue
            self.children.discard(pid)
            if not self.stopping:
                log.error("worker %d exited (status %d); starting another", pid, status)
                time.sleep(_RESTART_PAUSE)
                if not self.stopping:
                    self._start_worker()

    def _start_worker(self) -> None:
        reloads = self.reloads
        # The worker starts with SIGHUP blocked and takes it once it can reload; here, a SIGHUP waits
        # until the worker is among the children it is passed on to.
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGHUP})
        try:
            pid = _fork_worker(self.config, self.state_path, self.sock, self.source)
            self.children.add(pid)
            missed = self.reloads != reloads  # a reload handled between the fork and now
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGHUP})
        if missed:
            self._signal(pid, signal.SIGHUP)

    def _stop(self, signum: int, _frame: object) -> None:
        if not self.stopping:
            self.stopping = True
            self.sock.close()  # with the workers' copies closed too, new connections are refused, not left waiting
            signal.alarm(math.ceil(self.config.server.shutdown_grace_seconds) + 10)
        self._signal_all(signal.SIGTERM)

    def _overdue(self, signum: int, _frame: object) -> None:
        self._signal_all(signal.SIGKILL)

    def _reload(self, signum: int, _frame: object) -> None:
        if self.stopping:
            log.warning("SIGHUP while shutting down: ignored")
            return
        config = self.source.reread(self.config)
        if config is None:
            return
        self.config = config
        self.reloads += 1
        self._signal_all(signal.SIGHUP)
        log.info("config reloaded from %s; the workers reload it too", self.source.path)

    def _signal_all(self, signum: int) -> None:
        for pid in list(self.children):
            self._signal(pid, signum)

    @staticmethod
    def _signal(pid: int, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)


def _fork_worker(config: Config, state_path: str | Path, sock: socket.socket, source: ConfigSource) -> int:
    supervisor = os.getpid()
    pid = os.fork()
    if pid:
        return pid
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGALRM, signal.SIGHUP):  # SIGHUP is still blocked
        signal.signal(signum, signal.SIG_DFL)
    _die_with_parent()
    code = 0
    try:
        if os.getppid() == supervisor:  # else it died before the death signal was set up
            _run_worker(config, state_path, sock, source, supervisor)
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

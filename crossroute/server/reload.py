"""Reloading the config while serving, without dropping a request.

SIGHUP, or an edit of the config file (a watcher thread turns it into a SIGHUP
to its own process), reads the file again. A config that loads and checks
becomes a new Gateway that takes every new request; the Gateway it replaces
finishes the requests it is answering, open streams included, then stops (its
upstream pool closes). The Responses store, the counters and the account state
are handed from one Gateway to the next (app.Shared), never opened twice. A
config that does not load is refused with its file:line message in the log,
and the running one keeps serving.

With worker processes, the supervisor reads and checks the file once, keeps it
for the workers it starts from then on (a dead worker's replacement starts from
the latest config), and passes the SIGHUP on; each worker reads the file again
and swaps its own Gateway."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import watchfiles

from crossroute.config import Config, ConfigError, ServerConfig, load_config
from crossroute.server.app import Gateway
from crossroute.server.protocol import HttpServer, Limits, Serving

log = logging.getLogger("crossroute")

# Settings a running process cannot change: a reload keeps their running values and says so.
RESTART_ONLY = ("server.host", "server.port", "server.workers", "server.log_format", "server.access_log",
                "state.backend", "state.path", "state.auth_dir")
_RETIRE_PATIENCE = 2.0  # at shutdown, after the drain, for replaced gateways to see their last request end
_LOOK_ANYWAY_MS = 1000  # the watcher compares the file's content this often even without an event
# Taken by the main thread only: one delivered to this thread would not wake a supervisor blocked in os.wait().
_MAIN_THREAD_SIGNALS = {signal.SIGHUP, signal.SIGINT, signal.SIGTERM, signal.SIGALRM}
_NOT_RELOADED = "%s not reloaded; still serving the config loaded before: %s"


def _no_overrides(config: Config) -> None:
    pass


class ConfigSource:
    """Where the running config came from, to read it again: the file, and what
    the command line sets over it (applied again on each reload)."""

    def __init__(self, path: str | None, overrides: Callable[[Config], None] = _no_overrides) -> None:
        self.path = path
        self.overrides = overrides

    def reread(self, running: Config, *, report_restart_only: bool = True) -> Config | None:
        """The file's config as it is now, with the settings that need a restart
        kept at their running values; None (and why, in the log) if it cannot be used."""
        if self.path is None:
            log.warning("SIGHUP: the gateway was started without --config; there is nothing to reload")
            return None
        try:
            config = load_config(self.path)
            self.overrides(config)
            kept = _keep_restart_only(running, config)
            config.check_bind()
        except ConfigError as exc:
            log.error(_NOT_RELOADED, self.path, exc)
            return None
        except (OSError, UnicodeDecodeError) as exc:
            log.error(_NOT_RELOADED, self.path, getattr(exc, "strerror", None) or exc)
            return None
        if report_restart_only:
            for setting, running_value, wanted in kept:
                log.warning("%s: %s changed from %r to %r, which needs a restart; the rest of the config is applied",
                            self.path, setting, running_value, wanted)
        return config


def _keep_restart_only(running: Config, new: Config) -> list[tuple[str, Any, Any]]:
    """Set the restart-only settings of `new` back to their running values; the ones that differed."""
    kept = []
    for setting in RESTART_ONLY:
        section_name, name = setting.split(".")
        section = getattr(new, section_name)
        running_value, wanted = getattr(getattr(running, section_name), name), getattr(section, name)
        if running_value != wanted:
            kept.append((setting, running_value, wanted))
            setattr(section, name, running_value)
    return kept


class LiveGateway:
    """The Gateway new requests go to, swapped by a reload; each one it replaced
    stops once the requests it was answering have ended."""

    def __init__(self, server: HttpServer, gateway: Gateway, limits_for: Callable[[ServerConfig], Limits],
                 source: ConfigSource | None = None, *, supervised: bool = False) -> None:
        self.server = server
        self.gateway = gateway
        self.limits_for = limits_for
        self.source = source
        self.supervised = supervised  # the supervisor already logged the settings that need a restart
        self.draining = False  # shutting down: reloads are ignored
        self.retiring: set[asyncio.Task[None]] = set()

    def reload(self) -> None:
        if self.draining:
            log.warning("SIGHUP while shutting down: ignored")
            return
        if self.source is None:
            return
        config = self.source.reread(self.gateway.config, report_restart_only=not self.supervised)
        if config is None:
            return
        try:
            gateway = Gateway(config, self.gateway.store.path, self.gateway.shared)
        except Exception as exc:  # noqa: BLE001 - a config the checks let through must not stop the serving one
            log.error(_NOT_RELOADED, self.source.path, f"{type(exc).__name__}: {exc}")
            return
        self.swap(gateway)
        log.info("config reloaded from %s%s", self.source.path, f" (worker {os.getpid()})" if self.supervised else "")

    def swap(self, gateway: Gateway) -> None:
        old, self.gateway = self.gateway, gateway
        gateway.start()
        gateway.store.ttl = gateway.config.state.response_ttl_seconds
        serving = self.server.swap_app(gateway, self.limits_for(gateway.config.server))
        task = asyncio.get_running_loop().create_task(self._retire(old, serving))
        self.retiring.add(task)
        task.add_done_callback(self.retiring.discard)

    async def _retire(self, old: Gateway, serving: Serving) -> None:
        try:
            await self.server.finished(serving)
        finally:
            await old.retire()
            log.debug("the gateway of the config before the reload has stopped")

    async def stop(self) -> None:
        """After the server's drain: the replaced gateways, then the current one and what they shared."""
        self.draining = True
        if self.retiring:
            _, late = await asyncio.wait(self.retiring, timeout=_RETIRE_PATIENCE)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        await self.gateway.stop()


class ConfigWatcher:
    """A thread that sends SIGHUP to this process when the config file's content
    changes (written in place, or replaced by a rename as editors do)."""

    def __init__(self, path: str) -> None:
        self.path = Path(path).absolute()
        self.stopped = threading.Event()
        self.content = self._read()
        self.thread = threading.Thread(target=self._watch, name="config-watcher", daemon=True)

    def _read(self) -> bytes | None:
        try:
            return self.path.read_bytes()
        except OSError:
            return None

    def _watch(self) -> None:
        signal.pthread_sigmask(signal.SIG_BLOCK, _MAIN_THREAD_SIGNALS)
        logging.getLogger("watchfiles").setLevel(logging.WARNING)  # it says "N changes detected" at info
        name = self.path.name
        try:
            # Also a look every second without an event: an edit while the watch was being set up, or where
            # file events do not arrive (some network and container file systems).
            for _ in watchfiles.watch(self.path.parent, watch_filter=lambda _change, path: Path(path).name == name,
                                      recursive=False, stop_event=self.stopped, raise_interrupt=False,
                                      rust_timeout=_LOOK_ANYWAY_MS, yield_on_timeout=True):
                content = self._read()
                if content != self.content:
                    self.content = content
                    os.kill(os.getpid(), signal.SIGHUP)
        except Exception as exc:  # noqa: BLE001 - e.g. out of inotify watches: SIGHUP still reloads
            log.warning("cannot watch %s for changes (%s); send SIGHUP after editing it", self.path, exc)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join(timeout=2.0)


@contextlib.contextmanager
def watching(path: str | None) -> Iterator[None]:
    """The config file watched while the block runs (nothing to watch without one)."""
    if path is None:
        yield
        return
    watcher = ConfigWatcher(path)
    watcher.start()
    try:
        yield
    finally:
        watcher.stop()

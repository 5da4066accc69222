"""Run a real crossroute gateway (its own HTTP server, real sockets) in a background thread."""

from __future__ import annotations

import asyncio
import socket
import threading
from pathlib import Path
from typing import Any

import yaml

from crossroute.config import Config, parse_config
from crossroute.server.app import Gateway
from crossroute.server.serve import new_event_loop, serve


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RunningGateway:
    def __init__(self, config: Config | dict[str, Any], state_path: str | Path) -> None:
        if isinstance(config, dict):
            config = parse_config(yaml.safe_dump(config))
        self.config = config
        self.app = Gateway(config, state_path)
        self._loop = new_event_loop()
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._failure: BaseException | None = None
        self.port = 0
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        if not self._ready.wait(15) or self._failure is not None:
            raise RuntimeError(f"gateway did not start: {self._failure!r}")
        config.server.port = self.port
        self.url = f"http://127.0.0.1:{self.port}"

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._main())
        except BaseException as exc:  # noqa: BLE001 - reported to the constructor
            self._failure = exc
            self._ready.set()
        finally:
            self._loop.close()

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        await serve(self.app, self._stop, ready=self._started)

    def _started(self, port: int) -> None:
        self.port = port
        self._ready.set()

    def stop(self) -> None:
        if self._stop is not None and self.thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
        self.thread.join(timeout=10)

    def __enter__(self) -> RunningGateway:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

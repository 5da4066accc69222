"""Run a real crossroute gateway (uvicorn, real sockets) in a background thread."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from pathlib import Path
from typing import Any

import uvicorn
import yaml

from crossroute.config import Config, parse_config
from crossroute.server.app import Gateway


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RunningGateway:
    def __init__(self, config: Config | dict[str, Any], state_path: str | Path) -> None:
        if isinstance(config, dict):
            config = parse_config(yaml.safe_dump(config))
        self.port = free_port()
        config.server.port = self.port
        self.config = config
        self.app = Gateway(config, state_path)
        self.url = f"http://127.0.0.1:{self.port}"
        server_config = uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning",
                                       lifespan="on", access_log=False)
        self.server = uvicorn.Server(server_config)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("gateway did not start")
            time.sleep(0.02)

    def _run(self) -> None:
        asyncio.run(self.server.serve())

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)

    def __enter__(self) -> RunningGateway:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

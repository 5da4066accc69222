"""ThreadedApp: a fake service on 127.0.0.1 (one aiohttp app in its own thread) with a clock tests can move."""

from __future__ import annotations

import asyncio
import threading
import time
from abc import ABC, abstractmethod
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qsl

import orjson
from aiohttp import web

from .script import Recorded


class ThreadedApp(ABC):
    """Serves `build_app()` from a daemon thread until stop(); every request it reads is kept in `requests`.

    `now()` is the fake's clock: wall time plus whatever `advance()` added, so a test can let tokens and
    device codes expire without sleeping.
    """

    thread_name = "fake-service"

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.lock = (
            threading.Lock()
        )  # guards the fake's state: handlers run in our thread, controls in the test's
        self._offset = 0.0
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._port = 0
        self._started = threading.Event()
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=self.thread_name, daemon=True)

    def start(self) -> None:
        """Subclasses call this at the end of __init__, once their state exists."""
        self._thread.start()
        self._started.wait(10)
        if self._failure is not None:
            raise RuntimeError(f"{self.thread_name} failed to start") from self._failure

    @abstractmethod
    def build_app(self) -> web.Application: ...

    # ------------------------------------------------------------- public API

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    def now(self) -> float:
        return time.time() + self._offset

    def advance(self, seconds: float) -> None:
        """Move the fake's clock forward (expiry of tokens, codes and quota windows follows it)."""
        self._offset += seconds

    def requests_to(self, path: str) -> list[Recorded]:
        return [r for r in self.requests if r.path == path]

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        if self._runner is not None:
            future = asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop)
            try:
                future.result(timeout=5)
            except Exception:  # noqa: BLE001 - a slow shutdown must not fail the test that stops us
                pass
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # ------------------------------------------------------------- helpers for handlers

    async def record(self, request: web.Request, protocol: str) -> Recorded:
        """Read the body (JSON or form-encoded) and keep the request; `body` is None when it parses as neither."""
        raw = await request.read()
        recorded = Recorded(
            method=request.method,
            path=request.path,
            query=dict(request.query),
            headers={k.lower(): v for k, v in request.headers.items()},
            body=parse_body(raw, request.content_type),
            protocol=protocol,
            raw=raw,
            raw_path=request.raw_path,
        )
        self.requests.append(recorded)
        return recorded

    # ------------------------------------------------------------- server

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._start())
        except BaseException as exc:  # noqa: BLE001 - reported to start()
            self._failure = exc
            self._started.set()
            return
        self._started.set()
        self._loop.run_forever()
        self._loop.run_until_complete(self._loop.shutdown_asyncgens())
        self._loop.close()

    async def _start(self) -> None:
        runner = web.AppRunner(
            self.build_app(), access_log=None, shutdown_timeout=0.5, handler_cancellation=True
        )
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self._runner = runner
        self._port = runner.addresses[0][1]


def parse_body(raw: bytes, content_type: str) -> Any:
    if not raw:
        return None
    if content_type == "application/x-www-form-urlencoded":
        try:
            return dict(parse_qsl(raw.decode(), keep_blank_values=True, strict_parsing=True))
        except (UnicodeDecodeError, ValueError):
            return None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None


def json_answer(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status, body=orjson.dumps(body), content_type="application/json", headers=headers
    )

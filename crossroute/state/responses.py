"""The Responses API store: what `previous_response_id` and GET/DELETE read.

SQLite (WAL) in a file under the user's data dir by default. Calls run in a
single worker thread so the event loop never waits on the disk."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from crossroute import ir
from crossroute.state.codec import messages_from_json, messages_to_json


@dataclass(slots=True)
class StoredResponse:
    id: str
    messages: list[ir.Message]  # the whole conversation that produced it, inputs then this output
    input_count: int  # how many of `messages` were the request's own input (for input_items)
    rendered: dict[str, Any]  # the Responses object as the client saw it


_SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    id TEXT PRIMARY KEY,
    expires_at REAL NOT NULL,
    body BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS responses_expiry ON responses (expires_at);
"""


class ResponseStore:
    def __init__(self, path: str | Path, ttl_seconds: float) -> None:
        self.path = str(path)
        self.ttl = ttl_seconds
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="response-store")
        self._db: sqlite3.Connection | None = None

    def _connect(self) -> sqlite3.Connection:
        if self._db is None:
            db = sqlite3.connect(self.path, check_same_thread=False, timeout=30)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.executescript(_SCHEMA)
            self._db = db
        return self._db

    async def _run(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def put(self, stored: StoredResponse) -> None:
        body = orjson.dumps({
            "messages": messages_to_json(stored.messages),
            "input_count": stored.input_count,
            "rendered": stored.rendered,
        })
        await self._run(self._put, stored.id, time.time() + self.ttl, body)

    def _put(self, response_id: str, expires_at: float, body: bytes) -> None:
        db = self._connect()
        with db:
            db.execute("INSERT OR REPLACE INTO responses (id, expires_at, body) VALUES (?, ?, ?)",
                       (response_id, expires_at, body))
            db.execute("DELETE FROM responses WHERE expires_at < ?", (time.time(),))

    async def get(self, response_id: str) -> StoredResponse | None:
        row = await self._run(self._get, response_id)
        if row is None:
            return None
        data = orjson.loads(row)
        return StoredResponse(response_id, messages_from_json(data["messages"]), data["input_count"], data["rendered"])

    def _get(self, response_id: str) -> bytes | None:
        row = self._connect().execute(
            "SELECT body FROM responses WHERE id = ? AND expires_at >= ?", (response_id, time.time())
        ).fetchone()
        return row[0] if row else None

    async def delete(self, response_id: str) -> bool:
        return bool(await self._run(self._delete, response_id))

    def _delete(self, response_id: str) -> int:
        db = self._connect()
        with db:
            return db.execute("DELETE FROM responses WHERE id = ?", (response_id,)).rowcount

    def close(self) -> None:
        def _close() -> None:
            if self._db is not None:
                self._db.close()
                self._db = None
        self._executor.submit(_close).result()
        self._executor.shutdown()

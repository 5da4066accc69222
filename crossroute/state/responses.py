"""The Responses API store: what `previous_response_id` and GET/DELETE read.

SQLite (WAL) in a file under the user's data dir by default. Calls run in a
single worker thread so the event loop never waits on the disk. Each response
belongs to the client key that made it (a hash of it); to any other key it is
missing."""

from __future__ import annotations

import asyncio
import hashlib
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
    owner: str  # owner_of() the client key that made it; other keys cannot see it
    messages: list[ir.Message]  # the whole conversation that produced it, inputs then this output
    input_count: int  # how many of `messages` were the request's own input (for input_items)
    rendered: dict[str, Any]  # the Responses object as the client saw it


_SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    id TEXT PRIMARY KEY,
    expires_at REAL NOT NULL,
    body BLOB NOT NULL,
    owner TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS responses_expiry ON responses (expires_at);
"""
# Files written before responses had owners: their rows go to the keyless owner "".
_ADD_OWNER = "ALTER TABLE responses ADD COLUMN owner TEXT NOT NULL DEFAULT ''"
KEYLESS = ""  # the one owner on a gateway without client keys


class StoreError(Exception):
    """The store could not do what was asked (disk full, locked, corrupt)."""


def owner_of(client_key: str | None) -> str:
    """Who a stored response belongs to: a hash of the client key (never the key
    itself), or "" on a gateway without keys."""
    if not client_key:
        return KEYLESS
    return hashlib.sha256(client_key.encode()).hexdigest()[:32]


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
            _add_owner_column(db)
            self._db = db
        return self._db

    async def _run(self, fn: Any, *args: Any) -> Any:
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(f"{type(exc).__name__}: {exc}") from exc

    async def put(self, stored: StoredResponse) -> None:
        body = orjson.dumps({
            "messages": messages_to_json(stored.messages),
            "input_count": stored.input_count,
            "rendered": stored.rendered,
        })
        await self._run(self._put, stored.id, stored.owner, time.time() + self.ttl, body)

    def _put(self, response_id: str, owner: str, expires_at: float, body: bytes) -> None:
        """Committed when this returns: WAL with synchronous=NORMAL keeps it
        through a kill of the process (a power loss may take the last ones)."""
        db = self._connect()
        with db:
            db.execute("INSERT OR REPLACE INTO responses (id, owner, expires_at, body) VALUES (?, ?, ?, ?)",
                       (response_id, owner, expires_at, body))
            db.execute("DELETE FROM responses WHERE expires_at < ?", (time.time(),))

    async def get(self, response_id: str, owner: str) -> StoredResponse | None:
        """The response, or None when it is missing, expired or another owner's (alike, on purpose)."""
        row = await self._run(self._get, response_id, owner)
        if row is None:
            return None
        data = orjson.loads(row)
        return StoredResponse(response_id, owner, messages_from_json(data["messages"]), data["input_count"],
                              data["rendered"])

    def _get(self, response_id: str, owner: str) -> bytes | None:
        row = self._connect().execute(
            "SELECT body FROM responses WHERE id = ? AND owner = ? AND expires_at >= ?",
            (response_id, owner, time.time()),
        ).fetchone()
        return row[0] if row else None

    async def delete(self, response_id: str, owner: str) -> bool:
        return bool(await self._run(self._delete, response_id, owner))

    def _delete(self, response_id: str, owner: str) -> int:
        db = self._connect()
        with db:
            return db.execute("DELETE FROM responses WHERE id = ? AND owner = ?", (response_id, owner)).rowcount

    def close(self) -> None:
        def _close() -> None:
            if self._db is not None:
                self._db.close()
                self._db = None
        self._executor.submit(_close).result()
        self._executor.shutdown()


def _add_owner_column(db: sqlite3.Connection) -> None:
    columns = {row[1] for row in db.execute("PRAGMA table_info(responses)")}
    if "owner" in columns:
        return
    try:
        with db:
            db.execute(_ADD_OWNER)
    except sqlite3.OperationalError as exc:  # another worker added it first
        if "duplicate column" not in str(exc):
            raise

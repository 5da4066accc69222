"""Logging for `crossroute serve`: the stderr handler (text or JSON lines), the
escaping of text that comes from clients and upstreams, and the warnings that a
flood must not turn into a full disk.

Every message is escaped by the formatter, so a `%0A` in a path (a newline once
decoded) or an upstream's control characters cannot start a forged line."""

from __future__ import annotations

import asyncio
import logging
import math
import sys
import time
from collections.abc import Callable, Hashable
from typing import Any, TextIO

import orjson

ACCESS = "crossroute.access"
ACCESS_FIELDS = ("client", "method", "path", "status", "model", "provider", "account", "bytes", "ttfb_us",
                 "duration_us")
ACCESS_FORMAT = " ".join(f"{name}=%s" for name in ACCESS_FIELDS)

auth_log = logging.getLogger("crossroute.auth")
upstream_log = logging.getLogger("crossroute.upstream")

THROTTLE_SECONDS = 10.0  # a repeated warning is written at most once per this, per reason
_FIELD_LIMIT = 1024  # characters of one client-supplied field kept in a line
_SAFE_FIELDS: set[str] = set()
_SAFE_FIELDS_MAX = 4096
_SAFE_FIELD_LEN = 128
_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\\": "\\\\"}


def setup(level: str = "warning", log_format: str = "text", access_log: bool = True,
          stream: TextIO | None = None) -> None:
    """One handler on stderr for the whole process (forked workers inherit it).

    `level` governs every logger but the access log, which is on or off by
    itself: access lines are written at any level unless `access_log` is off."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    ACCESS_LINES.configure(handler.stream if access_log else None, log_format == "json")
    # Record attributes no formatter here shows, each costing time per line (the logging HOWTO's "Optimization")
    logging._srcfile = None  # type: ignore[attr-defined]  # the caller's file and line: a walk up the stack
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False


# ---------------------------------------------------------------- escaping


def _escape_char(char: str) -> str:
    code = ord(char)
    if char in _ESCAPES:
        return _ESCAPES[char]
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def printable(text: str) -> str:
    """`text` with control and other non-printable characters (C0, DEL, C1,
    line separators) written as escapes: one line stays one line."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else _escape_char(c) for c in text)


def field_value(text: str) -> str:
    """A client- or upstream-supplied value as one unambiguous `key=value` token:
    no spaces, quotes or control characters, bounded in length; `-` when empty.
    The same few paths and model names come back every request: those are
    remembered (a bounded set, cleared when full)."""
    if text in _SAFE_FIELDS:
        return text
    if not text:
        return "-"
    if len(text) > _FIELD_LIMIT:
        text = text[:_FIELD_LIMIT] + "..."
    if text.isprintable() and " " not in text and '"' not in text and "\\" not in text:
        if len(text) <= _SAFE_FIELD_LEN:
            if len(_SAFE_FIELDS) >= _SAFE_FIELDS_MAX:
                _SAFE_FIELDS.clear()
            _SAFE_FIELDS.add(text)
        return text
    return "".join(c if c.isprintable() and c not in ' "\\' else _escape_char(c) for c in text)


# ---------------------------------------------------------------- formatters


class _Clock:
    """ISO 8601 UTC timestamps with milliseconds; the seconds part is formatted once per second."""

    def __init__(self) -> None:
        self._cached = (-1, "")
        self._wall_minus_perf = 0.0
        self._synced_at = -math.inf  # perf_counter() of the last look at the wall clock

    def stamp_perf(self, perf: float) -> str:
        """The stamp of a `time.perf_counter()` reading (the request's own, so a line costs no
        clock call); the wall clock is looked at again once a second."""
        if perf - self._synced_at > 1.0:
            self._synced_at = time.perf_counter()
            self._wall_minus_perf = time.time() - self._synced_at
        return self.stamp(perf + self._wall_minus_perf)

    def stamp(self, created: float) -> str:
        second = int(created)
        cached_second, prefix = self._cached
        if second != cached_second:
            prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._cached = (second, prefix)
        return f"{prefix}.{int((created - second) * 1000):03d}Z"


class TextFormatter(logging.Formatter):
    """`2026-01-02T03:04:05.678Z INFO crossroute.access: client=... path=...`"""

    def __init__(self) -> None:
        super().__init__()
        self.clock = _Clock()

    def format(self, record: logging.LogRecord) -> str:
        line = f"{self.clock.stamp(record.created)} {record.levelname} {record.name}: {printable(record.getMessage())}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message."""

    def __init__(self) -> None:
        super().__init__()
        self.clock = _Clock()

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {"time": self.clock.stamp(record.created), "level": record.levelname,
                                 "logger": record.name}
        entry["message"] = printable(record.getMessage())
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry).decode()


class AccessLines:
    """Access lines written straight to the log's stream, those of the last
    `ACCESS_FLUSH_SECONDS` in one write (as nginx's `buffer=`/`flush=`): a
    `logging` record, its lock and a write per request cost more than a
    passthrough request's own work. Same look as the other lines; in JSON the
    fields are keys of their own. The worker flushes what is left when it stops."""

    def __init__(self) -> None:
        self.stream: TextIO | None = None  # None: the access log is off
        self.json = False
        self.clock = _Clock()
        self.pending: list[str] = []

    def configure(self, stream: TextIO | None, json: bool) -> None:
        self.flush()
        self.stream, self.json = stream, json

    @property
    def on(self) -> bool:
        return self.stream is not None

    def write(self, fields: tuple[str | int, ...], at: float) -> None:
        """`fields` in ACCESS_FIELDS order, already made safe with field_value(); `at` from time.perf_counter()."""
        stamp = self.clock.stamp_perf(at)
        if self.json:
            entry: dict[str, Any] = {"time": stamp, "level": "INFO", "logger": ACCESS,
                                     "message": f"{fields[1]} {fields[2]} {fields[3]}"}
            entry.update((name, None if value == "-" else value) for name, value in zip(ACCESS_FIELDS, fields,
                                                                                        strict=True))
            line = orjson.dumps(entry).decode()
        else:
            line = f"{stamp} INFO {ACCESS}: {ACCESS_FORMAT % fields}"
        if not self.pending:
            try:
                asyncio.get_running_loop().call_later(ACCESS_FLUSH_SECONDS, self.flush)
            except RuntimeError:  # no loop: write it now
                self.pending.append(line)
                self.flush()
                return
        self.pending.append(line)

    def flush(self) -> None:
        if self.pending and self.stream is not None:
            self.pending.append("")
            self.stream.write("\n".join(self.pending))
            self.stream.flush()
        self.pending.clear()


ACCESS_FLUSH_SECONDS = 0.05
ACCESS_LINES = AccessLines()


# ---------------------------------------------------------------- rate-limited warnings


class Throttle:
    """At most one line per reason per `window` seconds; the next line written
    for a reason says how many were held back. The reasons kept are bounded."""

    def __init__(self, window: float = THROTTLE_SECONDS, max_reasons: int = 1024,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.window = window
        self.max_reasons = max_reasons
        self.clock = clock
        self._last: dict[Hashable, float] = {}
        self._held: dict[Hashable, int] = {}

    def allow(self, reason: Hashable) -> int | None:
        """None: stay quiet; else write, mentioning this many held back."""
        now = self.clock()
        last = self._last.get(reason)
        if last is not None and now - last < self.window:
            self._held[reason] = self._held.get(reason, 0) + 1
            return None
        if last is None and len(self._last) >= self.max_reasons:
            self._last.clear()
            self._held.clear()
        self._last[reason] = now
        return self._held.pop(reason, 0)


_throttle = Throttle()


def _held_back(count: int) -> str:
    return f" ({count} more like this in the last {THROTTLE_SECONDS:.0f} s not logged)" if count else ""


def refused_key(method: str, path: str, presented: bool) -> None:
    """A request refused for its client key (401): what was asked, never the key."""
    reason = "a wrong client key" if presented else "no client key"
    held = _throttle.allow(("client key", presented))
    if held is not None:
        auth_log.warning("refused %s %s: %s%s", field_value(method), field_value(path), reason, _held_back(held))


def upstream_failed(provider: str, account: str, upstream: str, reason: str) -> None:
    """An upstream call that failed; `upstream` is its host:port (the log may
    name it, the client's error does not). `reason` never holds upstream text."""
    held = _throttle.allow(("upstream", account, reason))
    if held is not None:
        upstream_log.warning("provider %s account %s (%s) failed: %s%s", provider, account, upstream, reason,
                             _held_back(held))

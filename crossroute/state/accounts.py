"""Account state shared by every worker of a host: cooldowns, strikes, the last
error, in-flight counts, totals, the last quota the upstream reported and the
round-robin cursors.

`AccountState` is the interface (a Redis implementation for replicas fills
it later, keeping a local view fresh by pub/sub). `SharedAccountState` is the
host's: fixed-size slots in a file mapped into every worker's memory
(`<state dir>/accounts.state`), found by a hash of the account id, changed
under an flock on that file. Nothing is written to disk synchronously (the
kernel writes the dirty page back in its own time), an acquire and release
cost a few microseconds, and the lock goes with a process that dies holding
it. Cooldowns and totals outlive a restart; in-flight counts are zeroed by
the first process to open the file when no other has it open.
Reads (a cooldown, an in-flight count) take no lock: each is one aligned
8-byte or 4-byte load of a value written under the lock."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import mmap
import os
import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

from crossroute.state import slots

Reason = Literal["rate_limited", "quota_exhausted", "auth", "server"]
REASONS: tuple[Reason | None, ...] = (None, "rate_limited", "quota_exhausted", "auth", "server")
# The short kinds a last error is kept as (never the upstream's text).
ERROR_KINDS: tuple[str, ...] = ("", "invalid_request", "authentication", "permission", "not_found",
                                "request_too_large", "rate_limit", "billing", "server", "overloaded",
                                "timeout", "unavailable", "stream")

log = logging.getLogger("crossroute.routing")


@dataclass(frozen=True, slots=True)
class UsageWindow:
    """One of a subscription plan's usage windows (Codex's 5-hour and weekly ones)."""

    minutes: int  # the window's length
    used_percent: float
    resets_at: float = 0.0  # Unix seconds; 0 = not said

    @property
    def name(self) -> str:
        """`5h`, `week`, `1d`, `90m`: the window's length, as people name it."""
        if self.minutes == 7 * 1440:
            return "week"
        for unit, size in (("d", 1440), ("h", 60)):
            if self.minutes % size == 0:
                return f"{self.minutes // size}{unit}"
        return f"{self.minutes}m"


@dataclass(frozen=True, slots=True)
class Quota:
    """What an upstream last said of an account's rate limits (OpenAI's
    `x-ratelimit-*`, Anthropic's `anthropic-ratelimit-*` headers; -1 = not said)
    or of its plan's usage windows (Codex's `x-codex-primary-*`/`-secondary-*`)."""

    requests_left: int = -1
    requests_limit: int = -1
    tokens_left: int = -1
    tokens_limit: int = -1
    resets_at: float = 0.0  # Unix seconds when the scarcer of the two refills; 0 = not said
    seen_at: float = 0.0  # Unix seconds of the answer that said it
    windows: tuple[UsageWindow, ...] = ()  # at most MAX_WINDOWS are kept


@dataclass(frozen=True, slots=True)
class AccountView:
    """One account's shared state, as `crossroute accounts` and /metrics show it."""

    cooling_until: float  # Unix seconds; 0 = not cooling
    reason: Reason | None
    strikes: int
    in_flight: int
    requests: int
    input_tokens: int
    output_tokens: int
    errors: int
    last_status: int  # 0 = none yet
    last_kind: str
    last_error_at: float
    quota: Quota | None = None  # None: no upstream answer has reported one


class AccountState(Protocol):
    """Sync on purpose: the hot path pays no coroutine per call; an
    implementation over the network answers from a local view."""

    def cooling_until(self, account_id: str) -> float: ...
    def generation(self) -> int:
        """Moves on whenever any cooldown is set or cleared: a reader's cached view of who is ready stays good
        while it stands (and no cooldown it saw has run out)."""
    def in_flight(self, account_id: str) -> int: ...
    def next_turn(self, cursor: str) -> int:
        """The cursor's value before it moves on by one (shared by all workers)."""
    def begin(self, account_id: str) -> None: ...
    def end(self, account_id: str, input_tokens: int, output_tokens: int) -> None: ...
    def strike(self, account_id: str, status: int, kind: str) -> int:
        """Records a failure; the account's consecutive failures, this one included."""
    def cool(self, account_id: str, until: float, reason: Reason) -> None: ...
    def recovered(self, account_id: str) -> None:
        """A success: strikes and cooldown are cleared."""
    def note_quota(self, account_id: str, quota: Quota) -> None:
        """The quota an upstream answer reported (replacing the last one)."""
    def view(self, account_id: str) -> AccountView: ...
    def reset(self) -> None:
        """Forget every cooldown and strike (totals stay)."""
    def close(self) -> None: ...


# ---------------------------------------------------------------- the shared table

_GENERATION = 16  # header offset of the cooldown generation (u64)
CAPACITY = 4096  # accounts and cursors; a slot is never given back
_LAYOUT = slots.Layout(b"CRAS0003", CAPACITY, 176)

# Slot layout (offsets in a slot); 8-byte fields first so each is aligned.
_DIGEST, _COOLING, _LAST_AT, _REQUESTS, _INPUT, _OUTPUT, _ERRORS = 0, 16, 24, 32, 40, 48, 56
_IN_FLIGHT, _STRIKES, _LAST_STATUS, _REASON, _LAST_KIND = 64, 68, 72, 74, 75
_QUOTA_SEEN = 80  # the quota: seen at, requests left/limit, tokens left/limit, resets at
_QUOTA = struct.Struct("=d4qd")
_WINDOWS = 128  # the usage windows to the slot's end: minutes (0 = none), used percent, resets at, for each
MAX_WINDOWS = 2
_WINDOW = struct.Struct("=3d")
_TOTALS = struct.Struct("=3Q")  # requests, input tokens, output tokens: side by side from _REQUESTS
_F64 = struct.Struct("=d")
_U64 = struct.Struct("=Q")
_I32 = struct.Struct("=i")
_U32 = struct.Struct("=I")
_U16 = struct.Struct("=H")
_U8 = struct.Struct("=B")


class TableFull(Exception):
    pass


class SharedAccountState:
    """`path=None`: an anonymous mapping, for one process (tests, `--workers 1` without a state dir)."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else None
        self._offsets: dict[str, int] = {}
        self._fd = -1
        self._live_fd = -1
        self._fd, self._map = slots.open_table(self.path, _LAYOUT)
        self._lock, self._unlock = slots.lockers(self._fd)
        if self.path is None:
            return
        self._join()

    # ------------------------------------------------------------ reads (no lock)

    def cooling_until(self, account_id: str) -> float:
        value: float = _F64.unpack_from(self._map, self._slot(account_id) + _COOLING)[0]
        return value

    def generation(self) -> int:
        value: int = _U64.unpack_from(self._map, _GENERATION)[0]
        return value

    def in_flight(self, account_id: str) -> int:
        value: int = _I32.unpack_from(self._map, self._slot(account_id) + _IN_FLIGHT)[0]
        return value

    def view(self, account_id: str) -> AccountView:
        return _view_at(self._map, self._slot(account_id))

    # ------------------------------------------------------------ writes (under the lock)

    def next_turn(self, cursor: str) -> int:
        at = self._slot("cursor:" + cursor) + _REQUESTS
        self._lock()
        try:
            turn: int = _U64.unpack_from(self._map, at)[0]
            _U64.pack_into(self._map, at, turn + 1)
        finally:
            self._unlock()
        return turn

    def begin(self, account_id: str) -> None:
        at = self._slot(account_id) + _IN_FLIGHT
        self._lock()
        try:
            _I32.pack_into(self._map, at, _I32.unpack_from(self._map, at)[0] + 1)
        finally:
            self._unlock()

    def end(self, account_id: str, input_tokens: int, output_tokens: int) -> None:
        m, at = self._map, self._slot(account_id)
        self._lock()
        try:
            in_flight = _I32.unpack_from(m, at + _IN_FLIGHT)[0]
            _I32.pack_into(m, at + _IN_FLIGHT, in_flight - 1 if in_flight > 0 else 0)
            requests, input_total, output_total = _TOTALS.unpack_from(m, at + _REQUESTS)
            _TOTALS.pack_into(m, at + _REQUESTS, requests + 1, input_total + input_tokens, output_total + output_tokens)
        finally:
            self._unlock()

    def strike(self, account_id: str, status: int, kind: str) -> int:
        m, at = self._map, self._slot(account_id)
        kind_code = ERROR_KINDS.index(kind) if kind in ERROR_KINDS else 0
        self._lock()
        try:
            strikes: int = _U32.unpack_from(m, at + _STRIKES)[0] + 1
            _U32.pack_into(m, at + _STRIKES, strikes)
            _U64.pack_into(m, at + _ERRORS, _U64.unpack_from(m, at + _ERRORS)[0] + 1)
            _U16.pack_into(m, at + _LAST_STATUS, min(status, 0xFFFF))
            _U8.pack_into(m, at + _LAST_KIND, kind_code)
            _F64.pack_into(m, at + _LAST_AT, time.time())
        finally:
            self._unlock()
        return strikes

    def cool(self, account_id: str, until: float, reason: Reason) -> None:
        m, at = self._map, self._slot(account_id)
        self._lock()
        try:
            _F64.pack_into(m, at + _COOLING, until)
            _U8.pack_into(m, at + _REASON, REASONS.index(reason))
            self._bump()
        finally:
            self._unlock()

    def recovered(self, account_id: str) -> None:
        m, at = self._map, self._slot(account_id)
        if not _U32.unpack_from(m, at + _STRIKES)[0] and not _F64.unpack_from(m, at + _COOLING)[0]:
            return  # the usual case: nothing to clear, no lock taken
        self._lock()
        try:
            self._clear(at)
            self._bump()
        finally:
            self._unlock()

    def note_quota(self, account_id: str, quota: Quota) -> None:
        at = self._slot(account_id)
        windows = quota.windows[:MAX_WINDOWS]
        windows += (UsageWindow(0, 0.0),) * (MAX_WINDOWS - len(windows))  # the slot's unused windows cleared
        self._lock()
        try:
            _QUOTA.pack_into(self._map, at + _QUOTA_SEEN, quota.seen_at, quota.requests_left, quota.requests_limit,
                             quota.tokens_left, quota.tokens_limit, quota.resets_at)
            for index, window in enumerate(windows):
                _WINDOW.pack_into(self._map, at + _WINDOWS + index * _WINDOW.size, window.minutes,
                                  window.used_percent, window.resets_at)
        finally:
            self._unlock()

    def reset(self) -> None:
        self._lock()
        try:
            for at in self._used_slots():
                self._clear(at)
            self._bump()
        finally:
            self._unlock()

    def close(self) -> None:
        self._map.close()
        for fd in (self._fd, self._live_fd):
            if fd >= 0:
                os.close(fd)
        self._fd = self._live_fd = -1
        self._lock, self._unlock = slots.lockers(-1)

    # ------------------------------------------------------------ plumbing

    def _slot(self, account_id: str) -> int:
        at = self._offsets.get(account_id)
        if at is None:
            at = self._offsets[account_id] = self._find_or_claim(account_id)
        return at

    def _find_or_claim(self, account_id: str) -> int:
        digest = _digest(account_id)
        with self._locked():
            at, found = slots.probe(self._map, _LAYOUT, digest)
            if found:
                return at
            if at >= 0:
                self._map[at:at + 16] = digest
                return at
        raise TableFull(f"the account state table holds at most {CAPACITY} accounts and cursors")

    def _used_slots(self) -> Iterator[int]:
        return slots.used_slots(self._map, _LAYOUT)

    def _bump(self) -> None:
        _U64.pack_into(self._map, _GENERATION, _U64.unpack_from(self._map, _GENERATION)[0] + 1)

    def _clear(self, at: int) -> None:
        _U32.pack_into(self._map, at + _STRIKES, 0)
        _F64.pack_into(self._map, at + _COOLING, 0.0)
        _U8.pack_into(self._map, at + _REASON, 0)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """For the rare paths (opening, claiming a slot); the hot ones call _lock/_unlock."""
        self._lock()
        try:
            yield
        finally:
            self._unlock()

    def _join(self) -> None:
        """Holds a shared lock on `<file>.live` for life; the first process to
        open the table when nobody else has it zeroes the in-flight counts a
        previous run (or a killed one) left behind."""
        assert self.path is not None
        self._live_fd = os.open(self.path.with_name(self.path.name + ".live"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._live_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fcntl.flock(self._live_fd, fcntl.LOCK_SH)
            return
        with self._locked():
            for at in self._used_slots():
                _I32.pack_into(self._map, at + _IN_FLIGHT, 0)
        fcntl.flock(self._live_fd, fcntl.LOCK_SH)


NO_STATE = AccountView(0.0, None, 0, 0, 0, 0, 0, 0, 0, "", 0.0)


def _view_at(m: mmap.mmap, at: int) -> AccountView:
    return AccountView(
        cooling_until=_F64.unpack_from(m, at + _COOLING)[0],
        reason=REASONS[_U8.unpack_from(m, at + _REASON)[0] % len(REASONS)],
        strikes=_U32.unpack_from(m, at + _STRIKES)[0],
        in_flight=_I32.unpack_from(m, at + _IN_FLIGHT)[0],
        requests=_U64.unpack_from(m, at + _REQUESTS)[0],
        input_tokens=_U64.unpack_from(m, at + _INPUT)[0],
        output_tokens=_U64.unpack_from(m, at + _OUTPUT)[0],
        errors=_U64.unpack_from(m, at + _ERRORS)[0],
        last_status=_U16.unpack_from(m, at + _LAST_STATUS)[0],
        last_kind=ERROR_KINDS[_U8.unpack_from(m, at + _LAST_KIND)[0] % len(ERROR_KINDS)],
        last_error_at=_F64.unpack_from(m, at + _LAST_AT)[0],
        quota=_quota_at(m, at),
    )


def _quota_at(m: mmap.mmap, at: int) -> Quota | None:
    seen_at, requests_left, requests_limit, tokens_left, tokens_limit, resets_at = _QUOTA.unpack_from(
        m, at + _QUOTA_SEEN)
    if not seen_at:
        return None
    return Quota(requests_left, requests_limit, tokens_left, tokens_limit, resets_at, seen_at, _windows_at(m, at))


def _windows_at(m: mmap.mmap, at: int) -> tuple[UsageWindow, ...]:
    windows = (_WINDOW.unpack_from(m, at + _WINDOWS + index * _WINDOW.size) for index in range(MAX_WINDOWS))
    return tuple(UsageWindow(int(minutes), used, resets_at) for minutes, used, resets_at in windows if minutes > 0)


def read_views(path: str | Path, account_ids: list[str]) -> dict[str, AccountView]:
    """Each account's state as the table at `path` holds it, read-only: nothing
    is created, claimed or locked (for `crossroute accounts`). An absent or
    foreign file, or an account the gateway has not used yet, reads as NO_STATE."""
    views = dict.fromkeys(account_ids, NO_STATE)
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return views
    try:
        if os.fstat(fd).st_size != _LAYOUT.size or os.pread(fd, 8, 0) != _LAYOUT.magic:
            return views
        with mmap.mmap(fd, _LAYOUT.size, prot=mmap.PROT_READ) as m:
            for account_id in account_ids:
                at = _find_slot(m, account_id)
                if at is not None:
                    views[account_id] = _view_at(m, at)
    finally:
        os.close(fd)
    return views


def _find_slot(m: mmap.mmap, account_id: str) -> int | None:
    """The slot `_find_or_claim` gave the account, without claiming one."""
    at, found = slots.probe(m, _LAYOUT, _digest(account_id))
    return at if found else None


def _digest(account_id: str) -> bytes:
    return hashlib.blake2b(account_id.encode(), digest_size=16).digest()


def state_file_for(responses_db: str | Path) -> Path:
    """The account table beside the Responses store, in the state dir."""
    return Path(responses_db).with_name("accounts.state")

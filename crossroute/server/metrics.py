"""Counters and latency histograms for /metrics (Prometheus text format),
shared by every worker of a host, and the accounts' state as gauges.

The series live in fixed slots of a file mapped into every worker's memory
(`<state dir>/metrics.state`, beside the account table and built the same
way): a slot per (provider, model) and per (provider, upstream status), found
by a hash of its labels, changed under an flock on the file. One finished
upstream call is one locked update (about a microsecond of it is the lock's two
system calls), so any worker's scrape reads the host's totals; a worker that
dies (even by SIGKILL, which frees its lock) loses nothing that it recorded,
and its replacement adds to the same series. Per-worker regions would spare the
lock, but need a region per worker slot handed out and taken back by the
supervisor; the lock costs less than the rest of a request's bookkeeping.

Model names come from clients, so they are bounded: at most `MAX_MODELS`
(provider, model) series per host, the rest are counted as model `other`."""

from __future__ import annotations

import bisect
import hashlib
import os
import struct
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from crossroute import ir
from crossroute.state import slots
from crossroute.state.accounts import AccountView, Quota

# Upper bounds (seconds) of the latency buckets: from a fast cached answer to a long reasoning stream.
BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0)
MAX_MODELS = 200
OTHER_MODEL = "other"

_MODELS_USED = 16  # header offset of the count of (provider, model) series (u32)
CAPACITY = 1024
_SLOT = 512
_LAYOUT = slots.Layout(b"CRMT0001", CAPACITY, _SLOT)

_MODEL_SERIES, _ERROR_SERIES = 1, 2
# Slot layout: digest, kind, label length, labels (provider NUL model|status), then u64 counters.
_DIGEST, _KIND, _LABEL_LEN, _LABELS, _COUNTERS = 0, 16, 17, 24, 128
_MAX_LABELS = _COUNTERS - _LABELS
# Counters of a model series (u64 indexes from _COUNTERS): requests by status class (index = status // 100),
# tokens, then two histograms of len(BUCKETS) + 1 bucket counts (the last: above every bound) and a sum
# in microseconds.
_CLASSES = 6
_INPUT, _OUTPUT = 6, 7
_SUM = len(BUCKETS) + 1
_HISTOGRAM_LEN = _SUM + 1
_FIRST_BYTE, _DURATION = 8, 8 + _HISTOGRAM_LEN
_U64 = struct.Struct("=Q")
_U32 = struct.Struct("=I")


class Metrics:
    """`path=None`: an anonymous mapping, for one process (tests)."""

    def __init__(self, path: str | Path | None = None) -> None:
        self._offsets: dict[tuple[int, str, str], int] = {}
        self._fd, self._map = slots.open_table(Path(path) if path is not None else None, _LAYOUT)
        self._lock, self._unlock = slots.lockers(self._fd)
        self._words = memoryview(self._map).cast("Q")

    # ------------------------------------------------------------ recording (the lease calls these)

    def finished(self, provider: str, model: str, usage: ir.Usage | None, first_byte: float = -1.0,
                 duration: float = -1.0) -> None:
        """An upstream call answered (2xx) and its answer ended; times in seconds, negative = not measured."""
        at = self._offsets.get((_MODEL_SERIES, provider, model))
        if at is None:
            at = self._series(_MODEL_SERIES, provider, model)
        at = (at + _COUNTERS) // 8  # the series' counters as indexes of u64 words
        words = self._words
        self._lock()
        try:
            words[at + 2] += 1
            if usage is not None:
                words[at + _INPUT] += usage.input_tokens
                words[at + _OUTPUT] += usage.output_tokens
            if first_byte >= 0:
                start = at + _FIRST_BYTE
                words[start + bisect.bisect_left(BUCKETS, first_byte)] += 1
                words[start + _SUM] += int(first_byte * 1e6)
            if duration >= 0:
                start = at + _DURATION
                words[start + bisect.bisect_left(BUCKETS, duration)] += 1
                words[start + _SUM] += int(duration * 1e6)
        finally:
            self._unlock()

    def upstream_error(self, provider: str, status: int, model: str = OTHER_MODEL) -> None:
        error_at = self._series(_ERROR_SERIES, provider, str(status))
        model_at = self._series(_MODEL_SERIES, provider, model) + _COUNTERS + min(status // 100, _CLASSES - 1) * 8
        words = self._words
        self._lock()
        try:
            words[(error_at + _COUNTERS) // 8] += 1
            words[model_at // 8] += 1
        finally:
            self._unlock()

    def close(self) -> None:
        self._words.release()
        self._map.close()
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
            self._lock, self._unlock = slots.lockers(-1)

    # ------------------------------------------------------------ the scrape

    def render(self, accounts: Iterable[tuple[str, AccountView]] = (), now: float | None = None) -> str:
        models: list[tuple[str, str, list[int], bytes]] = []
        errors: list[tuple[str, str, int]] = []
        for at in self._used_slots():
            kind, provider, label = self._labels(at)
            counters = self._map[at + _COUNTERS:at + _SLOT]
            if kind == _MODEL_SERIES:
                models.append((provider, label, [_U64.unpack_from(counters, i * 8)[0] for i in range(8)], counters))
            elif kind == _ERROR_SERIES:
                errors.append((provider, label, _U64.unpack_from(counters, 0)[0]))
        lines = ["# TYPE crossroute_requests_total counter"]
        for provider, model, values, _ in models:
            lines += (f'crossroute_requests_total{{provider="{_q(provider)}",model="{_q(model)}",status="{c}xx"}} '
                      f"{values[c]}" for c in range(1, _CLASSES) if values[c])
        for name, index in (("input_tokens", _INPUT), ("output_tokens", _OUTPUT)):
            lines.append(f"# TYPE crossroute_{name}_total counter")
            lines += (f'crossroute_{name}_total{{provider="{_q(p)}",model="{_q(m)}"}} {v[index]}'
                      for p, m, v, _ in models if v[2])
        lines.append("# TYPE crossroute_upstream_errors_total counter")
        lines += (f'crossroute_upstream_errors_total{{provider="{_q(p)}",status="{_q(s)}"}} {n}' for p, s, n in errors)
        for name, start in (("time_to_first_byte_seconds", _FIRST_BYTE), ("request_duration_seconds", _DURATION)):
            lines.append(f"# TYPE crossroute_{name} histogram")
            for provider, model, values, counters in models:
                if values[2]:
                    lines += _histogram(f"crossroute_{name}", f'provider="{_q(provider)}",model="{_q(model)}"',
                                        counters, start * 8)
        lines += _account_lines(accounts, time.time() if now is None else now)
        return "\n".join(lines) + "\n"

    # ------------------------------------------------------------ plumbing

    def _series(self, kind: int, provider: str, label: str) -> int:
        key = (kind, provider, label)
        at = self._offsets.get(key)
        if at is None:
            at = self._offsets[key] = self._find_or_claim(kind, provider, label)
        return at

    def _find_or_claim(self, kind: int, provider: str, label: str) -> int:
        self._lock()
        try:
            found = self._probe(kind, provider, label)
            if found is not None and found[1] or kind != _MODEL_SERIES or label == OTHER_MODEL:
                return self._claim(found, kind, provider, label)
            models = _U32.unpack_from(self._map, _MODELS_USED)[0]
            if models >= MAX_MODELS:
                return self._claim(self._probe(kind, provider, OTHER_MODEL), kind, provider, OTHER_MODEL)
            _U32.pack_into(self._map, _MODELS_USED, models + 1)
            return self._claim(found, kind, provider, label)
        finally:
            self._unlock()

    def _probe(self, kind: int, provider: str, label: str) -> tuple[int, bool] | None:
        """The slot for these labels and whether it is already theirs; None when the table is full."""
        digest = hashlib.blake2b(bytes([kind]) + _encode(provider, label), digest_size=16).digest()
        at, taken = slots.probe(self._map, _LAYOUT, digest)
        return None if at < 0 else (at, taken)

    def _claim(self, found: tuple[int, bool] | None, kind: int, provider: str, label: str) -> int:
        if found is None:
            raise RuntimeError(f"the metrics table holds at most {CAPACITY} series")
        at, taken = found
        if not taken:
            labels = _encode(provider, label)
            self._map[at + _LABELS:at + _LABELS + len(labels)] = labels
            self._map[at + _KIND] = kind
            self._map[at + _LABEL_LEN] = len(labels)
            self._map[at:at + 16] = hashlib.blake2b(bytes([kind]) + labels, digest_size=16).digest()
        return at

    def _labels(self, at: int) -> tuple[int, str, str]:
        raw = self._map[at + _LABELS:at + _LABELS + self._map[at + _LABEL_LEN]]
        provider, _, label = raw.decode("utf-8", "replace").partition("\0")
        return self._map[at + _KIND], provider, label

    def _used_slots(self) -> Iterator[int]:
        return slots.used_slots(self._map, _LAYOUT)


def metrics_file_for(responses_db: str | Path) -> Path:
    """The metrics table beside the Responses store, in the state dir."""
    return Path(responses_db).with_name("metrics.state")


def _encode(provider: str, label: str) -> bytes:
    """The labels as stored; a long model name is cut (at a character boundary) to fit the slot."""
    raw = f"{provider}\0{label}".encode()
    if len(raw) <= _MAX_LABELS:
        return raw
    return raw[:_MAX_LABELS].decode("utf-8", "ignore").encode()


def _histogram(name: str, labels: str, counters: bytes, start: int) -> Iterator[str]:
    """Prometheus buckets are cumulative; the store keeps one count per bucket."""
    total = 0
    for index, bound in enumerate(BUCKETS):
        total += _U64.unpack_from(counters, start + index * 8)[0]
        yield f'{name}_bucket{{{labels},le="{bound:g}"}} {total}'
    total += _U64.unpack_from(counters, start + len(BUCKETS) * 8)[0]
    yield f'{name}_bucket{{{labels},le="+Inf"}} {total}'
    yield f"{name}_sum{{{labels}}} {_U64.unpack_from(counters, start + _SUM * 8)[0] / 1e6:.6f}"
    yield f"{name}_count{{{labels}}} {total}"


def _account_lines(accounts: Iterable[tuple[str, AccountView]], now: float) -> list[str]:
    """Gauges (and one counter) per account, read from the shared account state at scrape time."""
    views = [(_q(account_id), view) for account_id, view in accounts]
    cooling = [(a, v, v.cooling_until > now) for a, v in views]
    return [
        "# TYPE crossroute_account_in_flight gauge",
        *(f'crossroute_account_in_flight{{account="{a}"}} {v.in_flight}' for a, v in views),
        "# TYPE crossroute_account_cooling gauge",
        *(f'crossroute_account_cooling{{account="{a}",reason="{v.reason if resting and v.reason else ""}"}} '
          f"{int(resting)}" for a, v, resting in cooling),
        "# TYPE crossroute_account_cooldown_seconds_remaining gauge",
        *(f'crossroute_account_cooldown_seconds_remaining{{account="{a}"}} '
          f"{max(0.0, v.cooling_until - now) if resting else 0.0:.3f}" for a, v, resting in cooling),
        "# TYPE crossroute_account_requests_total counter",
        *(f'crossroute_account_requests_total{{account="{a}"}} {v.requests}' for a, v in views),
        "# TYPE crossroute_account_quota_remaining gauge",
        *_quota_lines("crossroute_account_quota_remaining", views, lambda q: (q.requests_left, q.tokens_left)),
        "# TYPE crossroute_account_quota_limit gauge",
        *_quota_lines("crossroute_account_quota_limit", views, lambda q: (q.requests_limit, q.tokens_limit)),
        "# TYPE crossroute_account_quota_used_percent gauge",
        *(f'crossroute_account_quota_used_percent{{account="{a}",window="{w.name}"}} {w.used_percent:g}'
          for a, v in views if v.quota is not None for w in v.quota.windows),
        "# TYPE crossroute_account_quota_reset_seconds gauge",
        *(f'crossroute_account_quota_reset_seconds{{account="{a}",window="{w.name}"}} '
          f"{max(0.0, w.resets_at - now):.0f}" for a, v in views if v.quota is not None for w in v.quota.windows
          if w.resets_at),
    ]


def _quota_lines(name: str, views: list[tuple[str, AccountView]],
                 pick: Callable[[Quota], tuple[int, int]]) -> Iterator[str]:
    """The last quota each account's upstream reported, per kind (requests, tokens); none where it never said."""
    for account, view in views:
        if view.quota is None:
            continue
        for kind, value in zip(("requests", "tokens"), pick(view.quota), strict=True):
            if value >= 0:
                yield f'{name}{{account="{account}",kind="{kind}"}} {value}'


def _q(value: str) -> str:
    """A label value escaped as the Prometheus text format wants it."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")

"""The quota an upstream reports on its answers: OpenAI's `x-ratelimit-*`,
Anthropic's `anthropic-ratelimit-*` headers (Gemini sends none) and the Codex
plan's usage windows (`x-codex-primary-*`, `x-codex-secondary-*`), read into a
`Quota` for the account's shared state, on successes and failures alike."""

from __future__ import annotations

import math
import time
from collections.abc import Mapping

from crossroute.routing.cooldown import duration_seconds, seconds_until
from crossroute.state.accounts import Quota, UsageWindow


def quota_from_headers(headers: Mapping[str, str], now: float | None = None) -> Quota | None:
    """None for an answer without rate-limit headers (six lookups: this runs on every upstream answer)."""
    if "x-ratelimit-remaining-requests" in headers or "x-ratelimit-remaining-tokens" in headers:
        return _openai(headers, time.time() if now is None else now)
    if ("anthropic-ratelimit-requests-remaining" in headers or "anthropic-ratelimit-tokens-remaining" in headers
            or "anthropic-ratelimit-input-tokens-remaining" in headers):
        return _anthropic(headers, time.time() if now is None else now)
    if CODEX_PRIMARY in headers:
        return _codex(headers, time.time() if now is None else now)
    return None


CODEX_PRIMARY = "x-codex-primary-used-percent"


def _codex(headers: Mapping[str, str], now: float) -> Quota:
    """The plan's windows (primary: 5 hours, secondary: weekly): used percent, length, reset."""
    windows = []
    for name in ("primary", "secondary"):
        used = _number(headers.get(f"x-codex-{name}-used-percent"))
        minutes = _number(headers.get(f"x-codex-{name}-window-minutes"))
        if used is None or minutes is None or minutes < 1:
            continue
        after = _number(headers.get(f"x-codex-{name}-reset-after-seconds"))
        at = _number(headers.get(f"x-codex-{name}-reset-at"))
        resets_at = now + after if after is not None else at if at is not None else 0.0
        windows.append(UsageWindow(int(minutes), used, resets_at))
    return Quota(seen_at=now, windows=tuple(windows))


def _number(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) and number >= 0 else None


def _openai(headers: Mapping[str, str], now: float) -> Quota:
    """Limits per minute (or day), with resets as durations like `1m30s`."""
    def reset(kind: str) -> float | None:
        value = headers.get(f"x-ratelimit-reset-{kind}")
        return duration_seconds(value) if value else None
    def count(field: str, kind: str) -> int:
        return _count(headers.get(f"x-ratelimit-{field}-{kind}"))
    return _quota(now, (count("remaining", "requests"), count("limit", "requests")),
                  (count("remaining", "tokens"), count("limit", "tokens")), reset("requests"), reset("tokens"))


def _anthropic(headers: Mapping[str, str], now: float) -> Quota:
    """Resets as RFC 3339 times; tokens as one pool, or as input tokens where only those are given."""
    tokens = "tokens" if "anthropic-ratelimit-tokens-remaining" in headers else "input-tokens"

    def reset(kind: str) -> float | None:
        value = headers.get(f"anthropic-ratelimit-{kind}-reset")
        return seconds_until(value, now) if value else None
    def count(kind: str, field: str) -> int:
        return _count(headers.get(f"anthropic-ratelimit-{kind}-{field}"))
    return _quota(now, (count("requests", "remaining"), count("requests", "limit")),
                  (count(tokens, "remaining"), count(tokens, "limit")), reset("requests"), reset(tokens))


def _quota(now: float, requests: tuple[int, int], tokens: tuple[int, int], requests_reset: float | None,
           tokens_reset: float | None) -> Quota:
    """(left, limit) of each pool; the reset kept is the scarcer pool's (the smaller share left), else the one known."""
    scarcer = requests_reset
    if _share_left(*tokens) < _share_left(*requests) or scarcer is None:
        scarcer = tokens_reset if tokens_reset is not None else requests_reset
    return Quota(*requests, *tokens, now + scarcer if scarcer is not None else 0.0, now)


def _share_left(left: int, limit: int) -> float:
    return left / limit if left >= 0 and limit > 0 else 1.0


def _count(value: str | None) -> int:
    """A header count; -1 when absent or not a whole number."""
    if value is None:
        return -1
    value = value.strip()
    return int(value) if value.isdigit() and len(value) < 19 else -1

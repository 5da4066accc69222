"""The quota an upstream reports on its answers: OpenAI's `x-ratelimit-*` and
Anthropic's `anthropic-ratelimit-*` headers (Gemini sends none), read into a
`Quota` for the account's shared state, on successes and failures alike. A
provider with headers of its own reads them in its `quota_from_headers`
(Codex: its plan's usage windows)."""

from __future__ import annotations

import time
from collections.abc import Mapping

from crossroute.routing.cooldown import duration_seconds, seconds_until
from crossroute.state.accounts import Quota


def quota_from_headers(headers: Mapping[str, str], now: float | None = None) -> Quota | None:
    """None for an answer without rate-limit headers (five lookups: this runs on every upstream answer)."""
    if "x-ratelimit-remaining-requests" in headers or "x-ratelimit-remaining-tokens" in headers:
        return _openai(headers, time.time() if now is None else now)
    if ("anthropic-ratelimit-requests-remaining" in headers or "anthropic-ratelimit-tokens-remaining" in headers
            or "anthropic-ratelimit-input-tokens-remaining" in headers):
        return _anthropic(headers, time.time() if now is None else now)
    return None


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

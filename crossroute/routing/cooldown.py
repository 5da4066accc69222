"""How long an account rests after a failure: the upstream's own reset time
when it gives one (Retry-After, OpenAI's and Anthropic's rate-limit headers,
Gemini's RetryInfo, already read into the error), else a capped exponential
backoff. Quota exhaustion and rate limits are kept apart: quota rests longer.
An account is tried again at its reset time, never later."""

from __future__ import annotations

import email.utils
import math
import re
import time
from collections.abc import Mapping
from datetime import datetime

from crossroute import ir
from crossroute.state.accounts import Reason

# Backoffs when the upstream names no reset time: (first wait, cap) in seconds, doubling per strike.
# A server error (5xx, unreachable, timeout) moves the request on and is on the account's record, but
# does not rest it: the next request finds out whether the upstream is back.
BACKOFF: dict[Reason, tuple[float, float]] = {
    "rate_limited": (5.0, 300.0),
    "quota_exhausted": (3600.0, 6 * 3600.0),
    "auth": (300.0, 3600.0),
}
MAX_RESET = 7 * 24 * 3600.0  # an upstream's reset time past a week is taken as a week

_OPENAI_RESETS = ("x-ratelimit-reset-requests", "x-ratelimit-reset-tokens")
_ANTHROPIC_RESETS = ("anthropic-ratelimit-requests-reset", "anthropic-ratelimit-tokens-reset",
                     "anthropic-ratelimit-input-tokens-reset", "anthropic-ratelimit-output-tokens-reset")
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_SECONDS_PER_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_QUOTA_CODES = frozenset({"insufficient_quota", "billing_hard_limit_reached", "quota_exceeded"})
_CONTEXT_CODES = frozenset({"context_length_exceeded", "string_above_max_length"})
_CONTEXT_WORDS = ("prompt is too long", "context length", "context window", "maximum context",
                  "input token count", "too many tokens", "exceeds the maximum number of tokens")


def reason_for(error: ir.GatewayError) -> Reason | None:
    """Which kind of rest a failure calls for; None: the request's own fault, the account is fine."""
    status = error.status
    if status == 402 or error.kind == "billing" or error.code in _QUOTA_CODES:
        return "quota_exhausted"
    if status == 429:
        return "rate_limited"
    if status in (401, 403):
        return "auth"
    if status >= 500 or status == 408:
        return "server"
    return None


def rest_seconds(reason: Reason, reset: float | None, strikes: int) -> float:
    """The upstream's reset time when known, else the backoff for this many strikes in a row."""
    if reason == "server":
        return 0.0
    if reset is not None:
        return min(reset, MAX_RESET)
    first, cap = BACKOFF[reason]
    return min(cap, first * 2.0 ** min(max(0, strikes - 1), 32))


def reset_from_headers(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds until the upstream says to try again: Retry-After, else the
    exhausted one of OpenAI's `x-ratelimit-reset-*` (durations like `1m30s`)
    or Anthropic's `anthropic-ratelimit-*-reset` (RFC 3339 times); with no
    `remaining: 0` to say which, the latest of them."""
    retry_after = retry_after_seconds(headers.get("retry-after"), now)
    if retry_after is not None:
        return retry_after
    waits: list[tuple[bool, float]] = []
    for name in _OPENAI_RESETS:
        value = headers.get(name)
        seconds = duration_seconds(value) if value else None
        if seconds is not None:
            waits.append((headers.get(name.replace("-reset-", "-remaining-")) == "0", seconds))
    for name in _ANTHROPIC_RESETS:
        value = headers.get(name)
        seconds = seconds_until(value, now) if value else None
        if seconds is not None:
            waits.append((headers.get(name.removesuffix("-reset") + "-remaining") == "0", seconds))
    if not waits:
        return None
    exhausted = [seconds for spent, seconds in waits if spent]
    return max(exhausted or [seconds for _, seconds in waits])


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """Retry-After as seconds: a number, or an HTTP date; anything else is ignored."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) else None
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, moment.timestamp() - (time.time() if now is None else now))


def duration_seconds(value: str) -> float | None:
    """OpenAI's reset durations: `6ms`, `1.5s`, `1m30s`, `2h0m0s`."""
    text = value.strip()
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        return None
    return sum(float(number) * _SECONDS_PER_UNIT[unit] for number, unit in parts)


def seconds_until(value: str, now: float | None) -> float | None:
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        return None
    return max(0.0, moment.timestamp() - (time.time() if now is None else now))


def is_daily_quota(raw: bytes) -> bool:
    """Gemini's RESOURCE_EXHAUSTED names the quota it hit: a per-day one will not come back in minutes."""
    return b"QuotaFailure" in raw and b"PerDay" in raw


def is_context_length(error: ir.GatewayError) -> bool:
    """The request is too long for the model: no other account of it can serve it."""
    if error.status not in (400, 413, 422):
        return False
    if error.code in _CONTEXT_CODES:
        return True
    message = error.message.lower()
    return any(words in message for words in _CONTEXT_WORDS)

"""Strategies: the order in which one route's ready candidates (accounts) are tried. The
first is the one a request uses; the rest are its retries. Every strategy
reads only shared state, so all workers of a host pick alike."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from typing import Any

import orjson

from crossroute.config import Strategy
from crossroute.routing.accounts import Candidate
from crossroute.state.accounts import AccountState

_STICKY_MESSAGES = 1  # the first message (and system) name a conversation when nothing else does: it stays as turns are added


def ordered(strategy: Strategy, cursor: str, ready: Sequence[Candidate], state: AccountState,
            sticky_key: Callable[[], str]) -> list[Candidate]:
    if len(ready) < 2:
        return list(ready)
    if strategy == "round-robin":
        return _rotated(ready, state.next_turn(cursor) % len(ready))
    if strategy == "fill-first":
        return sorted(ready, key=lambda candidate: candidate.account.priority)  # stable: config order within a priority
    if strategy == "least-busy":
        return _least_busy(ready, state, cursor)
    if strategy == "weighted":
        return _weighted(ready, state.next_turn(cursor))
    return _rendezvous(ready, sticky_key())


def _rotated(accounts: Sequence[Candidate], start: int) -> list[Candidate]:
    return [*accounts[start:], *accounts[:start]]


def _least_busy(ready: Sequence[Candidate], state: AccountState, cursor: str) -> list[Candidate]:
    """Fewest in flight on the whole host first; a tie goes round, so idle accounts share the load."""
    loads = [state.in_flight(candidate.account.id) for candidate in ready]
    least = min(loads)
    tied = [account for account, load in zip(ready, loads, strict=True) if load == least]
    first = tied[state.next_turn(cursor) % len(tied)] if len(tied) > 1 else tied[0]
    rest = sorted((a for a in ready if a is not first), key=lambda a: loads[ready.index(a)])
    return [first, *rest]


def _weighted(ready: Sequence[Candidate], turn: int) -> list[Candidate]:
    """Smooth weighted round-robin: weights 5,1,1 give a a b a c a a, not a a a a a b c.
    The sequence is fixed by the weights; the shared cursor walks it."""
    sequence = _smooth_sequence(tuple(max(1, candidate.account.weight) for candidate in ready))
    first = ready[sequence[turn % len(sequence)]]
    return [first, *(a for a in ready if a is not first)]


@lru_cache(maxsize=256)
def _smooth_sequence(weights: tuple[int, ...]) -> tuple[int, ...]:
    total = sum(weights)
    current = [0] * len(weights)
    picks = []
    for _ in range(total):
        for index, weight in enumerate(weights):
            current[index] += weight
        chosen = max(range(len(weights)), key=lambda i: current[i])
        current[chosen] -= total
        picks.append(chosen)
    return tuple(picks)


def _rendezvous(ready: Sequence[Candidate], key: str) -> list[Candidate]:
    """Highest-random-weight hashing: a conversation keeps its account while
    that one is ready, and moves to its next-highest (only) when it is not."""
    encoded = key.encode()
    return sorted(ready, key=lambda c: hashlib.blake2b(encoded + b"\0" + c.account.id.encode(), digest_size=8).digest(),
                  reverse=True)


def sticky_key(body: Mapping[str, Any], headers: Mapping[str, str], history: Sequence[Any] = ()) -> str:
    """What names a conversation: Responses `prompt_cache_key`, Anthropic
    `metadata.user_id`, a `session_id` / `x-session-id` header, the first
    stored messages of a `previous_response_id` chain, else the first messages."""
    cache_key = body.get("prompt_cache_key")
    if isinstance(cache_key, str) and cache_key:
        return "cache:" + cache_key
    metadata = body.get("metadata")
    user = metadata.get("user_id") if isinstance(metadata, dict) else None
    if isinstance(user, str) and user:
        return "user:" + user
    session = headers.get("session_id") or headers.get("x-session-id")
    if session:
        return "session:" + session
    if history:
        return "chain:" + repr(history[:_STICKY_MESSAGES])
    for field in ("messages", "input", "contents"):
        value = body.get(field)
        if value:
            first = value[:_STICKY_MESSAGES] if isinstance(value, list) else value
            try:
                text = orjson.dumps(first, option=orjson.OPT_SORT_KEYS).decode()
            except orjson.JSONEncodeError:
                text = repr(first)
            return f"start:{body.get('system', '')!r}:{text}"
    return ""

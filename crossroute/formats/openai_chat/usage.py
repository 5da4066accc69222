"""Usage as Chat Completions reports it: the one reader for the translated path and the passthrough sniffer."""

from __future__ import annotations

from crossroute.formats._usage import latest
from crossroute.ir import Usage


def _count(value: object) -> int:
    return value if type(value) is int and value > 0 else 0  # not bool, not negative


def read_usage(wire: object) -> Usage | None:
    """`prompt_tokens` already includes the cached tokens, as the IR counts them.
    (Called once per passthrough stream too: kept lean.)"""
    if not isinstance(wire, dict):
        return None
    cached = written = reasoning = 0
    prompt = wire.get("prompt_tokens_details")
    if isinstance(prompt, dict):
        cached = _count(prompt.get("cached_tokens"))
        written = _count(prompt.get("cache_write_tokens"))
    if not cached:  # DeepSeek reports cache hits at the top level instead of in the details.
        cached = _count(wire.get("prompt_cache_hit_tokens"))
    completion = wire.get("completion_tokens_details")
    if isinstance(completion, dict):
        reasoning = _count(completion.get("reasoning_tokens"))
    return Usage(_count(wire.get("prompt_tokens")), _count(wire.get("completion_tokens")), cached, written, reasoning)


# A stream's usage chunk (after finish_reason) carries the whole count.
add_usage = latest

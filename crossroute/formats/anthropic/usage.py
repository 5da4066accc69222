"""Usage as Anthropic Messages reports it: the one reader for the translated path and the passthrough sniffer."""

from __future__ import annotations

from typing import Any

from crossroute import ir
from crossroute.formats._usage import merged


def _count(value: Any) -> int:
    return value if type(value) is int and value > 0 else 0  # not bool, not negative


def read_usage(wire: Any) -> ir.Usage | None:
    """Anthropic counts cache reads and writes outside `input_tokens`; the IR counts them inside."""
    if not isinstance(wire, dict):
        return None
    cached = _count(wire.get("cache_read_input_tokens"))
    written = _count(wire.get("cache_creation_input_tokens"))
    details = wire.get("output_tokens_details")
    thinking = _count(details.get("thinking_tokens")) if isinstance(details, dict) else 0
    return ir.Usage(
        input_tokens=_count(wire.get("input_tokens")) + cached + written,
        output_tokens=_count(wire.get("output_tokens")),
        cached_tokens=cached,
        cache_write_tokens=written,
        reasoning_tokens=thinking,
    )


# message_start holds the input and cache counts, message_delta the running output
# (newer API versions repeat the input counts there; older ones do not).
add_usage = merged

"""Usage as the Responses API reports it: the one reader for the translated path and the passthrough sniffer."""

from __future__ import annotations

from typing import Any

from crossroute import ir
from crossroute.formats._usage import latest
from crossroute.formats.openai_responses._common import get_dict, get_int


def read_usage(wire: Any) -> ir.Usage | None:
    """`input_tokens` already includes the cached tokens, as the IR counts them."""
    if not isinstance(wire, dict):
        return None
    input_details = get_dict(wire, "input_tokens_details")
    return ir.Usage(
        input_tokens=get_int(wire, "input_tokens"),
        output_tokens=get_int(wire, "output_tokens"),
        cached_tokens=get_int(input_details, "cached_tokens"),
        cache_write_tokens=get_int(input_details, "cache_write_tokens"),
        reasoning_tokens=get_int(get_dict(wire, "output_tokens_details"), "reasoning_tokens"),
    )


# Only the terminal event's response carries a count, the whole of it.
add_usage = latest

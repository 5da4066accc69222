"""Usage as Gemini reports it (usageMetadata): the one reader for the translated path and the passthrough sniffer."""

from __future__ import annotations

from typing import Any

from crossroute import ir
from crossroute.formats._usage import merged
from crossroute.formats.gemini._wire import field


def _count(meta: dict[str, Any], name: str) -> int:
    value = field(meta, name)
    if isinstance(value, str) and value.isdigit():  # proto-JSON may write int32 as strings
        return int(value)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def read_usage(wire: Any) -> ir.Usage | None:
    """Thoughts are counted apart from the candidates; the IR counts them in the output.
    The prompt count already includes the cached content."""
    if not isinstance(wire, dict):
        return None
    thoughts = _count(wire, "thoughtsTokenCount")
    return ir.Usage(
        input_tokens=_count(wire, "promptTokenCount") + _count(wire, "toolUsePromptTokenCount"),
        output_tokens=_count(wire, "candidatesTokenCount") + thoughts,
        cached_tokens=_count(wire, "cachedContentTokenCount"),
        reasoning_tokens=thoughts,
    )


# Every chunk's usageMetadata is a running count; a last chunk that leaves a field out
# (the prompt count, say) keeps the one reported before.
add_usage = merged

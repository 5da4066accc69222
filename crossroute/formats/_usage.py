"""How a stream's usage frames add up, for the formats' usage modules (`add_usage`)."""

from __future__ import annotations

from typing import Any


def latest(total: dict[str, Any] | None, wire: dict[str, Any]) -> dict[str, Any]:
    """Each usage frame carries the whole count: the last one wins."""
    return wire


def merged(total: dict[str, Any] | None, wire: dict[str, Any]) -> dict[str, Any]:
    """Frames carry running counts, not always all of them: a field a later frame
    sends overwrites, one it leaves out or sends as null keeps its earlier value."""
    counts = {} if total is None else total
    counts.update({key: value for key, value in wire.items() if value is not None})
    return counts

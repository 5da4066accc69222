"""Usage read beside a passthrough stream at almost no cost: only the lines
that mention usage are parsed, whatever the format. What the fields mean is the
format's own reader (formats/<format>/usage.py), the one its translated path uses,
so both paths count cached, cache-write and reasoning tokens the same way."""

from __future__ import annotations

from typing import Any, Protocol

import orjson

from crossroute import ir
from crossroute.formats.anthropic import usage as anthropic_usage
from crossroute.formats.gemini import usage as gemini_usage
from crossroute.formats.openai_chat import usage as chat_usage
from crossroute.formats.openai_responses import usage as responses_usage

_MARK = b"sage"  # in "usage", "usageMetadata" and "usage_metadata"
_KEYS = ("usage", "usageMetadata", "usage_metadata")
# A line longer than this is let go unread (a Responses `response.completed` line
# carries the whole output, so this is well above a usual answer).
_CARRY_LIMIT = 1 << 20


class UsageDialect(Protocol):
    """A format's usage module: how its wire usage maps to the IR, and how a stream's frames add up."""

    def read_usage(self, wire: Any, /) -> ir.Usage | None: ...

    def add_usage(self, total: dict[str, Any] | None, wire: dict[str, Any], /) -> dict[str, Any]: ...


class UsageSniffer:
    def __init__(self, dialect: UsageDialect | None = None) -> None:
        """`dialect`: the stream's format's usage module; by default told by the first usage seen."""
        self._dialect = dialect
        self._wire: dict[str, Any] | None = None  # the stream's usage so far, as the format sent it
        self._carry: list[bytes] = []  # an unfinished line from earlier chunks, in pieces
        self._carry_size = 0
        self._skipping = False  # the unfinished line passed the limit: its rest is ignored

    def feed(self, chunk: bytes) -> None:
        if self._carry or self._skipping:
            end = chunk.find(b"\n")
            if end == -1:
                self._keep(chunk)
                return
            if not self._skipping:
                line = b"".join(self._carry) + chunk[:end]
                if _MARK in line:
                    self._read(line)
            self._carry, self._carry_size, self._skipping = [], 0, False
            chunk = chunk[end + 1:]
        if _MARK not in chunk:
            self._keep(chunk[chunk.rfind(b"\n") + 1:])
            return
        lines = chunk.split(b"\n")
        self._keep(lines.pop())
        for line in lines:
            if _MARK in line:
                self._read(line)

    def close(self) -> ir.Usage | None:
        rest = b"".join(self._carry)
        if _MARK in rest and not self._skipping:
            self._read(rest)
        if self._dialect is None or self._wire is None:
            return None
        return self._dialect.read_usage(self._wire)

    def _keep(self, piece: bytes) -> None:
        if not piece or self._skipping:
            return
        self._carry_size += len(piece)
        if self._carry_size > _CARRY_LIMIT:
            self._carry, self._carry_size, self._skipping = [], 0, True
        else:
            self._carry.append(piece)

    def _read(self, line: bytes) -> None:
        start = line.find(b"{")
        if start < 0:
            return
        try:
            found = _find_usage(orjson.loads(line[start:]))
        except orjson.JSONDecodeError:
            return
        if found is None:
            return
        holder, key, wire = found
        if self._dialect is None:
            self._dialect = _dialect_of(holder, key, wire)
        self._wire = self._dialect.add_usage(self._wire, wire)


def usage_in(value: Any, depth: int = 0, dialect: UsageDialect | None = None) -> ir.Usage | None:
    """The usage anywhere in a body or frame (chat chunk, Anthropic event, Responses event, Gemini chunk),
    read by `dialect` (by default, the format its fields tell)."""
    found = _find_usage(value, depth)
    if found is None:
        return None
    holder, key, wire = found
    return (dialect or _dialect_of(holder, key, wire)).read_usage(wire)


def _find_usage(value: Any, depth: int = 0) -> tuple[dict[str, Any], str, dict[str, Any]] | None:
    """(the object holding the usage, its key, the usage object), looked for a few levels down."""
    if type(value) is not dict:
        return None
    for key in _KEYS:
        wire = value.get(key)
        if type(wire) is dict:
            return value, key, wire
    if depth < 3:
        for child in value.values():
            if type(child) is dict:
                found = _find_usage(child, depth + 1)
                if found is not None:
                    return found
    return None


def _dialect_of(holder: dict[str, Any], key: str, wire: dict[str, Any]) -> UsageDialect:
    if key != "usage":
        return gemini_usage
    if "prompt_tokens" in wire or "completion_tokens" in wire:
        return chat_usage
    # Input and output tokens alone read the same in both of these; what only one has decides.
    if holder.get("object") == "response" or "total_tokens" in wire or "input_tokens_details" in wire:
        return responses_usage
    return anthropic_usage

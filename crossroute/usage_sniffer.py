"""Usage read beside a passthrough stream at almost no cost: only the lines
that mention usage are parsed, whatever the format."""

from __future__ import annotations

from typing import Any

import orjson

from crossroute import ir

_MARK = b"sage"  # in "usage" and "usageMetadata"
# A line longer than this is let go unread (a Responses `response.completed` line
# carries the whole output, so this is well above a usual answer).
_CARRY_LIMIT = 1 << 20


class UsageSniffer:
    def __init__(self) -> None:
        self.usage: ir.Usage | None = None
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
        return self.usage

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
            found = usage_in(orjson.loads(line[start:]))
        except orjson.JSONDecodeError:
            return
        if found is not None:
            self.usage = _merge(self.usage, found)


def usage_in(value: Any, depth: int = 0) -> ir.Usage | None:
    """The usage object anywhere in a frame (chat chunk, Anthropic event, Responses event, Gemini chunk)."""
    if not isinstance(value, dict) or depth > 3:
        return None
    for key in ("usage", "usageMetadata"):
        if isinstance(value.get(key), dict):
            return _from_fields(value[key])
    for child in value.values():
        if isinstance(child, dict):
            found = usage_in(child, depth + 1)
            if found is not None:
                return found
    return None


def _int(data: dict[str, Any], *keys: str) -> int:
    total = 0
    for key in keys:
        number = data.get(key)
        if isinstance(number, int):
            total += number
    return total


def _from_fields(data: dict[str, Any]) -> ir.Usage:
    if "promptTokenCount" in data or "candidatesTokenCount" in data:  # Gemini
        return ir.Usage(_int(data, "promptTokenCount"), _int(data, "candidatesTokenCount", "thoughtsTokenCount"))
    if "prompt_tokens" in data:  # Chat Completions
        return ir.Usage(_int(data, "prompt_tokens"), _int(data, "completion_tokens"))
    # Anthropic (input excludes cache reads/writes) and Responses
    return ir.Usage(_int(data, "input_tokens", "cache_read_input_tokens", "cache_creation_input_tokens"),
                    _int(data, "output_tokens"))


def _merge(earlier: ir.Usage | None, later: ir.Usage) -> ir.Usage:
    """Later frames overwrite; a frame that lacks the input count (Anthropic's
    message_delta) keeps the one seen before."""
    if earlier is not None and later.input_tokens == 0:
        later.input_tokens = earlier.input_tokens
    return later

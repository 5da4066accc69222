"""What a fake upstream answers (Turn) and what it saw (Recorded).

A Turn is protocol-neutral: each protocol module renders it in its own wire
shape. Usage follows one convention everywhere and each fake restates it in
its own accounting:

    usage = (input, output, cached, reasoning)
    input  - all prompt tokens, cached ones included (OpenAI/Gemini style)
    output - all generated tokens, reasoning included (OpenAI/Anthropic style)
    cached - the cached part of input
    reasoning - the reasoning part of output

So an Anthropic fake reports input_tokens = input - cached and
cache_read_input_tokens = cached; a Gemini fake reports
candidatesTokenCount = output - reasoning and thoughtsTokenCount = reasoning.
Without `usage` the numbers are estimated from the request and the answer.

Reasoning shows only where the real API would show it:
- Chat: `reasoning_content` on the message / deltas, always (DeepSeek style).
- Responses: a reasoning item whenever reasoning or signature is set (and
  reasoning.effort is not "none"); its summary text only when the request sets
  reasoning.summary; `encrypted_content` (= signature, or a minted one) only
  when include has "reasoning.encrypted_content".
- Anthropic: a thinking block only when the request enables thinking
  (enabled/adaptive); display "omitted" empties its text; the signature is
  `signature` or a minted one.
- Gemini: thought parts only with thinkingConfig.includeThoughts; the
  thoughtSignature (only when `signature` is set) rides on the first
  functionCall part, else on the last text part.
Replays are checked against what was handed out (Anthropic signatures,
Responses encrypted_content, Gemini call signatures).

Faults: `error` answers an HTTP error before the first byte; `delay` stalls
first. In a stream, `break_after=N` cuts the TCP connection before the
(N+1)-th content chunk (or before the terminal events when there are fewer)
and `stream_error` sends the protocol's in-stream error after the first
content chunk, then ends without a terminator. A non-streaming request turns
`stream_error` into an HTTP error and `break_after` into a dropped connection.
"""

from __future__ import annotations

import secrets
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Literal

StopKind = Literal["stop", "length", "content_filter"]


@dataclass(slots=True)
class ToolCallSpec:
    name: str
    args: dict[str, Any] = field(default_factory=dict)
    id: str | None = None


@dataclass(slots=True)
class Turn:
    """One scripted reply. Every field is optional; see the module docstring for usage."""

    text: str = ""
    reasoning: str = ""
    signature: str | None = None
    tool_calls: list[ToolCallSpec] = field(default_factory=list)
    stop: StopKind = "stop"
    usage: tuple[int, int, int, int] | None = None
    error: tuple[int, str] | None = None
    retry_after: float | None = None
    break_after: int | None = None
    stream_error: tuple[int, str] | None = None
    delay: float = 0.0
    chunk_text: int = 5
    headers: dict[str, str] = field(default_factory=dict)  # sent with the answer, e.g. the provider's rate-limit headers


@dataclass(slots=True)
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any
    protocol: str
    raw: bytes = b""
    raw_path: str = ""  # as sent, percent-escapes kept


@dataclass(slots=True)
class Usage:
    input: int
    output: int
    cached: int
    reasoning: int


class Script:
    """Thread-safe queue of turns; an empty queue answers Turn(text="ok")."""

    def __init__(self) -> None:
        self._turns: deque[Turn] = deque()
        self._lock = threading.Lock()

    def push(self, turns: tuple[Turn, ...]) -> None:
        with self._lock:
            self._turns.extend(turns)

    def pop(self) -> Turn:
        with self._lock:
            return self._turns.popleft() if self._turns else Turn(text="ok")

    def clear(self) -> None:
        with self._lock:
            self._turns.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._turns)


def new_id(prefix: str, size: int = 12) -> str:
    return prefix + secrets.token_hex(size)


def split_pieces(text: str, pieces: int) -> list[str]:
    """Split text into at most `pieces` non-empty parts of similar length."""
    if not text:
        return []
    count = max(1, min(pieces, len(text)))
    size, extra = divmod(len(text), count)
    parts: list[str] = []
    start = 0
    for index in range(count):
        end = start + size + (1 if index < extra else 0)
        parts.append(text[start:end])
        start = end
    return parts


STRUCTURAL_KEYS = frozenset({"role", "type"})


def collect_strings(value: Any, out: list[str]) -> None:
    if isinstance(value, str):
        out.append(value)
    elif isinstance(value, dict):
        for key, item in value.items():
            if key not in STRUCTURAL_KEYS:
                collect_strings(item, out)
    elif isinstance(value, list):
        for item in value:
            collect_strings(item, out)


def estimate_tokens(*values: Any) -> int:
    """Deterministic stand-in for a tokenizer: characters of every string value (roles and
    type tags aside) / 4, plus 1."""
    strings: list[str] = []
    for value in values:
        collect_strings(value, strings)
    return sum(len(s) for s in strings) // 4 + 1


def resolve_usage(turn: Turn, prompt_tokens: int, arguments: list[str]) -> Usage:
    if turn.usage is not None:
        return Usage(*turn.usage)
    reasoning = len(turn.reasoning) // 4 + 1 if turn.reasoning else 0
    visible = (len(turn.text) + sum(len(a) for a in arguments)) // 4 + 1
    return Usage(prompt_tokens, visible + reasoning, 0, reasoning)

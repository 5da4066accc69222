"""A local token estimate for providers without a counting endpoint.

Counts word pieces the way BPE tokenisers roughly split text (a word of up
to ~4 letters is one token, longer words one per ~4 letters, each punctuation
mark one, each CJK character one), plus a few tokens of framing per message
and tool. Close enough to budget a context window; never a constant."""

from __future__ import annotations

import re

import orjson

from crossroute import ir

_PIECES = re.compile(r"[A-Za-z]+|\d{1,3}|[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af]|[^\sA-Za-z\d]")
IMAGE_TOKENS = 765  # a mid-size image, as OpenAI bills a 512x512 tile pair
PER_MESSAGE = 4
PER_TOOL = 8


def estimate_text(text: str) -> int:
    total = 0
    for piece in _PIECES.findall(text):
        total += 1 if len(piece) <= 4 else (len(piece) + 3) // 4
    return total


def estimate_request(req: ir.Request) -> int:
    total = sum(estimate_text(p.text) for p in req.system)
    for message in req.messages:
        total += PER_MESSAGE + sum(_estimate_part(p) for p in message.parts)
    for tool in req.tools:
        total += PER_TOOL + estimate_text(tool.name) + estimate_text(tool.description or "")
        if tool.parameters:
            total += estimate_text(orjson.dumps(tool.parameters).decode())
    return total


def _estimate_part(part: ir.Part) -> int:
    if isinstance(part, ir.Text):
        return estimate_text(part.text)
    if isinstance(part, ir.Image):
        return IMAGE_TOKENS
    if isinstance(part, ir.Reasoning):
        return estimate_text(part.text)
    if isinstance(part, ir.ToolCall):
        return estimate_text(part.name) + estimate_text(part.arguments)
    return sum(_estimate_part(p) for p in part.content)

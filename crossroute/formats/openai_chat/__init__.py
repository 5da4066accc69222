"""OpenAI Chat Completions, both directions.

Client side: `parse_request`, `render_response`, `StreamEncoder`, `render_error`.
Upstream side: `render_request`, `parse_response`, `StreamDecoder`, `parse_error`.

Chat has no reasoning-signature field of its own. Google's OpenAI-compatible
endpoint carries Gemini thought signatures as
`tool_calls[i].extra_content.google.thought_signature`, so that is where a
gemini-origin signature that precedes a tool call travels, in both directions;
every other signature is dropped at this format's edge.
"""

from __future__ import annotations

from crossroute.formats.openai_chat.client_request import parse_request
from crossroute.formats.openai_chat.errors import parse_error, render_error
from crossroute.formats.openai_chat.response import parse_response, render_response
from crossroute.formats.openai_chat.stream_decoder import StreamDecoder
from crossroute.formats.openai_chat.stream_encoder import StreamEncoder
from crossroute.formats.openai_chat.upstream_request import render_request

__all__ = [
    "StreamDecoder",
    "StreamEncoder",
    "parse_error",
    "parse_request",
    "parse_response",
    "render_error",
    "render_request",
    "render_response",
]

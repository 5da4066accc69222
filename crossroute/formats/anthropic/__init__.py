"""Anthropic Messages, both directions (see crossroute.formats for the interface).

Client side: parse_request, render_response, StreamEncoder, render_error.
Upstream side: render_request, parse_response, StreamDecoder, parse_error.
"""

from __future__ import annotations

from crossroute.formats.anthropic.errors import parse_error, render_error
from crossroute.formats.anthropic.request_parse import parse_request
from crossroute.formats.anthropic.request_render import render_request
from crossroute.formats.anthropic.response import parse_response, render_response
from crossroute.formats.anthropic.stream_decode import StreamDecoder
from crossroute.formats.anthropic.stream_encode import StreamEncoder

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

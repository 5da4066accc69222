"""Gemini generateContent / streamGenerateContent, both directions.

Client side: parse_request, render_response, StreamEncoder, render_error.
Upstream side: render_request, parse_response, StreamDecoder, parse_error.
"""

from crossroute.formats.gemini._wire import OWN_FAMILY
from crossroute.formats.gemini.client_request import parse_request
from crossroute.formats.gemini.errors import parse_error, render_error
from crossroute.formats.gemini.response import parse_response, render_response
from crossroute.formats.gemini.stream import StreamDecoder, StreamEncoder
from crossroute.formats.gemini.upstream_request import render_request

__all__ = [
    "OWN_FAMILY",
    "StreamDecoder",
    "StreamEncoder",
    "parse_error",
    "parse_request",
    "parse_response",
    "render_error",
    "render_request",
    "render_response",
]

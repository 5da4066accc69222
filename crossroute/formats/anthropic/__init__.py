"""Anthropic Messages, both directions; `FORMAT` is its crossroute.formats.WireFormat.

Client side: parse_request, render_response, StreamEncoder, render_error.
Upstream side: render_request, parse_response, StreamDecoder, parse_error.
"""

from __future__ import annotations

from typing import Any, Final

from crossroute import ir
from crossroute.formats._protocol import ClientOptions
from crossroute.formats.anthropic import models, usage
from crossroute.formats.anthropic.client_request import parse_request
from crossroute.formats.anthropic.errors import parse_error, render_error
from crossroute.formats.anthropic.response import parse_response, render_response
from crossroute.formats.anthropic.stream_decoder import StreamDecoder
from crossroute.formats.anthropic.stream_encoder import StreamEncoder
from crossroute.formats.anthropic.upstream_request import render_request

__all__ = [
    "FORMAT",
    "StreamDecoder",
    "StreamEncoder",
    "parse_error",
    "parse_request",
    "parse_response",
    "render_error",
    "render_request",
    "render_response",
]


class Anthropic:
    name: Final = "anthropic"
    model_in_url: Final = False
    stores_responses: Final = False
    custom_tools_from: Final[frozenset[ir.Format]] = frozenset()
    usage: Final = usage

    @staticmethod
    def parse_request(body: dict[str, Any], options: ClientOptions, /) -> ir.Request:
        return parse_request(body, model=options.model, stream=options.stream, count_only=options.count_only)

    render_response = staticmethod(render_response)

    @staticmethod
    def stream_encoder(req: ir.Request, options: ClientOptions, /) -> StreamEncoder:
        return StreamEncoder(req)

    render_error = staticmethod(render_error)

    @staticmethod
    def render_token_count(count: int, /) -> dict[str, Any]:
        return {"input_tokens": count}

    render_models = staticmethod(models.render_models)
    render_model = staticmethod(models.render_model)
    render_request = staticmethod(render_request)
    parse_response = staticmethod(parse_response)
    stream_decoder = staticmethod(StreamDecoder)
    parse_error = staticmethod(parse_error)


FORMAT: Final = Anthropic()

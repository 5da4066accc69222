"""Gemini generateContent / streamGenerateContent, both directions; `FORMAT` is its
crossroute.formats.WireFormat.

Client side: parse_request, render_response, StreamEncoder, render_error.
Upstream side: render_request, parse_response, StreamDecoder, parse_error.
"""

from __future__ import annotations

from typing import Any, Final

from crossroute import ir
from crossroute.formats._protocol import ClientOptions
from crossroute.formats.gemini import models, usage
from crossroute.formats.gemini._wire import OWN_FAMILY
from crossroute.formats.gemini.client_request import parse_request
from crossroute.formats.gemini.errors import parse_error, render_error
from crossroute.formats.gemini.response import parse_response, render_response
from crossroute.formats.gemini.stream_decoder import StreamDecoder
from crossroute.formats.gemini.stream_encoder import StreamEncoder
from crossroute.formats.gemini.upstream_request import render_request

__all__ = [
    "FORMAT",
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


class Gemini:
    name: Final = "gemini"
    model_in_url: Final = True  # /models/{model}:streamGenerateContent
    stores_responses: Final = False
    custom_tools_from: Final[frozenset[ir.Format]] = frozenset()
    usage: Final = usage

    @staticmethod
    def parse_request(body: dict[str, Any], options: ClientOptions, /) -> ir.Request:
        if options.count_only:  # countTokens may wrap a whole generateContent request
            inner = body.get("generateContentRequest")
            if isinstance(inner, dict):
                body = inner
        return parse_request(body, model=options.model, stream=options.stream)

    render_response = staticmethod(render_response)

    @staticmethod
    def stream_encoder(req: ir.Request, options: ClientOptions, /) -> StreamEncoder:
        return StreamEncoder(req, sse=options.sse)

    render_error = staticmethod(render_error)

    @staticmethod
    def render_token_count(count: int, /) -> dict[str, Any]:
        return {"totalTokens": count}

    render_models = staticmethod(models.render_models)
    render_model = staticmethod(models.render_model)
    render_request = staticmethod(render_request)
    parse_response = staticmethod(parse_response)
    stream_decoder = staticmethod(StreamDecoder)
    parse_error = staticmethod(parse_error)


FORMAT: Final = Gemini()

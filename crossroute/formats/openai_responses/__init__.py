"""OpenAI Responses API (`POST /v1/responses`), both directions; `FORMAT` is its
crossroute.formats.WireFormat.

Client side: parse_request, render_response, StreamEncoder, render_error,
plus render_input_items for GET /v1/responses/{id}/input_items.
Upstream side: render_request, parse_response, StreamDecoder, parse_error.
Signatures of this family ("openai") are reasoning items' encrypted_content.
"""

from __future__ import annotations

from typing import Any, Final

from crossroute import ir
from crossroute.formats._protocol import ClientOptions
from crossroute.formats.openai_chat import models
from crossroute.formats.openai_responses import usage
from crossroute.formats.openai_responses._common import NAME
from crossroute.formats.openai_responses._items import ItemRenderer
from crossroute.formats.openai_responses.client_request import parse_request
from crossroute.formats.openai_responses.errors import parse_error, render_error
from crossroute.formats.openai_responses.response import parse_response, render_response
from crossroute.formats.openai_responses.stream_decoder import StreamDecoder
from crossroute.formats.openai_responses.stream_encoder import StreamEncoder
from crossroute.formats.openai_responses.upstream_request import render_request
from crossroute.ir import Message

__all__ = [
    "FORMAT",
    "StreamDecoder",
    "StreamEncoder",
    "parse_error",
    "parse_request",
    "parse_response",
    "render_error",
    "render_input_items",
    "render_request",
    "render_response",
]


def render_input_items(messages: list[Message]) -> list[dict[str, Any]]:
    """Messages as GET /v1/responses/{id}/input_items lists them: every item
    with an id and status, signatures tagged for a Responses client."""
    return ItemRenderer("client").render(messages)


class OpenAIResponses:
    name: Final = NAME
    model_in_url: Final = False
    stores_responses: Final = True
    custom_tools_from: Final[frozenset[ir.Format]] = frozenset(ir.FORMATS)  # its own custom tools, from any client
    usage: Final = usage

    @staticmethod
    def parse_request(body: dict[str, Any], options: ClientOptions, /) -> ir.Request:
        return parse_request(body, model=options.model, stream=options.stream)

    render_response = staticmethod(render_response)

    @staticmethod
    def stream_encoder(req: ir.Request, options: ClientOptions, /) -> StreamEncoder:
        return StreamEncoder(req)

    render_error = staticmethod(render_error)

    @staticmethod
    def render_token_count(count: int, /) -> dict[str, Any]:
        return {"input_tokens": count}  # no count route of its own: the Anthropic shape

    render_models = staticmethod(models.render_models)
    render_model = staticmethod(models.render_model)
    render_request = staticmethod(render_request)
    parse_response = staticmethod(parse_response)
    stream_decoder = staticmethod(StreamDecoder)
    parse_error = staticmethod(parse_error)

    render_input_items = staticmethod(render_input_items)  # GET /v1/responses/{id}/input_items


FORMAT: Final = OpenAIResponses()

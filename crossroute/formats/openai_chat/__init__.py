"""OpenAI Chat Completions, both directions; `FORMAT` is its crossroute.formats.WireFormat.

Client side: `parse_request`, `render_response`, `StreamEncoder`, `render_error`.
Upstream side: `render_request`, `parse_response`, `StreamDecoder`, `parse_error`.

Chat has no reasoning-signature field of its own. Google's OpenAI-compatible
endpoint carries Gemini thought signatures as
`tool_calls[i].extra_content.google.thought_signature`, so that is where a
gemini-origin signature that precedes a tool call travels, in both directions;
every other signature is dropped at this format's edge.
"""

from __future__ import annotations

from typing import Any, Final

from crossroute import ir
from crossroute.formats._protocol import ClientOptions
from crossroute.formats.openai_chat import models, usage
from crossroute.formats.openai_chat._common import NAME
from crossroute.formats.openai_chat.client_request import parse_request
from crossroute.formats.openai_chat.errors import parse_error, render_error
from crossroute.formats.openai_chat.response import parse_response, render_response
from crossroute.formats.openai_chat.stream_decoder import StreamDecoder
from crossroute.formats.openai_chat.stream_encoder import StreamEncoder
from crossroute.formats.openai_chat.upstream_request import render_request

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


class OpenAIChat:
    name: Final = NAME
    model_in_url: Final = False
    stores_responses: Final = False
    custom_tools_from: Final[frozenset[ir.Format]] = frozenset({NAME})  # chat `custom` tools, as sent
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


FORMAT: Final = OpenAIChat()

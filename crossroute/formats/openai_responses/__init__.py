"""OpenAI Responses API (`POST /v1/responses`), both directions.

Client side: parse_request, render_response, StreamEncoder, render_error,
plus render_input_items for GET /v1/responses/{id}/input_items.
Upstream side: render_request, parse_response, StreamDecoder, parse_error.
Signatures of this family ("openai") are reasoning items' encrypted_content.
"""

from __future__ import annotations

from typing import Any

from crossroute.formats.openai_responses.decoder import StreamDecoder
from crossroute.formats.openai_responses.encoder import StreamEncoder
from crossroute.formats.openai_responses.errors import parse_error, render_error
from crossroute.formats.openai_responses.items import ItemRenderer
from crossroute.formats.openai_responses.request import parse_request, render_request
from crossroute.formats.openai_responses.response import parse_response, render_response
from crossroute.ir import Message

__all__ = [
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

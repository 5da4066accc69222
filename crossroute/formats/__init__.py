"""One package per wire format, both directions, all speaking `crossroute.ir`.

Each package exports `FORMAT`, an object satisfying `WireFormat` (formats/_protocol.py,
checked by mypy below); the gateway reaches a format only through these objects
(`call.fmt.parse_request(...)`, `provider.format.parse_error(...)`), never by
comparing names: tests/test_format_names.py fails on a format-name literal outside
this package. What differs between formats beyond the wire shapes is a member too
(`model_in_url`, `stores_responses`, `custom_tools_from`, `render_token_count`, ...).

Client side (what an agent sends us / what we send back to it)
    parse_request(body, options: ClientOptions) -> ir.Request
        Raises ir.GatewayError(400, ...) for malformed input (the readers in
        `_input` do this). `options` carries what the URL says (Gemini's model and
        stream, alt=sse) and whether this is a count-tokens body.
    render_response(resp, req) -> dict
    stream_encoder(req, options) -> encode(event) -> bytes, close() -> bytes
        (close ends with this format's error event if no Finish/StreamError was seen)
    render_error(err) -> dict          # the status is the error's
    render_token_count(n), render_models(...), render_model(...) -> dict
    usage                              # the usage reader (read_usage, add_usage)

Upstream side (what we send a provider / what it answers)
    render_request(req, model) -> dict # `model`: the upstream model name
    parse_response(body) -> ir.Response
    stream_decoder() -> feed(chunk) -> list[ir.Event], close() -> list[ir.Event]
    parse_error(status, body: bytes) -> ir.GatewayError

Every package names its modules alike: client_request (parse_request),
upstream_request (render_request), response (parse_response and render_response:
one JSON shape, read and written), stream_encoder, stream_decoder, errors, usage,
models (model listings); private helpers start with `_`.
"""

from __future__ import annotations

from typing import Final

from crossroute import ir
from crossroute.formats import anthropic, gemini, openai_chat, openai_responses
from crossroute.formats._protocol import (
    COUNT_OPTIONS,
    DEFAULT_OPTIONS,
    ClientOptions,
    StreamDecoder,
    StreamEncoder,
    WireFormat,
)

OPENAI_CHAT: Final[WireFormat] = openai_chat.FORMAT
OPENAI_RESPONSES: Final[WireFormat] = openai_responses.FORMAT
ANTHROPIC: Final[WireFormat] = anthropic.FORMAT
GEMINI: Final[WireFormat] = gemini.FORMAT

FORMATS: Final[dict[ir.Format, WireFormat]] = {f.name: f for f in (OPENAI_CHAT, OPENAI_RESPONSES, ANTHROPIC, GEMINI)}
assert tuple(FORMATS) == ir.FORMATS, "one format object per ir.Format name"

__all__ = [
    "ANTHROPIC",
    "COUNT_OPTIONS",
    "DEFAULT_OPTIONS",
    "FORMATS",
    "GEMINI",
    "OPENAI_CHAT",
    "OPENAI_RESPONSES",
    "ClientOptions",
    "StreamDecoder",
    "StreamEncoder",
    "WireFormat",
]

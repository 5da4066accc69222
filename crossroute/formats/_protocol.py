"""The one interface every wire format gives the gateway (see crossroute.formats)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from crossroute import ir

if TYPE_CHECKING:
    from crossroute.usage_sniffer import UsageDialect


@dataclass(frozen=True, slots=True)
class ClientOptions:
    """What the client's request says outside its body, for the format's client side.
    Most requests share `DEFAULT_OPTIONS`; only a format that reads the URL builds its own."""

    model: str | None = None  # the model named by the URL (Gemini's /models/{model}:action)
    stream: bool | None = None  # streaming asked for by the URL (the action)
    sse: bool = True  # stream as SSE frames; False: one JSON array written as it goes (Gemini without alt=sse)
    count_only: bool = False  # the body is a token-count request (fields generation needs may be missing)


DEFAULT_OPTIONS = ClientOptions()
COUNT_OPTIONS = ClientOptions(count_only=True)


class StreamEncoder(Protocol):
    def encode(self, event: ir.Event, /) -> bytes:
        """SSE (or JSON-array) bytes for the client; b"" allowed."""
        ...

    def close(self) -> bytes:
        """The terminator; if no Finish/StreamError was seen, this format's error event first."""
        ...


class StreamDecoder(Protocol):
    def feed(self, chunk: bytes, /) -> list[ir.Event]:
        """Raw upstream bytes, cut anywhere."""
        ...

    def close(self) -> list[ir.Event]:
        """At EOF."""
        ...


class WireFormat(Protocol):
    """A wire format, both sides. The gateway core asks these members, never a format's name."""

    @property
    def name(self) -> ir.Format: ...

    # ---------------------------------------------------------------- what the core branches on

    @property
    def model_in_url(self) -> bool:
        """The model is in the URL, not the body (a passthrough leaves the body's model alone)."""
        ...

    @property
    def stores_responses(self) -> bool:
        """Answers get a gateway id and are stored for `previous_response_id` (unless `store: false`)."""
        ...

    @property
    def custom_tools_from(self) -> frozenset[ir.Format]:
        """Client formats whose custom (free-text) tools an upstream of this format takes as
        they are; from any other, they are lowered to function tools first."""
        ...

    @property
    def usage(self) -> UsageDialect:
        """The format's usage reader, shared by the translated path and the passthrough sniffer."""
        ...

    # ---------------------------------------------------------------- client side

    def parse_request(self, body: dict[str, Any], options: ClientOptions, /) -> ir.Request:
        """Raises ir.GatewayError(400, ...) for malformed input."""
        ...

    def render_response(self, resp: ir.Response, req: ir.Request, /) -> dict[str, Any]: ...

    def stream_encoder(self, req: ir.Request, options: ClientOptions, /) -> StreamEncoder: ...

    def render_error(self, err: ir.GatewayError, /) -> dict[str, Any]:
        """The JSON error body in this format (the status is the error's)."""
        ...

    def render_token_count(self, count: int, /) -> dict[str, Any]:
        """The answer to this format's count-tokens request."""
        ...

    def render_models(self, models: Sequence[tuple[str, str]], created: int, /) -> dict[str, Any]:
        """The model list, from (model name, owning provider) pairs."""
        ...

    def render_model(self, name: str, owner: str, created: int, /) -> dict[str, Any]: ...

    # ---------------------------------------------------------------- upstream side

    def render_request(self, req: ir.Request, model: str, /) -> dict[str, Any]:
        """The body for an upstream of this format, `model` being the upstream model name."""
        ...

    def parse_response(self, body: Any, /) -> ir.Response: ...

    def stream_decoder(self) -> StreamDecoder: ...

    def parse_error(self, status: int, body: bytes, /) -> ir.GatewayError:
        """An upstream error body as the canonical error (message, kind, code, retry hint
        found in the body; the caller adds Retry-After headers)."""
        ...

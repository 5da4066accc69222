"""The one canonical model every wire format converts to and from.

A request is system parts, messages of typed parts, tools, a tool choice and
generation parameters. A response is the same parts plus a stop reason and
usage. A stream is an async iterator of the events at the bottom of this file;
a non-streaming response is that stream collected (see `collect`).

Conventions every format module follows:
- Tool-call arguments are always a JSON *string* (Chat/Responses style);
  formats whose wire carries an object parse / dump at their edge.
- Signatures are opaque strings tagged with the family that minted them
  (`origin`: "anthropic", "gemini", "openai"). An encoder only sends a
  signature upstream when the origin matches its own family.
- `extras` keeps the top-level fields a format has that the IR does not model,
  keyed by the source format, so a same-format hop loses nothing.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

Role = Literal["user", "assistant", "tool", "system"]
StopReason = Literal["end_turn", "max_tokens", "tool_use", "stop_sequence", "content_filter", "error"]
Effort = Literal["none", "minimal", "low", "medium", "high", "xhigh", "max", "auto"]
Format = Literal["openai-chat", "openai-responses", "anthropic", "gemini"]
FORMATS: tuple[Format, ...] = ("openai-chat", "openai-responses", "anthropic", "gemini")


# ---------------------------------------------------------------- content parts


@dataclass(slots=True)
class Text:
    text: str


@dataclass(slots=True)
class Image:
    """An image by URL (http or data:) or by inline base64 bytes."""

    url: str | None = None
    data: str | None = None  # base64, no data: prefix
    media_type: str | None = None
    detail: str | None = None

    def as_data_url(self) -> str | None:
        if self.data is not None:
            return f"data:{self.media_type or 'image/png'};base64,{self.data}"
        return self.url

    def inline(self) -> tuple[str, str] | None:
        """(media_type, base64) when the bytes are available, from data or a data: URL."""
        if self.data is not None:
            return self.media_type or "image/png", self.data
        if self.url and self.url.startswith("data:") and ";base64," in self.url:
            head, b64 = self.url[5:].split(";base64,", 1)
            return head or "image/png", b64
        return None


@dataclass(slots=True)
class Reasoning:
    """Model thinking. `signature` lets a replayed turn validate upstream.

    `redacted` marks Anthropic redacted_thinking (the opaque payload is in
    `signature`). A Gemini thoughtSignature that rides on a text or function
    call part is decoded as a Reasoning with empty text placed just before
    that part.
    """

    text: str = ""
    signature: str | None = None
    origin: str | None = None
    redacted: bool = False
    id: str | None = None  # Responses reasoning item id


@dataclass(slots=True)
class ToolCall:
    id: str
    name: str
    arguments: str = "{}"  # JSON text; for custom tools the raw input string
    kind: Literal["function", "custom"] = "function"


@dataclass(slots=True)
class ToolResult:
    call_id: str
    content: list[Text | Image] = field(default_factory=list)
    name: str | None = None
    is_error: bool = False

    def text(self) -> str:
        return "".join(p.text for p in self.content if isinstance(p, Text))


Part = Text | Image | Reasoning | ToolCall | ToolResult


@dataclass(slots=True)
class Message:
    """role "tool" holds only ToolResult parts; "system" is a system message in
    the middle of the conversation (formats that cannot place it there hoist it)."""

    role: Role
    parts: list[Part] = field(default_factory=list)


# ---------------------------------------------------------------- request


@dataclass(slots=True)
class Tool:
    name: str
    description: str | None = None
    parameters: dict[str, Any] | None = None  # JSON Schema (uncleaned)
    kind: Literal["function", "custom"] = "function"
    custom_format: dict[str, Any] | None = None  # Responses custom tool `format`
    strict: bool | None = None


@dataclass(slots=True)
class ToolChoice:
    mode: Literal["auto", "none", "required", "tool"] = "auto"
    name: str | None = None  # with mode "tool"


@dataclass(slots=True)
class ReasoningConfig:
    """Either an effort level or a token budget (or both, as the client sent).
    `summary` asks for visible reasoning text (Responses summary / Gemini
    includeThoughts / Anthropic display)."""

    effort: Effort | None = None
    budget: int | None = None
    summary: bool | None = None


@dataclass(slots=True)
class ResponseFormat:
    type: Literal["text", "json_object", "json_schema"] = "text"
    schema: dict[str, Any] | None = None
    name: str | None = None
    strict: bool | None = None


@dataclass(slots=True)
class Request:
    model: str
    messages: list[Message] = field(default_factory=list)
    system: list[Text] = field(default_factory=list)
    tools: list[Tool] = field(default_factory=list)
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    stop: list[str] = field(default_factory=list)
    reasoning: ReasoningConfig | None = None
    response_format: ResponseFormat | None = None
    stream: bool = False
    user: str | None = None
    extras: dict[str, Any] = field(default_factory=dict)
    source_format: Format | None = None


# ---------------------------------------------------------------- response


@dataclass(slots=True)
class Usage:
    """OpenAI convention: input includes cached, output includes reasoning."""

    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


@dataclass(slots=True)
class Response:
    id: str
    model: str
    parts: list[Part] = field(default_factory=list)
    stop_reason: StopReason = "end_turn"
    usage: Usage | None = None
    created: int = field(default_factory=lambda: int(time.time()))

    def text(self) -> str:
        return "".join(p.text for p in self.parts if isinstance(p, Text))

    def tool_calls(self) -> list[ToolCall]:
        return [p for p in self.parts if isinstance(p, ToolCall)]


# ---------------------------------------------------------------- errors

ErrorKind = Literal[
    "invalid_request",
    "authentication",
    "permission",
    "not_found",
    "request_too_large",
    "rate_limit",
    "billing",
    "server",
    "overloaded",
    "timeout",
    "unavailable",
]

_KIND_BY_STATUS: dict[int, ErrorKind] = {
    400: "invalid_request",
    401: "authentication",
    402: "billing",
    403: "permission",
    404: "not_found",
    408: "timeout",
    413: "request_too_large",
    422: "invalid_request",
    429: "rate_limit",
    500: "server",
    502: "server",
    503: "unavailable",
    504: "timeout",
    529: "overloaded",
}


def kind_for_status(status: int) -> ErrorKind:
    if status in _KIND_BY_STATUS:
        return _KIND_BY_STATUS[status]
    return "server" if status >= 500 else "invalid_request"


@dataclass(slots=True)
class GatewayError(Exception):
    """An error to show the client: an upstream's, mapped once at the boundary,
    or the gateway's own (bad input, unknown model). Rendered in the client's format."""

    status: int
    message: str
    kind: ErrorKind | None = None
    code: str | None = None  # a format-specific code to keep, e.g. "previous_response_not_found"
    param: str | None = None
    retry_after: float | None = None  # seconds

    def __post_init__(self) -> None:
        if self.kind is None:
            self.kind = kind_for_status(self.status)

    def __str__(self) -> str:
        return f"{self.status} {self.kind}: {self.message}"


# ---------------------------------------------------------------- stream events


@dataclass(slots=True)
class StreamStart:
    id: str
    model: str
    usage: Usage | None = None  # input usage when known up front (Anthropic message_start)


@dataclass(slots=True)
class TextDelta:
    text: str


@dataclass(slots=True)
class ReasoningDelta:
    """Reasoning text, or (with `signature`) the closing signature of the current
    reasoning block. `redacted` carries Anthropic redacted_thinking data whole."""

    text: str = ""
    signature: str | None = None
    origin: str | None = None
    redacted: bool = False
    id: str | None = None


@dataclass(slots=True)
class ToolCallStart:
    index: int  # 0-based ordinal of the call within this response
    id: str
    name: str
    kind: Literal["function", "custom"] = "function"


@dataclass(slots=True)
class ToolCallDelta:
    index: int
    arguments: str


@dataclass(slots=True)
class Finish:
    stop_reason: StopReason
    usage: Usage | None = None


@dataclass(slots=True)
class StreamError:
    """The upstream broke mid-stream; encoders end the client's stream with
    their format's error event and terminator."""

    error: GatewayError


Event = StreamStart | TextDelta | ReasoningDelta | ToolCallStart | ToolCallDelta | Finish | StreamError


# ---------------------------------------------------------------- helpers


def new_id(prefix: str) -> str:
    return f"{prefix}{secrets.token_hex(12)}"


def response_events(resp: Response) -> Iterable[Event]:
    """Replay a complete response as stream events (for streaming a
    non-streamed upstream answer, and for tests)."""
    yield StreamStart(resp.id, resp.model)
    index = 0
    for part in resp.parts:
        if isinstance(part, Text):
            yield TextDelta(part.text)
        elif isinstance(part, Reasoning):
            if part.redacted:
                yield ReasoningDelta(signature=part.signature, origin=part.origin, redacted=True, id=part.id)
                continue
            if part.text:
                yield ReasoningDelta(text=part.text, id=part.id)
            if part.signature is not None:
                yield ReasoningDelta(signature=part.signature, origin=part.origin, id=part.id)
        elif isinstance(part, ToolCall):
            yield ToolCallStart(index, part.id, part.name, part.kind)
            if part.arguments:
                yield ToolCallDelta(index, part.arguments)
            index += 1
    yield Finish(resp.stop_reason, resp.usage)


class Collector:
    """Folds stream events into a Response. Consecutive deltas of one kind join
    one part; a signature closes the reasoning block it belongs to."""

    def __init__(self) -> None:
        self.response = Response(id="", model="")
        self.error: GatewayError | None = None
        self.finished = False
        self._calls: dict[int, ToolCall] = {}

    def feed(self, event: Event) -> None:
        parts = self.response.parts
        last = parts[-1] if parts else None
        if isinstance(event, StreamStart):
            self.response.id, self.response.model = event.id, event.model
            if event.usage:
                self.response.usage = event.usage
        elif isinstance(event, TextDelta):
            if isinstance(last, Text):
                last.text += event.text
            else:
                parts.append(Text(event.text))
        elif isinstance(event, ReasoningDelta):
            self._feed_reasoning(event, last)
        elif isinstance(event, ToolCallStart):
            call = ToolCall(event.id, event.name, "", event.kind)
            self._calls[event.index] = call
            parts.append(call)
        elif isinstance(event, ToolCallDelta):
            if event.index in self._calls:
                self._calls[event.index].arguments += event.arguments
        elif isinstance(event, Finish):
            self.finished = True
            self.response.stop_reason = event.stop_reason
            if event.usage:
                self.response.usage = event.usage
        elif isinstance(event, StreamError):
            self.error = event.error

    def _feed_reasoning(self, event: ReasoningDelta, last: Part | None) -> None:
        parts = self.response.parts
        open_block = isinstance(last, Reasoning) and last.signature is None and not last.redacted
        if event.redacted:
            parts.append(Reasoning(signature=event.signature, origin=event.origin, redacted=True, id=event.id))
            return
        if not open_block:
            last = Reasoning(id=event.id)
            parts.append(last)
        assert isinstance(last, Reasoning)
        last.text += event.text
        if event.signature is not None:
            last.signature, last.origin = event.signature, event.origin

    def result(self) -> Response:
        for call in self._calls.values():
            if not call.arguments and call.kind == "function":
                call.arguments = "{}"
        return self.response


async def collect(events: AsyncIterator[Event]) -> Response:
    """Drain a stream into one Response; raise the GatewayError of a broken stream."""
    collector = Collector()
    async for event in events:
        collector.feed(event)
        if collector.error:
            raise collector.error
    if not collector.finished:
        raise GatewayError(502, "upstream stream ended before it finished", kind="server")
    return collector.result()


# A signature shown to a client of another family carries its origin, so a
# replayed turn can be routed back to the family that can validate it.
_SIGNATURE_TAG = "#crx#"


def signature_for_client(signature: str, origin: str | None, client_family: str) -> str:
    """The signature string to hand a client whose own family is `client_family`."""
    if origin is None or origin == client_family:
        return signature
    return f"{origin}{_SIGNATURE_TAG}{signature}"


def signature_from_client(value: str, client_family: str) -> tuple[str, str]:
    """(signature, origin) from a string a client replayed."""
    origin, tag, signature = value.partition(_SIGNATURE_TAG)
    if tag and origin.isalpha():
        return signature, origin
    return value, client_family

"""Plumbing shared by the protocol modules: rejections, the exchange, the stream sink."""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from .script import Script, Turn


class Rejection(Exception):
    """An HTTP error answer, rendered by the protocol in its own error shape."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        reason: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code
        self.reason = reason  # Gemini ErrorInfo reason
        self.retry_after = retry_after


class StreamCut(Exception):
    """The stream stopped on purpose (break_after or stream_error); nothing more may be written."""


@dataclass
class Issued:
    """Signatures a fake handed out, so replays can be checked like the real APIs do."""

    anthropic: set[str] = field(default_factory=set)
    responses: set[str] = field(default_factory=set)
    gemini_calls: dict[str, str] = field(default_factory=dict)  # call key -> thoughtSignature


@dataclass
class Exchange:
    request: web.Request
    body: dict[str, Any]
    turn: Turn
    issued: Issued
    model: str


ErrorFrame = Callable[[int, str], bytes]


class Sink:
    """Writes a stream and applies the turn's faults.

    Content chunks are counted: with break_after=N the connection is cut
    before the (N+1)-th content chunk, or before the terminal events when
    there are fewer. A stream_error goes out after the first content chunk
    (or in place of the terminal events when there is no content), then the
    stream ends cleanly without a terminator.
    """

    def __init__(
        self, request: web.Request, response: web.StreamResponse, turn: Turn, error_frame: ErrorFrame
    ) -> None:
        self.request = request
        self.response = response
        self.turn = turn
        self.error_frame = error_frame
        self.sent = 0

    async def send(self, data: bytes) -> None:
        await self.response.write(data)

    async def content(self, data: bytes) -> None:
        if self.turn.break_after is not None and self.sent >= self.turn.break_after:
            await self.cut_connection()
        await self.response.write(data)
        self.sent += 1
        if self.turn.stream_error is not None and self.sent == 1:
            await self.send_stream_error()

    async def finishing(self) -> None:
        """Call before the terminal events."""
        if self.turn.break_after is not None:
            await self.cut_connection()
        if self.turn.stream_error is not None:
            await self.send_stream_error()

    async def send_stream_error(self) -> None:
        assert self.turn.stream_error is not None
        status, message = self.turn.stream_error
        await self.response.write(self.error_frame(status, message))
        raise StreamCut

    async def cut_connection(self) -> None:
        transport = self.request.transport
        if transport is not None:
            # abort() drops unsent bytes, so let what was written leave first.
            for _ in range(200):
                if transport.get_write_buffer_size() == 0:
                    break
                await asyncio.sleep(0.005)
            transport.abort()
        raise StreamCut


async def open_stream(request: web.Request, content_type: str, headers: dict[str, str]) -> web.StreamResponse:
    response = web.StreamResponse(status=200, headers={"Content-Type": content_type, **headers})
    response.enable_chunked_encoding()
    await response.prepare(request)
    return response


async def run_stream(response: web.StreamResponse, body: Callable[[], Awaitable[None]]) -> web.StreamResponse:
    try:
        await body()
    except StreamCut:
        pass
    return response


def type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@dataclass
class FakeState:
    """What every protocol handler may read: the script, issued signatures, models, key."""

    script: Script
    issued: Issued
    models: tuple[str, ...]
    api_key: str | None
    # Picks the reply from the request (e.g. answer a client's side request for a title differently from the
    # task's turns); None falls back to the queue.
    responder: Callable[[dict[str, Any]], Turn | None] | None = None


class ScriptedModel:
    """The model side of a fake API: queued turns, or a responder that picks each turn from the request."""

    _script: Script
    _state: FakeState

    def script(self, *turns: Turn) -> None:
        self._script.push(turns)

    def respond_with(self, responder: Callable[[dict[str, Any]], Turn | None] | None) -> None:
        """Choose replies from each generation request's body; a None answer takes the queue's next turn."""
        self._state.responder = responder


async def next_turn(state: FakeState, body: dict[str, Any]) -> Turn:
    """The responder's turn for this body or the next queued one; stall if asked, and raise its scripted HTTP error."""
    chosen = state.responder(body) if state.responder is not None else None
    turn = chosen if chosen is not None else state.script.pop()
    if turn.delay > 0:
        await asyncio.sleep(turn.delay)
    if turn.error is not None:
        status, message = turn.error
        raise Rejection(status, message, retry_after=turn.retry_after)
    return turn


async def refuse_non_stream(request: web.Request, turn: Turn) -> None:
    """Faults meant for streams, applied to a plain request: an error status or a cut connection."""
    if turn.stream_error is not None:
        status, message = turn.stream_error
        raise Rejection(status, message, retry_after=turn.retry_after)
    if turn.break_after is not None:
        if request.transport is not None:
            request.transport.abort()
        raise StreamCut


class ProtocolServer(ABC):
    name: str

    @abstractmethod
    def check_auth(self, request: web.Request, api_key: str | None) -> None:
        """Raise a Rejection when the request does not carry the key."""

    @abstractmethod
    def error_response(self, rejection: Rejection) -> web.Response: ...

    @abstractmethod
    async def serve(
        self, op: str, request: web.Request, body: dict[str, Any], state: FakeState
    ) -> web.StreamResponse: ...


def retry_headers(rejection: Rejection) -> dict[str, str]:
    if rejection.retry_after is None:
        return {}
    seconds = rejection.retry_after
    return {"Retry-After": str(int(seconds)) if float(seconds).is_integer() else str(seconds)}


"""FakeUpstream: one aiohttp server on 127.0.0.1 speaking all four protocols, in its own thread."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import orjson
from aiohttp import web

from . import gemini
from .anthropic import Anthropic
from .gemini import Gemini
from .openai_chat import OpenAIChat
from .openai_responses import OpenAIResponses
from .script import Recorded, Script
from .threaded import ThreadedApp
from .wire import FakeState, Issued, ProtocolServer, Rejection, ScriptedModel, StreamCut

DEFAULT_MODELS = ("fake-model",)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class FakeUpstream(ScriptedModel, ThreadedApp):
    """A scripted upstream provider.

    fake = FakeUpstream(api_key="up-key"); fake.script(Turn(text="hi")); ...; fake.stop()
    `api_key=None` accepts any key. Each generation request pops one Turn (an
    empty queue answers Turn(text="ok")); rejected requests and token counts
    pop nothing. Every request is recorded in `requests`.
    """

    thread_name = "fake-upstream"

    def __init__(self, api_key: str | None = "up-key", *, models: Sequence[str] = DEFAULT_MODELS) -> None:
        super().__init__()
        self.api_key = api_key
        self.disconnects: list[Recorded] = []  # requests whose client left before the answer ended
        self._script = Script()
        self._state = FakeState(self._script, Issued(), tuple(models), api_key)
        self.start()

    # ------------------------------------------------------------- public API

    @property
    def pending(self) -> int:
        """Turns still queued."""
        return len(self._script)

    def clear(self) -> None:
        """Forget recorded requests, disconnects and queued turns (issued signatures stay valid)."""
        self.requests.clear()
        self.disconnects.clear()
        self._script.clear()

    def requests_for(self, protocol: str) -> list[Recorded]:
        return [r for r in self.requests if r.protocol == protocol]

    # ------------------------------------------------------------- server

    def build_app(self) -> web.Application:
        return self._app()

    def _app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        chat, responses, anthropic, gemini_server = OpenAIChat(), OpenAIResponses(), Anthropic(), Gemini()
        app.router.add_post("/v1/chat/completions", self._generation(chat, lambda r: "chat"))
        app.router.add_post("/v1/responses", self._generation(responses, lambda r: "responses"))
        app.router.add_post("/v1/messages", self._generation(anthropic, lambda r: "messages"))
        app.router.add_post(
            "/v1/messages/count_tokens", self._generation(anthropic, lambda r: "count_tokens")
        )
        for version in ("v1beta", "v1"):
            app.router.add_post(
                f"/{version}/models/{{op:.+}}", self._generation(gemini_server, lambda r: r.match_info["op"])
            )
            app.router.add_get(f"/{version}/models", self._list_models)
            app.router.add_get(f"/{version}/models/{{model:.+}}", self._get_model)
        app.router.add_route("*", "/{tail:.*}", self._not_found)
        return app

    def _record(self, request: web.Request, raw: bytes, protocol: str) -> Recorded:
        try:
            body = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            body = None
        recorded = Recorded(
            method=request.method,
            path=request.path,
            query=dict(request.query),
            headers={k.lower(): v for k, v in request.headers.items()},
            body=body,
            protocol=protocol,
            raw=raw,
            raw_path=request.raw_path,
        )
        self.requests.append(recorded)
        return recorded

    def _generation(self, server: ProtocolServer, op_of: Callable[[web.Request], str]) -> Handler:
        async def handle(request: web.Request) -> web.StreamResponse:
            raw = await request.read()
            recorded = self._record(request, raw, server.name)
            try:
                server.check_auth(request, self.api_key)
                if not isinstance(recorded.body, dict):
                    raise Rejection(400, "The request body is not a valid JSON object.")
                return await server.serve(op_of(request), request, recorded.body, self._state)
            except Rejection as rejection:
                return server.error_response(rejection)
            except StreamCut:
                return web.Response(status=500)  # the connection is gone; this never reaches anyone
            except (asyncio.CancelledError, ConnectionError):
                # handler_cancellation cancels us when the client leaves; a write may fail first.
                self.disconnects.append(recorded)
                raise

        return handle

    def _models_protocol(self, request: web.Request) -> ProtocolServer:
        if (
            request.path.startswith("/v1beta/")
            or "x-goog-api-key" in request.headers
            or "key" in request.query
        ):
            return Gemini()
        if "anthropic-version" in request.headers:
            return Anthropic()
        return OpenAIChat()

    async def _list_models(self, request: web.Request) -> web.StreamResponse:
        server = self._models_protocol(request)
        self._record(request, b"", server.name)
        try:
            server.check_auth(request, self.api_key)
        except Rejection as rejection:
            return server.error_response(rejection)
        return web.json_response(models_body(server.name, self._state.models))

    async def _get_model(self, request: web.Request) -> web.StreamResponse:
        server = self._models_protocol(request)
        self._record(request, b"", server.name)
        name = request.match_info["model"].removeprefix("models/")
        try:
            server.check_auth(request, self.api_key)
            if name not in self._state.models:
                raise Rejection(404, f"The model `{name}` does not exist or you do not have access to it.")
        except Rejection as rejection:
            return server.error_response(rejection)
        return web.json_response(model_entry(server.name, name))

    async def _not_found(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        self._record(request, raw, "unknown")
        error = {
            "message": f"Unknown request URL: {request.method} {request.path}.",
            "type": "invalid_request_error",
        }
        return web.json_response({"error": {**error, "param": None, "code": "unknown_url"}}, status=404)


def models_body(protocol: str, models: tuple[str, ...]) -> dict[str, Any]:
    if protocol == "gemini":
        return gemini.models_body(models)
    entries = [model_entry(protocol, name) for name in models]
    if protocol == "anthropic":
        return {
            "data": entries,
            "has_more": False,
            "first_id": models[0] if models else None,
            "last_id": models[-1] if models else None,
        }
    return {"object": "list", "data": entries}


def model_entry(protocol: str, name: str) -> dict[str, Any]:
    if protocol == "gemini":
        return gemini.model_entry(name)
    if protocol == "anthropic":
        return {"id": name, "type": "model", "display_name": name, "created_at": "2025-01-01T00:00:00Z"}
    return {"id": name, "object": "model", "created": int(time.time()), "owned_by": "fake"}

"""The gateway app: inbound routes, client keys, model lists, the Responses store."""

from __future__ import annotations

import asyncio
import functools
import hmac
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from crossroute import __version__, ir
from crossroute.accounts import Account
from crossroute.accounts.store import AccountStore
from crossroute.accounts.watch import watch_auth_dir
from crossroute.config import LOOPBACK_HOSTS, Config
from crossroute.formats import (
    ANTHROPIC,
    COUNT_OPTIONS,
    DEFAULT_OPTIONS,
    GEMINI,
    OPENAI_CHAT,
    OPENAI_RESPONSES,
    ClientOptions,
    WireFormat,
)
from crossroute.formats.openai_responses import render_input_items
from crossroute.logs import refused_key
from crossroute.payload import PayloadRules
from crossroute.providers import Provider, provider_class
from crossroute.routing import ModelRegistry, Router
from crossroute.routing.accounts import by_provider
from crossroute.server.http import HttpRequest, JsonReply, Reply
from crossroute.server.metrics import Metrics, metrics_file_for
from crossroute.server.pipeline import Call, Pipeline, error_reply
from crossroute.state.accounts import SharedAccountState, state_file_for
from crossroute.state.responses import KEYLESS, ResponseStore, owner_of

if TYPE_CHECKING:
    from crossroute.oauth.models import LiveModels

log = logging.getLogger("crossroute")

# Base prefixes some clients keep in front of the usual paths (/anthropic/v1/messages, /gemini/v1beta/...).
_PREFIXES = ("/anthropic", "/gemini", "/openai")
_GEMINI_ACTIONS = {"generateContent": False, "streamGenerateContent": True}


def client_format_for(path: str) -> WireFormat:
    """Which format errors on this path are written in. The Gemini route
    first: its model names (`responses-x`, `messages-y`) are client text."""
    last = path.rsplit("/", 1)[-1]
    if path.startswith("/v1beta") or ("/models/" in path and ":" in last):
        return GEMINI
    if "/messages" in path:
        return ANTHROPIC
    if "/responses" in path:
        return OPENAI_RESPONSES
    if ":" in last:
        return GEMINI
    return OPENAI_CHAT


def _strip_prefix(path: str) -> str:
    for prefix in _PREFIXES:
        if path.startswith(prefix + "/v1"):
            return path[len(prefix):]
    return path


@dataclass(slots=True)
class Shared:
    """What outlives a config reload. A Gateway built from a reloaded config is
    handed the running one's: the same Responses store (one SQLite connection per
    process), counters, account state and accounts, so a reload resets none of them."""

    store: ResponseStore
    account_state: SharedAccountState
    accounts: AccountStore
    metrics: Metrics = field(default_factory=Metrics)
    started: float = field(default_factory=time.time)
    watcher: asyncio.Task[None] | None = None

    @classmethod
    def open(cls, config: Config, state_path: str | Path) -> Shared:
        return cls(ResponseStore(state_path, config.state.response_ttl_seconds),
                   SharedAccountState(state_file_for(state_path)), AccountStore.open(config),
                   Metrics(metrics_file_for(state_path)))

    def watch_accounts(self) -> None:
        """Follow the auth dir from now on (a running event loop is needed)."""
        if self.watcher is None:
            self.watcher = asyncio.get_running_loop().create_task(watch_auth_dir(self.accounts))

    def close(self) -> None:
        if self.watcher is not None:
            self.watcher.cancel()
        self.store.close()
        self.account_state.close()
        self.metrics.close()


class Gateway:
    def __init__(self, config: Config, state_path: str | Path, shared: Shared | None = None) -> None:
        self.config = config
        providers = [provider_class(p)(p) for p in config.providers]
        self.registry = ModelRegistry(providers)
        if shared is None:
            shared = Shared.open(config, state_path)
        else:
            shared.accounts.use_config(config)
        self.shared = shared
        self.live_models = _live_models(providers, state_path, shared, self.registry)
        self.store = shared.store
        self.metrics = shared.metrics
        self.account_state = shared.account_state
        strategies = {p.name: p.strategy for p in config.providers if p.strategy}
        self.router = Router(by_provider(shared.accounts.snapshot()), self.account_state, config.routing, strategies,
                             self.metrics)
        self._unsubscribe = shared.accounts.subscribe(self._accounts_changed)
        self.pipeline = Pipeline(self.registry, self.router, self.store, self.metrics, PayloadRules(config.payload))
        server = config.server
        self._keys = [k.encode() for k in server.api_keys]
        self._origins = frozenset(o.rstrip("/") for o in server.cors_origins)
        self._any_origin = "*" in self._origins
        self._host_names = LOOPBACK_HOSTS | {"[::1]", _host_name(server.host)} \
            | {_host_name(h) for h in server.allowed_hosts}
        # Keys protect a gateway whatever name it is reached under; without them only known names may be used.
        self._any_host = bool(server.api_keys) or "*" in server.allowed_hosts
        self._hosts_seen: set[str] = set()  # Host header values already found allowed
        self.started = shared.started

    # ------------------------------------------------------------ serving

    async def stop(self) -> None:
        await self.retire()
        self.shared.close()

    def start(self) -> None:
        """Begin this config's background work (the live model lists); a running event loop is needed."""
        for live in self.live_models:
            live.start()

    async def retire(self) -> None:
        """Stop what is this config's own (the upstream pool, the model-list tasks); the shared parts stay
        with its successor."""
        for live in self.live_models:
            live.stop()
        self._unsubscribe()
        await self.pipeline.stop()

    def _accounts_changed(self, accounts: list[Account]) -> None:
        self.router.set_accounts(by_provider(accounts))

    async def handle(self, request: HttpRequest) -> Reply:
        request.path = _strip_prefix(request.path)
        if not request.admitted:
            refusal = self.admit(request.method, request.path, request.query, request.headers)
            if refusal is not None:
                return refusal
        reply = await self._handle(request, client_format_for(request.path))
        origin = request.headers.get("origin")
        if origin is not None:
            reply.headers.update(self._cors(origin))
        return reply

    def admit(self, method: str, path: str, query: dict[str, str], headers: dict[str, str]) -> Reply | None:
        """Whether to read a request, from its head alone (the server asks before
        any body byte is kept): None, or the refusal to answer with.

        /health is open. A browser page may not use the gateway unless its
        Origin is listed, nor reach it under a foreign Host name (DNS rebinding)
        while no client key protects it; then the client key; then a POST must
        be JSON (a page's form or text/plain POST needs no preflight)."""
        if path == "/health":
            return None
        host = headers.get("host")
        if host is not None and host not in self._hosts_seen and not self._host_allowed(host):
            return self._refusal(path, None, 403, f"the Host {host!r} is not served here; list it in "
                                                  "server.allowed_hosts", "host_not_allowed")
        origin = headers.get("origin")
        if origin is not None and origin not in self._origins and not self._any_origin:
            return self._refusal(path, None, 403, f"requests from the web origin {origin!r} are not allowed; "
                                                  "list it in server.cors_origins", "origin_not_allowed")
        if method == "OPTIONS" and origin is not None:
            return None  # a CORS preflight carries no key
        if self._keys and not self._authorized(headers, query):
            refused_key(method, path, _presented_key(headers, query) is not None)
            return self._refusal(path, origin, 401, "missing or invalid API key for this gateway", "invalid_api_key")
        if method == "POST" and not _is_json(headers.get("content-type")):
            return self._refusal(path, origin, 415, "the request body must be JSON (Content-Type: application/json)",
                                 "unsupported_media_type")
        return None

    def refuse(self, status: int, raw_path: bytes, message: str) -> Reply:
        """A request that could not be read: too large, or not HTTP."""
        client_format = client_format_for(_strip_prefix(raw_path.decode("latin-1").partition("?")[0]))
        if status == 413:
            limit = self.config.server.max_body_bytes
            error = ir.GatewayError(413, f"request body is larger than {limit} bytes", kind="request_too_large")
        else:
            error = ir.GatewayError(status, message)
        return error_reply(client_format, error)

    async def _handle(self, request: HttpRequest, client_format: WireFormat) -> Reply:
        path = request.path
        if path == "/health":
            return JsonReply(200, {"status": "ok", "version": __version__, "uptime_s": round(time.time() - self.started)})
        if request.method == "OPTIONS" and "origin" in request.headers:
            return _preflight(request.headers)
        try:
            return await self._route(request, client_format)
        except ir.GatewayError as error:
            return error_reply(client_format, error)
        except Exception as exc:  # a bug: still an answer in the client's format, and a log line without the request
            log.error("unexpected %s on %s %s: %s", type(exc).__name__, request.method, request.path, exc)
            return error_reply(client_format, ir.GatewayError(500, "internal error in the gateway", kind="server"))

    def _authorized(self, headers: dict[str, str], query: dict[str, str]) -> bool:
        presented = _presented_key(headers, query)
        if presented is None:
            return False
        candidate = presented.encode()
        return any(hmac.compare_digest(candidate, key) for key in self._keys)

    def _host_allowed(self, host: str) -> bool:
        name = _host_name(host)
        allowed = self._any_host or name in self._host_names or name.endswith(".localhost")
        if allowed and len(self._hosts_seen) < 256:
            self._hosts_seen.add(host)
        return allowed

    def _cors(self, origin: str) -> dict[str, str]:
        return {"access-control-allow-origin": origin, "vary": "origin",
                "access-control-expose-headers": "retry-after, server-timing"}

    def _refusal(self, path: str, origin: str | None, status: int, message: str, code: str) -> Reply:
        reply = error_reply(client_format_for(path), ir.GatewayError(status, message, code=code))
        if origin is not None:
            reply.headers.update(self._cors(origin))
        return reply

    async def _route(self, request: HttpRequest, client_format: WireFormat) -> Reply:
        method, path = request.method, request.path
        if method == "POST":
            if path in ("/v1/chat/completions", "/chat/completions"):
                return await self._generate(request, OPENAI_CHAT)
            if path in ("/v1/responses", "/responses"):
                return await self._respond(request)
            if path == "/v1/messages":
                return await self._generate(request, ANTHROPIC)
            if path == "/v1/messages/count_tokens":
                return await self._count(request, ANTHROPIC)
            if path.startswith(("/v1beta/models/", "/v1/models/")):
                return await self._gemini_action(request)
        if method == "GET":
            if path == "/metrics":
                return JsonReply(200, self._metrics_text(), {"content-type": "text/plain; version=0.0.4"})
            if path in ("/v1/models", "/models", "/v1beta/models"):
                return self._models(request)
            if path.startswith(("/v1/models/", "/v1beta/models/")):
                return self._model(request, path.split("/models/", 1)[1])
        if path.startswith("/v1/responses/") and method in ("GET", "DELETE"):
            return await self._stored_response(request, path.removeprefix("/v1/responses/"))
        raise ir.GatewayError(404, f"no route for {method} {path}", kind="not_found")

    # ------------------------------------------------------------ generation

    def _body(self, request: HttpRequest) -> dict[str, Any]:
        try:
            body = orjson.loads(request.body)
        except orjson.JSONDecodeError as exc:
            raise ir.GatewayError(400, f"the request body is not valid JSON: {exc}") from None
        if not isinstance(body, dict):
            raise ir.GatewayError(400, "the request body must be a JSON object")
        return body

    def _call(self, request: HttpRequest, fmt: WireFormat, options: ClientOptions = DEFAULT_OPTIONS) -> Call:
        started = time.perf_counter()
        body = self._body(request)
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise ir.GatewayError(400, "`model` is required and must be a string", param="model")
        stream = body.get("stream", False)
        return Call(fmt, body, request.headers, model, stream is True, options, started=started,
                    served=request.served)

    async def _generate(self, request: HttpRequest, fmt: WireFormat) -> Reply:
        return await self.pipeline.generate(self._call(request, fmt))

    async def _respond(self, request: HttpRequest) -> Reply:
        call = self._call(request, OPENAI_RESPONSES)
        call.owner = self._owner(request)
        return await self.pipeline.generate(call)

    async def _count(self, request: HttpRequest, fmt: WireFormat) -> Reply:
        call = self._call(request, fmt, COUNT_OPTIONS)
        return JsonReply(200, fmt.render_token_count(await self.pipeline.count_tokens(call)))

    async def _gemini_action(self, request: HttpRequest) -> Reply:
        started = time.perf_counter()
        target = request.path.split("/models/", 1)[1]
        model, _, action = target.rpartition(":")
        model = model.removeprefix("models/")
        if not model:
            raise ir.GatewayError(404, f"no route for POST {request.path}", kind="not_found")
        body = self._body(request)
        if action == "countTokens":
            call = Call(GEMINI, body, request.headers, model, False, ClientOptions(model, False, count_only=True),
                        served=request.served)
            return JsonReply(200, GEMINI.render_token_count(await self.pipeline.count_tokens(call)))
        if action not in _GEMINI_ACTIONS:
            raise ir.GatewayError(404, f"unknown Gemini action {action!r}", kind="not_found")
        stream = _GEMINI_ACTIONS[action]
        sse = request.query.get("alt") == "sse"
        call = Call(GEMINI, body, request.headers, model, stream, ClientOptions(model, stream, sse or not stream),
                    started=started, served=request.served)
        return await self.pipeline.generate(call)

    # ------------------------------------------------------------ model lists

    def _model_names(self) -> list[tuple[str, str]]:
        names: dict[str, str] = {}
        for listed in self.registry.listed:
            names.setdefault(listed.name, listed.provider.name)
            if listed.alias:
                names.setdefault(listed.alias, listed.provider.name)
            names.setdefault(f"{listed.provider.name}/{listed.name}", listed.provider.name)
        return list(names.items())

    def _metrics_text(self) -> bytes:
        """The host's counters, and each account's state as every worker sees it."""
        accounts = ((a.id, self.account_state.view(a.id)) for a in self.shared.accounts.snapshot())
        return self.metrics.render(accounts).encode()

    def _models(self, request: HttpRequest) -> Reply:
        return JsonReply(200, _listing_style(request).render_models(self._model_names(), int(self.started)))

    def _model(self, request: HttpRequest, name: str) -> Reply:
        name = name.removeprefix("models/")
        owners = dict(self._model_names())
        if name not in owners:
            raise ir.GatewayError(404, f"The model `{name}` does not exist", code="model_not_found")
        return JsonReply(200, _listing_style(request).render_model(name, owners[name], int(self.started)))

    # ------------------------------------------------------------ Responses store

    def _owner(self, request: HttpRequest) -> str:
        """Whose stored responses this request may see: its key's (already checked)."""
        return owner_of(_presented_key(request.headers, request.query)) if self._keys else KEYLESS

    async def _stored_response(self, request: HttpRequest, rest: str) -> Reply:
        response_id, _, tail = rest.partition("/")
        owner = self._owner(request)
        if request.method == "DELETE" and not tail:
            if not await self.store.delete(response_id, owner):
                raise _response_not_found(response_id)
            return JsonReply(200, {"id": response_id, "object": "response.deleted", "deleted": True})
        stored = await self.store.get(response_id, owner)
        if stored is None:
            raise _response_not_found(response_id)
        if not tail:
            return JsonReply(200, stored.rendered)
        if tail == "input_items":
            own_input = stored.messages[-1 - stored.input_count:-1]
            items = render_input_items(own_input)
            if request.query.get("order", "desc") == "desc":
                items.reverse()
            return JsonReply(200, {"object": "list", "data": items, "has_more": False,
                                   "first_id": items[0].get("id") if items else None,
                                   "last_id": items[-1].get("id") if items else None})
        raise ir.GatewayError(404, f"no route for {request.method} {request.path}", kind="not_found")


def _response_not_found(response_id: str) -> ir.GatewayError:
    return ir.GatewayError(404, f"Response with id '{response_id}' not found.", code="previous_response_not_found")


def _presented_key(headers: dict[str, str], query: dict[str, str]) -> str | None:
    auth = headers.get("authorization", "")
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip()
    return headers.get("x-api-key") or headers.get("x-goog-api-key") or query.get("key")


def _host_name(host: str) -> str:
    """A Host header's name: lower case, without its port or a final dot."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[:host.find("]") + 1]
    if host.count(":") == 1:
        host = host.partition(":")[0]
    return host.rstrip(".")


def _is_json(content_type: str | None) -> bool:
    if content_type is None:
        return False
    if content_type == "application/json":
        return True
    media = content_type.partition(";")[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


def _preflight(headers: dict[str, str]) -> Reply:
    """The answer to a browser's CORS preflight (its Origin is allowed, or admit() refused it)."""
    return JsonReply(204, b"", {"access-control-allow-methods": "GET, POST, DELETE, OPTIONS",
                                "access-control-allow-headers": headers.get("access-control-request-headers", ""),
                                "access-control-max-age": "600"})


def _listing_style(request: HttpRequest) -> WireFormat:
    """Whose model list a client expects, from the marks its SDK leaves."""
    headers = request.headers
    if request.path.startswith("/v1beta") or "x-goog-api-key" in headers or "key" in request.query \
            or "x-goog-api-client" in headers:
        return GEMINI
    if "anthropic-version" in headers:
        return ANTHROPIC
    return OPENAI_CHAT


def _live_models(providers: list[Provider], state_path: str | Path, shared: Shared,
                 registry: ModelRegistry) -> list[LiveModels]:
    """A live model list per login provider whose models the config does not list."""
    listed = [p for p in providers if p.config.is_login and not p.config.models_configured]
    if not listed:
        return []
    from crossroute.oauth.models import LiveModels, models_file_for  # the OAuth stack loads only for logins
    from crossroute.providers.login import LoginProvider

    return [LiveModels(p, models_file_for(state_path, p.name), shared.accounts.snapshot,
                       functools.partial(registry.set_models, p.name)) for p in listed if isinstance(p, LoginProvider)]

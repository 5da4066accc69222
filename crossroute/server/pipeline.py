"""One request's way through the gateway: parse in the client's format, pick an
account, call the upstream in its format, and answer in the client's format.

Same format on both sides with nothing to rewrite takes the passthrough: the
body goes up with only the model name changed and the bytes come back as they
are, with a sniffer reading usage beside them."""

from __future__ import annotations

import asyncio
import email.utils
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import orjson

from crossroute import custom_tools, ir, tokens
from crossroute.formats import FORMAT_MODULES
from crossroute.routing import AccountPool, Candidate, ModelRegistry, Route, worth_another_candidate
from crossroute.server.http import JsonReply, Reply, StreamReply
from crossroute.server.metrics import Metrics
from crossroute.sse import EventTooLarge
from crossroute.state.responses import ResponseStore, StoredResponse
from crossroute.upstream_http import UpstreamClient, UpstreamError, UpstreamLimit, UpstreamResponse
from crossroute.usage_sniffer import UsageSniffer, usage_in

RESPONSES = "openai-responses"
CONNECT_TIMEOUT = 15.0
COUNT_TIMEOUT = 30.0  # a token count is a courtesy: past this, the local estimate


@dataclass(slots=True)
class Call:
    """What the client asked, as the pipeline carries it along."""

    client_format: str
    body: dict[str, Any]
    headers: dict[str, str]
    model: str
    stream: bool
    gemini_sse: bool = True
    request: ir.Request | None = None
    history: list[ir.Message] = field(default_factory=list)
    started: float = field(default_factory=time.perf_counter)
    upstream_wait: float = 0.0  # seconds spent waiting on the provider, left out of Server-Timing

    @property
    def fmt(self) -> ModuleType:
        return FORMAT_MODULES[self.client_format]

    def server_timing(self) -> str:
        """The gateway's own time so far, upstream waits excluded."""
        own = (time.perf_counter() - self.started - self.upstream_wait) * 1000
        return f"crossroute;dur={own:.3f}"


def error_reply(client_format: str, error: ir.GatewayError) -> JsonReply:
    headers = {}
    if error.retry_after is not None:
        headers["retry-after"] = str(max(0, round(error.retry_after)))
    return JsonReply(error.status, FORMAT_MODULES[client_format].render_error(error), headers)


def retry_after_seconds(value: str | None) -> float | None:
    """Retry-After as seconds: a number, or an HTTP date; anything else is ignored."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, moment.timestamp() - time.time())


class Pipeline:
    def __init__(self, registry: ModelRegistry, pool: AccountPool, store: ResponseStore, metrics: Metrics) -> None:
        self.registry = registry
        self.pool = pool
        self.store = store
        self.metrics = metrics
        self.client = UpstreamClient(CONNECT_TIMEOUT)

    async def stop(self) -> None:
        await self.client.close()

    # ------------------------------------------------------------ entry points

    async def generate(self, call: Call) -> Reply:
        reply = await self._generate(call)
        reply.headers["server-timing"] = call.server_timing()
        return reply

    async def _generate(self, call: Call) -> Reply:
        try:
            routes = self._routes(call.model)
            if self._can_pass_through(call, routes):
                return await self._each_candidate(call, routes, self._passthrough)
            call.request = self._parse(call)
            await self._load_history(call)
            return await self._each_candidate(call, routes, self._translated)
        except ir.GatewayError as error:
            return error_reply(call.client_format, error)

    async def count_tokens(self, call: Call) -> int:
        """The provider's own count where it has an endpoint, else the local estimate."""
        req = self._parse(call, count_only=True)
        for route in self._routes(call.model):
            url = route.provider.count_tokens_url(route.model)
            if url is None:
                continue
            counted = await self._count_upstream(route, url, req)
            if counted is not None:
                return counted
        return tokens.estimate_request(req)

    # ------------------------------------------------------------ steps

    def _routes(self, model: str) -> list[Route]:
        routes = self.registry.resolve(model)
        if not routes:
            raise ir.GatewayError(404, f"The model `{model}` does not exist or is not served by this gateway.",
                                  code="model_not_found", param="model")
        return routes

    def _parse(self, call: Call, count_only: bool = False) -> ir.Request:
        options: dict[str, Any] = {}
        if call.client_format == "gemini":
            options = {"model": call.model, "stream": call.stream}
        elif count_only and call.client_format == "anthropic":
            options = {"count_only": True}
        try:
            req: ir.Request = call.fmt.parse_request(call.body, **options)
        except ir.GatewayError:
            raise
        except Exception as exc:  # a parser bug must still be the client's clear 400, not a 500
            raise ir.GatewayError(400, f"could not read the request: {type(exc).__name__}: {exc}") from None
        req.source_format = call.client_format  # type: ignore[assignment]
        return req

    def _can_pass_through(self, call: Call, routes: list[Route]) -> bool:
        if any(route.provider.format != call.client_format for route in routes):
            return False
        if call.client_format == RESPONSES:  # the store needs the output
            return call.body.get("store") is False and not call.body.get("previous_response_id")
        if call.stream and not call.gemini_sse:  # upstreams are asked for SSE; the client wants a JSON array
            return False
        return True

    async def _load_history(self, call: Call) -> None:
        req = call.request
        assert req is not None
        previous = req.extras.get("previous_response_id") if call.client_format == RESPONSES else None
        if not previous:
            return
        stored = await self.store.get(str(previous)) if isinstance(previous, str) else None
        if stored is None:
            raise ir.GatewayError(404, f"Previous response with id '{previous}' not found.",
                                  code="previous_response_not_found", param="previous_response_id")
        call.history = stored.messages
        req.messages = stored.messages + req.messages

    async def _each_candidate(self, call: Call, routes: list[Route], attempt: Any) -> Reply:
        """Try accounts in order until one answers; errors another account
        would not have (bad request) go straight back to the client."""
        last_error: ir.GatewayError | None = None
        for candidate in self.pool.candidates(routes):
            try:
                reply: Reply = await attempt(call, candidate)
            except ir.GatewayError as error:
                self.metrics.upstream_error(candidate.route.provider.name, error.status)
                last_error = error
                if not worth_another_candidate(error):
                    break
                self.pool.failed(candidate, error)
                continue
            self.pool.succeeded(candidate)
            return reply
        assert last_error is not None
        return error_reply(call.client_format, last_error)

    async def _open(self, candidate: Candidate, body: bytes, stream: bool, call: Call) -> UpstreamResponse:
        provider = candidate.route.provider
        same_format = provider.format == call.client_format
        headers = provider.headers(candidate.key, call.headers if same_format else None)
        waiting = time.perf_counter()
        try:
            response = await self.client.post(provider.url(candidate.route.model, stream), body, headers,
                                              provider.timeout, provider.config.proxy)
        except TimeoutError:
            raise ir.GatewayError(504, f"provider {provider.name} did not answer in time", kind="timeout") from None
        except UpstreamLimit as exc:
            raise ir.GatewayError(502, f"provider {provider.name} {exc}") from None
        except UpstreamError as exc:
            raise ir.GatewayError(502, f"provider {provider.name} is unreachable ({exc})") from None
        finally:
            call.upstream_wait += time.perf_counter() - waiting
        if response.status >= 400:
            raise await self._upstream_error(provider.format, response)
        return response

    async def _upstream_error(self, upstream_format: str, response: UpstreamResponse) -> ir.GatewayError:
        try:
            raw = await response.read()
        except (UpstreamError, TimeoutError):
            raw = b""
        finally:
            response.release()
        try:
            error: ir.GatewayError = FORMAT_MODULES[upstream_format].parse_error(response.status, raw)
        except Exception:
            error = ir.GatewayError(response.status, raw[:500].decode("utf-8", "replace") or response.reason or "")
        header_delay = retry_after_seconds(response.headers.get("retry-after"))
        if header_delay is not None:
            error.retry_after = header_delay
        return error

    # ------------------------------------------------------------ passthrough

    async def _passthrough(self, call: Call, candidate: Candidate) -> Reply:
        body = call.body
        if call.client_format != "gemini":
            body = {**body, "model": candidate.route.model}
        response = await self._open(candidate, orjson.dumps(body), call.stream, call)
        if not call.stream:
            raw = await _read_body(response, candidate.route.provider.name, call)
            self._count_usage_of_body(call, candidate, raw)
            return JsonReply(response.status, raw)
        return StreamReply(response.status, self._relay(call, candidate, response), self._stream_headers(call))

    async def _relay(self, call: Call, candidate: Candidate, response: UpstreamResponse) -> AsyncIterator[bytes]:
        sniffer = UsageSniffer()
        complete = False
        try:
            async for chunk in response.chunks():
                sniffer.feed(chunk)
                yield chunk
            complete = True
        except (UpstreamError, TimeoutError) as exc:
            encoder = call.fmt.StreamEncoder(ir.Request(model=call.model))
            yield encoder.encode(ir.StreamError(_broken_stream(candidate.route.provider.name, exc)))
            yield encoder.close()
        finally:
            _let_go(response, complete)
            self.metrics.finished(candidate.route.provider.name, call.model, sniffer.close())

    def _count_usage_of_body(self, call: Call, candidate: Candidate, raw: bytes) -> None:
        try:
            usage = usage_in(orjson.loads(raw))
        except orjson.JSONDecodeError:
            usage = None
        self.metrics.finished(candidate.route.provider.name, call.model, usage)

    def _stream_headers(self, call: Call) -> dict[str, str]:
        return {"x-accel-buffering": "no"}

    # ------------------------------------------------------------ translation

    async def _translated(self, call: Call, candidate: Candidate) -> Reply:
        req = call.request
        assert req is not None
        provider = candidate.route.provider
        upstream = FORMAT_MODULES[provider.format]
        names = custom_tools.custom_tool_names(req)
        lowered = req
        if names and provider.format != RESPONSES and not (provider.format == req.source_format == "openai-chat"):
            lowered = custom_tools.lower_request(req)
        else:
            names = frozenset()
        body = provider.adapt_body(upstream.render_request(lowered, candidate.route.model), req)
        response = await self._open(candidate, orjson.dumps(body), req.stream, call)
        response_id = ir.new_id("resp_") if call.client_format == RESPONSES else None
        if not req.stream:
            resp = await self._read_whole(upstream, response, provider.name, call)
            if names:
                custom_tools.raise_response(resp, names)
            resp.model = call.model
            if response_id:
                resp.id = response_id
            self.metrics.finished(provider.name, call.model, resp.usage)
            rendered = call.fmt.render_response(resp, req)
            await self._remember(call, resp, rendered)
            return JsonReply(200, rendered)
        batches = _decode(upstream, response, provider.name)
        if names:
            batches = _raise_custom_calls(batches, custom_tools.CallRaiser(names))
        return StreamReply(200, self._encode(call, candidate, batches, response_id), self._stream_headers(call),
                           "application/json" if not call.gemini_sse else "text/event-stream")

    async def _read_whole(self, upstream: ModuleType, response: UpstreamResponse, provider: str,
                          call: Call) -> ir.Response:
        raw = await _read_body(response, provider, call)
        try:
            resp: ir.Response = upstream.parse_response(orjson.loads(raw))
        except Exception:
            raise ir.GatewayError(502, f"provider {provider} sent an answer that could not be read") from None
        return resp

    async def _encode(self, call: Call, candidate: Candidate, batches: AsyncIterator[list[ir.Event]],
                      response_id: str | None) -> AsyncIterator[bytes]:
        """Client bytes for each batch of events: one write per upstream read,
        not one per event (a write is a system call)."""
        req = call.request
        assert req is not None
        options = {} if call.gemini_sse else {"sse": False}
        encoder = call.fmt.StreamEncoder(req, **options)
        storing = response_id is not None and req.extras.get("store") is not False
        collector = ir.Collector() if storing else None  # only a stored response needs the whole output
        usage = None
        failed = False
        try:
            async for batch in batches:
                out = []
                for event in batch:
                    if isinstance(event, ir.StreamStart):
                        event = ir.StreamStart(response_id or event.id, call.model, event.usage)
                    elif isinstance(event, ir.Finish):
                        usage = event.usage
                    if collector is not None:
                        collector.feed(event)
                    out.append(encoder.encode(event))
                    if isinstance(event, ir.StreamError):
                        failed = True
                        break
                if failed:
                    out.append(encoder.close())
                    yield b"".join(out)
                    break
                if out:
                    yield b"".join(out)
            else:
                yield encoder.close()
        finally:
            self.metrics.finished(candidate.route.provider.name, call.model, usage)
        if collector is not None and collector.finished and collector.error is None:
            resp = collector.result()
            await self._remember(call, resp, call.fmt.render_response(resp, req))

    async def _remember(self, call: Call, resp: ir.Response, rendered: dict[str, Any]) -> None:
        req = call.request
        if call.client_format != RESPONSES or req is None or req.extras.get("store") is False:
            return
        conversation = req.messages + [ir.Message("assistant", list(resp.parts))]
        own_input = len(req.messages) - len(call.history)
        await self.store.put(StoredResponse(resp.id, conversation, own_input, rendered))

    async def _count_upstream(self, route: Route, url: str, req: ir.Request) -> int | None:
        provider = route.provider
        upstream = FORMAT_MODULES[provider.format]
        try:
            rendered = upstream.render_request(custom_tools.lower_request(req), route.model)
            body = provider.count_tokens_body(rendered, route.model)
            key = (provider.config.api_keys or [""])[0]
            async with asyncio.timeout(COUNT_TIMEOUT):
                response = await self.client.post(url, orjson.dumps(body), provider.headers(key),
                                                  proxy=provider.config.proxy)
                try:
                    raw = await response.read()
                finally:
                    response.release()
            if response.status != 200:
                return None
            return provider.read_token_count(orjson.loads(raw))
        except Exception:
            return None


async def _read_body(response: UpstreamResponse, provider: str, call: Call) -> bytes:
    waiting = time.perf_counter()
    try:
        return await response.read()
    except UpstreamLimit as exc:
        raise ir.GatewayError(502, f"provider {provider} {exc}") from None
    except (UpstreamError, TimeoutError):
        raise ir.GatewayError(502, f"provider {provider} broke the connection") from None
    finally:
        response.release()
        call.upstream_wait += time.perf_counter() - waiting


async def _decode(upstream: ModuleType, response: UpstreamResponse, provider: str) -> AsyncIterator[list[ir.Event]]:
    """The upstream's events, one batch per network read."""
    decoder = upstream.StreamDecoder()
    complete = False
    try:
        async for chunk in response.chunks():
            events = decoder.feed(chunk)
            if events:
                yield events
        complete = True
        yield decoder.close()
    except (UpstreamError, TimeoutError, EventTooLarge) as exc:
        yield [ir.StreamError(_broken_stream(provider, exc))]
    finally:
        _let_go(response, complete)


def _broken_stream(provider: str, exc: Exception) -> ir.GatewayError:
    """The error event that ends a stream the upstream broke or overfilled."""
    if isinstance(exc, UpstreamLimit | EventTooLarge):
        return ir.GatewayError(502, f"provider {provider} {exc}")
    return ir.GatewayError(502, "the upstream connection broke mid-stream")


async def _raise_custom_calls(batches: AsyncIterator[list[ir.Event]],
                              raiser: custom_tools.CallRaiser) -> AsyncIterator[list[ir.Event]]:
    async for batch in batches:
        yield raiser.feed(batch)
    yield raiser.close()


def _let_go(response: UpstreamResponse, complete: bool) -> None:
    """A finished response returns its connection to the pool; one abandoned
    midway (client gone, upstream broken) closes it so the upstream stops too."""
    if complete:
        response.release()
    else:
        response.close()

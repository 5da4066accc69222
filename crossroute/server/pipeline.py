"""One request's way through the gateway: parse in the client's format, pick an
account, call the upstream in its format, and answer in the client's format.

Same format on both sides with nothing to rewrite takes the passthrough: the
body goes up with only the model name changed and the bytes come back as they
are, with a sniffer reading usage beside them."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from crossroute import custom_tools, ir, tokens
from crossroute.formats import DEFAULT_OPTIONS, ClientOptions, StreamEncoder, WireFormat
from crossroute.logs import field_value, upstream_failed
from crossroute.payload import PayloadRules, apply_payload_rules
from crossroute.providers import Provider, UpstreamRequest
from crossroute.providers.redaction import Redactor, credential_secrets, request_secrets
from crossroute.routing import (
    Candidate,
    Lease,
    ModelRegistry,
    Route,
    Router,
    cooldown,
    worth_another_candidate,
)
from crossroute.routing.quota import quota_from_headers
from crossroute.routing.strategies import sticky_key
from crossroute.server.http import JsonReply, Reply, Served, StreamReply
from crossroute.server.metrics import Metrics
from crossroute.sse import EventTooLarge, SSEFrame, SSEParser
from crossroute.state.responses import KEYLESS, ResponseStore, StoredResponse, StoreError
from crossroute.upstream_http import UpstreamClient, UpstreamError, UpstreamLimit, UpstreamResponse, split_url
from crossroute.usage_sniffer import UsageSniffer, usage_in

CONNECT_TIMEOUT = 15.0
COUNT_TIMEOUT = 30.0  # a token count is a courtesy: past this, the local estimate
_EVENT_HEAD = 48  # how far into a streamed read an error event's name is looked for

log = logging.getLogger("crossroute.routing")  # which provider and account served, and why not another


@dataclass(slots=True)
class Call:
    """What the client asked, as the pipeline carries it along."""

    fmt: WireFormat  # the client's
    body: dict[str, Any]
    headers: dict[str, str]
    model: str
    stream: bool
    options: ClientOptions = DEFAULT_OPTIONS  # what the URL says, for the client's format
    request: ir.Request | None = None
    history: list[ir.Message] = field(default_factory=list)
    started: float = field(default_factory=time.perf_counter)
    upstream_wait: float = 0.0  # seconds spent waiting on the provider, left out of Server-Timing
    owner: str = KEYLESS  # whose stored responses a Responses call reads and writes (set by the app)
    served: Served = field(default_factory=Served)  # the access line's record, shared with the HttpRequest
    lease: Lease | None = None  # the current attempt's hold on its account

    def server_timing(self) -> str:
        """The gateway's own time so far, upstream waits excluded."""
        own = (time.perf_counter() - self.started - self.upstream_wait) * 1000
        return f"crossroute;dur={own:.3f}"


def error_reply(fmt: WireFormat, error: ir.GatewayError) -> JsonReply:
    headers = {}
    if error.retry_after is not None:
        headers["retry-after"] = str(max(0, round(error.retry_after)))
    return JsonReply(error.status, fmt.render_error(error), headers)


class Pipeline:
    def __init__(self, registry: ModelRegistry, router: Router, store: ResponseStore, metrics: Metrics,
                 payload: PayloadRules | None = None) -> None:
        self.registry = registry
        self.payload = payload or PayloadRules(())
        self.router = router
        self.max_attempts = router.routing.max_attempts
        self.fallbacks = router.routing.fallbacks
        self.store = store
        self.metrics = metrics
        self.client = UpstreamClient(CONNECT_TIMEOUT)
        self.redactor = Redactor.for_providers(registry.providers.values())

    async def stop(self) -> None:
        await self.client.close()

    # ------------------------------------------------------------ entry points

    async def generate(self, call: Call) -> Reply:
        reply = await self._generate(call)
        reply.headers["server-timing"] = call.server_timing()
        return reply

    async def _generate(self, call: Call) -> Reply:
        """The model asked for, then its `routing.fallbacks` in order, each with its own
        `max_attempts`, while what failed is something another model might not have."""
        call.served.model = call.model
        try:
            outcome = await self._serve_model(call, call.model)
        except ir.GatewayError as error:
            return error_reply(call.fmt, error)
        for fallback in self.fallbacks.get(call.model, ()):
            if not isinstance(outcome, ir.GatewayError) or not _worth_a_fallback(outcome):
                break
            log.debug("%s failed with %d: falling back to %s", field_value(call.model), outcome.status,
                      field_value(fallback))
            try:
                outcome = await self._serve_model(call, fallback)
            except ir.GatewayError as error:  # e.g. a fallback no provider serves: the first failure stands
                log.warning("fallback %s for %s: %s", field_value(fallback), field_value(call.model), error)
        return error_reply(call.fmt, outcome) if isinstance(outcome, ir.GatewayError) else outcome

    async def _serve_model(self, call: Call, model: str) -> Reply | ir.GatewayError:
        routes = self._routes(model)
        if self._can_pass_through(call, routes):
            return await self._each_candidate(call, model, routes, self._passthrough)
        if call.request is None:
            call.request = self._parse(call)
            await self._load_history(call)
        return await self._each_candidate(call, model, routes, self._translated)

    async def count_tokens(self, call: Call) -> int:
        """The provider's own count where it has an endpoint, else the local estimate."""
        call.served.model = call.model
        req = self._parse(call)
        for route in self._routes(call.model):
            if route.provider.count_tokens_url(route.model) is None:
                continue
            counted = await self._count_upstream(call.model, route, req)
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

    def _parse(self, call: Call) -> ir.Request:
        try:
            req = call.fmt.parse_request(call.body, call.options)
        except ir.GatewayError:
            raise
        except Exception as exc:  # a parser bug must still be the client's clear 400, not a 500
            raise ir.GatewayError(400, f"could not read the request: {type(exc).__name__}: {exc}") from None
        req.source_format = call.fmt.name
        return req

    def _can_pass_through(self, call: Call, routes: list[Route]) -> bool:
        if any(route.provider.format is not call.fmt or route.provider.has_envelope or route.provider.streams_only
               for route in routes):
            return False
        if call.fmt.stores_responses:  # the store needs the output
            return call.body.get("store") is False and not call.body.get("previous_response_id")
        if call.stream and not call.options.sse:  # upstreams are asked for SSE; the client wants a JSON array
            return False
        return True

    async def _load_history(self, call: Call) -> None:
        req = call.request
        assert req is not None
        previous = req.extras.get("previous_response_id") if call.fmt.stores_responses else None
        if not previous:
            return
        stored = await self.store.get(previous, call.owner) if isinstance(previous, str) else None
        if stored is None:
            raise ir.GatewayError(404, f"Previous response with id '{previous}' not found.",
                                  code="previous_response_not_found", param="previous_response_id")
        call.history = stored.messages
        req.messages = stored.messages + req.messages

    async def _each_candidate(self, call: Call, model: str, routes: list[Route], attempt: Any) -> Reply | ir.GatewayError:
        """Try ready accounts in order (the next account, then the next route), at
        most `max_attempts` upstream calls, until one answers; errors another
        account would not have (a bad request) end the tries. Nothing is tried
        again once an answer has started: that happens only after this returns."""
        try:
            candidates = self.router.candidates(model, routes, lambda: sticky_key(call.body, call.headers,
                                                                                  call.history))
        except ir.GatewayError as resting:
            return resting
        last_error: ir.GatewayError | None = None
        served = call.served
        for candidate in candidates[:self.max_attempts]:
            served.provider, served.account = candidate.route.provider.name, candidate.account_id
            if log.isEnabledFor(logging.DEBUG):
                how = "passthrough" if attempt == self._passthrough else "translated"
                log.debug("%s -> %s/%s (%s), account %s", field_value(call.model), served.provider,
                          field_value(candidate.route.model), how, served.account)
            lease = call.lease = self.router.lease(candidate, call.model, call.stream)
            try:
                reply: Reply = await attempt(call, candidate)
            except ir.GatewayError as error:
                lease.failed(error)
                last_error = error
                if not worth_another_candidate(error):
                    break
                log.debug("account %s failed with %d: on to the next candidate, if any", served.account,
                          error.status)
                continue
            except BaseException:
                lease.abandon()
                raise
            lease.succeeded()
            return reply
        assert last_error is not None
        return last_error

    def _ruled(self, body: dict[str, Any], candidate: Candidate, call: Call) -> dict[str, Any]:
        """The body after the config's payload rules for this route (the same body when none match)."""
        rules = self.payload.matching(candidate.route.provider.name, candidate.route.model, call.model)
        return apply_payload_rules(body, rules) if rules else body

    async def _open(self, candidate: Candidate, body: bytes, stream: bool, call: Call,
                    refreshed: bool = False) -> UpstreamResponse:
        provider = candidate.route.provider
        account = candidate.account
        url = provider.url_for(account, candidate.route.model, stream)
        headers = _headers(candidate, call.headers if provider.format is call.fmt else None)
        if provider.prepares:
            prepared = await provider.prepare(UpstreamRequest("POST", url, headers, body), account)
            url, headers, body = prepared.url, prepared.headers, prepared.body
        waiting = time.perf_counter()
        try:
            timeouts = provider.timeouts
            response = await self.client.post(url, body, headers, timeouts.first_byte, provider.proxy_for(account),
                                              idle_timeout=timeouts.idle, connect_timeout=timeouts.connect)
        except TimeoutError:
            _warn(candidate, url, "timed out (connecting, or waiting for the answer's head)")
            raise ir.GatewayError(504, f"provider {provider.name} did not answer in time", kind="timeout") from None
        except UpstreamLimit as exc:
            _warn(candidate, url, str(exc))
            raise ir.GatewayError(502, f"provider {provider.name} {exc}") from None
        except UpstreamError as exc:  # the address stays in the log, out of the client's answer
            _warn(candidate, url, str(exc))
            raise ir.GatewayError(502, f"provider {provider.name} is unreachable") from None
        finally:
            call.upstream_wait += time.perf_counter() - waiting
        answer = response.headers
        quota = provider.quota_from_headers(answer) if provider.reads_own_quota else quota_from_headers(answer)
        if quota is not None:
            _lease(call).reported_quota(quota)
        if response.status >= 300:
            if response.status == 401 and not refreshed:  # one refresh-and-retry on the same account
                fresh = await provider.refresh(account)
                if fresh is not None:
                    response.close()
                    return await self._open(Candidate(candidate.route, fresh), body, stream, call, refreshed=True)
            error = await self._upstream_error(provider, response, request_secrets(headers, account))
            if worth_another_candidate(error):  # the account's or the provider's trouble, not the request's
                _warn(candidate, url, f"HTTP {response.status} ({error.kind})")
            else:
                log.debug("account %s refused the request: %d (%s)", candidate.account_id, error.status, error.kind)
            raise error
        return response

    async def _upstream_error(self, provider: Provider, response: UpstreamResponse,
                              secrets: Iterable[str] = ()) -> ir.GatewayError:
        """The client's error for an upstream's non-2xx answer, configured secrets and the request's
        own (`secrets`: a login's tokens) scrubbed out."""
        redactor = self.redactor.with_secrets(secrets)
        if response.status < 400:
            response.close()
            return ir.GatewayError(502, f"provider {provider.name} answered with a redirect ({response.status}), "
                                        "which the gateway does not follow")
        try:
            raw = redactor.raw(await response.read())  # before parsing, which may cut a key in half
        except (UpstreamError, TimeoutError):
            raw = b""
        finally:
            response.release()
        try:
            error = provider.format.parse_error(response.status, raw)
        except Exception:
            error = ir.GatewayError(response.status, raw[:500].decode("utf-8", "replace") or response.reason or "")
        redactor.error(error)  # again, for a key the body wrote with JSON escapes
        reset = (provider.reset_from_headers(response.headers) if provider.reads_own_quota
                 else cooldown.reset_from_headers(response.headers))
        if reset is not None:
            error.retry_after = reset
        if response.status == 429 and cooldown.is_daily_quota(raw):
            error.kind = "billing"
        provider.upstream_error(error, raw)
        return error

    # ------------------------------------------------------------ passthrough

    async def _passthrough(self, call: Call, candidate: Candidate) -> Reply:
        body = call.body
        if not call.fmt.model_in_url:
            body = {**body, "model": candidate.route.model}
        if candidate.route.provider.edits_passthrough:
            body = candidate.route.provider.passthrough_body(body)
        response = await self._open(candidate, _encoded(self._ruled(body, candidate, call)), call.stream, call)
        if not call.stream:
            raw = await _read_body(response, candidate, call)
            self._count_usage_of_body(call, candidate, raw)
            return JsonReply(response.status, raw)
        return StreamReply(response.status, self._relay(call, candidate, response), self._stream_headers(call),
                           abort=lambda: _shutdown_ending(call.fmt.stream_encoder(ir.Request(model=call.model), call.options)))

    async def _relay(self, call: Call, candidate: Candidate, response: UpstreamResponse) -> AsyncIterator[bytes]:
        sniffer = UsageSniffer(call.fmt.usage)  # passthrough: the client's format is the upstream's
        complete = False
        try:
            async for chunk in response.chunks():
                sniffer.feed(chunk)
                if _opens_error_event(chunk):
                    chunk = self.redactor.with_secrets(credential_secrets(candidate.account)).raw(chunk)
                yield chunk
            complete = True
        except (UpstreamError, TimeoutError) as exc:
            _warn(candidate, None, f"the stream broke: {_reason(exc)}")
            broken = _broken_stream(candidate.route.provider, exc)
            _lease(call).broke(broken)
            encoder = call.fmt.stream_encoder(ir.Request(model=call.model), call.options)
            yield encoder.encode(ir.StreamError(broken))
            yield encoder.close()
        finally:
            _let_go(response, complete)
            self._finished(call, candidate, sniffer.close())

    def _count_usage_of_body(self, call: Call, candidate: Candidate, raw: bytes) -> None:
        try:
            usage = usage_in(orjson.loads(raw), dialect=call.fmt.usage)
        except orjson.JSONDecodeError:
            usage = None
        self._finished(call, candidate, usage)

    def _finished(self, call: Call, candidate: Candidate, usage: ir.Usage | None) -> None:
        _lease(call).release(usage)

    def _stream_headers(self, call: Call) -> dict[str, str]:
        return {"x-accel-buffering": "no"}

    # ------------------------------------------------------------ translation

    async def _translated(self, call: Call, candidate: Candidate) -> Reply:
        req = call.request
        assert req is not None
        provider = candidate.route.provider
        upstream = provider.format
        names = custom_tools.custom_tool_names(req)
        lowered = req
        if names and req.source_format not in upstream.custom_tools_from:
            lowered = custom_tools.lower_request(req)
        else:
            names = frozenset()
        body = self._ruled(provider.adapt_body(upstream.render_request(lowered, candidate.route.model), req),
                           candidate, call)
        if provider.has_envelope:
            body = provider.wrap_body(body, candidate.route.model)
        response = await self._open(candidate, _encoded(body), req.stream or provider.streams_only, call)
        response_id = ir.new_id("resp_") if call.fmt.stores_responses else None
        if not req.stream:
            if provider.streams_only:
                resp = await _assembled(_decode(_stream_decoder(provider), response, candidate))
            else:
                resp = await self._read_whole(upstream, response, candidate, call)
            if names:
                custom_tools.raise_response(resp, names)
            resp.model = call.model
            if response_id:
                resp.id = response_id
            self._finished(call, candidate, resp.usage)
            rendered = call.fmt.render_response(resp, req)
            unkept = await self._remember(call, resp, rendered)
            return error_reply(call.fmt, unkept) if unkept else JsonReply(200, rendered)
        batches: AsyncIterator[list[ir.Event]] = _decode(_stream_decoder(provider), response, candidate)
        if names:
            batches = _raise_custom_calls(batches, custom_tools.CallRaiser(names))
        encoder = call.fmt.stream_encoder(req, call.options)
        return StreamReply(200, self._encode(call, candidate, batches, response_id, encoder), self._stream_headers(call),
                           "text/event-stream" if call.options.sse else "application/json",
                           abort=lambda: _shutdown_ending(encoder))

    async def _read_whole(self, upstream: WireFormat, response: UpstreamResponse, candidate: Candidate,
                          call: Call) -> ir.Response:
        raw = await _read_body(response, candidate, call)
        try:
            answer = orjson.loads(raw)
            provider = candidate.route.provider
            if provider.has_envelope:
                answer = provider.unwrap_response(answer)
            resp = upstream.parse_response(answer)
        except Exception:
            _warn(candidate, None, "an answer that could not be read")
            name = candidate.route.provider.name
            raise ir.GatewayError(502, f"provider {name} sent an answer that could not be read") from None
        return resp

    async def _encode(self, call: Call, candidate: Candidate, batches: AsyncIterator[list[ir.Event]],
                      response_id: str | None, encoder: StreamEncoder) -> AsyncIterator[bytes]:
        """Client bytes for each batch of events: one write per upstream read,
        not one per event (a write is a system call). A stored response is
        committed before its completion event goes out, so a client that has
        seen it complete can continue from it on any worker, even after a crash."""
        req = call.request
        assert req is not None
        storing = response_id is not None and req.extras.get("store") is not False
        collector = ir.Collector() if storing else None  # only a stored response needs the whole output
        usage = None
        failed = False
        try:
            async for batch in batches:
                out: list[bytes] = []
                for event in batch:
                    if isinstance(event, ir.StreamStart):
                        event = ir.StreamStart(response_id or event.id, call.model, event.usage)
                    elif isinstance(event, ir.StreamError):
                        self.redactor.with_secrets(credential_secrets(candidate.account)).error(event.error)
                        _lease(call).broke(event.error)
                    if collector is not None:
                        collector.feed(event)
                    if isinstance(event, ir.Finish):
                        usage = event.usage
                        if collector is not None:
                            if out:  # what came before the completion need not wait for the disk
                                yield b"".join(out)
                                out = []
                            event = await self._commit(call, collector, event)
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
            self._finished(call, candidate, usage)

    async def _commit(self, call: Call, collector: ir.Collector, finish: ir.Finish) -> ir.Finish | ir.StreamError:
        """The event that ends the stream: the finish once the response is stored, else an error."""
        resp = collector.result()
        assert call.request is not None
        unkept = await self._remember(call, resp, call.fmt.render_response(resp, call.request))
        return ir.StreamError(unkept) if unkept else finish

    async def _remember(self, call: Call, resp: ir.Response, rendered: dict[str, Any]) -> ir.GatewayError | None:
        """Stores a Responses answer the client may continue from; the error to
        answer with instead when the store fails."""
        req = call.request
        if not call.fmt.stores_responses or req is None or req.extras.get("store") is False:
            return None
        conversation = req.messages + [ir.Message("assistant", list(resp.parts))]
        own_input = len(req.messages) - len(call.history)
        try:
            await self.store.put(StoredResponse(resp.id, call.owner, conversation, own_input, rendered))
        except StoreError as exc:
            log.error("could not store response %s: %s", resp.id, exc)
            return ir.GatewayError(500, "the response could not be stored, so it cannot be continued; try again",
                                   kind="server")
        return None

    async def _count_upstream(self, model: str, route: Route, req: ir.Request) -> int | None:
        """The provider's count, asked with a ready account of the route (its key,
        headers, URL and prepare hook); None when none is ready or the call fails."""
        provider = route.provider
        upstream = provider.format
        try:
            candidate = self.router.candidates(model, [route], str)[0]
        except ir.GatewayError:  # every account of the route is resting or disabled
            return None
        account = candidate.account
        url = provider.count_tokens_url_for(account, route.model)
        if url is None:
            return None
        try:
            rendered = upstream.render_request(custom_tools.lower_request(req), route.model)
            request = UpstreamRequest("POST", url, _headers(candidate, None),
                                      orjson.dumps(provider.count_tokens_body(rendered, route.model)))
            if provider.prepares:
                request = await provider.prepare(request, account)
            async with asyncio.timeout(COUNT_TIMEOUT):
                response = await self.client.post(request.url, request.body, request.headers,
                                                  proxy=provider.proxy_for(account),
                                                  connect_timeout=provider.timeouts.connect)
                try:
                    raw = await response.read()
                finally:
                    response.release()
            if response.status != 200:
                return None
            return provider.read_token_count(orjson.loads(raw))
        except Exception:
            return None


def _headers(candidate: Candidate, client_headers: dict[str, str] | None) -> dict[str, str]:
    """The provider's headers with the account's key, then the account's own headers."""
    headers = candidate.route.provider.headers(candidate.key, client_headers)
    extra = candidate.account.headers
    if extra:
        headers.update(extra)
    return headers


def _lease(call: Call) -> Lease:
    assert call.lease is not None
    return call.lease


def _worth_a_fallback(error: ir.GatewayError) -> bool:
    """What another model might not have: the account and provider errors, and a request too long for this one."""
    return worth_another_candidate(error) or cooldown.is_context_length(error)


def _opens_error_event(chunk: bytes) -> bool:
    """Whether a streamed read starts with an error event (`event: error`,
    `data: {"error"`, `response.failed`). Only its first bytes are looked at:
    the key goes up in a header, so generated text cannot hold it, and an
    upstream writes an error event on its own, so it starts a read."""
    return chunk.find(b"rror", 0, _EVENT_HEAD) >= 0 or chunk.find(b"failed", 0, _EVENT_HEAD) >= 0


def _encoded(body: dict[str, Any]) -> bytes:
    """The upstream body. orjson reads what it cannot write (nesting past 254
    levels): the failed encode is the check, so a normal body pays nothing."""
    try:
        return orjson.dumps(body)
    except orjson.JSONEncodeError as exc:
        if "recursion" in str(exc).lower():
            raise ir.GatewayError(400, "the request body nests too deeply") from None
        raise ir.GatewayError(400, f"the request body cannot be sent upstream: {exc}") from None


async def _read_body(response: UpstreamResponse, candidate: Candidate, call: Call) -> bytes:
    waiting = time.perf_counter()
    try:
        return await response.read()
    except UpstreamLimit as exc:
        _warn(candidate, None, str(exc))
        raise ir.GatewayError(502, f"provider {candidate.route.provider.name} {exc}") from None
    except TimeoutError:
        provider = candidate.route.provider
        _warn(candidate, None, f"the answer stalled for {provider.timeouts.idle:g} s")
        raise ir.GatewayError(504, f"provider {provider.name} stopped sending its answer "
                                   f"(nothing for {provider.timeouts.idle:g} s)", kind="timeout") from None
    except UpstreamError as exc:
        _warn(candidate, None, f"the answer broke off: {_reason(exc)}")
        raise ir.GatewayError(502, f"provider {candidate.route.provider.name} broke the connection") from None
    finally:
        response.release()
        call.upstream_wait += time.perf_counter() - waiting


class EnvelopeDecoder:
    """A format's stream decoder behind a provider's envelope: each SSE event's
    JSON is unwrapped before the format decoder sees it, re-serialized as a plain
    `data:` line."""

    def __init__(self, decoder: Any, unwrap: Callable[[Any], Any]) -> None:
        self._decoder = decoder
        self._unwrap = unwrap
        self._frames = SSEParser()

    def feed(self, chunk: bytes) -> list[ir.Event]:
        return self._pass_on(self._frames.feed(chunk))

    def close(self) -> list[ir.Event]:
        events = self._pass_on(self._frames.close())
        return events + list(self._decoder.close())

    def _pass_on(self, frames: list[SSEFrame]) -> list[ir.Event]:
        if not frames:
            return []
        out: list[bytes] = []
        for frame in frames:
            data = frame.data.encode()
            try:
                unwrapped = self._unwrap(orjson.loads(data))
                # a str is the data line itself (an envelope's `[DONE]`)
                data = unwrapped.encode() if isinstance(unwrapped, str) else orjson.dumps(unwrapped)
            except orjson.JSONDecodeError:  # e.g. `[DONE]`: the format decoder's business
                pass
            if frame.event:
                out.append(b"event: " + frame.event.encode() + b"\n")
            out.append(b"data: " + data + b"\n\n")
        return list(self._decoder.feed(b"".join(out)))


def _stream_decoder(provider: Provider) -> Any:
    """The decoder of the provider's streams (behind its envelope, if it has one)."""
    decoder = provider.format.stream_decoder()
    return EnvelopeDecoder(decoder, provider.unwrap_event) if provider.has_envelope else decoder


async def _decode(decoder: Any, response: UpstreamResponse,
                  candidate: Candidate) -> AsyncGenerator[list[ir.Event], None]:
    """The upstream's events, one batch per network read."""
    complete = False
    try:
        async for chunk in response.chunks():
            events = decoder.feed(chunk)
            if events:
                yield events
        complete = True
        yield decoder.close()
    except (UpstreamError, TimeoutError, EventTooLarge) as exc:
        _warn(candidate, None, f"the stream broke: {_reason(exc)}")
        yield [ir.StreamError(_broken_stream(candidate.route.provider, exc))]
    finally:
        _let_go(response, complete)


async def _assembled(batches: AsyncGenerator[list[ir.Event], None]) -> ir.Response:
    """One answer from a stream (for a provider that only streams): the stream's error if it broke."""
    async with contextlib.aclosing(batches):
        return await ir.collect(event async for batch in batches for event in batch)


def _broken_stream(provider: Provider, exc: Exception) -> ir.GatewayError:
    """The error event that ends a stream the upstream broke, stalled or overfilled."""
    if isinstance(exc, TimeoutError):
        return ir.GatewayError(504, f"provider {provider.name} sent nothing for {provider.timeouts.idle:g} s "
                                    "mid-stream", kind="timeout")
    if isinstance(exc, UpstreamLimit | EventTooLarge):
        return ir.GatewayError(502, f"provider {provider.name} {exc}")
    return ir.GatewayError(502, "the upstream connection broke mid-stream")


async def _raise_custom_calls(batches: AsyncIterator[list[ir.Event]],
                              raiser: custom_tools.CallRaiser) -> AsyncIterator[list[ir.Event]]:
    async for batch in batches:
        yield raiser.feed(batch)
    yield raiser.close()


def _shutdown_ending(encoder: StreamEncoder) -> bytes:
    """How a stream still open when the gateway stops ends: an error event and the format's terminator."""
    error = ir.GatewayError(503, "the gateway is shutting down; retry the request")
    return encoder.encode(ir.StreamError(error)) + encoder.close()


def _let_go(response: UpstreamResponse, complete: bool) -> None:
    """A finished response returns its connection to the pool; one abandoned
    midway (client gone, upstream broken) closes it so the upstream stops too."""
    if complete:
        response.release()
    else:
        response.close()


def _warn(candidate: Candidate, url: str | None, reason: str) -> None:
    """An upstream failure for the log: provider, account id and address (the
    client's error names only the provider)."""
    provider = candidate.route.provider
    try:
        origin = split_url(url or provider.base_url)[0]
        address = f"{origin.host}:{origin.port}"
    except UpstreamError:
        address = "an invalid base_url"
    upstream_failed(provider.name, candidate.account_id, address, reason)


def _reason(exc: Exception) -> str:
    return str(exc) if isinstance(exc, UpstreamError | EventTooLarge) else "no data in time"

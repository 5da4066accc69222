"""Which account serves a request, and the lease it holds on it.

The router turns a model's routes into candidates: each route's accounts that
are enabled, serve the model and are not resting, in the order of that
provider's strategy; routes in config order. When every account is resting it
answers at once, without calling any. A lease counts the request in flight
from acquire to release, which comes when the answer ends (a stream's last
byte, or its client leaving), and records the outcome in one place: the
account's shared state, the metrics and the debug log."""

from __future__ import annotations

import fnmatch
import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import NoReturn

from crossroute import ir
from crossroute.accounts import Account
from crossroute.config import RoutingConfig, Strategy
from crossroute.logs import field_value
from crossroute.routing import cooldown, strategies
from crossroute.routing.accounts import Candidate
from crossroute.routing.registry import Route
from crossroute.server.metrics import Metrics
from crossroute.state.accounts import AccountState, Quota, Reason

log = logging.getLogger("crossroute.routing")

_RESTING_WORDS: dict[Reason, str] = {
    "rate_limited": "rate limited", "quota_exhausted": "out of quota", "auth": "refused their credentials",
    "server": "failing upstream"}
_MAX_VIEWS = 4096  # cached ready views; `provider/any-model` routes are made per request


@dataclass(slots=True)
class _ReadyView:
    generation: int
    stale_at: float  # the soonest cooldown end among the accounts that were resting
    ready: list[Candidate]


class Router:
    def __init__(self, accounts: Mapping[str, Sequence[Account]], state: AccountState, routing: RoutingConfig,
                 strategy_of: Mapping[str, Strategy], metrics: Metrics,
                 clock: Callable[[], float] = time.time) -> None:
        self.accounts = accounts
        self.state = state
        self.routing = routing
        self._strategy_of = strategy_of
        self.metrics = metrics
        self.clock = clock
        self._views: dict[Route, _ReadyView] = {}

    def candidates(self, model: str, routes: Sequence[Route], sticky_key: Callable[[], str]) -> list[Candidate]:
        """The ready candidates in the order to try them; a 429 (or 503) in the
        GatewayError when all are resting, with Retry-After = the soonest reset."""
        now = self.clock()
        generation = self.state.generation()
        chosen: list[Candidate] = []
        for route in routes:
            view = self._views.get(route)
            if view is None or view.generation != generation or now >= view.stale_at:
                view = self._view(route, generation, now)
            name = route.provider.name
            chosen.extend(strategies.ordered(self._strategy_of.get(name, self.routing.strategy), name, view.ready,
                                             self.state, sticky_key))
        if not chosen:
            self._none_ready(model, routes, now)
        return chosen

    def set_accounts(self, accounts: Mapping[str, Sequence[Account]]) -> None:
        """New accounts (the auth dir changed): the next request sees them."""
        self.accounts = accounts
        self._views.clear()

    def _view(self, route: Route, generation: int, now: float) -> _ReadyView:
        """Which of a route's accounts are ready, read from the shared state; good until
        the state's generation moves or the first cooldown it saw runs out."""
        if len(self._views) >= _MAX_VIEWS:
            self._views.clear()
        ready, stale_at = [], math.inf
        for account in self.accounts.get(route.provider.name, ()):
            if not account.usable or _excluded(account, route.model):
                continue
            until = self.state.cooling_until(account.id)
            if until <= now:
                ready.append(Candidate(route, account))
            else:
                stale_at = min(stale_at, until)
        view = self._views[route] = _ReadyView(generation, stale_at, ready)
        return view

    def _none_ready(self, model: str, routes: Sequence[Route], now: float) -> NoReturn:
        soonest: tuple[float, str] | None = None
        for route in routes:
            for account in self.accounts.get(route.provider.name, ()):
                if account.usable and not _excluded(account, route.model):
                    until = self.state.cooling_until(account.id)
                    if soonest is None or until < soonest[0]:
                        soonest = (until, account.id)
        if soonest is None:
            logged_out = sorted({route.provider.name for route in routes for account in self.accounts.get(
                route.provider.name, ()) if account.needs_login is not None and not account.disabled})
            if logged_out:
                raise ir.GatewayError(503, f"every account for the model `{model}` needs a new login (crossroute "
                                           f"login {logged_out[0]})", kind="unavailable", code="needs_login")
            raise ir.GatewayError(503, f"no enabled account serves the model `{model}`", kind="unavailable")
        raise _all_resting(model, soonest[0] - now, self.state.view(soonest[1]).reason)

    def lease(self, candidate: Candidate, model: str, stream: bool) -> Lease:
        self.state.begin(candidate.account.id)
        return Lease(self, candidate, model, stream)


class Lease:
    """One upstream call on one account: acquire, outcome, release."""

    __slots__ = ("_router", "candidate", "model", "stream", "_open", "_started", "_first_byte")

    def __init__(self, router: Router, candidate: Candidate, model: str, stream: bool) -> None:
        self._router = router
        self.candidate = candidate
        self.model = model  # as the client named it
        self.stream = stream
        self._open = True
        self._started = time.perf_counter()
        self._first_byte = -1.0  # seconds from the start to the upstream's answer

    def succeeded(self) -> None:
        """The upstream answered 2xx: the account's strikes are forgiven."""
        self._first_byte = time.perf_counter() - self._started
        self._router.state.recovered(self.candidate.account.id)

    def failed(self, error: ir.GatewayError) -> None:
        """No answer came (an error before the first byte); `error.retry_after`
        holds the upstream's reset time if it gave one. Releases the lease."""
        router, account_id = self._router, self.candidate.account.id
        router.metrics.upstream_error(self.candidate.route.provider.name, error.status, self.model)
        reason = cooldown.reason_for(error)
        if reason is not None:
            strikes = router.state.strike(account_id, error.status, error.kind or "")
            seconds = cooldown.rest_seconds(reason, error.retry_after, strikes)
            if seconds > 0:
                router.state.cool(account_id, router.clock() + seconds, reason)
                log.debug("account %s cools down for %.0f s after status %d (%s, strike %d)", account_id, seconds,
                          error.status, reason, strikes)
        self._end(0, 0)

    def reported_quota(self, quota: Quota) -> None:
        """The upstream's answer (2xx or not) said how much of the account's rate limits is left."""
        self._router.state.note_quota(self.candidate.account.id, quota)

    def broke(self, error: ir.GatewayError) -> None:
        """The stream failed after the client got bytes: the account's record
        shows it, but it does not rest (it did take the request)."""
        self._router.state.strike(self.candidate.account.id, error.status, "stream")

    def release(self, usage: ir.Usage | None) -> None:
        """The answer ended: usage, metrics and the in-flight count, once."""
        if not self._open:
            return
        router = self._router
        took = time.perf_counter() - self._started
        # An answer read whole before the lease heard of success reached the client with its first byte at the end.
        first_byte = self._first_byte if self._first_byte >= 0 else took
        router.metrics.finished(self.candidate.route.provider.name, self.model, usage, first_byte, took)
        if usage is None:
            self._end(0, 0)
        else:
            self._end(usage.input_tokens, usage.output_tokens)
        if log.isEnabledFor(logging.DEBUG):
            used = f"{usage.input_tokens} in, {usage.output_tokens} out" if usage else "no usage reported"
            log.debug("%s %s finished on account %s: %s", "stream" if self.stream else "answer",
                      field_value(self.model), self.candidate.account_id, used)

    def abandon(self) -> None:
        """The attempt ended in something other than an answer or an upstream error (a cancelled task)."""
        self._end(0, 0)

    def _end(self, input_tokens: int, output_tokens: int) -> None:
        if self._open:
            self._open = False
            self._router.state.end(self.candidate.account.id, input_tokens, output_tokens)

    def __del__(self) -> None:
        # A stream reply that was never started (its client left first) never runs its
        # generator's `finally`: the in-flight count must still come down.
        if self._open:
            self._end(0, 0)


def _excluded(account: Account, model: str) -> bool:
    return bool(account.excluded_models) and any(fnmatch.fnmatchcase(model, glob) for glob in account.excluded_models)


def _all_resting(model: str, wait: float, reason: Reason | None) -> ir.GatewayError:
    seconds = max(1, math.ceil(wait))
    why = _RESTING_WORDS.get(reason, "resting") if reason else "resting"
    message = f"every account for the model `{model}` is resting ({why}); try again in {seconds} s"
    if reason in ("rate_limited", "quota_exhausted"):
        return ir.GatewayError(429, message, kind="rate_limit", code="all_accounts_resting", retry_after=seconds)
    return ir.GatewayError(503, message, kind="unavailable", code="all_accounts_resting", retry_after=seconds)

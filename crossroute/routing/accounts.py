"""Which account serves a request: round-robin over the routes' keys, skipping
accounts that are cooling down after quota or auth errors."""

from __future__ import annotations

import itertools
import logging
import time
from dataclasses import dataclass

from crossroute import ir
from crossroute.routing.registry import Route

RATE_LIMIT_BACKOFF = 30.0  # seconds, when a 429 carries no Retry-After
AUTH_COOLDOWN = 300.0
SERVER_COOLDOWN = 5.0
MAX_COOLDOWN = 3600.0

log = logging.getLogger("crossroute.routing")


@dataclass(frozen=True, slots=True)
class Candidate:
    route: Route
    key: str
    index: int = 0  # of the key in the provider's api_keys

    @property
    def account(self) -> tuple[str, str]:
        return (self.route.provider.name, self.key)

    @property
    def account_id(self) -> str:
        """Stable, and safe to log: the provider and the key's place, not the key."""
        return f"{self.route.provider.name}#{self.index}"


class AccountPool:
    """In-memory account state for one process."""

    def __init__(self) -> None:
        self._cooldown_until: dict[tuple[str, str], float] = {}
        self._strikes: dict[tuple[str, str], int] = {}
        self._turn = itertools.count()

    def candidates(self, routes: list[Route]) -> list[Candidate]:
        """All accounts of all routes, rotated for fairness; cooling ones go last,
        soonest-ready first, so a request still has somewhere to go."""
        every = [Candidate(r, k, i) for r in routes for i, k in enumerate(r.provider.config.api_keys or [""])]
        if len(every) > 1:
            shift = next(self._turn) % len(every)
            every = every[shift:] + every[:shift]
        now = time.monotonic()
        ready = [c for c in every if self._cooldown_until.get(c.account, 0.0) <= now]
        cooling = sorted((c for c in every if c not in ready), key=lambda c: self._cooldown_until[c.account])
        return ready + cooling

    def cooldown_left(self, candidate: Candidate) -> float:
        return max(0.0, self._cooldown_until.get(candidate.account, 0.0) - time.monotonic())

    def failed(self, candidate: Candidate, error: ir.GatewayError) -> None:
        strikes = self._strikes.get(candidate.account, 0) + 1
        self._strikes[candidate.account] = strikes
        if error.status == 429:
            seconds = error.retry_after or RATE_LIMIT_BACKOFF * 2 ** (strikes - 1)
        elif error.status in (401, 403):
            seconds = AUTH_COOLDOWN
        else:
            seconds = SERVER_COOLDOWN
        seconds = min(seconds, MAX_COOLDOWN)
        self._cooldown_until[candidate.account] = time.monotonic() + seconds
        log.debug("account %s cools down for %.0f s after status %d (strike %d)", candidate.account_id, seconds,
                  error.status, strikes)

    def succeeded(self, candidate: Candidate) -> None:
        if candidate.account in self._strikes:
            del self._strikes[candidate.account]
            self._cooldown_until.pop(candidate.account, None)


def worth_another_candidate(error: ir.GatewayError) -> bool:
    """Errors that another account or provider might not have."""
    return error.status in (401, 402, 403, 408, 429) or error.status >= 500

"""A candidate: one route (provider + upstream model) with one of its accounts."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from crossroute import ir
from crossroute.accounts import Account
from crossroute.routing.registry import Route


@dataclass(frozen=True, slots=True)
class Candidate:
    route: Route
    account: Account

    @property
    def account_id(self) -> str:
        """Stable, and safe to log: never the secret."""
        return self.account.id

    @property
    def key(self) -> str:
        return self.account.secret


def by_provider(accounts: Iterable[Account]) -> dict[str, list[Account]]:
    """Accounts grouped under their provider's name, in the order given."""
    grouped: dict[str, list[Account]] = {}
    for account in accounts:
        grouped.setdefault(account.provider, []).append(account)
    return grouped


def worth_another_candidate(error: ir.GatewayError) -> bool:
    """Errors that another account or provider might not have."""
    return error.status in (401, 402, 403, 408, 429) or error.status >= 500

"""A candidate: one route (provider + upstream model) with one of its accounts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from crossroute import ir
from crossroute.accounts import Account, ApiKey, config_account_id
from crossroute.routing.registry import Route

if TYPE_CHECKING:
    from crossroute.config import Config


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


def _accounts_from_config(config: Config) -> dict[str, list[Account]]:
    """Interim, until crossroute/accounts/from_config.py (and the auth dir)
    provide the accounts: each provider's `api_keys` as accounts `<provider>#<n>`;
    a provider without keys (a local server) has one keyless account."""
    return {
        provider.name: [Account(config_account_id(provider.name, index), provider.name,
                                f"{provider.name} key {index}", ApiKey(key))
                        for index, key in enumerate(provider.api_keys or [""])]
        for provider in config.providers
    }


def worth_another_candidate(error: ir.GatewayError) -> bool:
    """Errors that another account or provider might not have."""
    return error.status in (401, 402, 403, 408, 429) or error.status >= 500

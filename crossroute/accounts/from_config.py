"""The accounts that the config's `providers[].api_keys` stand for."""

from __future__ import annotations

from typing import TYPE_CHECKING

from crossroute.accounts.model import Account, ApiKey, config_account_id

if TYPE_CHECKING:
    from crossroute.config import Config


def accounts_from_config(config: Config) -> list[Account]:
    """One account per key, in the config's order: id `<provider>#<n>` (n the
    key's index), label `<provider> key <n+1>`. A provider without keys (a
    local server) gets one account with an empty key. The provider's headers
    and proxy stay on the provider; they are not copied here.
    A login provider's accounts are files in the auth dir, plus its `api_keys` where its kind takes keys too."""
    accounts = []
    for provider in config.providers:
        if provider.is_login and not provider.api_keys:  # its accounts are the auth dir's files
            continue
        for index, key in enumerate(provider.api_keys or [""]):
            accounts.append(Account(
                id=config_account_id(provider.name, index),
                provider=provider.name,
                label=f"{provider.name} key {index + 1}",
                credential=ApiKey(key),
            ))
    return accounts

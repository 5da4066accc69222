"""An account: one credential of one provider, with the options that steer
how requests use it. Everything else (the store, the shared state, routing)
speaks in account ids; a secret is never a key, a label or a file name."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class ApiKey:
    key: str

    def __repr__(self) -> str:
        return f"ApiKey({mask(self.key)})"

    @property
    def secret(self) -> str:
        return self.key


@dataclass(frozen=True, slots=True)
class OAuthToken:
    access_token: str
    refresh_token: str | None = None
    expires_at: float | None = None  # Unix seconds
    extras: dict[str, Any] = field(default_factory=dict)  # provider specifics (project id, resource URL, ...)

    def __repr__(self) -> str:
        return f"OAuthToken({mask(self.access_token)}, expires_at={self.expires_at})"

    @property
    def secret(self) -> str:
        return self.access_token


Credential = ApiKey | OAuthToken


@dataclass(frozen=True, slots=True)
class Account:
    id: str  # stable, never derived from the secret: `<provider>#<n>` for config keys, the file's stem for files
    provider: str  # the provider's name in the config
    label: str
    credential: Credential
    disabled: bool = False
    priority: int = 0  # fill-first: lower first
    weight: int = 1  # weighted: share of requests
    excluded_models: tuple[str, ...] = ()  # globs
    proxy: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    source: str = "config"  # "config", or the path of its auth-dir file
    # Why a login account cannot be used until `crossroute login` is run again (its refresh token was
    # refused); None: usable. Persisted in its file, so every worker and `crossroute accounts` see it.
    needs_login: str | None = None

    @property
    def usable(self) -> bool:
        return not self.disabled and self.needs_login is None

    @property
    def secret(self) -> str:
        return self.credential.secret

    def __repr__(self) -> str:
        return f"<Account {self.id} {self.provider}>"


def mask(secret: str) -> str:
    """What may be shown of a secret: its first and last characters."""
    if len(secret) < 12:
        return "****"
    return f"{secret[:4]}...{secret[-4:]}"


def config_account_id(provider: str, index: int) -> str:
    return f"{provider}#{index}"

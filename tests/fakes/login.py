"""What the login fakes share: the user's side of a login, PKCE checks, rotating refresh tokens, counters.

The fakes are the server side of the wire, so they check PKCE themselves, exactly as RFC 7636 section 4.6
says: S256 means BASE64URL(SHA256(ASCII(code_verifier))) without padding equals the stored code_challenge,
and a verifier is 43 to 128 characters of [A-Za-z0-9-._~] (section 4.1).
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import string
from dataclasses import dataclass, field
from enum import Enum

VERIFIER = re.compile(r"[A-Za-z0-9\-._~]{43,128}")


def s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def pkce_matches(verifier: str | None, challenge: str) -> bool:
    return (
        isinstance(verifier, str) and VERIFIER.fullmatch(verifier) is not None and s256(verifier) == challenge
    )


def user_code(groups: int = 2, size: int = 4) -> str:
    """A code a person types: upper-case letters without the ones easy to misread."""
    alphabet = "".join(c for c in string.ascii_uppercase if c not in "IOUL")
    return "-".join("".join(secrets.choice(alphabet) for _ in range(size)) for _ in range(groups))


@dataclass
class Identity:
    """The person who signs in on the provider's page."""

    account_id: str = "acct-fake-0001"
    email: str = "user@example.com"
    plan: str = "plus"
    user_id: str = "user-fake-0001"
    resource_url: str | None = None  # Qwen: this account's API host (None: the fake's own URL)


class LoginState(Enum):
    PENDING = "pending"
    APPROVED = "approved"
    DENIED = "denied"
    DONE = "done"  # the client collected its code or tokens


@dataclass
class PendingLogin:
    """One device login between "show this code to the user" and the client collecting its answer."""

    key: str  # what the client polls with: Qwen's device_code, Codex's device_auth_id
    user_code: str
    challenge: str | None
    expires_at: float
    interval: float
    state: LoginState = LoginState.PENDING
    identity: Identity | None = None
    last_poll: float | None = None
    polls: int = 0


class DeviceLogins:
    """The device logins a fake handed out, and the user's decisions on them (approve/deny)."""

    def __init__(self) -> None:
        self._by_key: dict[str, PendingLogin] = {}

    def add(self, login: PendingLogin) -> None:
        self._by_key[login.key] = login

    def get(self, key: str) -> PendingLogin | None:
        return self._by_key.get(key)

    def pending(self, now: float) -> list[PendingLogin]:
        return [
            login
            for login in self._by_key.values()
            if login.state is LoginState.PENDING and login.expires_at > now
        ]

    def decide(
        self, code: str | None, state: LoginState, identity: Identity | None, now: float
    ) -> PendingLogin:
        """The user enters `code` (or the newest pending login's code) and approves or denies it."""
        candidates = self.pending(now)
        if code is not None:
            candidates = [login for login in candidates if login.user_code == code]
        if not candidates:
            raise LookupError(f"no pending device login{'' if code is None else ' with code ' + code}")
        login = candidates[-1]
        login.state = state
        login.identity = identity
        return login


class RefreshOutcome(Enum):
    OK = "ok"
    REUSED = "reused"  # an older token of a live chain: the real services treat it as a replay
    REVOKED = "revoked"
    EXPIRED = "expired"
    UNKNOWN = "unknown"


@dataclass
class Grant:
    """One login's chain of refresh tokens: each refresh replaces `current` with a new token."""

    identity: Identity
    scope: str
    current: str
    used: set[str] = field(default_factory=set)
    revoked: bool = False
    expired: bool = False


class Grants:
    """Refresh tokens that rotate on every use. Reusing a replaced token answers REUSED and, with
    `revoke_on_reuse`, ends the whole chain (its newest token then answers REVOKED)."""

    def __init__(self, prefix: str, *, rotate: bool = True, revoke_on_reuse: bool = True) -> None:
        self.prefix = prefix
        self.rotate = rotate
        self.revoke_on_reuse = revoke_on_reuse
        self._by_token: dict[str, Grant] = {}

    def issue(self, identity: Identity, scope: str) -> Grant:
        grant = Grant(identity, scope, self._new_token())
        self._by_token[grant.current] = grant
        return grant

    def redeem(self, token: str) -> tuple[RefreshOutcome, Grant | None]:
        grant = self._by_token.get(token)
        if grant is None:
            return RefreshOutcome.UNKNOWN, None
        if grant.revoked:
            return RefreshOutcome.REVOKED, grant
        if token != grant.current:
            if self.revoke_on_reuse:
                grant.revoked = True
            return RefreshOutcome.REUSED, grant
        if grant.expired:
            return RefreshOutcome.EXPIRED, grant
        if self.rotate:
            grant.used.add(token)
            grant.current = self._new_token()
            self._by_token[grant.current] = grant
        return RefreshOutcome.OK, grant

    def all(self) -> list[Grant]:
        return list({id(g): g for g in self._by_token.values()}.values())

    def _new_token(self) -> str:
        return self.prefix + secrets.token_urlsafe(32)


@dataclass
class Counters:
    """How often the client called each login endpoint (rejected calls included)."""

    device_requests: int = 0
    polls: int = 0
    token_calls: int = 0  # every call to the token endpoint, whatever its grant
    code_exchanges: int = 0
    refresh_calls: int = 0

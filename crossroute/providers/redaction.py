"""Secrets kept out of upstream text relayed to clients or logged: an upstream
that echoes the key or token it was sent (in an error message) must not hand it
on. Configured keys and header values, the request's own credentials (a login's
access and refresh tokens) and anything shaped like a token (a bearer value, a
JWT, an `access_token`/`refresh_token` field) are replaced. Only error text goes
through here, never a successful answer."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING

import orjson

from crossroute import ir
from crossroute.accounts.model import Account, OAuthToken

if TYPE_CHECKING:
    from crossroute.providers.base import Provider

REDACTED = "[redacted]"
_SHORTEST = 4  # replacing a shorter "secret" would mangle ordinary words and hide little
_CREDENTIAL_WORDS = ("auth", "key", "token", "secret", "password", "cookie", "session", "signature", "credential")
_SCHEMES = ("bearer ", "basic ", "token ")
# Token shapes, whoever's they are: `Bearer <value>`, a JWT, a token field in JSON or a form.
_TOKEN_SHAPES = (
    (r"(?i)\b(bearer|basic)(\s+)[A-Za-z0-9._~+/=-]{8,}", r"\1\2" + REDACTED),
    (r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*", REDACTED),
    (r'(?i)("(?:access|refresh|id)_token"\s*:\s*")[^"]+', r"\1" + REDACTED),
    (r"(?i)\b((?:access|refresh|id)_token=)[^&\s\"']+", r"\1" + REDACTED),
)
_TEXT_SHAPES = tuple((re.compile(pattern), replacement) for pattern, replacement in _TOKEN_SHAPES)
_RAW_SHAPES = tuple((re.compile(pattern.encode()), replacement.encode()) for pattern, replacement in _TOKEN_SHAPES)


class Redactor:
    def __init__(self, secrets: Iterable[str]) -> None:
        found = {s for s in secrets if len(s) >= _SHORTEST}
        self._secrets = found
        self._texts = sorted(found, key=len, reverse=True)  # a key inside a longer one goes with it
        self._raw = sorted({form for s in found for form in _wire_forms(s)}, key=len, reverse=True)

    def with_secrets(self, secrets: Iterable[str]) -> Redactor:
        """This redactor and a request's own credentials (built on the error path only)."""
        extra = {s for s in secrets if len(s) >= _SHORTEST} - self._secrets
        return Redactor(self._secrets | extra) if extra else self

    @classmethod
    def for_providers(cls, providers: Iterable[Provider]) -> Redactor:
        secrets: list[str] = []
        for provider in providers:
            secrets.extend(provider.config.api_keys)
            secrets.extend(header_secrets(provider.config.headers))
        return cls(secrets)

    def text(self, value: str) -> str:
        for secret in self._texts:
            if secret in value:
                value = value.replace(secret, REDACTED)
        for pattern, replacement in _TEXT_SHAPES:
            value = pattern.sub(replacement, value)
        return value

    def raw(self, body: bytes) -> bytes:
        for secret in self._raw:
            if secret in body:
                body = body.replace(secret, REDACTED.encode())
        for pattern, replacement in _RAW_SHAPES:
            body = pattern.sub(replacement, body)
        return body

    def error(self, error: ir.GatewayError) -> ir.GatewayError:
        """The error with every field a client sees scrubbed, in place."""
        error.message = self.text(error.message)
        if error.code:
            error.code = self.text(error.code)
        if error.param:
            error.param = self.text(error.param)
        return error


def scrub(text: str, secrets: Iterable[str] = ()) -> str:
    """`text` (a login or refresh error, a reason to log) without `secrets` or anything token-shaped."""
    return Redactor(secrets).text(text)


def request_secrets(headers: dict[str, str], account: Account) -> list[str]:
    """The credentials one upstream request carried: its auth headers' values and the account's
    own secrets (a login's refresh token too, which the request never carried but an error may name)."""
    return [*header_secrets(headers), *credential_secrets(account)]


def credential_secrets(account: Account) -> list[str]:
    """The account's own secrets: its key, or its login's access and refresh tokens."""
    credential = account.credential
    if isinstance(credential, OAuthToken) and credential.refresh_token:
        return [credential.access_token, credential.refresh_token]
    return [credential.secret]


def header_secrets(headers: dict[str, str]) -> list[str]:
    """Configured header values that look like credentials, and the token after an auth scheme."""
    found = []
    for name, value in headers.items():
        if value.lower().startswith(_SCHEMES):
            found.append(value.split(" ", 1)[1].strip())
        elif any(word in name.lower() for word in _CREDENTIAL_WORDS):
            found.append(value)
    return found


def _wire_forms(secret: str) -> set[bytes]:
    """The secret as it can appear in a raw body: plain, JSON-escaped, with `/` escaped."""
    escaped = orjson.dumps(secret)[1:-1]
    return {secret.encode(), escaped, escaped.replace(b"/", b"\\/")}

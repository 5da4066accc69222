"""Configured secrets kept out of upstream text relayed to clients: an upstream
that echoes the key it was sent (in an error message) must not hand it on."""

from __future__ import annotations

from collections.abc import Iterable

import orjson

from crossroute import ir
from crossroute.providers.base import Provider

REDACTED = "[redacted]"
_SHORTEST = 4  # replacing a shorter "secret" would mangle ordinary words and hide little
_CREDENTIAL_WORDS = ("auth", "key", "token", "secret", "password", "cookie", "session", "signature", "credential")
_SCHEMES = ("bearer ", "basic ", "token ")


class Redactor:
    def __init__(self, secrets: Iterable[str]) -> None:
        found = {s for s in secrets if len(s) >= _SHORTEST}
        self._texts = sorted(found, key=len, reverse=True)  # a key inside a longer one goes with it
        self._raw = sorted({form for s in found for form in _wire_forms(s)}, key=len, reverse=True)

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
        return value

    def raw(self, body: bytes) -> bytes:
        for secret in self._raw:
            if secret in body:
                body = body.replace(secret, REDACTED.encode())
        return body

    def error(self, error: ir.GatewayError) -> ir.GatewayError:
        """The error with every field a client sees scrubbed, in place."""
        error.message = self.text(error.message)
        if error.code:
            error.code = self.text(error.code)
        if error.param:
            error.param = self.text(error.param)
        return error


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

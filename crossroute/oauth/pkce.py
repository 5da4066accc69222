"""PKCE (RFC 7636) S256 pairs, for the kinds whose flows use them (Qwen's device
grant, Codex's authorization code). The challenge is authlib's."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from authlib.oauth2.rfc7636 import create_s256_code_challenge


@dataclass(frozen=True, slots=True)
class Pkce:
    verifier: str
    challenge: str
    method: str = "S256"

    @classmethod
    def new(cls, random_bytes: int = 32) -> Pkce:
        """A verifier of `random_bytes` random bytes, base64url without padding (Qwen: 32, Codex: 96)."""
        verifier = secrets.token_urlsafe(random_bytes)
        return cls(verifier, create_s256_code_challenge(verifier))

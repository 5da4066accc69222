"""The client's side of PKCE for the login-fake tests, written from RFC 7636 independently of the fakes."""

from __future__ import annotations

import base64
import hashlib
import secrets


def challenge_of(verifier: str) -> str:
    """S256: BASE64URL-ENCODE(SHA256(ASCII(code_verifier))), no padding (RFC 7636 section 4.2)."""
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest()).decode().rstrip("=")


def pkce_pair(random_bytes: int = 32) -> tuple[str, str]:
    """(verifier, challenge); 32 random bytes give the 43-character verifier qwen-code uses, 96 give Codex's."""
    verifier = base64.urlsafe_b64encode(secrets.token_bytes(random_bytes)).decode().rstrip("=")
    return verifier, challenge_of(verifier)

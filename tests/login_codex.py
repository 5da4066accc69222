"""What the Codex login tests share (besides tests/login_kimi.py's command and file helpers):
a config for a Codex provider at FakeCodex and account files seeded with tokens it issued."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

from crossroute.accounts.model import Account
from crossroute.oauth.codex import CodexLogin
from crossroute.oauth.command import save_login
from tests.fakes.codex import FakeCodex
from tests.fakes.login import Identity
from tests.gateway_runner import free_port
from tests.login_kimi import CLIENT_KEY, set_options

MODEL = "gpt-5.4"


def codex_config(tmp: Path, fake: FakeCodex, **routing: Any) -> dict[str, Any]:
    return {
        "server": {"api_keys": [CLIENT_KEY], "port": free_port()},
        "state": {"path": str(tmp / "state.sqlite3"), "auth_dir": str(tmp / "auth")},
        "providers": [{"name": "codex", "kind": "codex", "base_url": fake.base_url, "auth_url": fake.url}],
        "routing": routing,
    }


def identity(label: str) -> Identity:
    return Identity(account_id=f"acct-{label}", email=f"{label}@example.com", user_id=f"user-{label}")


def seed_codex(auth_dir: Path, fake: FakeCodex, label: str, lifetime: float | None = None,
               **options: Any) -> Account:
    """An account file holding a live login from the fake (its own identity per label); with
    `lifetime`, the file says the token expires that many seconds from now."""
    token = CodexLogin().token_from_answer(fake.issue_tokens(identity(label)))
    if lifetime is not None:
        token = dataclasses.replace(token, expires_at=time.time() + lifetime)
    account = save_login(auth_dir, "codex", label, token)
    set_options(account, options)
    return account

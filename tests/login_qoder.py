"""What the Qoder tests share: the fake with the gateway signing for its key, a config for a Qoder
provider at the fake, and account files seeded with tokens the fake issued (as a finished login
leaves them)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from crossroute.accounts.model import Account, OAuthToken
from crossroute.oauth import qoder as qoder_login
from crossroute.oauth.command import save_login
from crossroute.oauth.http import control_client
from tests.fakes.login import Identity
from tests.fakes.qoder import FakeQoder
from tests.login_kimi import CLIENT_KEY


@pytest.fixture(name="qoder")
def qoder_fixture(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeQoder]:
    """The fake, with crossroute (in this process and the ones it starts) signing for the fake's RSA key."""
    with FakeQoder() as fake:
        monkeypatch.setenv(qoder_login.PUBLIC_KEY_ENV, str(fake.public_key_file))
        qoder_login.public_key.cache_clear()
        yield fake
    qoder_login.public_key.cache_clear()


def qoder_config(tmp: Path, fake: FakeQoder, **provider: Any) -> dict[str, Any]:
    return {
        "server": {"api_keys": [CLIENT_KEY]},
        "state": {"path": str(tmp / "state.sqlite3"), "auth_dir": str(tmp / "auth")},
        "providers": [{"name": "qoder", "kind": "qoder", "auth_url": fake.url, "base_url": fake.url, **provider}],
    }


def seed(auth_dir: Path, fake: FakeQoder, label: str, lifetime: float | None = None,
         identity: Identity | None = None) -> Account:
    """An account file holding a browser login's device token from the fake."""
    identity = identity or fake.identity
    answer = fake.issue_device_token(identity, lifetime)
    token = OAuthToken(answer["token"], None, qoder_login.expiry_of(answer), {
        "login": "browser", "machine_id": f"machine-{label}", "user_id": identity.user_id,
        "name": identity.account_id, "email": identity.email})
    return save_login(auth_dir, "qoder", label, token)


def seed_personal(auth_dir: Path, fake: FakeQoder, label: str) -> tuple[Account, str]:
    """An account file of a personal-token login (its job token, the personal token kept to renew it)."""
    personal = fake.personal_token()
    with control_client(fake.url, None) as http:
        answer = qoder_login.exchange_personal_token(http, fake.url, personal)
    token = OAuthToken(answer["token"], personal, qoder_login.expiry_of(answer), {
        "login": "token", "machine_id": f"machine-{label}", "user_id": fake.identity.user_id,
        "name": fake.identity.account_id, "email": fake.identity.email})
    return save_login(auth_dir, "qoder", label, token), personal

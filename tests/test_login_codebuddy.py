"""`crossroute login codebuddy` through the real command (a subprocess with no terminal or display)
against FakeCodeBuddy: the state-polling login (pending, then signed in; the page expired; the sign-in
refused), for the international and the China host; the status list; the `region` key of the config
(the hosts it picks, base_url and auth_url over it, errors naming the key); API keys accepted in a
codebuddy provider's entry."""

from __future__ import annotations

import json
import os
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from crossroute.accounts.from_config import accounts_from_config
from crossroute.accounts.model import Account, OAuthToken
from crossroute.config import ConfigError, parse_config
from crossroute.oauth.codebuddy import CodeBuddyLogin
from crossroute.oauth.command import save_login
from tests.fakes.codebuddy import FakeCodeBuddy
from tests.fakes.login import Identity
from tests.login_kimi import CLIENT_KEY, account_files, cli, set_options, when_polled, write_config
from tests.test_login_device import one_line_error


def codebuddy_config(tmp: Path, fake: FakeCodeBuddy, **provider: Any) -> dict[str, Any]:
    """A codebuddy provider whose login server and API are the fake."""
    return {
        "server": {"api_keys": [CLIENT_KEY]},
        "state": {"path": str(tmp / "state.sqlite3"), "auth_dir": str(tmp / "auth")},
        "providers": [{"name": "codebuddy", "kind": "codebuddy", "auth_url": fake.url, "base_url": fake.base_url,
                       **provider}],
    }


def seed_login(auth_dir: Path, fake: FakeCodeBuddy, label: str, identity: Identity | None = None,
               **options: Any) -> Account:
    """An account file holding a live login from the fake (as a finished `crossroute login codebuddy` leaves it)."""
    token = CodeBuddyLogin().token_from_data(fake.issue_tokens(identity))
    account = save_login(auth_dir, "codebuddy", label, token)
    set_options(account, options)
    return account


def login(config: Path, *args: str) -> Any:
    return cli("login", "codebuddy", "--config", str(config), "--no-browser", *args)


@pytest.fixture
def codebuddy() -> Iterator[FakeCodeBuddy]:
    with FakeCodeBuddy() as fake:
        yield fake


@pytest.mark.parametrize("region", ["intl", "cn"])
def test_the_state_login_polls_while_pending_and_writes_the_account(region: str, tmp_path: Path) -> None:
    with FakeCodeBuddy(region=region) as fake:
        approver = when_polled(fake, 1, fake.approve)  # the first poll answers 11217 (pending)
        done = login(write_config(tmp_path, codebuddy_config(tmp_path, fake, region=region)))
        approver.join(5)
    assert done.returncode == 0, done.stderr
    assert fake.counters.polls == 2
    start, *calls = [r for r in fake.requests if r.protocol == "codebuddy-auth"]
    assert start.path == "/v2/plugin/auth/state" and start.query == {"platform": "CLI"}
    assert start.headers["user-agent"].startswith("crossroute/")
    state = calls[0].query["state"]
    assert f"{fake.url}/login?platform=CLI&state={state}" in done.stdout
    assert [c.path for c in calls] == ["/v2/plugin/auth/token"] * 2 + ["/v2/plugin/login/account"]
    [path] = account_files(tmp_path)
    data = json.loads(path.read_text())
    assert data["provider"] == "codebuddy" and data["label"] == "buddy@example.com"  # the nickname
    assert data["user_id"] == "uid-0001" and data["domain"] == fake.domain
    assert data["access_token"].startswith("cba_") and data["refresh_token"].startswith("cbr_")
    assert data["expires_at"] > time.time() + 80000
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert data["access_token"] not in done.stdout + done.stderr
    assert data["refresh_token"] not in done.stdout + done.stderr


def test_an_expired_login_page_fails_with_one_line_and_status_1(tmp_path: Path) -> None:
    with FakeCodeBuddy(state_ttl=1) as fake:
        done = login(write_config(tmp_path, codebuddy_config(tmp_path, fake)))
    assert done.returncode == 1
    assert "not completed (code 11218: login state expired)" in one_line_error(done.stderr)
    assert not account_files(tmp_path)


def test_a_refused_sign_in_fails_with_one_line_and_status_1(codebuddy: FakeCodeBuddy, tmp_path: Path) -> None:
    denier = when_polled(codebuddy, 1, codebuddy.deny)
    done = login(write_config(tmp_path, codebuddy_config(tmp_path, codebuddy)))
    denier.join(5)
    assert done.returncode == 1
    assert "code 11219" in one_line_error(done.stderr)
    assert not account_files(tmp_path)


def test_a_device_login_is_refused_clearly(codebuddy: FakeCodeBuddy, tmp_path: Path) -> None:
    done = login(write_config(tmp_path, codebuddy_config(tmp_path, codebuddy)), "--device")
    assert done.returncode == 2 and "no device login" in one_line_error(done.stderr)
    assert codebuddy.counters.device_requests == 0


def test_login_list_shows_codebuddy_available_with_its_sources() -> None:
    listed = cli("login", "--list")
    assert listed.returncode == 0, listed.stderr
    [row] = [line for line in listed.stdout.splitlines() if line.startswith("codebuddy ")]
    assert " available " in row and "third-party reimplementations" in row


@pytest.mark.parametrize("extra,base,auth", [
    ("", "https://www.codebuddy.ai/v2", "https://www.codebuddy.ai"),
    ("region: intl", "https://www.codebuddy.ai/v2", "https://www.codebuddy.ai"),
    ("region: cn", "https://copilot.tencent.com/v2", "https://copilot.tencent.com"),
    ("{region: cn, base_url: 'http://127.0.0.1:9/v2/'}", "http://127.0.0.1:9/v2", "https://copilot.tencent.com"),
    ("{region: cn, auth_url: 'http://127.0.0.1:9'}", "https://copilot.tencent.com/v2", "http://127.0.0.1:9"),
])
def test_the_region_picks_the_hosts_and_base_url_or_auth_url_win(extra: str, base: str, auth: str) -> None:
    entry = "{name: cb, kind: codebuddy}" if not extra else \
        "{name: cb, kind: codebuddy, " + extra.strip("{}") + "}"
    provider = parse_config(f"providers: [{entry}]").providers[0]
    assert (provider.base_url, provider.auth_url) == (base, auth)


@pytest.mark.parametrize("text,wanted", [
    ("providers:\n  - name: cb\n    kind: codebuddy\n    region: eu\n",
     "<config>:4: providers[0].region: unknown region 'eu' for kind codebuddy; expected one of intl, cn"),
    ("providers:\n  - name: o\n    kind: openai\n    region: cn\n",
     "<config>:4: providers[0].region: region is only for kinds with regional hosts (codebuddy)"),
    ("providers:\n  - name: k\n    kind: kimi\n    api_keys: [sk-1]\n",
     "providers[0]: a kimi provider's accounts come from `crossroute login k`, not api_keys"),
])
def test_config_errors_name_the_key_and_line(text: str, wanted: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_config(text)
    assert wanted in str(raised.value)


def test_api_keys_of_a_codebuddy_entry_are_accounts_and_a_login_entry_without_keys_has_none() -> None:
    config = parse_config("providers:\n  - {name: cb, kind: codebuddy, api_keys: [ck_one.a, ck_two.b]}\n"
                          "  - {name: logins, kind: codebuddy}\n")
    accounts = accounts_from_config(config)
    assert [(a.id, a.provider, a.secret) for a in accounts] == [("cb#0", "cb", "ck_one.a"), ("cb#1", "cb", "ck_two.b")]


def test_a_token_answer_reads_camel_case_and_milliseconds() -> None:
    kind = CodeBuddyLogin()
    token = kind.token_from_data({"accessToken": "a", "refreshToken": "r", "expiresAt": 1_900_000_000_000,
                                  "domain": "www.codebuddy.ai", "uid": 42}, now=0)
    assert (token.access_token, token.refresh_token, token.expires_at) == ("a", "r", 1_900_000_000.0)
    assert token.extras == {"domain": "www.codebuddy.ai", "user_id": "42"}
    again = kind.token_from_data({"accessToken": "b", "expiresIn": 60}, previous=token, now=100)
    assert (again.refresh_token, again.expires_at, again.extras) == ("r", 160.0, token.extras)
    assert kind.request_headers(OAuthToken("a", extras={**token.extras, "enterprise_id": ""})) == {
        "user-agent": kind.request_headers(token)["user-agent"], "x-user-id": "42", "x-domain": "www.codebuddy.ai"}

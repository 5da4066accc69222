"""`crossroute login codex` through the real command (a subprocess without a display)
against FakeCodex: the browser login with a real HTTP client playing the browser
(the authorize redirect followed to the loopback callback), the paste-the-address
fallback, a denied sign-in, a redirect whose state is not the login's, and Codex's
own device login; every failure one line and status 1, no token in any output."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx2 as httpx
import pytest

from tests.fakes.codex import CLIENT_ID, FakeCodex
from tests.gateway_runner import free_port
from tests.login_codex import LoginProcess, codex_config, identity
from tests.login_kimi import write_config
from tests.test_login_device import one_line_error


@pytest.fixture
def codex() -> Iterator[FakeCodex]:
    with FakeCodex(device_interval=1) as fake:
        yield fake


@pytest.fixture
def port(codex: FakeCodex) -> int:
    """A free loopback port registered with the fake as a redirect URI (the real one is 1455)."""
    chosen = free_port()
    codex.allow_redirect(f"http://localhost:{chosen}/auth/callback")
    return chosen


def start_login(codex: FakeCodex, tmp_path: Path, port: int, *args: str) -> tuple[LoginProcess, str]:
    """The login process and the authorize address it shows."""
    login = LoginProcess(write_config(tmp_path, codex_config(tmp_path, codex)), *args, port=port)
    line = login.line_with("To sign in, open ")
    return login, line.split("open ", 1)[1].strip()


def saved_accounts(tmp_path: Path) -> list[dict[str, object]]:
    return [json.loads(path.read_text()) for path in sorted((tmp_path / "auth").glob("*.json"))]


def tokens_shown(tmp_path: Path, *outputs: str) -> list[str]:
    """The saved accounts' tokens that any of the outputs shows."""
    tokens = [str(account[name]) for account in saved_accounts(tmp_path) for name in ("access_token", "refresh_token")]
    return [token for token in tokens if any(token in output for output in outputs)]


def test_browser_login_takes_the_loopback_callback_and_writes_the_account(codex: FakeCodex, tmp_path: Path,
                                                                          port: int) -> None:
    login, url = start_login(codex, tmp_path, port)
    query = {key: values[0] for key, values in parse_qs(urlsplit(url).query).items()}
    assert url.startswith(f"{codex.url}/oauth/authorize?")
    assert query["client_id"] == CLIENT_ID and query["response_type"] == "code"
    assert query["redirect_uri"] == f"http://localhost:{port}/auth/callback"
    assert query["code_challenge_method"] == "S256" and len(query["state"]) >= 32
    assert query["scope"] == "openid email profile offline_access" and query["prompt"] == "login"
    assert query["codex_cli_simplified_flow"] == "true" and query["id_token_add_organizations"] == "true"
    page = httpx.get(url, follow_redirects=True, timeout=30)  # the browser: authorize, then the callback
    assert page.status_code == 200 and "Signed in" in page.text
    status, out, err = login.finish()
    assert status == 0, err
    [account] = saved_accounts(tmp_path)
    assert account["provider"] == "codex" and account["label"] == "user@example.com"  # the id token's email
    assert account["account_id"] == "acct-fake-0001" and account["plan_type"] == "plus"
    assert "(label user@example.com)" in out
    [path] = (tmp_path / "auth").glob("*.json")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert codex.counters.code_exchanges == 1
    assert not tokens_shown(tmp_path, out, err)


def test_on_a_headless_host_the_pasted_address_completes_the_login(codex: FakeCodex, tmp_path: Path,
                                                                   port: int) -> None:
    codex.approve(identity=identity("pasted"))  # who signs in on the other machine's browser
    login, url = start_login(codex, tmp_path, port)
    login.line_with("paste here the address")
    redirect = httpx.get(url, follow_redirects=False, timeout=30)  # the redirect goes nowhere on that machine
    assert redirect.status_code == 302
    login.type("")  # an empty line is asked again
    login.type(redirect.headers["location"])
    status, out, err = login.finish()
    assert status == 0, err
    [account] = saved_accounts(tmp_path)
    assert account["label"] == "pasted@example.com" and account["account_id"] == "acct-pasted"


def test_a_denied_sign_in_fails_with_one_line(codex: FakeCodex, tmp_path: Path, port: int) -> None:
    codex.deny()
    login, url = start_login(codex, tmp_path, port)
    page = httpx.get(url, follow_redirects=True, timeout=30)
    assert page.status_code == 400 and "did not complete" in page.text
    status, _, err = login.finish()
    assert status == 1 and "denied (access_denied)" in one_line_error(err)
    assert not saved_accounts(tmp_path) and codex.counters.code_exchanges == 0


def test_a_redirect_with_another_state_is_refused(codex: FakeCodex, tmp_path: Path, port: int) -> None:
    login, url = start_login(codex, tmp_path, port)
    parts = urlsplit(url)
    forged = {**{k: v[0] for k, v in parse_qs(parts.query).items()}, "state": "someone-elses-state"}
    page = httpx.get(f"{codex.url}/oauth/authorize?{urlencode(forged)}", follow_redirects=True, timeout=30)
    assert page.status_code == 400 and "did not complete" in page.text  # the callback page says so
    status, _, err = login.finish()
    assert status == 1 and "state is not this login's" in one_line_error(err)
    assert not saved_accounts(tmp_path) and codex.counters.code_exchanges == 0


def test_a_pasted_address_without_a_code_fails_with_one_line(codex: FakeCodex, tmp_path: Path, port: int) -> None:
    login, _ = start_login(codex, tmp_path, port)
    login.line_with("paste here the address")
    login.type(f"http://localhost:{port}/auth/callback?state=x")
    status, _, err = login.finish()
    assert status == 1 and "no authorization code" in one_line_error(err)


def test_device_login_with_codexs_own_device_flow(codex: FakeCodex, tmp_path: Path) -> None:
    login = LoginProcess(write_config(tmp_path, codex_config(tmp_path, codex)), "--device", "--label", "dev")
    line = login.line_with("and enter the code")
    assert f"{codex.url}/codex/device" in line
    user_code = line.rsplit(" ", 1)[1].strip()
    codex.approve(user_code, identity=identity("device"))
    status, out, err = login.finish()
    assert status == 0, err
    [account] = saved_accounts(tmp_path)
    assert account["label"] == "dev" and account["account_id"] == "acct-device"
    assert codex.counters.polls >= 1 and codex.counters.code_exchanges == 1
    assert not tokens_shown(tmp_path, out, err)


def test_a_denied_device_login_fails_with_one_line(codex: FakeCodex, tmp_path: Path) -> None:
    login = LoginProcess(write_config(tmp_path, codex_config(tmp_path, codex)), "--device")
    line = login.line_with("and enter the code")
    codex.deny(line.rsplit(" ", 1)[1].strip())
    status, _, err = login.finish()
    assert status == 1 and "denied" in one_line_error(err)
    assert not saved_accounts(tmp_path)


def test_a_disabled_device_login_says_to_use_the_browser(tmp_path: Path) -> None:
    with FakeCodex(device_login_enabled=False) as codex:
        login = LoginProcess(write_config(tmp_path, codex_config(tmp_path, codex)), "--device")
        status, _, err = login.finish()
    assert status == 1 and "try the browser login" in one_line_error(err)


def test_an_unreachable_auth_server_fails_with_one_line(codex: FakeCodex, tmp_path: Path) -> None:
    config = codex_config(tmp_path, codex)
    config["providers"][0]["auth_url"] = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    status, _, err = LoginProcess(write_config(tmp_path, config), "--device").finish()
    assert status == 1 and "could not be reached" in one_line_error(err)

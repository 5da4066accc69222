"""Kimi logins serving requests through the real gateway: each client format
reaching the Kimi API with the account's token and device headers, refresh
ahead of expiry and after a 401 with the rotated refresh token persisted, one
refresh per account across two workers and another process, a kill -9 during
a refresh, and an account whose refresh token is refused: `needs login`, the
next account serves, no retry storm, and no token in any output."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from crossroute.accounts.authfile import parse_account
from crossroute.accounts.model import Account, OAuthToken
from crossroute.config import parse_config
from crossroute.providers.kimi import KimiProvider
from tests.fakes.oauth_device import FakeKimi
from tests.gateway_runner import RunningGateway
from tests.login_kimi import (
    CLIENT_KEY,
    MODEL,
    bearer,
    cli,
    digest,
    file_of,
    kimi_config,
    refresh_race,
    refresher,
    seed_account,
    set_options,
    write_config,
)

HEADERS = {"authorization": f"Bearer {CLIENT_KEY}"}
# One request per client format, each reaching the Kimi (OpenAI Chat) API.
REQUESTS: dict[str, tuple[str, dict[str, Any]]] = {
    "openai-chat": ("/v1/chat/completions", {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}),
    "openai-responses": ("/v1/responses", {"model": MODEL, "input": "hi", "store": False}),
    "anthropic": ("/v1/messages", {"model": MODEL, "max_tokens": 50, "messages": [{"role": "user", "content": "hi"}]}),
    "gemini": (f"/v1beta/models/{MODEL}:generateContent", {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}),
}


@pytest.fixture
def kimi() -> Iterator[FakeKimi]:
    with FakeKimi() as fake:
        yield fake


def chat(url: str, fmt: str = "openai-chat") -> httpx.Response:
    path, body = REQUESTS[fmt]
    return httpx.post(f"{url}{path}", json=body, headers=HEADERS, timeout=30)


def test_each_client_format_reaches_kimi_with_the_accounts_token_and_device_headers(kimi: FakeKimi,
                                                                                     tmp_path: Path) -> None:
    account = seed_account(tmp_path / "auth", kimi, "work")
    token = file_of(account)["access_token"]
    with RunningGateway(kimi_config(tmp_path, kimi), tmp_path / "state.sqlite3") as gateway:
        for fmt in REQUESTS:
            answer = chat(gateway.url, fmt)
            assert answer.status_code == 200, (fmt, answer.text)
            seen = kimi.requests[-1]
            assert seen.path == "/coding/v1/chat/completions" and seen.body["model"] == MODEL
            assert bearer(seen) == token and seen.headers["x-msh-device-id"] == "device-work"
            assert seen.headers["x-msh-platform"] == "crossroute"
        streamed = httpx.post(f"{gateway.url}/v1/messages", headers=HEADERS, timeout=30, json={
            "model": MODEL, "stream": True, "max_tokens": 50, "messages": [{"role": "user", "content": "hi"}]})
        assert streamed.status_code == 200 and "message_stop" in streamed.text
        assert kimi.requests[-1].body["stream_options"]["include_usage"] is True
    assert len(kimi.requests) == 5 and not kimi.refused and kimi.oauth.refresh_calls == 0


def test_two_logins_with_different_labels_rotate(kimi: FakeKimi, tmp_path: Path) -> None:
    tokens = {file_of(seed_account(tmp_path / "auth", kimi, label))["access_token"] for label in ("work", "home")}
    with RunningGateway(kimi_config(tmp_path, kimi), tmp_path / "state.sqlite3") as gateway:
        assert [chat(gateway.url).status_code for _ in range(4)] == [200] * 4
    assert {bearer(seen) for seen in kimi.requests} == tokens


def test_a_token_is_refreshed_ahead_of_expiry_and_the_rotated_refresh_token_is_kept(kimi: FakeKimi,
                                                                                    tmp_path: Path) -> None:
    account = seed_account(tmp_path / "auth", kimi, "work", lifetime=120)  # inside Kimi's 5-minute lead
    old = file_of(account)
    with RunningGateway(kimi_config(tmp_path, kimi), tmp_path / "state.sqlite3") as gateway:
        assert chat(gateway.url).status_code == 200
        assert chat(gateway.url, "anthropic").status_code == 200
    assert kimi.oauth.refresh_calls == 1 and not kimi.refused
    new = file_of(account)
    assert new["access_token"] != old["access_token"] and new["refresh_token"] != old["refresh_token"]
    assert new["refresh_token"] in kimi.oauth.refresh_tokens and old["refresh_token"] not in kimi.oauth.refresh_tokens
    assert new["expires_at"] > time.time() + 3000 and new["device_id"] == "device-work"
    assert {bearer(seen) for seen in kimi.requests} == {new["access_token"]}


def test_a_401_refreshes_once_and_the_request_is_retried(kimi: FakeKimi, tmp_path: Path) -> None:
    account = seed_account(tmp_path / "auth", kimi, "work")
    old = file_of(account)
    kimi.oauth.expire(old["access_token"])  # the server drops it before its announced expiry
    with RunningGateway(kimi_config(tmp_path, kimi), tmp_path / "state.sqlite3") as gateway:
        answer = chat(gateway.url, "gemini")
        assert answer.status_code == 200, answer.text
    assert [bearer(seen) for seen in kimi.refused] == [old["access_token"]]
    assert kimi.oauth.refresh_calls == 1
    new = file_of(account)
    assert bearer(kimi.requests[-1]) == new["access_token"] != old["access_token"]
    assert new["refresh_token"] in kimi.oauth.refresh_tokens


def test_a_refresh_outage_keeps_the_token_while_it_lasts_without_a_storm(kimi: FakeKimi, tmp_path: Path) -> None:
    account = seed_account(tmp_path / "auth", kimi, "work", lifetime=120)  # due for a refresh, still valid
    before = file_of(account)
    kimi.oauth.refresh_outage = 503
    with RunningGateway(kimi_config(tmp_path, kimi), tmp_path / "state.sqlite3") as gateway:
        assert [chat(gateway.url).status_code for _ in range(3)] == [200] * 3
    assert kimi.oauth.refresh_calls == 1  # the next try waits (30 s), the requests go on meanwhile
    assert {bearer(seen) for seen in kimi.requests} == {before["access_token"]}
    assert file_of(account) == before


def test_a_refused_refresh_marks_needs_login_and_the_next_account_serves_without_a_storm(kimi: FakeKimi,
                                                                                          tmp_path: Path) -> None:
    auth = tmp_path / "auth"
    dead = seed_account(auth, kimi, "first", lifetime=120, priority=0)
    kimi.oauth.revoke(file_of(dead)["refresh_token"])
    spare = seed_account(auth, kimi, "second", priority=1)
    config = kimi_config(tmp_path, kimi, strategy="fill-first")
    with RunningGateway(config, tmp_path / "state.sqlite3") as gateway:
        for _ in range(4):
            answer = chat(gateway.url)
            assert answer.status_code == 200, answer.text
            assert bearer(kimi.requests[-1]) == file_of(spare)["access_token"]
    assert kimi.oauth.refresh_calls == 1 and kimi.oauth.refresh_refused == 1  # one try, then never again
    assert "invalid_grant" in file_of(dead)["needs_login"]
    path = write_config(tmp_path, config)
    listed = cli("accounts", "--config", str(path))
    row = next(line for line in listed.stdout.splitlines() if line.startswith(dead.id))
    assert "needs login: run crossroute login kimi --label first" in row
    assert json.loads(cli("accounts", "--config", str(path), "--json").stdout)[0]["state"] == "needs_login"
    shown = listed.stdout + listed.stderr
    assert not [token for token in kimi.oauth.issued if token in shown]

    kimi.oauth.approve_after = 1
    again = cli("login", "kimi", "--config", str(path), "--label", "first", "--no-browser")
    assert again.returncode == 0, again.stderr
    renewed = file_of(dead)  # the same file, logged in again
    assert "needs_login" not in renewed and renewed["access_token"] in kimi.oauth.access


def test_two_workers_and_another_process_refresh_an_account_exactly_once(kimi: FakeKimi, tmp_path: Path) -> None:
    account = seed_account(tmp_path / "auth", kimi, "shared", lifetime=120)
    kimi.oauth.refresh_delay = 2.5  # every asker arrives while the first refresh is in flight
    race = refresh_race(tmp_path, kimi_config(tmp_path, kimi), account, chat, askers=8)
    assert race.answers == [200] * 8 and race.returncode == 0
    assert kimi.oauth.refresh_calls == 1
    new = file_of(account)["access_token"]
    assert race.printed.strip() == digest(new)
    assert {bearer(seen) for seen in kimi.requests} == {new}
    assert "token refreshed" in race.logs
    assert not [token for token in kimi.oauth.issued if token in race.logs or token in race.metrics]


def test_a_kill_during_a_refresh_leaves_a_usable_file(kimi: FakeKimi, tmp_path: Path) -> None:
    account = seed_account(tmp_path / "auth", kimi, "work", lifetime=120)
    before = file_of(account)
    path = write_config(tmp_path, kimi_config(tmp_path, kimi))
    kimi.oauth.refresh_delay = 60
    process = refresher(path, account, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while kimi.oauth.refresh_calls == 0:  # it holds the account's lock and waits on the server
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait(10)
    assert file_of(account) == before  # the old file, whole: its access token still serves
    assert kimi.oauth.grant_for(before["access_token"]) is not None
    assert sorted(p.name for p in (tmp_path / "auth").iterdir()) == [".locks", Path(account.source).name]

    kimi.oauth.refresh_delay = 0
    again = refresher(path, account, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    printed, problems = again.communicate(timeout=60)
    assert again.returncode == 0, problems  # the lock went with the killed process
    after = file_of(account)
    assert printed.strip() == digest(after["access_token"]) and kimi.oauth.refresh_calls == 2
    assert kimi.oauth.refresh_refused == 0 and after["refresh_token"] in kimi.oauth.refresh_tokens
    assert parse_account(account.id, Path(account.source).read_bytes(), account.source).needs_login is None




def test_the_client_of_an_account_that_needs_login_gets_a_clear_error_without_tokens(kimi: FakeKimi,
                                                                                      tmp_path: Path) -> None:
    dead = seed_account(tmp_path / "auth", kimi, "only", lifetime=60)
    kimi.oauth.revoke(file_of(dead)["refresh_token"])
    with RunningGateway(kimi_config(tmp_path, kimi), tmp_path / "state.sqlite3") as gateway:
        first = chat(gateway.url, "anthropic")
        second = chat(gateway.url, "anthropic")
    assert first.status_code == 401 and first.json()["type"] == "error"
    assert "needs a new login (crossroute login kimi)" in first.json()["error"]["message"]
    assert second.status_code in (401, 503) and kimi.oauth.refresh_calls == 1 and not kimi.requests
    bodies = first.text + second.text
    assert not [token for token in kimi.oauth.issued if token in bodies]


def test_when_every_account_needs_a_login_the_client_is_told_which_command_fixes_it(kimi: FakeKimi,
                                                                                    tmp_path: Path) -> None:
    account = seed_account(tmp_path / "auth", kimi, "only")
    set_options(account, {"needs_login": "the refresh token was refused: invalid_grant (HTTP 400)"})
    with RunningGateway(kimi_config(tmp_path, kimi), tmp_path / "state.sqlite3") as gateway:
        answer = chat(gateway.url)
    assert answer.status_code == 503 and answer.json()["error"]["code"] == "needs_login"
    assert "every account for the model `kimi-for-coding` needs a new login (crossroute login kimi)" in answer.text
    assert not kimi.requests and kimi.oauth.refresh_calls == 0


def test_a_configured_base_url_wins_over_a_per_account_resource_url(tmp_path: Path) -> None:
    class Regional(KimiProvider):  # a kind whose login answers with a per-account API host (as Qwen's does)
        def resource_base(self, token: OAuthToken) -> str | None:
            return str(token.extras["resource_url"])

    token = OAuthToken("at", "rt", None, {"resource_url": "https://region.example/v1"})
    account = Account("a", "kimi", "a", token, source=str(tmp_path / "a.json"))
    default = Regional(parse_config("providers: [{name: kimi, kind: kimi}]").providers[0])
    assert default.url_for(account, MODEL, False) == "https://region.example/v1/chat/completions"
    mirror = parse_config("providers: [{name: kimi, kind: kimi, base_url: 'https://mirror.example/v1'}]")
    assert Regional(mirror.providers[0]).url_for(account, MODEL, False) == "https://mirror.example/v1/chat/completions"

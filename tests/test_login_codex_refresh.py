"""Codex logins keeping themselves fresh through the real gateway against FakeCodex:
refresh 5 days ahead of expiry and once after a 401, the rotated refresh token
persisted, one refresh per account across two workers and another process, a
kill -9 during a refresh, and a refresh token the server refuses for good
(`refresh_token_reused`): `needs login`, the next account serves, no storm."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import pytest

from tests.fakes.codex import CLIENT_ID, FakeCodex
from tests.gateway_runner import RunningGateway
from tests.login_codex import chat, codex_config, seed_codex
from tests.login_kimi import (
    CLIENT_KEY,
    bearer,
    cli,
    digest,
    file_of,
    refresh_race,
    refresher,
    write_config,
)

HEADERS = {"authorization": f"Bearer {CLIENT_KEY}"}
DAY = 86400.0


@pytest.fixture
def codex() -> Iterator[FakeCodex]:
    with FakeCodex() as fake:
        yield fake



def refreshed_by_fake(codex: FakeCodex, refresh_token: str) -> dict[str, str]:
    """Someone else (another copy of the file) uses the refresh token first."""
    answer = httpx.post(f"{codex.url}/oauth/token", timeout=10, data={
        "client_id": CLIENT_ID, "grant_type": "refresh_token", "refresh_token": refresh_token})
    assert answer.status_code == 200
    return dict(answer.json())


def test_a_token_within_five_days_of_expiry_is_refreshed_and_the_rotation_kept(codex: FakeCodex,
                                                                               tmp_path: Path) -> None:
    account = seed_codex(tmp_path / "auth", codex, "work", lifetime=4 * DAY)  # inside the 5-day lead
    old = file_of(account)
    with RunningGateway(codex_config(tmp_path, codex), tmp_path / "state.sqlite3") as gateway:
        assert chat(gateway.url).status_code == 200
        assert chat(gateway.url).status_code == 200
    assert codex.counters.refresh_calls == 1
    new = file_of(account)
    assert new["access_token"] != old["access_token"] and new["refresh_token"] != old["refresh_token"]
    assert new["expires_at"] > time.time() + 9 * DAY and new["account_id"] == "acct-work"
    assert new["email"] == "work@example.com"
    assert {bearer(seen) for seen in codex.backend_requests()} == {new["access_token"]}


def test_a_401_refreshes_once_and_the_request_is_retried(codex: FakeCodex, tmp_path: Path) -> None:
    account = seed_codex(tmp_path / "auth", codex, "work")
    old = file_of(account)
    codex.expire_access_tokens()  # the backend answers 401 token_expired before the announced expiry
    with RunningGateway(codex_config(tmp_path, codex), tmp_path / "state.sqlite3") as gateway:
        answer = chat(gateway.url)
        assert answer.status_code == 200, answer.text
    assert codex.counters.refresh_calls == 1
    new = file_of(account)
    assert [bearer(seen) for seen in codex.backend_requests()] == [old["access_token"], new["access_token"]]
    assert new["refresh_token"] != old["refresh_token"]


def test_a_reused_refresh_token_marks_needs_login_and_the_next_account_serves(codex: FakeCodex,
                                                                              tmp_path: Path) -> None:
    auth = tmp_path / "auth"
    dead = seed_codex(auth, codex, "first", lifetime=DAY, priority=0)
    refreshed_by_fake(codex, file_of(dead)["refresh_token"])  # the file's refresh token is now a used one
    spare = seed_codex(auth, codex, "second", priority=1)
    config = codex_config(tmp_path, codex, strategy="fill-first")
    with RunningGateway(config, tmp_path / "state.sqlite3") as gateway:
        for _ in range(3):
            answer = chat(gateway.url)
            assert answer.status_code == 200, answer.text
            assert bearer(codex.backend_requests()[-1]) == file_of(spare)["access_token"]
    assert codex.counters.refresh_calls == 2  # the test's, then the gateway's one try: never again
    assert "refresh_token_reused" in file_of(dead)["needs_login"]
    listed = cli("accounts", "--config", str(write_config(tmp_path, config)))
    row = next(line for line in listed.stdout.splitlines() if line.startswith(dead.id))
    assert "needs login: run crossroute login codex --label first" in row
    shown = listed.stdout + listed.stderr
    assert not [file_of(a)[name] for a in (dead, spare) for name in ("access_token", "refresh_token")
                if file_of(a)[name] in shown]


def test_two_workers_and_another_process_refresh_an_account_exactly_once(codex: FakeCodex, tmp_path: Path) -> None:
    account = seed_codex(tmp_path / "auth", codex, "shared", lifetime=DAY)
    codex.refresh_delay = 2.5  # every asker arrives while the first refresh is in flight
    race = refresh_race(tmp_path, codex_config(tmp_path, codex), account, chat)
    assert race.answers == [200] * 6 and race.returncode == 0
    assert codex.counters.refresh_calls == 1
    new = file_of(account)["access_token"]
    assert race.printed.strip() == digest(new)
    assert {bearer(seen) for seen in codex.backend_requests()} == {new}
    assert new not in race.logs and new not in race.metrics


def test_a_kill_during_a_refresh_leaves_a_usable_file(codex: FakeCodex, tmp_path: Path) -> None:
    account = seed_codex(tmp_path / "auth", codex, "work", lifetime=DAY)
    before = file_of(account)
    path = write_config(tmp_path, codex_config(tmp_path, codex))
    codex.refresh_delay = 60  # the fake rotates at once, then answers late
    process = refresher(path, account, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while codex.counters.refresh_calls == 0:
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait(10)
    assert file_of(account) == before  # the old file, whole: its access token still works
    usable = httpx.get(f"{codex.base_url}/models", timeout=10, headers={
        "authorization": f"Bearer {before['access_token']}", "chatgpt-account-id": "acct-work"})
    assert usable.status_code == 200
    # The server rotated the refresh token before its answer was lost with the process (Codex's tokens
    # rotate): the next refresh is refused as reused, once, and the account says it needs a new login.
    codex.refresh_delay = 0
    with RunningGateway(codex_config(tmp_path, codex), tmp_path / "state.sqlite3") as gateway:
        answer = chat(gateway.url)
    # 401 from the refresh this request ran, or 503 when the model-list fetch ran it first
    assert answer.status_code in (401, 503) and "crossroute login codex" in answer.json()["error"]["message"]
    data = json.loads(Path(account.source).read_text())
    assert data["access_token"] == before["access_token"] and codex.counters.refresh_calls == 2
    assert "refresh_token_reused" in data["needs_login"]

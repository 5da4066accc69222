"""The Codex plan's usage windows: read from every backend answer's
`x-codex-primary-*`/`x-codex-secondary-*` headers into the account's shared
quota state, shown by `crossroute accounts` (table and --json) and /metrics;
a 429 usage_limit_reached cools the account until the window resets while the
next account serves, and the account comes back after."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from crossroute.providers.codex import CodexProvider, reset_in_body
from crossroute.state.accounts import Quota, SharedAccountState, UsageWindow, read_views
from tests.fakes.codex import FakeCodex
from tests.gateway_runner import RunningGateway, free_port
from tests.login_codex import chat, codex_config, seed_codex
from tests.login_kimi import CLIENT_KEY, bearer, cli, file_of, write_config

HEADERS = {"authorization": f"Bearer {CLIENT_KEY}"}
NOW = 1_800_000_000.0
CODEX_HEADERS = {
    "x-codex-primary-used-percent": "23", "x-codex-primary-window-minutes": "300",
    "x-codex-primary-reset-after-seconds": "600", "x-codex-primary-reset-at": str(int(NOW + 600)),
    "x-codex-secondary-used-percent": "4.5", "x-codex-secondary-window-minutes": "10080",
    "x-codex-secondary-reset-at": str(int(NOW + 86400)),
}


@pytest.fixture
def codex() -> Iterator[FakeCodex]:
    with FakeCodex() as fake:
        yield fake


def test_the_usage_window_headers_become_the_accounts_quota() -> None:
    quota = CodexProvider.quota_from_headers(CODEX_HEADERS, now=NOW)
    assert quota == Quota(seen_at=NOW, windows=(UsageWindow(300, 23.0, NOW + 600), UsageWindow(10080, 4.5, NOW + 86400)))
    assert [window.name for window in quota.windows] == ["5h", "week"]
    broken = {**CODEX_HEADERS, "x-codex-secondary-used-percent": "lots"}
    assert CodexProvider.quota_from_headers(broken, now=NOW) == Quota(seen_at=NOW, windows=(UsageWindow(300, 23.0, NOW + 600),))
    assert CodexProvider.quota_from_headers({"content-type": "text/event-stream"}) is None
    assert UsageWindow(1440, 0).name == "1d" and UsageWindow(90, 0).name == "90m"


def test_only_a_spent_window_says_how_long_a_429_rests() -> None:
    assert CodexProvider.reset_from_headers(CODEX_HEADERS, now=NOW) is None  # nothing spent: a weekly reset is no wait
    spent = {**CODEX_HEADERS, "x-codex-primary-used-percent": "100"}
    assert CodexProvider.reset_from_headers(spent, now=NOW) == 600
    body = b'{"error": {"type": "usage_limit_reached", "resets_in_seconds": 1234, "resets_at": 1}}'
    assert reset_in_body(body) == 1234 and reset_in_body(b'{"error": "x"}') is None


def test_the_windows_are_shared_through_the_state_file(tmp_path: Path) -> None:
    path = tmp_path / "accounts.state"
    quota = CodexProvider.quota_from_headers(CODEX_HEADERS, now=NOW)
    assert quota is not None
    one, two = SharedAccountState(path), SharedAccountState(path)
    try:
        one.note_quota("codex#0", quota)
        assert two.view("codex#0").quota == quota
        one.note_quota("codex#0", Quota(5, 10, -1, -1, NOW, NOW))  # an answer without windows clears them
        assert two.view("codex#0").quota == Quota(5, 10, -1, -1, NOW, NOW)
        one.note_quota("codex#0", quota)
    finally:
        one.close()
        two.close()
    assert read_views(path, ["codex#0"])["codex#0"].quota == quota


def test_accounts_and_metrics_show_the_plans_windows(codex: FakeCodex, tmp_path: Path) -> None:
    account = seed_codex(tmp_path / "auth", codex, "work")
    config = codex_config(tmp_path, codex)
    with RunningGateway(config, tmp_path / "state.sqlite3") as gateway:
        assert chat(gateway.url).status_code == 200
        assert chat(gateway.url).status_code == 200
        metrics = httpx.get(f"{gateway.url}/metrics", headers=HEADERS, timeout=10).text
    # the fake's plan: 100 requests per 5 hours, 1000 per week; two answered
    assert f'crossroute_account_quota_used_percent{{account="{account.id}",window="5h"}} 2' in metrics
    assert f'crossroute_account_quota_used_percent{{account="{account.id}",window="week"}} 0.2' in metrics
    assert f'crossroute_account_quota_reset_seconds{{account="{account.id}",window="5h"}}' in metrics
    path = write_config(tmp_path, config)
    listed = cli("accounts", "--config", str(path))
    row = next(line for line in listed.stdout.splitlines() if line.startswith(account.id))
    assert "5h 2% used (resets " in row and "week 0% used (resets " in row
    [shown] = json.loads(cli("accounts", "--config", str(path), "--json").stdout)
    windows = shown["quota"]["windows"]
    assert [(w["window"], w["minutes"], w["used_percent"]) for w in windows] == [("5h", 300, 2), ("week", 10080, 0.2)]
    assert all(w["resets_at"] > time.time() for w in windows)
    assert file_of(account)["access_token"] not in listed.stdout + metrics


def two_providers(tmp_path: Path, first: FakeCodex, second: FakeCodex) -> dict[str, Any]:
    """Two Codex providers (each plan's windows are its own) serving the same model."""
    config = codex_config(tmp_path, first, strategy="fill-first")
    config["providers"] = [
        {"name": "plan-a", "kind": "codex", "base_url": first.base_url, "auth_url": first.url},
        {"name": "plan-b", "kind": "codex", "base_url": second.base_url, "auth_url": second.url},
    ]
    config["server"]["port"] = free_port()
    return config


def test_a_spent_window_cools_the_account_until_its_reset_and_the_next_account_serves(
        codex: FakeCodex, tmp_path: Path) -> None:
    with FakeCodex() as other:
        spent = seed_codex(tmp_path / "auth", codex, "a", provider="plan-a", priority=0)
        spare = seed_codex(tmp_path / "auth", other, "b", provider="plan-b", priority=1)
        config = two_providers(tmp_path, codex, other)
        with RunningGateway(config, tmp_path / "state.sqlite3") as gateway:
            assert chat(gateway.url).status_code == 200  # plan a's window starts
            codex.advance(300 * 60 - 4)  # four seconds before the 5-hour window resets...
            codex.use_up("primary")  # ...it is spent
            for _ in range(3):
                answer = chat(gateway.url)
                assert answer.status_code == 200, answer.text
                assert bearer(other.backend_requests()[-1]) == file_of(spare)["access_token"]
            assert len(codex.backend_requests()) == 2  # one answered, one 429: then it rests
            listed = cli("accounts", "--config", str(write_config(tmp_path, config)), "--json")
            state = {row["id"]: row for row in json.loads(listed.stdout)}[spent.id]
            assert state["state"] == "cooling" and state["reason"] == "quota_exhausted"
            assert time.time() < state["cooling_until"] < time.time() + 10
            deadline = time.monotonic() + 20
            while len(codex.backend_requests()) == 2:  # after the reset the account serves again
                assert time.monotonic() < deadline
                time.sleep(0.5)
                assert chat(gateway.url).status_code == 200
        assert bearer(codex.backend_requests()[-1]) == file_of(spent)["access_token"]

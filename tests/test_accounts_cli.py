"""`crossroute accounts`: the table of accounts with the running gateway's
shared state, and `accounts disable|enable ID`, which a running gateway takes
up through its auth-dir watcher."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from crossroute.accounts import report
from crossroute.accounts.model import Account, ApiKey
from crossroute.state.accounts import NO_STATE
from tests.fakes import FakeUpstream, Turn
from tests.test_logging import ServedGateway, http

PAIR_KEYS = ["sk-pair-FIRST-secret-0001", "sk-pair-SECOND-secret-0002"]
COOL_KEYS = ["sk-cool-FIRST-secret-0003", "sk-cool-SECOND-secret-0004"]
QUOTA_KEYS = ["sk-quota-ONLY-secret-0005"]


def provider(name: str, fake: FakeUpstream, keys: list[str]) -> dict[str, Any]:
    return {"name": name, "kind": "openai", "base_url": f"{fake.url}/v1", "api_keys": keys,
            "models": [{"name": f"{name}-model", "upstream": "chat-up-real"}]}


def chat(model: str) -> bytes:
    body = orjson.dumps({"model": model, "messages": [{"role": "user", "content": "hi"}]})
    return http("POST", "/v1/chat/completions", body, key=None)


def accounts_cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "crossroute.cli", "accounts", "--config", str(config), *args],
                          capture_output=True, text=True, timeout=60)


def accounts_json(config: Path) -> dict[str, dict[str, Any]]:
    done = accounts_cli(config, "--json")
    assert done.returncode == 0, done.stderr
    return {row["id"]: row for row in json.loads(done.stdout)}


def keys_used(fake: FakeUpstream, since: int) -> set[str]:
    return {recorded.headers["authorization"].removeprefix("Bearer ") for recorded in fake.requests[since:]}


def wait_for_keys(served: ServedGateway, fake: FakeUpstream, wanted: set[str]) -> None:
    """Sends requests until a batch of four uses exactly `wanted` upstream (bounded)."""
    deadline = time.monotonic() + 15
    while True:
        since = len(fake.requests)
        for _ in range(4):
            assert served.exchange(chat("pair-model")).startswith(b"HTTP/1.1 200 ")
        if keys_used(fake, since) == wanted:
            return
        assert time.monotonic() < deadline, f"upstream keys stayed {keys_used(fake, since)}"
        time.sleep(0.1)


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream(api_key=None) as fake:
        yield fake


@pytest.fixture(scope="module")
def served(upstream: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedGateway]:
    tmp = tmp_path_factory.mktemp("accounts")
    config = {"server": {}, "providers": [provider("pair", upstream, PAIR_KEYS), provider("cool", upstream, COOL_KEYS),
                                          provider("quota", upstream, QUOTA_KEYS)]}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CROSSROUTE_HOME", str(tmp / "home"))  # the auth dir's default, for the gateway and the CLI
        gateway = ServedGateway(tmp, config, "--workers", "2")
        yield gateway
        gateway.stop()


def config_of(served: ServedGateway) -> Path:
    return served.log_path.parent / "config.yaml"


def test_the_table_counts_each_accounts_requests_from_the_running_gateway(served: ServedGateway) -> None:
    before = accounts_json(config_of(served))
    for _ in range(6):
        assert served.exchange(chat("pair-model")).startswith(b"HTTP/1.1 200 ")
    after = accounts_json(config_of(served))
    counted = {account_id: after[account_id]["requests"] - before[account_id]["requests"]
               for account_id in ("pair#0", "pair#1")}
    assert counted == {"pair#0": 3, "pair#1": 3}  # round-robin across both workers
    assert after["pair#0"]["input_tokens"] > 0 and after["pair#0"]["output_tokens"] > 0
    assert after["pair#0"]["state"] == "ready" and after["pair#0"]["in_flight"] == 0
    table = accounts_cli(config_of(served)).stdout.splitlines()
    assert table[0].split()[:4] == ["ID", "PROVIDER", "LABEL", "STATE"]
    pair0 = next(line for line in table if line.startswith("pair#0 "))
    assert " ready " in pair0 and f" {after['pair#0']['requests']} " in pair0


def test_a_429d_account_shows_cooling_until_with_the_reason(served: ServedGateway, upstream: FakeUpstream) -> None:
    upstream.script(Turn(error=(429, "slow down"), retry_after=3600))
    assert served.exchange(chat("cool-model")).startswith(b"HTTP/1.1 200 ")  # the other account answered
    rows = accounts_json(config_of(served))
    cooling = [row for account_id, row in rows.items() if account_id.startswith("cool#") and row["state"] == "cooling"]
    assert len(cooling) == 1
    assert cooling[0]["reason"] == "rate_limited" and cooling[0]["cooling_until"] > time.time() + 3000
    assert cooling[0]["last_error"]["status"] == 429
    line = next(line for line in accounts_cli(config_of(served)).stdout.splitlines()
                if line.startswith(cooling[0]["id"] + " "))
    assert "cooling until " in line and "(rate limited)" in line and "429 rate_limit" in line


def test_the_quota_an_answer_reports_is_shown_and_exported(served: ServedGateway, upstream: FakeUpstream) -> None:
    assert accounts_json(config_of(served))["quota#0"]["quota"] is None  # nothing reported yet
    upstream.script(Turn(text="ok", headers={
        "x-ratelimit-limit-requests": "5000", "x-ratelimit-remaining-requests": "4999",
        "x-ratelimit-limit-tokens": "2000000", "x-ratelimit-remaining-tokens": "1990000",
        "x-ratelimit-reset-requests": "12ms", "x-ratelimit-reset-tokens": "1m30s"}))
    started = time.time()
    assert served.exchange(chat("quota-model")).startswith(b"HTTP/1.1 200 ")
    quota = accounts_json(config_of(served))["quota#0"]["quota"]
    assert {key: quota[key] for key in ("requests_left", "requests_limit", "tokens_left", "tokens_limit")} == {
        "requests_left": 4999, "requests_limit": 5000, "tokens_left": 1990000, "tokens_limit": 2000000}
    assert started + 85 < quota["resets_at"] < time.time() + 95  # the tokens' reset: the scarcer pool (99.5% vs 99.98% left)
    line = next(line for line in accounts_cli(config_of(served)).stdout.splitlines() if line.startswith("quota#0 "))
    assert "req 4999/5000, tok 1.99M/2M (resets " in line
    metrics = served.exchange(http("GET", "/metrics", key=None)).decode()
    assert 'crossroute_account_quota_remaining{account="quota#0",kind="requests"} 4999' in metrics
    assert 'crossroute_account_quota_limit{account="quota#0",kind="tokens"} 2000000' in metrics
    assert 'crossroute_account_quota_remaining{account="pair#0"' not in metrics  # its upstream never said


def test_no_secret_is_printed_in_full(served: ServedGateway) -> None:
    outputs = [accounts_cli(config_of(served)), accounts_cli(config_of(served), "--json")]
    for done in outputs:
        for key in PAIR_KEYS + COOL_KEYS + QUOTA_KEYS:
            assert key not in done.stdout and key not in done.stderr
    assert "sk-p...0001" in outputs[0].stdout
    assert {row["secret"] for row in json.loads(outputs[1].stdout)} == {
        "sk-p...0001", "sk-p...0002", "sk-c...0003", "sk-c...0004", "sk-q...0005"}


def test_disable_and_enable_reach_the_running_gateway(served: ServedGateway, upstream: FakeUpstream) -> None:
    wait_for_keys(served, upstream, set(PAIR_KEYS))
    done = accounts_cli(config_of(served), "disable", "pair#0")
    assert (done.returncode, done.stdout) == (0, "pair#0: disabled\n")
    assert accounts_json(config_of(served))["pair#0"]["state"] == "disabled"
    wait_for_keys(served, upstream, {PAIR_KEYS[1]})
    for _ in range(3):  # and it stays so
        since = len(upstream.requests)
        assert served.exchange(chat("pair-model")).startswith(b"HTTP/1.1 200 ")
        assert keys_used(upstream, since) == {PAIR_KEYS[1]}
    done = accounts_cli(config_of(served), "enable", "pair#0")
    assert (done.returncode, done.stdout) == (0, "pair#0: ready\n")
    wait_for_keys(served, upstream, set(PAIR_KEYS))


def test_an_unknown_id_is_one_line_and_status_2(served: ServedGateway) -> None:
    done = accounts_cli(config_of(served), "disable", "pair#9")
    assert (done.returncode, done.stdout, done.stderr) == (
        2, "", "crossroute: no account pair#9 (see crossroute accounts)\n")


def test_without_a_state_file_every_count_is_zero_and_nothing_is_created(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CROSSROUTE_HOME", str(tmp_path / "home"))
    state_dir = tmp_path / "state"
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({
        "state": {"path": str(state_dir / "state.sqlite3"), "auth_dir": str(tmp_path / "auth")},
        "providers": [{"name": "solo", "kind": "openai", "base_url": "http://127.0.0.1:9/v1",
                       "api_keys": ["sk-solo-secret-key-0005"], "models": ["m"]}]}))
    rows = accounts_json(config)
    assert list(rows) == ["solo#0"]
    row = rows["solo#0"]
    assert (row["state"], row["requests"], row["in_flight"], row["input_tokens"], row["last_error"]) == (
        "ready", 0, 0, 0, None)
    assert not state_dir.exists()


def test_auth_dir_files_are_listed_an_expired_login_needs_login_and_a_file_account_can_be_disabled(
        tmp_path: Path) -> None:
    auth = tmp_path / "auth"
    auth.mkdir(mode=0o700)
    files = {"team": {"provider": "solo", "type": "api_key", "api_key": "sk-team-secret-key-0006", "label": "team"},
             "gone": {"provider": "solo", "type": "oauth", "access_token": "at-expired-secret-0007",
                      "expires_at": time.time() - 60},
             "fresh": {"provider": "solo", "type": "oauth", "access_token": "at-expired-secret-0008",
                       "refresh_token": "rt-refresh-secret-0009", "expires_at": time.time() - 60}}
    for name, content in files.items():
        (auth / f"{name}.json").write_text(json.dumps(content))
        (auth / f"{name}.json").chmod(0o600)
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({
        "state": {"path": str(tmp_path / "state" / "state.sqlite3"), "auth_dir": str(auth)},
        "providers": [{"name": "solo", "kind": "openai", "base_url": "http://127.0.0.1:9/v1",
                       "api_keys": ["sk-solo-secret-key-0005"], "models": ["m"]}]}))
    rows = accounts_json(config)
    assert {account_id: row["state"] for account_id, row in rows.items()} == {
        "solo#0": "ready", "fresh": "ready", "gone": "needs_login", "team": "ready"}
    assert "needs login" in next(line for line in accounts_cli(config).stdout.splitlines() if line.startswith("gone "))
    done = accounts_cli(config, "disable", "team")
    assert (done.returncode, done.stdout) == (0, "team: disabled\n")
    assert json.loads((auth / "team.json").read_text())["disabled"] is True
    assert accounts_json(config)["team"]["state"] == "disabled"
    every_output = accounts_cli(config).stdout + accounts_cli(config, "--json").stdout
    assert not any(secret in every_output for secret in (
        "sk-team-secret-key-0006", "at-expired-secret-0007", "rt-refresh-secret-0009"))


def test_a_cooldown_ending_another_day_shows_its_date() -> None:
    account = Account("a#0", "a", "a key", ApiKey("sk-some-long-secret-0010"))
    now = datetime(2026, 12, 5, 22, 0, 0).timestamp()
    for until, shown in ((now + 3600, "23:00:00"), (now + 86400, "2026-12-06 22:00:00")):
        view = replace(NO_STATE, cooling_until=until, reason="quota_exhausted")
        assert report.rows([account], {"a#0": view}, now)[0].describe_state(now) == f"cooling until {shown} (quota)"
    assert report.rows([account], {"a#0": replace(NO_STATE, cooling_until=now - 1)}, now)[0].state == "ready"

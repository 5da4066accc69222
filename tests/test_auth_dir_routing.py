"""Accounts in the auth dir take requests beside the config's keys, and a file
added, edited or removed changes the routing of a running gateway."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx2 as httpx
import orjson
import pytest

from crossroute.accounts.files import write_atomic
from tests.conftest import CLIENT_KEY
from tests.fakes import FakeUpstream
from tests.gateway_runner import RunningGateway

WAIT = 15.0  # generous: the watcher applies a change within about 2 s


@pytest.fixture
def open_fake() -> Iterator[FakeUpstream]:
    with FakeUpstream(api_key=None) as upstream:  # any key: the test reads which one came
        yield upstream


@pytest.fixture
def auth_dir(tmp_path: Path) -> Path:
    return tmp_path / "auth"


@pytest.fixture
def gateway(open_fake: FakeUpstream, auth_dir: Path, tmp_path: Path) -> Iterator[RunningGateway]:
    config = {"server": {"api_keys": [CLIENT_KEY]}, "state": {"auth_dir": str(auth_dir)},
              "providers": [{"name": "up", "kind": "openai", "base_url": f"{open_fake.url}/v1",
                             "api_keys": ["key-from-config"], "models": ["m"]}]}
    with RunningGateway(config, tmp_path / "state.sqlite3") as running:
        yield running


def ask(gateway: RunningGateway) -> None:
    answer = httpx.post(f"{gateway.url}/v1/chat/completions", json={"model": "m", "messages": [
        {"role": "user", "content": "hi"}]}, headers={"authorization": f"Bearer {CLIENT_KEY}"}, timeout=10)
    assert answer.status_code == 200, answer.text


def keys_used(fake: FakeUpstream, asks: int, gateway: RunningGateway) -> list[str]:
    fake.requests.clear()
    for _ in range(asks):
        ask(gateway)
    return [r.headers["authorization"].removeprefix("Bearer ") for r in fake.requests]


def until(check: Callable[[], bool]) -> bool:
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.2)
    return False


def account_file(auth_dir: Path, name: str, **fields: object) -> Path:
    path = auth_dir / f"{name}.json"
    write_atomic(path, orjson.dumps({"provider": "up", "type": "api_key", **fields}))
    return path


def test_a_file_account_joins_the_rotation_and_leaves_it(gateway: RunningGateway, open_fake: FakeUpstream,
                                                         auth_dir: Path) -> None:
    assert set(keys_used(open_fake, 3, gateway)) == {"key-from-config"}
    path = account_file(auth_dir, "work", api_key="key-from-file", label="work")
    assert until(lambda: set(keys_used(open_fake, 4, gateway)) == {"key-from-config", "key-from-file"})
    path.unlink()
    assert until(lambda: set(keys_used(open_fake, 4, gateway)) == {"key-from-config"})


def test_a_file_accounts_headers_go_upstream_and_disabled_ones_rest(gateway: RunningGateway, open_fake: FakeUpstream,
                                                                   auth_dir: Path) -> None:
    account_file(auth_dir, "team", api_key="key-team", headers={"x-team": "blue"})
    assert until(lambda: "key-team" in keys_used(open_fake, 4, gateway))
    team = [r for r in open_fake.requests if r.headers["authorization"] == "Bearer key-team"]
    assert all(r.headers.get("x-team") == "blue" for r in team)
    others = [r for r in open_fake.requests if r.headers["authorization"] != "Bearer key-team"]
    assert all("x-team" not in r.headers for r in others)
    account_file(auth_dir, "team", api_key="key-team", headers={"x-team": "blue"}, disabled=True)
    assert until(lambda: set(keys_used(open_fake, 4, gateway)) == {"key-from-config"})


def test_a_malformed_file_changes_nothing_else(gateway: RunningGateway, open_fake: FakeUpstream,
                                              auth_dir: Path) -> None:
    account_file(auth_dir, "good", api_key="key-good")
    assert until(lambda: "key-good" in keys_used(open_fake, 4, gateway))
    (auth_dir / "broken.json").write_text('{"provider": "up", "type": "api_key", "api_key": ')
    time.sleep(3)  # past the watcher's debounce: the broken file has been read
    assert set(keys_used(open_fake, 4, gateway)) == {"key-from-config", "key-good"}

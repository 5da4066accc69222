"""A login provider's live model list (Kimi's GET /coding/v1/models, on the fake): fetched with an
account's token and device headers, served by every format's model-list route and routable by
name, refreshed after `models_refresh`, kept (or the built-in list) while the API fails with one
log line per streak, cached in the state dir for a restart, narrowed by `models:` and filtered by
`excluded_models`."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from crossroute.kinds import LOGIN_KINDS
from tests.fakes.oauth_device import FakeKimi
from tests.gateway_runner import RunningGateway
from tests.login_kimi import CLIENT_KEY, bearer, cli, kimi_config, seed_account, served

HEADERS = {"authorization": f"Bearer {CLIENT_KEY}"}
BUILT_IN = set(LOGIN_KINDS["kimi"].models)
LIVE = ["kimi-for-coding", "kimi-k3", "kimi-k3-256k"]


@pytest.fixture
def kimi() -> Iterator[FakeKimi]:
    with FakeKimi() as fake:
        fake.models = list(LIVE)
        yield fake


def config_for(tmp: Path, fake: FakeKimi, **provider: Any) -> dict[str, Any]:
    config = kimi_config(tmp, fake)
    config["providers"][0].update(provider)
    return config


def listed(url: str, style: str = "openai") -> set[str]:
    """The model names a client sees, asked as that client's SDK asks."""
    if style == "gemini":
        answer = httpx.get(f"{url}/v1beta/models", headers={"x-goog-api-key": CLIENT_KEY}, timeout=10).json()
        return {item["name"].removeprefix("models/") for item in answer["models"]}
    headers = {**HEADERS, "anthropic-version": "2023-06-01"} if style == "anthropic" else HEADERS
    answer = httpx.get(f"{url}/v1/models", headers=headers, timeout=10).json()
    return {item["id"] for item in answer["data"]}


def eventually(check: Callable[[], bool], seconds: float = 15.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "the condition did not hold in time"
        time.sleep(0.05)


def test_the_live_list_is_served_by_every_format_and_routable(tmp_path: Path, kimi: FakeKimi) -> None:
    account = seed_account(tmp_path / "auth", kimi, "main")
    with RunningGateway(kimi_config(tmp_path, kimi), tmp_path / "state.sqlite3") as gateway:
        eventually(lambda: "kimi-k3" in listed(gateway.url))
        for style in ("openai", "anthropic", "gemini"):
            assert {"kimi-for-coding", "kimi-k3", "kimi-k3-256k", "kimi/kimi-k3"} <= listed(gateway.url, style)
            assert "kimi-for-coding-highspeed" not in listed(gateway.url, style)  # built in, but not live
        answer = httpx.post(f"{gateway.url}/v1/chat/completions", headers=HEADERS, timeout=30,
                            json={"model": "kimi-k3", "messages": [{"role": "user", "content": "hi"}]})
    assert answer.status_code == 200
    assert kimi.requests[-1].body["model"] == "kimi-k3"
    fetch = kimi.model_lists[0]
    assert bearer(fetch) == account.secret
    assert fetch.headers["x-msh-device-id"] == "device-main"
    cached = tmp_path / "models-kimi.json"
    assert cached.stat().st_mode & 0o777 == 0o600
    assert "kimi-k3" in cached.read_text() and account.secret not in cached.read_text()


def test_the_list_is_fetched_again_after_models_refresh(tmp_path: Path, kimi: FakeKimi) -> None:
    seed_account(tmp_path / "auth", kimi, "main")
    config = config_for(tmp_path, kimi, models_refresh=0.5)
    with RunningGateway(config, tmp_path / "state.sqlite3") as gateway:
        eventually(lambda: "kimi-k3" in listed(gateway.url))
        kimi.models = ["kimi-for-coding", "kimi-k4"]
        eventually(lambda: "kimi-k4" in listed(gateway.url))
        assert "kimi-k3" not in listed(gateway.url)
    assert "kimi-k4" in (tmp_path / "models-kimi.json").read_text()


def test_without_a_list_yet_the_built_in_one_is_served_and_the_failure_logged_once(
        tmp_path: Path, kimi: FakeKimi, caplog: pytest.LogCaptureFixture) -> None:
    account = seed_account(tmp_path / "auth", kimi, "main")
    kimi.models_outage = 503
    caplog.set_level(logging.DEBUG, logger="crossroute")
    with RunningGateway(config_for(tmp_path, kimi, models_refresh=0.2), tmp_path / "state.sqlite3") as gateway:
        eventually(lambda: kimi.model_list_calls >= 4)  # a streak of failures
        assert listed(gateway.url) == BUILT_IN | {f"kimi/{name}" for name in BUILT_IN}
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING and "model list" in r.getMessage()]
    assert len(warnings) == 1, warnings
    assert "HTTP 503" in warnings[0] and "built-in" in warnings[0]
    assert not any(secret in caplog.text for secret in (account.secret, kimi.oauth.issued[1]))


def test_a_failing_api_keeps_the_last_list_then_recovers(tmp_path: Path, kimi: FakeKimi,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    seed_account(tmp_path / "auth", kimi, "main")
    caplog.set_level(logging.INFO, logger="crossroute")
    with RunningGateway(config_for(tmp_path, kimi, models_refresh=0.2), tmp_path / "state.sqlite3") as gateway:
        eventually(lambda: "kimi-k3" in listed(gateway.url))
        kimi.models_outage = 500
        calls = kimi.model_list_calls
        eventually(lambda: kimi.model_list_calls >= calls + 3)
        assert "kimi-k3" in listed(gateway.url)
        kimi.models_outage = None
        kimi.models = ["kimi-k4"]
        eventually(lambda: "kimi-k4" in listed(gateway.url))
    failures = [r for r in caplog.records if r.levelno >= logging.WARNING and "model list" in r.getMessage()]
    assert len(failures) == 1 and "last fetched list" in failures[0].getMessage()


def test_a_restart_serves_the_cached_list_before_any_fetch(tmp_path: Path, kimi: FakeKimi) -> None:
    seed_account(tmp_path / "auth", kimi, "main")
    with RunningGateway(kimi_config(tmp_path, kimi), tmp_path / "state.sqlite3") as gateway:
        eventually(lambda: "kimi-k3" in listed(gateway.url))
    kimi.models_outage = 503  # the restarted gateway cannot fetch: what it serves comes from the cache file
    with RunningGateway(kimi_config(tmp_path, kimi), tmp_path / "state.sqlite3") as gateway:
        assert "kimi-k3" in listed(gateway.url)
    assert len(kimi.model_lists) == 1  # the first gateway's list was still fresh: no second fetch


def test_configured_models_win_over_the_live_list(tmp_path: Path, kimi: FakeKimi) -> None:
    seed_account(tmp_path / "auth", kimi, "main")
    config = config_for(tmp_path, kimi, models_refresh=0.2,
                        models=["kimi-for-coding", {"name": "kimi-k3", "alias": "big"}])
    with RunningGateway(config, tmp_path / "state.sqlite3") as gateway:
        time.sleep(1.0)  # five refresh intervals: a live list would have been fetched by now
        assert listed(gateway.url) == {"kimi-for-coding", "kimi-k3", "big", "kimi/kimi-for-coding", "kimi/kimi-k3"}
        answer = httpx.post(f"{gateway.url}/v1/chat/completions", headers=HEADERS, timeout=30,
                            json={"model": "big", "messages": [{"role": "user", "content": "hi"}]})
    assert answer.status_code == 200 and kimi.requests[-1].body["model"] == "kimi-k3"
    assert kimi.model_list_calls == 0


def test_excluded_models_hide_live_ones(tmp_path: Path, kimi: FakeKimi) -> None:
    seed_account(tmp_path / "auth", kimi, "main")
    config = config_for(tmp_path, kimi, excluded_models=["*-256k"])
    with RunningGateway(config, tmp_path / "state.sqlite3") as gateway:
        eventually(lambda: "kimi-k3" in listed(gateway.url))
        assert not {"kimi-k3-256k", "kimi/kimi-k3-256k"} & listed(gateway.url)
        answer = httpx.post(f"{gateway.url}/v1/chat/completions", headers=HEADERS, timeout=30,
                            json={"model": "kimi-k3-256k", "messages": [{"role": "user", "content": "hi"}]})
    assert answer.status_code == 404
    assert all(recorded.body["model"] != "kimi-k3-256k" for recorded in kimi.requests)


def test_model_ids_that_could_steer_a_url_are_dropped(tmp_path: Path, kimi: FakeKimi) -> None:
    seed_account(tmp_path / "auth", kimi, "main")
    kimi.models = ["kimi-k3", "../admin", "a b", "x?y=1"]
    with RunningGateway(kimi_config(tmp_path, kimi), tmp_path / "state.sqlite3") as gateway:
        eventually(lambda: "kimi-k3" in listed(gateway.url))
        assert listed(gateway.url) == {"kimi-k3", "kimi/kimi-k3"}


def test_two_workers_fetch_once_and_crossroute_models_shows_the_cached_list(tmp_path: Path, kimi: FakeKimi) -> None:
    seed_account(tmp_path / "auth", kimi, "main")
    config = kimi_config(tmp_path, kimi)
    url = f"http://127.0.0.1:{config['server']['port']}"
    with served(tmp_path, config, "--workers", "2"):
        # new connections land on either worker; each must serve the live list
        eventually(lambda: all("kimi-k3" in listed(url) for _ in range(10)))
    assert kimi.model_list_calls == 1  # the second worker found the first one's list under the lock
    shown = cli("models", "--config", str(tmp_path / "config.yaml"))
    assert shown.returncode == 0
    assert "kimi/kimi-k3  [kimi]" in shown.stdout and "highspeed" not in shown.stdout

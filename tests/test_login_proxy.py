"""Control-plane calls (the login, the refresh, the live model list) go through the provider's
proxy as the data plane does: providers[].proxy (with its credentials), else HTTPS_PROXY /
HTTP_PROXY, loopback always direct. The fake Kimi is named UPSTREAM_HOST, which only the test
proxy resolves, so a call that reaches it went through the proxy."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from tests.fakes.oauth_device import FakeKimi
from tests.gateway_runner import RunningGateway
from tests.login_kimi import CLIENT_KEY, MODEL, cli, kimi_config, seed_account, write_config
from tests.test_login_models import eventually, listed
from tests.test_proxy import ForwardProxy, proxy, strict_proxy, via_name

__all__ = ["proxy", "strict_proxy"]  # the fixtures, used by name

HEADERS = {"authorization": f"Bearer {CLIENT_KEY}"}


@pytest.fixture
def kimi() -> Any:
    with FakeKimi() as fake:
        fake.models = ["kimi-for-coding", "kimi-k3"]
        yield fake


def named_config(tmp: Path, fake: FakeKimi, **provider: Any) -> dict[str, Any]:
    """The fake reached by a name only the proxy knows."""
    config = kimi_config(tmp, fake)
    config["providers"][0].update(base_url=via_name(fake.base_url), auth_url=via_name(fake.url), **provider)
    return config


def targets(proxy: ForwardProxy) -> list[str]:
    return [target for _, target, _ in proxy.seen]


def chat(url: str) -> httpx.Response:
    return httpx.post(f"{url}/v1/chat/completions", headers=HEADERS, timeout=30,
                      json={"model": MODEL, "messages": [{"role": "user", "content": "hi"}]})


def test_a_refresh_and_the_model_list_go_through_the_configured_proxy(
        tmp_path: Path, kimi: FakeKimi, strict_proxy: ForwardProxy) -> None:
    seed_account(tmp_path / "auth", kimi, "main", lifetime=60)  # within Kimi's 5-minute lead: refreshed first
    user, port = "us%40er:p%3Ass", strict_proxy.port
    config = named_config(tmp_path, kimi, proxy=f"http://{user}@127.0.0.1:{port}")
    with RunningGateway(config, tmp_path / "state.sqlite3") as gateway:
        assert chat(gateway.url).status_code == 200
        eventually(lambda: "kimi-k3" in listed(gateway.url))
    assert kimi.oauth.refresh_calls == 1
    token_url = f"{via_name(kimi.url)}/api/oauth/token"
    assert token_url in targets(strict_proxy)
    assert f"{via_name(kimi.base_url)}/models" in targets(strict_proxy)
    assert all(auth == strict_proxy.expected for _, _, auth in strict_proxy.seen)


def test_the_environment_proxy_carries_a_refresh_to_a_named_host(
        tmp_path: Path, kimi: FakeKimi, proxy: ForwardProxy, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    seed_account(tmp_path / "auth", kimi, "main", lifetime=60)
    with RunningGateway(named_config(tmp_path, kimi), tmp_path / "state.sqlite3") as gateway:
        assert chat(gateway.url).status_code == 200
    assert f"{via_name(kimi.url)}/api/oauth/token" in targets(proxy)


def test_loopback_and_proxy_direct_bypass_the_environment_proxy(
        tmp_path: Path, kimi: FakeKimi, proxy: ForwardProxy, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    seed_account(tmp_path / "auth", kimi, "main", lifetime=60)
    with RunningGateway(kimi_config(tmp_path, kimi), tmp_path / "state.sqlite3") as gateway:
        assert chat(gateway.url).status_code == 200  # 127.0.0.1: straight there
        eventually(lambda: "kimi-k3" in listed(gateway.url))
    assert kimi.oauth.refresh_calls == 1 and kimi.model_lists
    assert not [target for target in targets(proxy) if target.startswith(kimi.url)]  # (the test client may use it)


def test_crossroute_login_goes_through_the_configured_proxy(tmp_path: Path, kimi: FakeKimi,
                                                            proxy: ForwardProxy) -> None:
    config = write_config(tmp_path, named_config(tmp_path, kimi, proxy=proxy.url))
    done = cli("login", "kimi", "--config", str(config), "--no-browser")
    assert done.returncode == 0, done.stderr
    assert f"{via_name(kimi.url)}/api/oauth/device_authorization" in targets(proxy)
    assert f"{via_name(kimi.url)}/api/oauth/token" in targets(proxy)
    account = json.loads(next((tmp_path / "auth").glob("*.json")).read_text())
    assert account["provider"] == "kimi"

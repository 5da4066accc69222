"""Qwen logins serving requests through the real gateway against FakeQwen: each
client format reaching DashScope at the account's resource_url with its token,
the DashScope headers and the output cap; refresh ahead of expiry and after a
401 with the rotated refresh token persisted; one refresh across two workers
and another process; a refused refresh (`needs login`, the next account
serves); the free tier's quota refusal resting the account until midnight in
Beijing, the next account serving, and the account back after the reset; the
paid DashScope API-key preset; no token in any output."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from crossroute import ir
from crossroute.accounts.model import Account
from crossroute.config import parse_config
from crossroute.oauth.command import save_login
from crossroute.oauth.qwen import QwenLogin
from crossroute.providers import ADAPTATIONS, provider_class
from crossroute.providers.qwen import QwenProvider, seconds_until_quota_reset
from crossroute.routing.cooldown import reason_for
from tests.fakes.login import Identity
from tests.fakes.qwen import FakeQwen
from tests.gateway_runner import RunningGateway, free_port
from tests.login_kimi import (
    CLIENT_KEY,
    REFRESH_SCRIPT,
    bearer,
    cli,
    digest,
    file_of,
    refresh_race,
    write_config,
)
from tests.test_login_qwen import qwen_config

HEADERS = {"authorization": f"Bearer {CLIENT_KEY}"}
MODEL = "coder-model"
OVER = 100_000  # above every model's output cap
# One request per client format, each asking for more output tokens than the model allows.
REQUESTS: dict[str, tuple[str, dict[str, Any]]] = {
    "openai-chat": ("/v1/chat/completions", {"model": MODEL, "max_tokens": OVER,
                                             "messages": [{"role": "user", "content": "hi"}]}),
    "openai-responses": ("/v1/responses", {"model": MODEL, "input": "hi", "store": False,
                                           "max_output_tokens": OVER}),
    "anthropic": ("/v1/messages", {"model": MODEL, "max_tokens": OVER, "messages": [{"role": "user",
                                                                                     "content": "hi"}]}),
    "gemini": (f"/v1beta/models/{MODEL}:generateContent", {"contents": [{"role": "user", "parts": [{"text": "hi"}]}],
                                                           "generationConfig": {"maxOutputTokens": OVER}}),
}
WORK, HOME = Identity(account_id="qwen-work"), Identity(account_id="qwen-home")


@pytest.fixture
def qwen() -> Iterator[FakeQwen]:
    with FakeQwen() as fake:
        yield fake


def seed(auth_dir: Path, fake: FakeQwen, label: str, identity: Identity | None = None, **options: Any) -> Account:
    """An account file holding a live login from the fake (as a finished `crossroute login qwen` leaves it)."""
    token = QwenLogin().token_from_answer(fake.issue_tokens(identity))
    account = save_login(auth_dir, "qwen", label, token)
    if options:
        path = Path(account.source)
        path.write_text(json.dumps({**json.loads(path.read_text()), **options}))
    return account


def chat(url: str, fmt: str = "openai-chat", model: str = MODEL, **extra: Any) -> httpx.Response:
    path, body = REQUESTS[fmt]
    body = {**body, **extra}
    if fmt == "gemini":
        path = path.replace(MODEL, model)
    else:
        body["model"] = model
    return httpx.post(f"{url}{path}", json=body, headers=HEADERS, timeout=30)


def tokens_in_play(fake: FakeQwen, *files: dict[str, Any]) -> set[str]:
    """The refresh tokens the fake issued, the bearers DashScope saw, and the tokens of account files."""
    tokens = {token for grant in fake.grants.all() for token in (grant.current, *grant.used)}
    tokens |= {bearer(seen) for seen in fake.chat_requests()}
    return tokens | {data[name] for data in files for name in ("access_token", "refresh_token")}


def test_each_client_format_reaches_dashscope_at_the_resource_url_with_headers_and_the_cap(
        qwen: FakeQwen, tmp_path: Path) -> None:
    token = file_of(seed(tmp_path / "auth", qwen, "work"))["access_token"]
    with RunningGateway(qwen_config(tmp_path, qwen), tmp_path / "state.sqlite3") as gateway:
        for fmt in REQUESTS:
            answer = chat(gateway.url, fmt)
            assert answer.status_code == 200, (fmt, answer.text)
            seen = qwen.chat_requests()[-1]
            assert seen.path == "/v1/chat/completions" and seen.body["model"] == MODEL, fmt
            assert bearer(seen) == token and seen.headers["x-dashscope-authtype"] == "qwen-oauth"
            assert seen.headers["x-dashscope-cachecontrol"] == "enable"
            assert seen.headers["user-agent"].startswith("crossroute/")
            assert seen.headers["x-dashscope-useragent"].startswith("crossroute/")
            assert seen.body["max_tokens"] == 65536, fmt  # capped (DashScope refuses more)
        assert chat(gateway.url, model="vision-model", max_tokens=9000).status_code == 200
        assert qwen.chat_requests()[-1].body["max_tokens"] == 8192
        streamed = httpx.post(f"{gateway.url}/v1/chat/completions", headers=HEADERS, timeout=30, json={
            "model": MODEL, "stream": True, "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]})
        assert streamed.status_code == 200 and "[DONE]" in streamed.text
        assert qwen.chat_requests()[-1].body["stream_options"]["include_usage"] is True
        models = httpx.get(f"{gateway.url}/v1/models", headers=HEADERS, timeout=10).json()
    assert {"coder-model", "qwen3-coder-plus", "qwen3-coder-flash", "vision-model"} <= {m["id"] for m in
                                                                                          models["data"]}
    assert qwen.counters.refresh_calls == 0


def test_a_bare_host_resource_url_is_normalised_and_a_configured_base_url_wins(tmp_path: Path) -> None:
    provider = QwenProvider(parse_config("providers: [{name: qwen, kind: qwen}]").providers[0])
    with FakeQwen(resource_url="portal.qwen.ai") as fake:
        token = QwenLogin().token_from_answer(fake.issue_tokens())
    account = Account("a", "qwen", "a", token, source=str(tmp_path / "a.json"))
    assert provider.url_for(account, MODEL, False) == "https://portal.qwen.ai/v1/chat/completions"
    assert provider.models_request(token) is None  # no live list: the built-in one serves

    with FakeQwen() as qwen:
        seed(tmp_path / "auth", qwen, "work")
        config = qwen_config(tmp_path, qwen, base_url=f"{qwen.url}/compatible-mode/v1")
        with RunningGateway(config, tmp_path / "state.sqlite3") as gateway:
            assert chat(gateway.url).status_code == 200
        assert qwen.chat_requests()[-1].path == "/compatible-mode/v1/chat/completions"


def test_a_token_is_refreshed_ahead_of_expiry_and_the_rotated_refresh_token_is_kept(tmp_path: Path) -> None:
    with FakeQwen(access_ttl=600) as qwen:  # inside Qwen's 20-minute lead
        account = seed(tmp_path / "auth", qwen, "work")
        old = file_of(account)
        qwen.access_ttl = 21600
        with RunningGateway(qwen_config(tmp_path, qwen), tmp_path / "state.sqlite3") as gateway:
            assert chat(gateway.url).status_code == 200
            assert chat(gateway.url, "anthropic").status_code == 200
        new = file_of(account)
        assert qwen.counters.refresh_calls == 1
        assert new["access_token"] != old["access_token"] and new["refresh_token"] != old["refresh_token"]
        assert new["resource_url"] == qwen.url and new["expires_at"] > time.time() + 20000
        assert {bearer(seen) for seen in qwen.chat_requests()} == {new["access_token"]}
        stale = httpx.post(f"{qwen.url}/api/v1/oauth2/token", timeout=10, data={
            "grant_type": "refresh_token", "client_id": "f0304373b74a44d2b584a3fb70ca9e56",
            "refresh_token": old["refresh_token"]})
        assert stale.status_code == 400  # rotated: only the persisted one is good


def test_a_401_refreshes_once_and_the_request_is_retried(qwen: FakeQwen, tmp_path: Path) -> None:
    account = seed(tmp_path / "auth", qwen, "work")
    old = file_of(account)
    qwen.expire_access_tokens()  # the server drops it before its announced expiry
    with RunningGateway(qwen_config(tmp_path, qwen), tmp_path / "state.sqlite3") as gateway:
        answer = chat(gateway.url, "gemini")
        assert answer.status_code == 200, answer.text
    first, second = qwen.chat_requests()
    assert bearer(first) == old["access_token"] and qwen.counters.refresh_calls == 1
    new = file_of(account)
    assert bearer(second) == new["access_token"] != old["access_token"]
    assert new["refresh_token"] != old["refresh_token"] and new["resource_url"] == qwen.url


def test_two_workers_and_another_process_refresh_an_account_exactly_once(tmp_path: Path) -> None:
    with FakeQwen(access_ttl=600) as qwen:
        account = seed(tmp_path / "auth", qwen, "shared")
        before = file_of(account)
        qwen.access_ttl, qwen.refresh_delay = 21600, 2.5  # every asker arrives while the first refresh is in flight
        config = {**qwen_config(tmp_path, qwen), "server": {"api_keys": [CLIENT_KEY], "port": free_port()}}
        race = refresh_race(tmp_path, config, account, chat)
        assert race.answers == [200] * 6 and race.returncode == 0
        assert qwen.counters.refresh_calls == 1
        new = file_of(account)["access_token"]
        assert race.printed.strip() == digest(new)
        assert {bearer(seen) for seen in qwen.chat_requests()} == {new}
        assert "token refreshed" in race.logs
        shown = race.logs + race.metrics + race.printed
        assert not [token for token in tokens_in_play(qwen, before, file_of(account)) if token in shown]


def test_a_kill_during_a_refresh_leaves_a_whole_file_whose_access_token_serves(tmp_path: Path) -> None:
    with FakeQwen(access_ttl=600) as qwen:
        account = seed(tmp_path / "auth", qwen, "work")
        before = file_of(account)
        path = write_config(tmp_path, qwen_config(tmp_path, qwen))
        qwen.refresh_delay = 60  # the server has rotated the token; the answer never reaches the killed client
        refresher = subprocess.Popen([sys.executable, "-c", REFRESH_SCRIPT, str(path), account.id],
                                     stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while qwen.counters.refresh_calls == 0:
            assert time.monotonic() < deadline and refresher.poll() is None
            time.sleep(0.05)
        os.kill(refresher.pid, signal.SIGKILL)
        refresher.wait(10)
        assert file_of(account) == before  # the old file, whole
        assert sorted(p.name for p in (tmp_path / "auth").iterdir()) == [".locks", Path(account.source).name]
        answer = httpx.post(f"{qwen.url}/v1/chat/completions", timeout=10, json={
            "model": MODEL, "messages": [{"role": "user", "content": "hi"}]}, headers={
            "authorization": f"Bearer {before['access_token']}", "x-dashscope-authtype": "qwen-oauth"})
        assert answer.status_code == 200  # its access token serves until it expires


def test_a_refused_refresh_marks_needs_login_and_the_next_account_serves(qwen: FakeQwen, tmp_path: Path) -> None:
    auth = tmp_path / "auth"
    dead = seed(auth, qwen, "first", WORK, priority=0, refresh_token="qrt_revoked", expires_at=time.time() + 60)
    spare = seed(auth, qwen, "second", HOME, priority=1)
    config = {**qwen_config(tmp_path, qwen), "routing": {"strategy": "fill-first"}}
    with RunningGateway(config, tmp_path / "state.sqlite3") as gateway:
        for fmt in ("openai-chat", "anthropic", "openai-chat"):
            answer = chat(gateway.url, fmt)
            assert answer.status_code == 200, answer.text
            assert bearer(qwen.chat_requests()[-1]) == file_of(spare)["access_token"]
    assert qwen.counters.refresh_calls == 1  # one try, then never again
    assert "invalid_grant" in file_of(dead)["needs_login"]
    listed = cli("accounts", "--config", str(write_config(tmp_path, config)))
    row = next(line for line in listed.stdout.splitlines() if line.startswith(dead.id))
    assert "needs login: run crossroute login qwen --label first" in row
    shown = listed.stdout + listed.stderr
    assert not [token for token in tokens_in_play(qwen, file_of(dead), file_of(spare)) if token in shown]


@pytest.mark.parametrize("status", [429, 403])
def test_a_quota_refusal_rests_the_account_until_midnight_in_beijing_and_the_next_serves(
        status: int, tmp_path: Path) -> None:
    with FakeQwen(daily_limit=1, quota_status=status, access_ttl=5 * 86400) as qwen:
        auth = tmp_path / "auth"
        first = seed(auth, qwen, "first", WORK, priority=0)
        second = seed(auth, qwen, "second", HOME, priority=1)
        token_of = {file_of(a)["access_token"]: a.label for a in (first, second)}
        config = {**qwen_config(tmp_path, qwen), "routing": {"strategy": "fill-first"}}
        with RunningGateway(config, tmp_path / "state.sqlite3") as gateway:
            assert chat(gateway.url).status_code == 200  # first spends its day
            switched = chat(gateway.url, "anthropic")  # first: quota; second serves
            assert switched.status_code == 200, switched.text
            labels = [token_of[bearer(seen)] for seen in qwen.chat_requests()]
            assert labels == ["first", "first", "second"]
            view = gateway.app.account_state.view(first.id)
            assert view.reason == "quota_exhausted"  # not a rate limit
            assert view.cooling_until == pytest.approx(qwen.next_quota_reset(), abs=5)

            refused = chat(gateway.url)  # second's day is spent too: the refusal reaches the client
            assert refused.status_code == status and refused.json()["error"]["code"] == "insufficient_quota"
            resting = chat(gateway.url, "gemini")  # every account rests: the answer comes at once
            assert resting.status_code == 429 and resting.json()["error"]["status"] == "RESOURCE_EXHAUSTED"
            assert abs(int(resting.headers["retry-after"]) - (qwen.next_quota_reset() - time.time())) < 5
            assert len(qwen.chat_requests()) == 4  # resting accounts are not called

            later = qwen.next_quota_reset() - time.time() + 60
            qwen.advance(later)  # past midnight in Beijing: the quota is back upstream ...
            gateway.app.router.clock = lambda: time.time() + later  # ... and for the gateway
            back = chat(gateway.url)
            assert back.status_code == 200, back.text
            assert token_of[bearer(qwen.chat_requests()[-1])] == "first"


def test_quota_refusals_are_read_as_such_with_the_answers_reset_time_first() -> None:
    provider = QwenProvider(parse_config("providers: [{name: qwen, kind: qwen}]").providers[0])
    worded = ir.GatewayError(403, "Free allocated quota exceeded.")
    provider.upstream_error(worded, b"")
    assert (worded.kind, worded.code, reason_for(worded)) == ("billing", "insufficient_quota", "quota_exhausted")
    assert worded.retry_after == pytest.approx(seconds_until_quota_reset(time.time()), abs=2)
    timed = ir.GatewayError(429, "quota", code="quota_exceeded", retry_after=120.0)
    provider.upstream_error(timed, b"")
    assert timed.retry_after == 120.0 and reason_for(timed) == "quota_exhausted"
    limited = ir.GatewayError(429, "Requests rate limit exceeded", code="rate_limit_exceeded")
    provider.upstream_error(limited, b"")
    assert limited.retry_after is None and reason_for(limited) == "rate_limited"
    # 2026-12-05 15:59:00 UTC is 23:59 in Beijing: a minute to the reset
    assert seconds_until_quota_reset(1796486340.0) == 60.0


@pytest.mark.parametrize("name,preset", [("ds", "dashscope"), ("dashscope", None)])
def test_the_dashscope_preset_sends_the_headers_and_the_cap_with_an_api_key(name: str, preset: str | None,
                                                                          tmp_path: Path) -> None:
    with FakeQwen(api_keys=["sk-dash"]) as qwen:
        entry: dict[str, Any] = {"name": name, "kind": "openai", "api_keys": ["sk-dash"],
                                 "base_url": f"{qwen.url}/compatible-mode/v1"}
        if preset:
            entry["preset"] = preset
        config = {"server": {"api_keys": [CLIENT_KEY]}, "providers": [entry]}
        assert provider_class(parse_config(json.dumps(config)).providers[0]) is ADAPTATIONS["dashscope"]
        with RunningGateway(config, tmp_path / "state.sqlite3") as gateway:
            for fmt in ("openai-chat", "anthropic"):
                answer = chat(gateway.url, fmt, model="qwen3-coder-plus")
                assert answer.status_code == 200, answer.text
                seen = qwen.chat_requests()[-1]
                assert seen.path == "/compatible-mode/v1/chat/completions" and bearer(seen) == "sk-dash"
                assert "x-dashscope-authtype" not in seen.headers  # an API key, not a login
                assert seen.headers["x-dashscope-cachecontrol"] == "enable"
                assert seen.headers["user-agent"].startswith("crossroute/")
                assert seen.body["max_tokens"] == 65536
    defaults = parse_config("providers: [{name: ds, kind: openai, preset: dashscope, api_keys: [k]}]").providers[0]
    assert defaults.base_url == "https://dashscope.aliyuncs.com/compatible-mode/v1"
    plain = parse_config("providers: [{name: o, kind: openai, api_keys: [k]}]").providers[0]
    assert provider_class(plain).__name__ == "OpenAICompatProvider"

"""A login's tokens stay out of what a user or a log sees: an upstream error that echoes the
request's Authorization header, the token, a refresh token or a JWT reaches the client scrubbed;
an OAuth server that puts the refresh token into its refusal does not get it into the account
file's `needs_login`, the log, the client's error or `crossroute accounts`; /metrics and
`accounts` (table and --json) show masks only; a loose auth dir or account file is reported."""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from aiohttp import web

from crossroute.accounts.model import Account, OAuthToken
from tests.fakes.oauth_device import FakeKimi
from tests.fakes.threaded import ThreadedApp
from tests.gateway_runner import RunningGateway
from tests.login_kimi import CLIENT_KEY, MODEL, cli, kimi_config, seed_account, write_config

HEADERS = {"authorization": f"Bearer {CLIENT_KEY}"}
JWT = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1c2VyLTEiLCJlbWFpbCI6InVAZXhhbXBsZS5jb20ifQ.c2lnbmF0dXJlLWJ5dGVz"


class Echo(ThreadedApp):
    """An API and an OAuth server that put what they were sent (and a token they know) into their errors."""

    thread_name = "fake-echo"

    def __init__(self) -> None:
        super().__init__()
        self.leak = ""  # a secret the server "knows" and names in its errors
        self.start()

    def build_app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/coding/v1/chat/completions", self._api)
        app.router.add_post("/api/oauth/token", self._token)
        app.router.add_post("/api/oauth/device_authorization", self._device)
        return app

    async def _api(self, request: web.Request) -> web.StreamResponse:
        sent = request.headers.get("Authorization", "")
        message = (f"rejected credentials {sent}; token {sent.removeprefix('Bearer ')} is not allowed; "
                   f"refresh token {self.leak} is on file; id_token {JWT}")
        error = {"error": {"message": message, "type": "invalid_request_error", "code": "bad_credentials"}}
        if not (await request.json()).get("stream_midway"):
            return web.json_response(error, status=400)
        stream = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await stream.prepare(request)
        first = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": MODEL,
                 "choices": [{"index": 0, "delta": {"role": "assistant", "content": "hi"}, "finish_reason": None}]}
        await stream.write(b"data: " + json.dumps(first).encode() + b"\n\n")
        await asyncio.sleep(0.2)  # the error comes later, in a read of its own (as the gateway expects)
        await stream.write(b"data: " + json.dumps(error).encode() + b"\n\n")
        await stream.write_eof()
        return stream

    async def _device(self, request: web.Request) -> web.Response:
        return web.json_response({"device_code": "dc-1", "user_code": "1234-5678", "interval": 1, "expires_in": 60,
                                  "verification_uri": f"{self.url}/device"})

    async def _token(self, request: web.Request) -> web.Response:
        form = await request.post()
        if form.get("grant_type") != "refresh_token":  # a login's poll: refused, naming tokens it should not
            return web.json_response({"error": "access_denied", "error_description": f"denied: Bearer {self.leak}, "
                                      f"id_token {JWT}, refresh_token={self.leak}"}, status=400)
        refresh = str(form.get("refresh_token", ""))
        return web.json_response({"error": refresh, "error_description": f"refresh_token={refresh} is revoked "
                                                                         f"(access {self.leak})"}, status=400)


@pytest.fixture
def echo() -> Iterator[Echo]:
    server = Echo()
    yield server
    server.stop()


@pytest.fixture
def kimi() -> Iterator[FakeKimi]:
    with FakeKimi() as fake:
        yield fake


def secrets_of(account: Account) -> list[str]:
    token = account.credential
    assert isinstance(token, OAuthToken) and token.refresh_token
    return [token.access_token, token.refresh_token]


def assert_clean(text: str, secrets: list[str]) -> None:
    for secret in secrets:
        assert secret not in text


REQUESTS: dict[str, tuple[str, dict[str, Any]]] = {
    "openai": ("/v1/chat/completions", {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}),
    "openai-stream": ("/v1/chat/completions", {"model": MODEL, "stream": True,
                                               "messages": [{"role": "user", "content": "hi"}]}),
    "anthropic": ("/v1/messages", {"model": MODEL, "max_tokens": 20, "messages": [{"role": "user", "content": "hi"}]}),
}


def test_upstream_errors_reach_the_client_without_tokens(tmp_path: Path, kimi: FakeKimi, echo: Echo,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    account = seed_account(tmp_path / "auth", kimi, "main")
    secrets = secrets_of(account)
    echo.leak = secrets[1]
    config = kimi_config(tmp_path, kimi)
    config["providers"][0]["base_url"] = f"{echo.url}/coding/v1"
    caplog.set_level(logging.DEBUG)
    with RunningGateway(config, tmp_path / "state.sqlite3") as gateway:
        for path, body in REQUESTS.values():
            answer = httpx.post(f"{gateway.url}{path}", json=body, headers=HEADERS, timeout=30)
            assert answer.status_code == 400
            assert "rejected credentials Bearer [redacted]" in answer.text  # the rest of the message stays
            assert_clean(answer.text, [*secrets, JWT])
    assert_clean(caplog.text, [*secrets, JWT])


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/messages"])
def test_an_error_event_mid_stream_reaches_the_client_without_tokens(tmp_path: Path, kimi: FakeKimi, echo: Echo,
                                                                     path: str) -> None:
    account = seed_account(tmp_path / "auth", kimi, "main")
    secrets = secrets_of(account)
    echo.leak = secrets[1]
    config = kimi_config(tmp_path, kimi)
    config["providers"][0]["base_url"] = f"{echo.url}/coding/v1"
    config["payload"] = [{"overrides": {"stream_midway": True}}]  # the echo's cue to fail after a first chunk
    body = {"model": MODEL, "stream": True, "max_tokens": 20, "messages": [{"role": "user", "content": "hi"}]}
    with RunningGateway(config, tmp_path / "state.sqlite3") as gateway:
        answer = httpx.post(f"{gateway.url}{path}", json=body, headers=HEADERS, timeout=30)
    assert answer.status_code == 200 and "hi" in answer.text and "rror" in answer.text
    assert_clean(answer.text, [*secrets, JWT])


def test_a_refusal_naming_the_refresh_token_does_not_spread_it(tmp_path: Path, kimi: FakeKimi, echo: Echo,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    account = seed_account(tmp_path / "auth", kimi, "main", lifetime=60)  # refreshed before its first use
    secrets = secrets_of(account)
    echo.leak = secrets[0]
    config = kimi_config(tmp_path, kimi)
    config["providers"][0]["auth_url"] = echo.url
    caplog.set_level(logging.DEBUG)
    with RunningGateway(config, tmp_path / "state.sqlite3") as gateway:
        path, body = REQUESTS["openai"]
        answer = httpx.post(f"{gateway.url}{path}", json=body, headers=HEADERS, timeout=30)
    assert answer.status_code == 401
    assert_clean(answer.text, secrets)
    assert_clean(caplog.text, secrets)
    reason = json.loads(Path(account.source).read_text())["needs_login"]
    assert reason.startswith("the refresh token was refused") and "HTTP 400" in reason
    assert_clean(reason, secrets)
    config_path = write_config(tmp_path, config)
    for args in ((), ("--json",)):
        listing = cli("accounts", "--config", str(config_path), *args)
        assert listing.returncode == 0 and "needs login" in listing.stdout.replace("_", " ")
        assert_clean(listing.stdout + listing.stderr, secrets)


def test_a_refused_login_names_no_token(tmp_path: Path, kimi: FakeKimi, echo: Echo) -> None:
    echo.leak = kimi.oauth.issue()["access_token"]
    config = kimi_config(tmp_path, kimi)
    config["providers"][0]["auth_url"] = echo.url
    done = cli("login", "kimi", "--config", str(write_config(tmp_path, config)), "--no-browser")
    assert done.returncode == 1
    assert done.stderr.strip() == "crossroute: login failed: the sign-in was denied (access_denied)"
    assert_clean(done.stdout + done.stderr, [echo.leak, JWT])


def test_metrics_and_accounts_show_no_token(tmp_path: Path, kimi: FakeKimi) -> None:
    account = seed_account(tmp_path / "auth", kimi, "main")
    config = kimi_config(tmp_path, kimi)
    with RunningGateway(config, tmp_path / "state.sqlite3") as gateway:
        path, body = REQUESTS["openai"]
        assert httpx.post(f"{gateway.url}{path}", json=body, headers=HEADERS, timeout=30).status_code == 200
        metrics = httpx.get(f"{gateway.url}/metrics", headers=HEADERS, timeout=10).text
        assert account.id in metrics
        assert_clean(metrics, secrets_of(account))
    config_path = write_config(tmp_path, config)
    for args in ((), ("--json",)):
        listing = cli("accounts", "--config", str(config_path), *args)
        assert listing.returncode == 0 and account.id in listing.stdout
        assert_clean(listing.stdout + listing.stderr, secrets_of(account))
    table = cli("accounts", "--config", str(config_path)).stdout
    assert "(login, token until " in table  # when it runs out, not what it is
    row = json.loads(cli("accounts", "--config", str(config_path), "--json").stdout)[0]
    assert row["login"] is True and row["token_expires_at"] == account.credential.expires_at  # type: ignore[union-attr]


def test_a_loose_auth_dir_and_account_file_are_reported(tmp_path: Path, kimi: FakeKimi,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    account = seed_account(tmp_path / "auth", kimi, "main")
    os.chmod(tmp_path / "auth", 0o755)
    os.chmod(account.source, 0o644)
    config = kimi_config(tmp_path, kimi)
    listing = cli("accounts", "--config", str(write_config(tmp_path, config)))
    assert "(mode 755); run chmod 700" in listing.stderr
    assert f"auth file {Path(account.source).name} can be read by other users (mode 644); run chmod 600" \
        in listing.stderr
    with caplog.at_level(logging.WARNING), RunningGateway(config, tmp_path / "state.sqlite3"):
        pass
    assert "run chmod 700" in caplog.text and "run chmod 600" in caplog.text

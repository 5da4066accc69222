"""The agent CLIs through crossroute to providers whose accounts come from a login:
the tool-using task of tests/e2e/agents.py against each provider's fake, with an
account made by the real `crossroute login` (once per module). Qoder's fake verifies
every request's COSY signature; CodeBuddy's checks both auth headers and the user's."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from crossroute.oauth import qoder as qoder_oauth
from tests import login_codex, login_kimi, login_qoder
from tests.e2e.agents import ScriptedFake, assert_result_paired_with_call, complete_task
from tests.fakes import Recorded
from tests.fakes.codebuddy import FakeCodeBuddy
from tests.fakes.codex import FakeCodex
from tests.fakes.oauth_device import FakeKimi
from tests.fakes.qoder import REQUIRED_HEADERS as COSY_HEADERS
from tests.fakes.qoder import FakeQoder
from tests.gateway_runner import RunningGateway
from tests.test_login_codebuddy import codebuddy_config, when_polled
from tests.test_login_codebuddy import login as login_codebuddy
from tests.upstream_view import VIEWS

pytestmark = pytest.mark.e2e

LOGIN_CLIENTS = ("codex", "claude", "gemini")
# (provider, clients): the providers added later run the two agents that speak Responses and Messages
GRID = {"kimi": LOGIN_CLIENTS, "codex": LOGIN_CLIENTS, "qoder": ("codex", "claude"), "codebuddy": ("codex", "claude")}
CELLS = [pytest.param(provider, client, id=f"{provider}-{client}") for provider, clients in GRID.items()
         for client in clients]
QODER_CHAT_PATH = "/algo/api/v2/service/pro/sse/agent_chat_generation"
QODER_MODEL = "lite"  # in the built-in tiers and the fake's live list, and not the default Qoder falls back to
CODEBUDDY_MODEL = "gpt-5.4"
KIMI_DEVICE_HEADERS = {"x-msh-platform", "x-msh-version", "x-msh-device-id", "x-msh-device-name",
                       "x-msh-device-model"}


@dataclass(frozen=True)
class LoginStack:
    """A provider's fake, an account logged in to it and a gateway serving that account."""

    fake: ScriptedFake
    gateway: RunningGateway
    model: str
    wire: str  # the provider API's format, as tests/upstream_view.py reads it
    check_credentials: Callable[[Recorded], None]  # the account's token and headers reached the API


def only_account(auth_dir: Path) -> dict[str, Any]:
    files = list(auth_dir.glob("*.json"))
    assert len(files) == 1, files
    data: dict[str, Any] = json.loads(files[0].read_text())
    return data


@pytest.fixture(scope="module")
def kimi_login(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoginStack]:
    """A Kimi account from the device login of `crossroute login kimi` at the fake."""
    tmp = tmp_path_factory.mktemp("e2e-kimi")
    with FakeKimi() as fake:
        config = login_kimi.kimi_config(tmp, fake)
        done = login_kimi.login(login_kimi.write_config(tmp, config), "--label", "grid")
        assert done.returncode == 0, done.stderr
        account = only_account(tmp / "auth")

        def check_credentials(seen: Recorded) -> None:
            assert seen.path == "/coding/v1/chat/completions"
            assert login_kimi.bearer(seen) == account["access_token"]
            assert KIMI_DEVICE_HEADERS <= seen.headers.keys(), seen.headers
            assert seen.headers["x-msh-device-id"] == account["device_id"]
            assert not fake.refused

        with RunningGateway(config, tmp / "state.sqlite3") as gateway:
            yield LoginStack(fake, gateway, login_kimi.MODEL, "openai", check_credentials)


@pytest.fixture(scope="module")
def codex_login(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoginStack]:
    """A ChatGPT account from `crossroute login codex --import` of the auth.json the Codex CLI
    leaves after its own login at the fake."""
    tmp = tmp_path_factory.mktemp("e2e-codex")
    with FakeCodex() as fake:
        config = login_codex.codex_config(tmp, fake)
        codex_auth = tmp / "codex-auth.json"
        codex_auth.write_text(json.dumps(fake.auth_json()))
        done = login_kimi.cli("login", "codex", "--config", str(login_kimi.write_config(tmp, config)),
                              "--import", str(codex_auth), "--label", "grid")
        assert done.returncode == 0, done.stdout + done.stderr
        account = only_account(tmp / "auth")

        def check_credentials(seen: Recorded) -> None:
            assert seen.path == "/backend-api/codex/responses"
            assert login_kimi.bearer(seen) == account["access_token"]
            assert seen.headers["chatgpt-account-id"] == fake.identity.account_id

        with RunningGateway(config, tmp / "state.sqlite3") as gateway:
            yield LoginStack(fake, gateway, login_codex.MODEL, "openai-responses", check_credentials)


@pytest.fixture(scope="module")
def qoder_login(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoginStack]:
    """A Qoder account from `crossroute login qoder --token` (a Personal Access Token piped in), served
    with every request COSY-signed for the fake's own RSA key (which checks each signature)."""
    tmp = tmp_path_factory.mktemp("e2e-qoder")
    with FakeQoder() as fake, pytest.MonkeyPatch.context() as env:
        env.setenv(qoder_oauth.PUBLIC_KEY_ENV, str(fake.public_key_file))
        qoder_oauth.public_key.cache_clear()
        config = login_qoder.qoder_config(tmp, fake)
        done = subprocess.run([sys.executable, "-m", "crossroute.cli", "login", "qoder", "--config",
                               str(login_kimi.write_config(tmp, config)), "--token", "--label", "grid"],
                              input=f"{fake.personal_token()}\n", capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stdout + done.stderr
        account = only_account(tmp / "auth")

        def check_credentials(seen: Recorded) -> None:
            assert seen.path == QODER_CHAT_PATH
            assert seen.headers["authorization"].startswith("Bearer COSY.")
            assert {name.lower() for name in COSY_HEADERS} <= seen.headers.keys(), seen.headers
            assert seen.headers["cosy-user"] == account["user_id"]
            signed = [call for call in fake.signed if call.path == QODER_CHAT_PATH]
            assert len(signed) == len(fake.chat_requests())  # the fake verified each chat request's signature
            assert {call.token for call in signed} == {account["access_token"]}
            assert {answer.model for answer in fake.answered} == {QODER_MODEL}  # session_type and model_config

        try:
            with RunningGateway(config, tmp / "state.sqlite3") as gateway:
                yield LoginStack(fake, gateway, QODER_MODEL, "openai", check_credentials)
        finally:
            qoder_oauth.public_key.cache_clear()


@pytest.fixture(scope="module")
def codebuddy_login(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoginStack]:
    """A CodeBuddy account from the state-polling login of `crossroute login codebuddy` (the user
    signs in at the fake once the command polls)."""
    tmp = tmp_path_factory.mktemp("e2e-codebuddy")
    with FakeCodeBuddy() as fake:
        config = codebuddy_config(tmp, fake)
        approver = when_polled(fake, 1, fake.approve)
        done = login_codebuddy(login_kimi.write_config(tmp, config), "--label", "grid")
        approver.join(5)
        assert done.returncode == 0, done.stdout + done.stderr
        account = only_account(tmp / "auth")

        def check_credentials(seen: Recorded) -> None:
            assert seen.path == "/v2/chat/completions"
            assert login_kimi.bearer(seen) == account["access_token"] == seen.headers["x-api-key"]
            assert seen.headers["x-user-id"] == account["user_id"]
            assert seen.headers["x-domain"] == fake.domain
            assert seen.body["stream"] is True

        with RunningGateway(config, tmp / "state.sqlite3") as gateway:
            yield LoginStack(fake, gateway, CODEBUDDY_MODEL, "openai", check_credentials)


@pytest.mark.parametrize(("provider", "client"), CELLS)
def test_tool_task_through_a_login(provider: str, client: str, request: pytest.FixtureRequest, client_path: str,
                                   tmp_path: Path) -> None:
    stack: LoginStack = request.getfixturevalue(f"{provider}_login")
    run = complete_task(client, stack.fake, stack.gateway, login_kimi.CLIENT_KEY, stack.model, client_path, tmp_path)
    assert_result_paired_with_call(VIEWS[stack.wire](run.carrying.body), run.secret)
    for seen in run.generations:
        stack.check_credentials(seen)

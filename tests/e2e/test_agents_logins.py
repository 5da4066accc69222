"""The agent CLIs through crossroute to providers whose accounts come from a login:
the same tool-using task as test_agents.py, against each provider's fake, with an
account made by the real `crossroute login` (once per module)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import login_kimi
from tests.e2e.agents import assert_result_paired_with_call, complete_task
from tests.fakes.oauth_device import FakeKimi
from tests.gateway_runner import RunningGateway
from tests.upstream_view import VIEWS

pytestmark = pytest.mark.e2e

LOGIN_CLIENTS = ("codex", "claude", "gemini")
KIMI_DEVICE_HEADERS = {"x-msh-platform", "x-msh-version", "x-msh-device-id", "x-msh-device-name",
                       "x-msh-device-model"}


def only_account(auth_dir: Path) -> dict[str, Any]:
    files = list(auth_dir.glob("*.json"))
    assert len(files) == 1, files
    data: dict[str, Any] = json.loads(files[0].read_text())
    return data


@pytest.fixture(scope="module")
def kimi_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FakeKimi, RunningGateway, dict[str, Any]]]:
    """A Kimi account logged in through `crossroute login kimi` at the fake, and a gateway serving it."""
    tmp = tmp_path_factory.mktemp("e2e-kimi")
    with FakeKimi() as fake:
        config = login_kimi.kimi_config(tmp, fake)
        done = login_kimi.login(login_kimi.write_config(tmp, config), "--label", "grid")
        assert done.returncode == 0, done.stderr
        with RunningGateway(config, tmp / "state.sqlite3") as gateway:
            yield fake, gateway, only_account(tmp / "auth")


@pytest.mark.parametrize("client", LOGIN_CLIENTS)
def test_tool_task_through_a_kimi_login(client: str, kimi_stack: tuple[FakeKimi, RunningGateway, dict[str, Any]],
                                        client_path: str, tmp_path: Path) -> None:
    fake, gateway, account = kimi_stack
    run = complete_task(client, fake, gateway, login_kimi.CLIENT_KEY, login_kimi.MODEL, client_path, tmp_path)
    assert_result_paired_with_call(VIEWS["openai"](run.carrying.body), run.secret)
    for seen in run.generations:
        assert seen.path == "/coding/v1/chat/completions"
        assert login_kimi.bearer(seen) == account["access_token"]
        assert KIMI_DEVICE_HEADERS <= seen.headers.keys(), seen.headers
        assert seen.headers["x-msh-device-id"] == account["device_id"]
    assert not fake.refused

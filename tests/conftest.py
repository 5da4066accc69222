from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator

import pytest

from tests.fakes import FakeUpstream
from tests.gateway_runner import RunningGateway


def pytest_configure(config: pytest.Config) -> None:
    """Gateways started by tests keep their default data dir (auth dir, state) away from the user's."""
    if "CROSSROUTE_HOME" not in os.environ:
        os.environ["CROSSROUTE_HOME"] = tempfile.mkdtemp(prefix="crossroute-test-home-")


CLIENT_KEY = "sk-client-test"
UPSTREAM_KEY = "up-key"

# One gateway model per upstream kind, all served by the same fake.
MODELS = {
    "openai": "chat-up",
    "openai-responses": "responses-up",
    "anthropic": "claude-up",
    "gemini": "gemini-up",
}


def gateway_config(fake_url: str) -> dict:
    bases = {"openai": f"{fake_url}/v1", "openai-responses": f"{fake_url}/v1", "anthropic": fake_url,
             "gemini": fake_url}
    return {
        "server": {"api_keys": [CLIENT_KEY]},
        "providers": [
            {"name": f"up-{kind}", "kind": kind, "base_url": bases[kind], "api_keys": [UPSTREAM_KEY],
             "models": [{"name": model, "upstream": f"{model}-real"}]}
            for kind, model in MODELS.items()
        ],
    }


@pytest.fixture(scope="session")
def fake() -> Iterator[FakeUpstream]:
    with FakeUpstream(api_key=UPSTREAM_KEY) as upstream:
        yield upstream


_SHARED: list[RunningGateway] = []  # the session's gateway, once started


@pytest.fixture(scope="session")
def gateway(fake: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningGateway]:
    state = tmp_path_factory.mktemp("state") / "state.sqlite3"
    with RunningGateway(gateway_config(fake.url), state) as running:
        _SHARED.append(running)
        yield running
        _SHARED.remove(running)


@pytest.fixture(autouse=False)
def clean_fake(fake: FakeUpstream) -> Iterator[FakeUpstream]:
    """The shared fake with nothing queued or recorded, and the shared gateway's
    accounts rested from what earlier tests scripted (a 401 or 429 cools one)."""
    fake.clear()
    for running in _SHARED:
        running.app.account_state.reset()
    yield fake
    fake.clear()

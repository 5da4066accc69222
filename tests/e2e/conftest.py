from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import UPSTREAM_KEY, gateway_config
from tests.e2e.agents import Stack, installed_clients_path
from tests.fakes import FakeUpstream
from tests.gateway_runner import RunningGateway


@pytest.fixture(scope="session")
def client_path() -> str:
    """PATH with the pinned agent CLIs first."""
    return installed_clients_path()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """One fake upstream (speaking all four formats) and a gateway in front of it, per test module."""
    with FakeUpstream(api_key=UPSTREAM_KEY) as fake:
        state = tmp_path_factory.mktemp("e2e-state") / "state.sqlite3"
        with RunningGateway(gateway_config(fake.url), state) as gateway:
            yield fake, gateway

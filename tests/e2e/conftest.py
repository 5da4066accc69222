from __future__ import annotations

import pytest

from tests.e2e.agents import installed_clients_path


@pytest.fixture(scope="session")
def client_path() -> str:
    """PATH with the pinned agent CLIs first."""
    return installed_clients_path()

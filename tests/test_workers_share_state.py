"""Two workers of one `crossroute serve` share their accounts' state: the
round-robin turn and the cooldowns. Requests go out on fresh connections, so
either worker may take each one."""

from __future__ import annotations

import http.client
from pathlib import Path

import orjson
import yaml

from tests.conftest import CLIENT_KEY
from tests.fakes import FakeUpstream, Turn
from tests.gateway_runner import free_port
from tests.test_store_workers import serving

KEYS = ["k1", "k2", "k3"]
REQUESTS = 12


def write_config(tmp_path: Path, fake: FakeUpstream) -> Path:
    config = {"server": {"api_keys": [CLIENT_KEY]}, "state": {"path": str(tmp_path / "state.db")},
              "providers": [{"name": "pool", "kind": "openai", "base_url": f"{fake.url}/v1", "api_keys": KEYS,
                             "models": ["m"]}]}
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def ask(port: int) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    try:
        body = orjson.dumps({"model": "m", "messages": [{"role": "user", "content": "hi"}]})
        conn.request("POST", "/v1/chat/completions", body,
                     {"authorization": f"Bearer {CLIENT_KEY}", "content-type": "application/json"})
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def keys_used(fake: FakeUpstream) -> list[str]:
    return [r.headers["authorization"].removeprefix("Bearer ") for r in fake.requests if r.path.endswith("/completions")]


def test_round_robin_takes_turns_across_workers(tmp_path: Path) -> None:
    port = free_port()
    with FakeUpstream(api_key=None) as fake, serving(write_config(tmp_path, fake), port, workers=2):
        assert [ask(port) for _ in range(REQUESTS)] == [200] * REQUESTS
        assert keys_used(fake) == KEYS * (REQUESTS // len(KEYS))


def test_a_key_refused_or_rate_limited_on_one_worker_is_not_used_by_the_other(tmp_path: Path) -> None:
    port = free_port()
    with FakeUpstream(api_key=None) as fake, serving(write_config(tmp_path, fake), port, workers=2):
        fake.script(Turn(error=(401, "revoked")), Turn(error=(429, "slow down"), retry_after=120))
        assert ask(port) == 200
        revoked, limited, serving_key = keys_used(fake)
        assert [ask(port) for _ in range(REQUESTS)] == [200] * REQUESTS
        assert keys_used(fake)[3:] == [serving_key] * REQUESTS
        assert {revoked, limited, serving_key} == set(KEYS)

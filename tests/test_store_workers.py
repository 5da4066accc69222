"""A response the client has seen complete is in the store: on the other
worker at once, and after a kill -9. Drives `crossroute serve` subprocesses
with a raw HTTP client, as Codex does: the follow-up with previous_response_id
goes out on a new connection the moment `response.completed` arrives."""

from __future__ import annotations

import http.client
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import orjson
import yaml

from tests.conftest import CLIENT_KEY, MODELS, gateway_config
from tests.fakes import FakeUpstream
from tests.gateway_runner import free_port
from tests.test_cli import CLI, wait_until_healthy

FOLLOW_UPS = 300
KILLS = 20
HEADERS = {"authorization": f"Bearer {CLIENT_KEY}", "content-type": "application/json"}


def write_config(tmp_path: Path, fake: FakeUpstream) -> Path:
    config = gateway_config(fake.url)
    config["state"] = {"path": str(tmp_path / "state.db")}
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@contextmanager
def serving(config: Path, port: int, workers: int) -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen([*CLI, "serve", "--config", str(config), "--port", str(port),
                                "--workers", str(workers)], stderr=subprocess.DEVNULL)
    try:
        wait_until_healthy(port)
        yield process
    finally:
        if process.poll() is None:
            process.terminate()
        process.wait(timeout=15)


def stream_until_completed(port: int, text: str) -> tuple[http.client.HTTPResponse, str]:
    """Streams a stored response; returns as soon as its `response.completed` event is in, with the id."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    body = orjson.dumps({"model": MODELS["openai"], "input": text, "stream": True})
    conn.request("POST", "/v1/responses", body, HEADERS)
    response = conn.getresponse()
    assert response.status == 200
    event = b""
    while True:
        line = response.readline()
        assert line, "the stream ended without response.completed"
        if line.startswith(b"event: "):
            event = line[7:].strip()
        elif line.startswith(b"data: ") and event == b"response.completed":
            return response, orjson.loads(line[6:])["response"]["id"]


def follow_up(port: int, previous_id: str) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    try:
        body = orjson.dumps({"model": MODELS["openai"], "input": "and then?", "previous_response_id": previous_id,
                             "store": False})
        conn.request("POST", "/v1/responses", body, HEADERS)
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def stored_status(port: int, response_id: str) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    try:
        conn.request("GET", f"/v1/responses/{response_id}", headers=HEADERS)
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def test_follow_up_at_completion_finds_the_response_on_any_worker(tmp_path: Path, clean_fake: FakeUpstream) -> None:
    port = free_port()
    missed = []
    with serving(write_config(tmp_path, clean_fake), port, workers=2):
        deadline = time.monotonic() + 120
        for turn in range(FOLLOW_UPS):
            assert time.monotonic() < deadline, f"only {turn} follow-ups in the time allowed"
            stream, response_id = stream_until_completed(port, f"question {turn}")
            status = follow_up(port, response_id)
            if status != 200:
                missed.append((response_id, status))
            stream.read()  # the rest of the stream, up to its terminating chunk
            stream.close()
    assert not missed, f"{len(missed)} of {FOLLOW_UPS} follow-ups did not find their response: {missed[:3]}"


def test_a_response_seen_complete_survives_kill_9(tmp_path: Path, clean_fake: FakeUpstream) -> None:
    config = write_config(tmp_path, clean_fake)
    seen: list[str] = []
    for turn in range(KILLS):
        port = free_port()
        with serving(config, port, workers=1) as process:
            _, response_id = stream_until_completed(port, f"question {turn}")
            process.kill()
        seen.append(response_id)
    port = free_port()
    with serving(config, port, workers=1):
        lost = [rid for rid in seen if stored_status(port, rid) != 200]
    assert not lost, f"{len(lost)} of {KILLS} responses seen complete were lost to kill -9"


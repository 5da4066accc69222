"""The real agent CLIs, started through `crossroute launch`, complete a
tool-using task (tests/e2e/agents.py) against each upstream kind with an API key."""

from __future__ import annotations

import base64
import secrets
import time
from pathlib import Path

import pytest

from tests.conftest import CLIENT_KEY, MODELS
from tests.e2e.agents import (
    AGENTS,
    CLIENTS,
    RUN_TIMEOUT,
    Stack,
    assert_result_paired_with_call,
    complete_task,
    launch,
)
from tests.fakes import Turn
from tests.upstream_view import VIEWS

pytestmark = pytest.mark.e2e

UPSTREAMS = tuple(MODELS)


def run_task(client: str, upstream: str, signature: str | None, stack: Stack,
             client_path: str, tmp_path: Path) -> list[str]:
    """Runs the task; returns the reasoning signatures the upstream saw replayed."""
    fake, gateway = stack
    fake.clear()
    run = complete_task(client, fake, gateway, CLIENT_KEY, MODELS[upstream], client_path, tmp_path, signature)
    seen = VIEWS[upstream](run.carrying.body)
    assert_result_paired_with_call(seen, run.secret)
    return seen.signatures


@pytest.mark.parametrize("upstream", UPSTREAMS)
@pytest.mark.parametrize("client", CLIENTS)
def test_tool_task(client: str, upstream: str, stack: Stack, client_path: str,
                   tmp_path: Path) -> None:
    run_task(client, upstream, None, stack, client_path, tmp_path)


@pytest.mark.parametrize("upstream", UPSTREAMS)
@pytest.mark.parametrize("client", CLIENTS)
def test_tool_task_with_reasoning(client: str, upstream: str, stack: Stack,
                                  client_path: str, tmp_path: Path) -> None:
    signature = base64.b64encode(secrets.token_bytes(24)).decode()
    replayed = run_task(client, upstream, signature, stack, client_path, tmp_path)
    if upstream in AGENTS[client].replays_signatures:
        assert signature in replayed
    else:
        # the client could not keep it (Chat has no field for it): the gateway sends Gemini its sentinel,
        # and turns thinking off for that request where a provider insists on the signed block
        assert replayed in ([], ["skip_thought_signature_validator"])


# The clients that speak several wire formats, in their other formats: each format against upstream kinds
# other than its own (the translation runs both ways), with reasoning on.
FORMAT_CELLS = [(client, fmt, upstream) for client in CLIENTS for fmt, upstream in AGENTS[client].other_formats]


@pytest.mark.parametrize(("client", "fmt", "upstream"), FORMAT_CELLS)
def test_tool_task_with_reasoning_in_another_format(client: str, fmt: str, upstream: str, stack: Stack,
                                                    client_path: str, tmp_path: Path) -> None:
    fake, gateway = stack
    fake.clear()
    signature = base64.b64encode(secrets.token_bytes(24)).decode()
    run = complete_task(client, fake, gateway, CLIENT_KEY, MODELS[upstream], client_path, tmp_path, signature, fmt)
    seen = VIEWS[upstream](run.carrying.body)
    assert_result_paired_with_call(seen, run.secret)
    if AGENTS[client].other_formats[(fmt, upstream)]:
        assert signature in seen.signatures
    else:
        assert set(seen.signatures) <= {"skip_thought_signature_validator"}, seen.signatures


# One cell per client, together covering every upstream kind (each client retries with its own backoff,
# so the full grid would cost minutes without proving more).
BROKEN_CELLS = [(client, AGENTS[client].broken_upstream) for client in CLIENTS]


@pytest.mark.parametrize(("client", "upstream"), BROKEN_CELLS)
def test_upstream_breaks_mid_stream(client: str, upstream: str, stack: Stack,
                                    client_path: str, tmp_path: Path) -> None:
    """Every answer is cut after its first chunk: the client must report an error and
    exit, not loop or print a half answer as if it were complete."""
    fake, gateway = stack
    fake.clear()
    fake.respond_with(lambda body: Turn(text="This answer never gets to its end", break_after=1, chunk_text=6))
    started = time.monotonic()
    try:
        result = launch(client, gateway, CLIENT_KEY, MODELS[upstream], tmp_path, client_path, "Say something long")
    finally:
        fake.respond_with(None)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-3000:]
    assert "never gets to its end" not in result.stdout
    assert len(fake.requests) <= 20, f"{len(fake.requests)} requests: the client looped"
    assert time.monotonic() - started < RUN_TIMEOUT

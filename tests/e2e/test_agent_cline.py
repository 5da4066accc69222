"""Cline CLI beyond its shared grid cells: nothing of it left running once `crossroute launch`
returns (unsandboxed, Cline hands the session to a detached hub daemon that outlives the CLI)."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from tests.conftest import CLIENT_KEY, MODELS
from tests.e2e.agents import Stack, assert_result_paired_with_call, complete_task
from tests.upstream_view import VIEWS

pytestmark = pytest.mark.e2e


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


def test_no_cline_process_outlives_the_launch(stack: Stack, client_path: str, tmp_path: Path) -> None:
    fake, gateway = stack
    fake.clear()
    run = complete_task("cline", fake, gateway, CLIENT_KEY, MODELS["openai"], client_path, tmp_path)
    assert end_processes_in(tmp_path) == []
    assert_result_paired_with_call(VIEWS["openai"](run.carrying.body), run.secret)

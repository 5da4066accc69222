"""Crush's cells of the agent grid (the same nine as every agent's in test_agents.py).

No package registry ships a Crush binary, so while no `crush` that runs is on the grid's PATH
the cells are recorded as a known gap (xfailed, with the reason), never as a pass; the day a
`crush` is there (say a registry build linked into the cache's bin/), they run for real."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.e2e import test_agents as grid
from tests.e2e.agents import AGENTS, Stack

pytestmark = pytest.mark.e2e


KNOWN_GAP = (
    "known gap: no registry ships a Crush binary. npm's @charmland/crush@0.96.1 is a GoReleaser wrapper "
    "without one: its postinstall (install.js) and its `crush` (run-crush.js) download "
    "crush_0.96.1_Linux_x86_64.tar.gz from the vendor's GitHub releases, which this machine cannot reach; "
    "PyPI and Debian have no Crush, and building it needs Go >= 1.26 and its modules from the Go module proxy")


@pytest.fixture(scope="module")
def crush_runs(client_path: str) -> str:
    """The `crush` on the grid's PATH, once it answers --version; otherwise the cells are the known gap."""
    program = shutil.which("crush", path=client_path)
    if program is None:
        pytest.xfail(f"{KNOWN_GAP} (no crush on the grid's PATH)")
    probe = subprocess.run([program, "--version"], capture_output=True, text=True, timeout=120,
                           stdin=subprocess.DEVNULL)
    if probe.returncode != 0:
        pytest.xfail(f"{KNOWN_GAP} ({program} --version failed: {(probe.stdout + probe.stderr)[-300:]})")
    return program


@pytest.mark.parametrize("upstream", grid.UPSTREAMS)
def test_crush_tool_task(upstream: str, crush_runs: str, stack: Stack,
                         client_path: str, tmp_path: Path) -> None:
    grid.test_tool_task("crush", upstream, stack, client_path, tmp_path)


@pytest.mark.parametrize("upstream", grid.UPSTREAMS)
def test_crush_tool_task_with_reasoning(upstream: str, crush_runs: str, stack: Stack,
                                        client_path: str, tmp_path: Path) -> None:
    grid.test_tool_task_with_reasoning("crush", upstream, stack, client_path, tmp_path)


def test_crush_upstream_breaks_mid_stream(crush_runs: str, stack: Stack,
                                          client_path: str, tmp_path: Path) -> None:
    grid.test_upstream_breaks_mid_stream("crush", AGENTS["crush"].broken_upstream, stack, client_path, tmp_path)

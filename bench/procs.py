"""Processes: start, wait for a port, stop by pid, and read CPU and memory from /proc (summed over a
process and its descendants, for multi-worker crossroute and node peers that spawn a server child)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")


def port_free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def wait_port(port: int, timeout: float, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"exited with status {proc.returncode} before listening on {port}")
        if not port_free(port):
            return
        time.sleep(0.2)
    raise RuntimeError(f"nothing listening on 127.0.0.1:{port} after {timeout:.0f} s")


def start(cmd: list[str], log: Path, env: dict[str, str] | None = None, cwd: str | Path | None = None,
          ) -> subprocess.Popen[bytes]:
    """Start in a new session (so stop() can end the whole group it started, and nothing else)."""
    out = open(log, "ab")
    return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            env={**os.environ, **(env or {})}, cwd=cwd, start_new_session=True)


def stop(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    if proc.poll() is not None:
        return
    pgid = proc.pid  # start_new_session: the group is ours
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout)
            return
        except subprocess.TimeoutExpired:
            continue


def tree(root: int) -> list[int]:
    """root and all its descendants."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2:].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def cpu_ticks(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total


def rss_kb(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
                    break
        except OSError:
            continue
    return total


class Sampler:
    """Samples the summed RSS of a process tree every `interval` seconds while a measurement runs."""

    def __init__(self, root: int, interval: float = 0.25) -> None:
        self.root, self.interval = root, interval
        self.pids = tree(root)
        self.peak_kb = rss_kb(self.pids)
        self.samples: list[tuple[float, int, int]] = []  # (time, rss kB, cpu ticks)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        refresh = 0
        while not self._stop.wait(self.interval):
            refresh += 1
            if refresh % 8 == 0:  # workers can come and go
                self.pids = tree(self.root)
            rss = rss_kb(self.pids)
            self.peak_kb = max(self.peak_kb, rss)
            self.samples.append((time.monotonic(), rss, cpu_ticks(self.pids)))

    def __enter__(self) -> Sampler:
        self.cpu0 = cpu_ticks(self.pids)
        self.t0 = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.pids = tree(self.root)
        self.peak_kb = max(self.peak_kb, rss_kb(self.pids))
        self.cpu_ms = (cpu_ticks(self.pids) - self.cpu0) * 1000 / CLK_TCK
        self.wall_s = time.monotonic() - self.t0

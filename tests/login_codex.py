"""What the Codex login tests share (besides tests/login_kimi.py's command and file helpers):
a config for a Codex provider at FakeCodex and account files seeded with tokens it issued."""

from __future__ import annotations

import dataclasses
import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx2 as httpx

from crossroute.accounts.model import Account
from crossroute.oauth.codex import PORT_VARIABLE, CodexLogin
from crossroute.oauth.command import save_login
from tests.fakes.codex import FakeCodex
from tests.fakes.login import Identity
from tests.gateway_runner import free_port
from tests.login_kimi import CLIENT_KEY, set_options

MODEL = "gpt-5.4"


def chat(url: str) -> httpx.Response:
    """A chat request for the Codex model, as a client of the gateway at `url`."""
    return httpx.post(f"{url}/v1/chat/completions", headers={"authorization": f"Bearer {CLIENT_KEY}"}, timeout=30,
                      json={"model": MODEL, "messages": [{"role": "user", "content": "hi"}]})


def codex_config(tmp: Path, fake: FakeCodex, **routing: Any) -> dict[str, Any]:
    return {
        "server": {"api_keys": [CLIENT_KEY], "port": free_port()},
        "state": {"path": str(tmp / "state.sqlite3"), "auth_dir": str(tmp / "auth")},
        "providers": [{"name": "codex", "kind": "codex", "base_url": fake.base_url, "auth_url": fake.url}],
        "routing": routing,
    }


def identity(label: str) -> Identity:
    return Identity(account_id=f"acct-{label}", email=f"{label}@example.com", user_id=f"user-{label}")


def seed_codex(auth_dir: Path, fake: FakeCodex, label: str, lifetime: float | None = None,
               provider: str = "codex", **options: Any) -> Account:
    """An account file holding a live login from the fake (its own identity per label); with
    `lifetime`, the file says the token expires that many seconds from now."""
    token = CodexLogin().token_from_answer(fake.issue_tokens(identity(label)))
    if lifetime is not None:
        token = dataclasses.replace(token, expires_at=time.time() + lifetime)
    account = save_login(auth_dir, provider, label, token)
    set_options(account, options)
    return account


class LoginProcess:
    """`crossroute login codex ...` as a subprocess without a display, whose output the test reads
    as it comes (to play the browser) and whose input it can type into (a pasted address)."""

    def __init__(self, config: Path, *args: str, port: int | None = None) -> None:
        env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
        if port is not None:
            env[PORT_VARIABLE] = str(port)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "crossroute.cli", "login", "codex", "--config", str(config), "--no-browser",
             *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line)

    def line_with(self, text: str, timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                break
            self.seen.append(line)
            if text in line:
                return line
        raise AssertionError(f"no line with {text!r} in {self.seen}")

    def type(self, text: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(text + "\n")
        self.process.stdin.flush()

    def finish(self, timeout: float = 60) -> tuple[int, str, str]:
        """(exit status, the whole stdout, stderr)."""
        assert self.process.stderr is not None
        status = self.process.wait(timeout)
        stderr = self.process.stderr.read()
        self.reader.join(10)  # it ends at the output's end
        while not self.lines.empty():
            self.seen.append(self.lines.get())
        return status, "".join(self.seen), stderr

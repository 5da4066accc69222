"""What the login tests share: a config for a Kimi provider at the fake, the
`crossroute login` command as a subprocess, and account files seeded with
tokens the fake issued (as a finished login leaves them)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2 as httpx
import yaml

from crossroute.accounts.model import Account, OAuthToken
from crossroute.oauth.command import save_login
from crossroute.oauth.kimi import KimiLogin
from tests.fakes.oauth_device import FakeKimi
from tests.gateway_runner import free_port
from tests.test_cli import wait_until_healthy

CLIENT_KEY = "sk-client-login"
# Another process that needs an account's token fresh (its file's token expires within the lead);
# it prints a digest of the token it got. Arguments: the config, the account id.
REFRESH_SCRIPT = """
import asyncio, hashlib, sys
from crossroute.accounts.store import AccountStore
from crossroute.config import load_config
from crossroute.oauth import LOGINS
from crossroute.oauth.refresh import RefreshManager
config = load_config(sys.argv[1])
account = AccountStore.open(config).get(sys.argv[2])
provider = next(p for p in config.providers if p.name == account.provider)
manager = RefreshManager(LOGINS[provider.kind], provider.auth_url)
print(hashlib.sha256(asyncio.run(manager.fresh_token(account)).access_token.encode()).hexdigest(), flush=True)
"""
MODEL = "kimi-for-coding"


def kimi_config(tmp: Path, fake: FakeKimi, **routing: Any) -> dict[str, Any]:
    return {
        "server": {"api_keys": [CLIENT_KEY], "port": free_port()},
        "state": {"path": str(tmp / "state.sqlite3"), "auth_dir": str(tmp / "auth")},
        "providers": [{"name": "kimi", "kind": "kimi", "base_url": fake.base_url, "auth_url": fake.url}],
        "routing": routing,
    }


def write_config(tmp: Path, config: dict[str, Any]) -> Path:
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def cli(*args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    """`crossroute ...` without a terminal or a display, as in CI or over ssh."""
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    return subprocess.run([sys.executable, "-m", "crossroute.cli", *args], capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL, env=env)


def login(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return cli("login", "kimi", "--config", str(config), "--no-browser", *args)


@contextmanager
def served(tmp: Path, config: dict[str, Any], *args: str) -> Iterator[Path]:
    """A `crossroute serve` process on the config; yields the file its stderr goes to."""
    path = write_config(tmp, config)
    log = tmp / "serve.log"
    with log.open("wb") as sink:
        process = subprocess.Popen([sys.executable, "-m", "crossroute.cli", "serve", "--config", str(path), *args],
                                   stdout=subprocess.DEVNULL, stderr=sink, stdin=subprocess.DEVNULL)
        try:
            wait_until_healthy(config["server"]["port"])
            yield log
        finally:
            process.terminate()
            process.wait(timeout=20)


def seed_account(auth_dir: Path, fake: FakeKimi, label: str, lifetime: float = 3600.0,
                 **options: Any) -> Account:
    """An account file holding a live login from the fake, expiring in `lifetime` seconds."""
    device_id = f"device-{label}"
    answer = fake.oauth.issue(device_id=device_id, lifetime=lifetime)
    token = KimiLogin().token_from_answer(answer)
    token = OAuthToken(token.access_token, token.refresh_token, token.expires_at, {**token.extras,
                                                                                   "device_id": device_id})
    account = save_login(auth_dir, "kimi", label, token)
    set_options(account, options)
    return account


def set_options(account: Account, options: dict[str, Any]) -> None:
    """Account options (priority, ...) written into the account's file."""
    if options:
        path = Path(account.source)
        path.write_text(json.dumps({**json.loads(path.read_text()), **options}))


def refresher(config: Path, account: Account, **popen: Any) -> subprocess.Popen[str]:
    """REFRESH_SCRIPT for the account, as another process."""
    return subprocess.Popen([sys.executable, "-c", REFRESH_SCRIPT, str(config), account.id], **popen)


def digest(token: str) -> str:
    """How REFRESH_SCRIPT prints the token it got."""
    return hashlib.sha256(token.encode()).hexdigest()


def file_of(account: Account) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(Path(account.source).read_text())
    return data


def bearer(recorded: Any) -> str:
    return str(recorded.headers["authorization"]).removeprefix("Bearer ")


@dataclass
class RefreshRace:
    answers: list[int]  # the statuses of the requests made while the refresh was in flight
    printed: str  # the other process's digest of the token it got
    returncode: int | None
    logs: str
    metrics: str


def refresh_race(tmp: Path, config: dict[str, Any], account: Account, chat: Callable[[str], httpx.Response],
                 askers: int = 6) -> RefreshRace:
    """Two workers serving `askers` requests at once and another process, all needing the account's
    token fresh while the fake is slow to refresh it (the caller sets the fake's refresh delay)."""
    url = f"http://127.0.0.1:{config['server']['port']}"
    with served(tmp, config, "--workers", "2", "--log-level", "debug") as log:
        other = refresher(tmp / "config.yaml", account, stdout=subprocess.PIPE, text=True)
        answers: list[int] = []
        threads = [threading.Thread(target=lambda: answers.append(chat(url).status_code)) for _ in range(askers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        printed, _ = other.communicate(timeout=60)
        metrics = httpx.get(f"{url}/metrics", headers={"authorization": f"Bearer {CLIENT_KEY}"}, timeout=10).text
    return RefreshRace(answers, printed, other.returncode, log.read_text(), metrics)


def when_polled(fake: Any, polls: int, act: Callable[[], None]) -> threading.Thread:
    """Run `act` (the user's side of a login) once the fake has answered `polls` token polls (30 s at
    most); `fake.counters.polls` counts them."""
    def watch() -> None:
        deadline = time.monotonic() + 30
        while fake.counters.polls < polls and time.monotonic() < deadline:
            time.sleep(0.02)
        act()

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def account_files(tmp: Path) -> list[Path]:
    """The account files a login wrote to `<tmp>/auth`."""
    return sorted((tmp / "auth").glob("*.json"))

"""The zero-config start and `crossroute login --list` name the logins the user's agent CLIs keep
(Codex CLI, Kimi CLI, Qwen Code) with the `crossroute login ... --import` command for each, and
never use them unasked: no request with their tokens, the files unchanged, no account written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx2 as httpx

from crossroute.defaults import logged_in_kinds
from crossroute.kinds import PRESETS
from crossroute.oauth import LOGINS, LoginKind
from crossroute.oauth.discovery import FoundLogin
from tests.fakes.oauth_device import FakeKimi
from tests.gateway_runner import free_port
from tests.test_cli import wait_until_healthy

PROVIDER_VARIABLES = {variable for preset in PRESETS.values() for variable in preset.env} | {"OPENAI_BASE_URL"}


def cli_homes(home: Path, fake: FakeKimi) -> dict[str, Path]:
    """The three CLIs' login files, holding live tokens of the fake (as the CLIs would keep them)."""
    codex_home = home / "codex-home"  # moved with CODEX_HOME
    files = {
        "codex": codex_home / "auth.json",
        "kimi": home / ".kimi" / "credentials" / "kimi-code.json",
        "qwen": home / ".qwen" / "oauth_creds.json",
    }
    answer = fake.oauth.issue(device_id="cli-device")
    contents = {
        "codex": {"OPENAI_API_KEY": None, "tokens": {"access_token": answer["access_token"],
                                                     "refresh_token": answer["refresh_token"], "account_id": "a"}},
        "kimi": {**answer, "expires_at": 4102444800.0},
        "qwen": {**answer, "expiry_date": 4102444800000, "resource_url": "portal.qwen.ai"},
    }
    for kind, path in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(contents[kind]))
        os.chmod(path, 0o600)
    return files


def environment(tmp: Path, home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in PROVIDER_VARIABLES and k not in ("KIMI_SHARE_DIR",)}
    return {**env, "HOME": str(home), "CODEX_HOME": str(home / "codex-home"), "CROSSROUTE_HOME": str(tmp / "data")}


def expected_line(kind: str, path: Path) -> str:
    entry = LOGINS[kind]
    if isinstance(entry, LoginKind) and "import" in entry.flows:
        return f"run crossroute login {kind} --import {path}"
    return f"login at {path} (crossroute cannot import it"


def snapshot(files: dict[str, Path]) -> dict[str, tuple[bytes, int]]:
    return {kind: (path.read_bytes(), path.stat().st_mtime_ns) for kind, path in files.items()}


def test_serve_without_a_config_names_each_login_and_uses_none(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with FakeKimi() as fake:
        files = cli_homes(home, fake)
        before = snapshot(files)
        port = free_port()
        log = tmp_path / "serve.log"
        with log.open("wb") as sink:
            process = subprocess.Popen([sys.executable, "-m", "crossroute.cli", "serve", "--port", str(port)],
                                       env=environment(tmp_path, home), stdout=subprocess.DEVNULL, stderr=sink,
                                       stdin=subprocess.DEVNULL)
            try:
                wait_until_healthy(port)
                models = httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=10).json()["data"]
            finally:
                process.terminate()
                process.wait(timeout=20)
        stderr = log.read_text()
        assert "Logins found on this machine" in stderr
        for kind, path in files.items():
            assert expected_line(kind, path) in stderr, stderr
        assert models == []  # no provider came from those files
        assert fake.requests == [] and fake.model_list_calls == 0 and fake.oauth.refresh_calls == 0
    assert snapshot(files) == before
    assert list((tmp_path / "data").rglob("*.json")) == []  # no account file, nothing copied


def test_login_list_has_a_found_on_this_machine_part(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with FakeKimi() as fake:
        files = cli_homes(home, fake)
    before = snapshot(files)
    done = subprocess.run([sys.executable, "-m", "crossroute.cli", "login", "--list"], capture_output=True, text=True,
                          env=environment(tmp_path, home), timeout=60)
    assert done.returncode == 0, done.stderr
    found = done.stdout.split("Logins found on this machine", 1)[1]
    for kind, path in files.items():
        assert expected_line(kind, path) in found
    assert snapshot(files) == before


def test_login_list_says_when_nothing_is_found(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "crossroute.cli", "login", "--list"], capture_output=True, text=True,
                          env=environment(tmp_path, tmp_path / "empty-home"), timeout=60)
    assert "No agent CLI logins found on this machine" in done.stdout


def test_the_suggested_kimi_import_works_and_only_then_uses_the_file(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with FakeKimi() as fake:
        files = cli_homes(home, fake)
    command = FoundLogin("kimi", "Kimi CLI", files["kimi"]).command.split()
    assert command[:4] == ["crossroute", "login", "kimi", "--import"]
    done = subprocess.run([sys.executable, "-m", "crossroute.cli", *command[1:]], capture_output=True, text=True,
                          env=environment(tmp_path, home), timeout=60)
    assert done.returncode == 0, done.stderr
    accounts = list((tmp_path / "data" / "auth").glob("*.json"))
    assert len(accounts) == 1
    assert json.loads(accounts[0].read_text())["refresh_token"] == json.loads(files["kimi"].read_text())[
        "refresh_token"]
    models = subprocess.run([sys.executable, "-m", "crossroute.cli", "models"], capture_output=True, text=True,
                            env=environment(tmp_path, home), timeout=60)
    assert models.returncode == 0, models.stderr
    assert "kimi/kimi-for-coding  [kimi]" in models.stdout  # without a config, the imported login is served


def test_without_a_config_only_the_login_kinds_with_accounts_become_providers(tmp_path: Path) -> None:
    auth = tmp_path / "auth"
    auth.mkdir()
    (auth / "k1.json").write_text(json.dumps({"provider": "kimi", "type": "oauth", "access_token": "a"}))
    (auth / "o1.json").write_text(json.dumps({"provider": "openrouter", "api_key": "k"}))  # not a login kind
    (auth / "bad.json").write_text("{not json")
    assert logged_in_kinds(auth) == ["kimi"]
    assert logged_in_kinds(tmp_path / "missing") == []

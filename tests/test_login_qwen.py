"""`crossroute login qwen` through the real command (a subprocess with no terminal)
against FakeQwen: the device login with PKCE (pending, then slow_down obeyed, then
approved), expired and denied codes, `--import` of qwen-code's credential file
(named, or the usual one), and the status list."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from crossroute.oauth.qwen import resource_base
from tests.fakes.qwen import CLIENT_ID, FakeQwen
from tests.login_kimi import CLIENT_KEY, account_files, cli, when_polled, write_config
from tests.pkce import challenge_of
from tests.test_login_device import one_line_error


def qwen_config(tmp: Path, fake: FakeQwen, **provider: Any) -> dict[str, Any]:
    """A qwen provider whose OAuth server is the fake; no base_url, so each account's resource_url serves."""
    return {
        "server": {"api_keys": [CLIENT_KEY]},
        "state": {"path": str(tmp / "state.sqlite3"), "auth_dir": str(tmp / "auth")},
        "providers": [{"name": "qwen", "kind": "qwen", "auth_url": fake.url, **provider}],
    }


def login(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return cli("login", "qwen", "--config", str(config), "--no-browser", *args)


@pytest.fixture
def qwen() -> Iterator[FakeQwen]:
    # Polls closer than 5.5 s apart answer slow_down: after one, the client must wait its 1 s + 5 s.
    with FakeQwen(interval=1, min_poll_interval=5.5, device_ttl=60) as fake:
        yield fake


def test_device_login_with_pkce_obeys_slow_down_and_writes_the_account(qwen: FakeQwen, tmp_path: Path) -> None:
    approver = when_polled(qwen, 2, qwen.approve)  # poll 1: pending; poll 2 (1 s later): slow_down
    done = login(write_config(tmp_path, qwen_config(tmp_path, qwen)), "--label", "work")
    approver.join(5)
    assert done.returncode == 0, done.stderr
    assert qwen.counters.polls == 3  # the third, 6 s after the second, was not too fast: approved
    device_call, *polls = [r for r in qwen.requests if r.protocol == "qwen-auth"]
    assert device_call.body["code_challenge_method"] == "S256" and device_call.body["client_id"] == CLIENT_ID
    assert {challenge_of(poll.body["code_verifier"]) for poll in polls} == {device_call.body["code_challenge"]}
    assert f"{qwen.url}/authorize" in done.stdout and "service ended" not in done.stderr
    assert "free OAuth tier ended on 2026-04-15" in done.stdout
    [path] = account_files(tmp_path)
    data = json.loads(path.read_text())
    assert f"account {path.stem} (label work)" in done.stdout
    assert data["provider"] == "qwen" and data["label"] == "work" and data["resource_url"] == qwen.url
    assert data["access_token"].startswith("qat_") and data["refresh_token"].startswith("qrt_")
    assert data["expires_at"] > time.time() + 3600
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert data["access_token"] not in done.stdout + done.stderr
    assert data["refresh_token"] not in done.stdout + done.stderr


def test_an_expired_code_fails_with_one_line_and_status_1(tmp_path: Path) -> None:
    with FakeQwen(interval=1, device_ttl=2) as qwen:
        done = login(write_config(tmp_path, qwen_config(tmp_path, qwen)))
    assert done.returncode == 1
    assert "expired_token" in one_line_error(done.stderr)
    assert not account_files(tmp_path)


def test_a_denied_login_fails_with_one_line_and_status_1(qwen: FakeQwen, tmp_path: Path) -> None:
    denier = when_polled(qwen, 1, qwen.deny)
    done = login(write_config(tmp_path, qwen_config(tmp_path, qwen)))
    denier.join(5)
    assert done.returncode == 1
    assert "denied (access_denied)" in one_line_error(done.stderr)
    assert not account_files(tmp_path)


def test_import_takes_qwen_codes_credential_file_named_or_in_its_usual_place(qwen: FakeQwen,
                                                                            tmp_path: Path) -> None:
    config = write_config(tmp_path, qwen_config(tmp_path, qwen))
    creds = qwen.oauth_creds()
    named = tmp_path / "creds.json"
    named.write_text(json.dumps(creds))
    done = login(config, "--import", str(named), "--label", "named")
    assert done.returncode == 0, done.stderr
    [path] = account_files(tmp_path)
    data = json.loads(path.read_text())
    assert (data["access_token"], data["refresh_token"]) == (creds["access_token"], creds["refresh_token"])
    assert data["expires_at"] == pytest.approx(creds["expiry_date"] / 1000) and data["resource_url"] == qwen.url

    home = tmp_path / "home"
    (home / ".qwen").mkdir(parents=True)
    (home / ".qwen" / "oauth_creds.json").write_text(json.dumps(qwen.oauth_creds()))
    env = {**os.environ, "HOME": str(home)}
    usual = subprocess.run([sys.executable, "-m", "crossroute.cli", "login", "qwen", "--config", str(config),
                            "--import", "--label", "usual"], capture_output=True, text=True, timeout=60,
                           stdin=subprocess.DEVNULL, env=env)
    assert usual.returncode == 0, usual.stderr
    assert len(account_files(tmp_path)) == 2
    assert qwen.counters.device_requests == 0  # no device login happened

    missing = login(config, "--import", str(tmp_path / "nothing.json"))
    assert missing.returncode == 1 and "does not exist" in one_line_error(missing.stderr)
    named.write_text(json.dumps({"access_token": "qat_x"}))
    broken = login(config, "--import", str(named))
    assert broken.returncode == 1 and "no access_token and refresh_token" in one_line_error(broken.stderr)


def test_login_list_says_the_service_ended_and_that_the_login_is_built() -> None:
    listed = cli("login", "--list")
    assert listed.returncode == 0, listed.stderr
    [row] = [line for line in listed.stdout.splitlines() if line.startswith("qwen ")]
    assert "service ended (2026-04-15)" in row
    assert "implemented for deployments and accounts where it still answers" in row
    assert "kind: openai, preset: dashscope" in row


def test_a_browser_login_for_qwen_is_refused_clearly(qwen: FakeQwen, tmp_path: Path) -> None:
    done = login(write_config(tmp_path, qwen_config(tmp_path, qwen)), "--browser")
    assert done.returncode == 2 and "no browser login" in one_line_error(done.stderr)


@pytest.mark.parametrize("given,base", [
    ("portal.qwen.ai", "https://portal.qwen.ai/v1"),
    ("https://dashscope.aliyuncs.com/compatible-mode/v1", "https://dashscope.aliyuncs.com/compatible-mode/v1"),
    ("http://127.0.0.1:8080/", "http://127.0.0.1:8080/v1"),
])
def test_resource_url_becomes_an_api_base(given: str, base: str) -> None:
    assert resource_base(given) == base

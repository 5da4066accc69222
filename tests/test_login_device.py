"""`crossroute login` through the real command (a subprocess with no terminal)
against the fake Kimi OAuth server: the whole device login, slow_down obeyed,
expired and denied codes, the status list, and the files it leaves."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.oauth_device import FakeKimi
from tests.login_kimi import cli, kimi_config, login, write_config


@pytest.fixture
def kimi() -> Iterator[FakeKimi]:
    with FakeKimi() as fake:
        yield fake


def one_line_error(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


def test_device_login_writes_an_account_and_a_second_label_makes_a_second_account(kimi: FakeKimi,
                                                                                   tmp_path: Path) -> None:
    kimi.oauth.approve_after = 3
    config = write_config(tmp_path, kimi_config(tmp_path, kimi))
    done = login(config, "--label", "work")
    assert done.returncode == 0, done.stderr
    sent = kimi.oauth.logins[-1]
    assert f"{kimi.url}/device" in done.stdout and sent.user_code in done.stdout
    assert "waiting for approval" in done.stdout
    assert sent.polls == 3 and kimi.oauth.too_fast == 0
    auth_dir = tmp_path / "auth"
    files = sorted(auth_dir.glob("*.json"))
    assert len(files) == 1
    data = json.loads(files[0].read_text())
    assert f"account {files[0].stem} (label work)" in done.stdout
    assert data["provider"] == "kimi" and data["type"] == "oauth" and data["label"] == "work"
    assert data["access_token"] in kimi.oauth.access and data["refresh_token"] in kimi.oauth.refresh_tokens
    assert data["device_id"] == sent.device_id  # the one the login's requests carried
    assert stat.S_IMODE(os.stat(files[0]).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(auth_dir).st_mode) == 0o700

    assert login(config, "--label", "home").returncode == 0
    assert login(config, "--label", "work").returncode == 0  # the same label renews its account
    labels = sorted(json.loads(path.read_text())["label"] for path in auth_dir.glob("*.json"))
    assert labels == ["home", "work"]
    assert json.loads(files[0].read_text())["access_token"] == kimi.oauth.issued[-2]

    listed = cli("accounts", "--config", str(config))
    assert listed.returncode == 0, listed.stderr
    rows = [line for line in listed.stdout.splitlines() if line.startswith("kimi-")]
    assert len(rows) == 2 and all(" ready " in row for row in rows)
    shown = done.stdout + done.stderr + listed.stdout + listed.stderr
    assert not [token for token in kimi.oauth.issued if token in shown]


def test_slow_down_adds_five_seconds_to_the_interval(kimi: FakeKimi, tmp_path: Path) -> None:
    kimi.oauth.slow_down_on = {1}
    kimi.oauth.approve_after = 3
    done = login(write_config(tmp_path, kimi_config(tmp_path, kimi)), "--label", "slow")
    assert done.returncode == 0, done.stderr
    assert kimi.oauth.too_fast == 0  # the fake answers slow_down again to any poll that comes early
    times = kimi.oauth.poll_times
    assert len(times) == 3 and times[1] - times[0] >= 1 + 5 - 0.3


def test_an_expired_code_fails_with_one_line_and_status_1(kimi: FakeKimi, tmp_path: Path) -> None:
    kimi.oauth.approve_after = None
    kimi.oauth.code_lifetime = 2.5
    done = login(write_config(tmp_path, kimi_config(tmp_path, kimi)))
    assert done.returncode == 1
    assert "expired" in one_line_error(done.stderr)
    assert not list((tmp_path / "auth").glob("*.json"))


def test_a_denied_login_fails_with_one_line_and_status_1(kimi: FakeKimi, tmp_path: Path) -> None:
    kimi.oauth.deny = True
    done = login(write_config(tmp_path, kimi_config(tmp_path, kimi)))
    assert done.returncode == 1
    assert "denied" in one_line_error(done.stderr)
    assert not list((tmp_path / "auth").glob("*.json"))


def test_login_list_shows_each_providers_status_and_refuses_the_unsupported(tmp_path: Path) -> None:
    listed = cli("login", "--list")
    assert listed.returncode == 0, listed.stderr
    status = {line.split()[0]: line for line in listed.stdout.splitlines()}
    assert " available " in status["kimi"] and " available " in status["codex"]
    assert "not supported (Anthropic authorises those credentials for Claude Code only)" in status["claude"]
    assert "not supported (its terms forbid third-party clients" in status["antigravity"]
    assert "service ended (2026-06-18)" in status["gemini-cli"] and "API key" in status["gemini-cli"]
    assert "service ended (2026-04-15)" in status["qwen"]
    for name, words in (("claude", "not supported"), ("gemini-cli", "service ended")):
        done = cli("login", name)
        assert done.returncode == 1 and words in one_line_error(done.stderr)
    unknown = cli("login", "nosuch")
    assert unknown.returncode == 2 and "login --list" in one_line_error(unknown.stderr)


def test_a_browser_login_for_kimi_is_refused_clearly(kimi: FakeKimi, tmp_path: Path) -> None:
    done = login(write_config(tmp_path, kimi_config(tmp_path, kimi)), "--browser")
    assert done.returncode == 2 and "no browser login" in one_line_error(done.stderr)


def test_an_auth_dir_others_can_read_is_reported(kimi: FakeKimi, tmp_path: Path) -> None:
    config = write_config(tmp_path, kimi_config(tmp_path, kimi))
    (tmp_path / "auth").mkdir(mode=0o755)
    os.chmod(tmp_path / "auth", 0o755)
    done = cli("accounts", "--config", str(config))
    assert done.returncode == 0
    assert "chmod 700" in done.stderr


def test_import_takes_a_token_file_the_user_names(kimi: FakeKimi, tmp_path: Path) -> None:
    config = write_config(tmp_path, kimi_config(tmp_path, kimi))
    answer = kimi.oauth.issue(device_id="device-imported")
    token_file = tmp_path / "kimi-token.json"
    token_file.write_text(json.dumps({"access_token": answer["access_token"], "refresh_token": answer["refresh_token"],
                                      "device_id": "device-imported", "expired": "2030-01-01T00:00:00Z",
                                      "type": "kimi"}))
    unnamed = login(config, "--import")
    assert unnamed.returncode == 1 and "--import PATH" in one_line_error(unnamed.stderr)
    done = login(config, "--import", str(token_file), "--label", "imported")
    assert done.returncode == 0, done.stderr
    [saved] = (tmp_path / "auth").glob("*.json")
    data = json.loads(saved.read_text())
    assert (data["access_token"], data["refresh_token"]) == (answer["access_token"], answer["refresh_token"])
    assert data["device_id"] == "device-imported" and data["expires_at"] == 1893456000
    assert not kimi.oauth.logins  # no device login happened

"""`crossroute login qoder` against FakeQoder: the browser sign-in with PKCE polling (the address
printed, the page visited as the user's browser would, the polls until the user signs in) and
`--token` (a Personal Access Token from stdin, never an argument); `crossroute login --list`;
`crossroute accounts` showing `needs login` ahead of a device token's expiry with the date, and
the plan's quota as Qoder reports it; no token in any output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx2 as httpx

from crossroute.oauth.qoder import CLIENT_ID
from tests.fakes.qoder import FakeQoder
from tests.login_kimi import cli, write_config
from tests.login_qoder import qoder_config, qoder_fixture, seed, seed_personal  # noqa: F401 - the `qoder` fixture


def account_files(auth_dir: Path) -> list[dict[str, object]]:
    return [json.loads(path.read_text()) for path in sorted(auth_dir.glob("*.json"))]


def test_the_browser_sign_in_prints_the_address_polls_and_keeps_the_account(
        qoder: FakeQoder, tmp_path: Path) -> None:
    config = write_config(tmp_path, qoder_config(tmp_path, qoder))
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    process = subprocess.Popen([sys.executable, "-m", "crossroute.cli", "login", "qoder", "--config", str(config),
                                "--no-browser"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               stdin=subprocess.DEVNULL, env=env)
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        url = first.split("open ", 1)[1].strip()
        parts = urlsplit(url)
        query = {name: values[0] for name, values in parse_qs(parts.query).items()}
        assert f"{parts.scheme}://{parts.netloc}{parts.path}" == f"{qoder.url}/device/selectAccounts"
        assert query["challenge_method"] == "S256" and query["client_id"] == CLIENT_ID
        assert "verifier" not in url and len(query["challenge"]) == 43
        deadline = time.monotonic() + 20
        while qoder.counters.polls < 2:  # polling before the user has even opened the page: pending
            assert time.monotonic() < deadline and process.poll() is None
            time.sleep(0.05)
        assert httpx.get(url, timeout=10).status_code == 200  # the user's browser
        qoder.approve()
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err
    [saved] = account_files(tmp_path / "auth")
    assert saved["provider"] == "qoder" and saved["label"] == qoder.identity.email
    assert str(saved["access_token"]).startswith("dt-") and saved["refresh_token"] is None
    assert saved["login"] == "browser" and saved["machine_id"] == query["machine_id"]
    assert saved["user_id"] == qoder.identity.user_id and saved["email"] == qoder.identity.email
    assert abs(float(saved["expires_at"]) - (time.time() + 30 * 86400)) < 60  # type: ignore[arg-type]
    assert str(saved["access_token"]) not in first + out + err


def test_a_personal_access_token_is_read_from_stdin_and_exchanged(qoder: FakeQoder, tmp_path: Path) -> None:
    config = write_config(tmp_path, qoder_config(tmp_path, qoder))
    personal = qoder.personal_token()
    done = subprocess.run([sys.executable, "-m", "crossroute.cli", "login", "qoder", "--config", str(config),
                           "--token", "--label", "ci"], input=f"{personal}\n", capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    [saved] = account_files(tmp_path / "auth")
    assert str(saved["access_token"]).startswith("jt-") and saved["refresh_token"] == personal
    assert saved["login"] == "token" and saved["label"] == "ci"
    assert abs(float(saved["expires_at"]) - (time.time() + 86400)) < 60  # type: ignore[arg-type]
    shown = done.stdout + done.stderr
    assert personal not in shown and str(saved["access_token"]) not in shown

    refused = subprocess.run([sys.executable, "-m", "crossroute.cli", "login", "qoder", "--config", str(config),
                              "--token"], input="pt-not-a-token-of-this-user\n", capture_output=True, text=True,
                             timeout=60)
    assert refused.returncode == 1 and "refused the personal access token (HTTP 401)" in refused.stderr
    assert "pt-not-a-token" not in refused.stdout + refused.stderr
    empty = subprocess.run([sys.executable, "-m", "crossroute.cli", "login", "qoder", "--config", str(config),
                            "--token"], input="", capture_output=True, text=True, timeout=60)
    assert empty.returncode == 1 and "no token was given" in empty.stderr
    as_argument = cli("login", "qoder", "--config", str(config), "--token", personal)
    assert as_argument.returncode == 2  # never on the command line
    assert len(account_files(tmp_path / "auth")) == 1


def test_login_list_shows_qoder_available_with_the_source_of_its_facts() -> None:
    listed = cli("login", "--list")
    [line] = [row for row in listed.stdout.splitlines() if row.startswith("qoder ")]
    assert "available" in line and "third-party reimplementations" in line


def test_accounts_show_needs_login_ahead_of_expiry_with_the_date_and_the_quota(
        qoder: FakeQoder, tmp_path: Path) -> None:
    auth = tmp_path / "auth"
    soon = seed(auth, qoder, "soon", lifetime=2 * 86400)
    later = seed(auth, qoder, "later", lifetime=20 * 86400)
    personal, personal_token = seed_personal(auth, qoder, "pat")
    qoder.usage.used = 125
    config = write_config(tmp_path, qoder_config(tmp_path, qoder))
    listed = cli("accounts", "--config", str(config), "--json")
    assert listed.returncode == 0, listed.stderr
    rows = {row["label"]: row for row in json.loads(listed.stdout)}
    assert rows["soon"]["state"] == "needs_login"
    assert rows["soon"]["fix"] == "crossroute login qoder --label soon"
    assert rows["later"]["state"] == rows["pat"]["state"] == "ready"  # the personal token renews the job token
    window = rows["later"]["quota"]["windows"][0]
    assert window["used_percent"] == 12.5 and window["resets_at"] > time.time() + 86400
    table = cli("accounts", "--config", str(config))
    line = next(row for row in table.stdout.splitlines() if " soon " in row)
    expiry = time.strftime("%Y-%m-%d", time.localtime(soon.credential.expires_at))  # type: ignore[union-attr]
    assert "needs login by " + expiry in line and "crossroute login qoder --label soon" in line
    assert "12% used" in table.stdout
    shown = listed.stdout + listed.stderr + table.stdout + table.stderr
    for secret in (soon.secret, later.secret, personal.secret, personal_token):
        assert secret not in shown

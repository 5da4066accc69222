"""The account store: the config's keys and the auth dir's files, on real
files and real processes (atomic writes under kill -9, readers beside a
writer, the watcher, malformed files, secrets kept out of logs)."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import signal
import stat
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from crossroute.accounts.authfile import MAX_FILE_BYTES, new_account_id, valid_account_id
from crossroute.accounts.files import FlockLock, LockTimeout, write_atomic
from crossroute.accounts.from_config import accounts_from_config
from crossroute.accounts.model import Account, ApiKey, OAuthToken
from crossroute.accounts.store import AccountStore
from crossroute.accounts.watch import watch_auth_dir
from crossroute.config import Config, parse_config

ROOT = Path(__file__).resolve().parents[1]
SECRET = "sk-file-SECRET-0123456789abcdef"
CONFIG_SECRET = "sk-config-SECRET-abcdef0123456789"


def make_config(auth_dir: Path, providers: list[dict[str, Any]] | None = None) -> Config:
    if providers is None:
        providers = [{"name": "openai", "kind": "openai", "api_keys": [CONFIG_SECRET, "sk-config-2"],
                      "headers": {"x-team": "a"}, "proxy": "http://127.0.0.1:3128"},
                     {"name": "local", "kind": "openai", "base_url": "http://127.0.0.1:11434/v1"}]
    return Config.model_validate({"state": {"auth_dir": str(auth_dir)}, "providers": providers})


@pytest.fixture
def auth_dir(tmp_path: Path) -> Path:
    return tmp_path / "auth"


@pytest.fixture
def store(auth_dir: Path) -> AccountStore:
    return AccountStore.open(make_config(auth_dir))


def put(path: Path, content: dict[str, Any] | bytes, mode: int = 0o600) -> Path:
    path.write_bytes(content if isinstance(content, bytes) else json.dumps(content).encode())
    path.chmod(mode)
    return path


def key_file(label: str = "work", key: str = SECRET, **more: Any) -> dict[str, Any]:
    return {"provider": "openai", "type": "api_key", "api_key": key, "label": label, **more}


def ids(store: AccountStore) -> list[str]:
    return [account.id for account in store.snapshot()]


def run_python(code: str, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


# ---------------------------------------------------------------- the config's accounts


def test_config_keys_become_accounts_with_index_ids_and_labels(tmp_path: Path) -> None:
    accounts = accounts_from_config(make_config(tmp_path))
    assert [(a.id, a.provider, a.label, a.secret) for a in accounts] == [
        ("openai#0", "openai", "openai key 1", CONFIG_SECRET),
        ("openai#1", "openai", "openai key 2", "sk-config-2"),
        ("local#0", "local", "local key 1", ""),  # a keyless provider still has one account
    ]
    assert all(a.headers == {} and a.proxy is None and a.source == "config" for a in accounts)
    assert CONFIG_SECRET not in repr(accounts)


def test_auth_dir_defaults_to_the_data_dir_and_expands_home(monkeypatch: pytest.MonkeyPatch,
                                                             tmp_path: Path) -> None:
    monkeypatch.setenv("CROSSROUTE_HOME", str(tmp_path / "home"))
    assert Config().state.auth_dir == str(tmp_path / "home" / "auth")
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    config = parse_config("state:\n  auth_dir: ~/keys\n")
    assert config.state.auth_dir == str(tmp_path / "user" / "keys")


# ---------------------------------------------------------------- writing


def test_write_is_atomic_0600_in_a_0700_dir_and_keeps_unknown_fields(store: AccountStore,
                                                                     auth_dir: Path) -> None:
    assert stat.S_IMODE(auth_dir.stat().st_mode) == 0o700
    account = store.write(Account(id="work", provider="openai", label="Work", credential=ApiKey(SECRET),
                                  priority=2, excluded_models=("gpt-4*",), headers={"x-org": "o1"}))
    path = auth_dir / "work.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert account.source == str(path) and store.get("work") == account
    assert [name for name in os.listdir(auth_dir) if name.endswith(".tmp")] == []

    data = json.loads(path.read_text())
    data["note"] = "kept by the user"
    put(path, data)
    store.reload()
    store.write(Account(id="work", provider="openai", label="Work 2", credential=ApiKey(SECRET)))
    data = json.loads(path.read_text())
    assert data["note"] == "kept by the user" and data["label"] == "Work 2"
    assert ids(store) == ["openai#0", "openai#1", "local#0", "work"]


def test_new_ids_are_readable_unique_valid_and_not_from_the_secret(store: AccountStore) -> None:
    made = {new_account_id("openai", "Me <me@example.com> / work") for _ in range(2)}
    assert len(made) == 2
    assert all(valid_account_id(i) and i.startswith("openai-Me-me@example.com-work-") for i in made)
    account = store.write(Account(id=new_account_id("openai"), provider="openai", label="",
                                  credential=ApiKey(SECRET)))
    assert SECRET not in account.id and Path(account.source).name == f"{account.id}.json"


def test_oauth_files_parse_and_round_trip_with_their_extras(store: AccountStore, auth_dir: Path) -> None:
    put(auth_dir / "me@example.com.json", {
        "provider": "openai", "type": "oauth", "access_token": "at-SECRET-0123456789",
        "refresh_token": "rt-SECRET-0123456789", "expires_at": "2030-01-02T03:04:05Z",
        "project_id": "proj-1", "email": "me@example.com"})
    store.reload()
    account = store.get("me@example.com")
    assert account is not None and isinstance(account.credential, OAuthToken)
    assert account.credential.expires_at == 1893553445.0
    assert account.credential.extras == {"project_id": "proj-1", "email": "me@example.com"}
    assert account.label == "me@example.com"

    renewed = OAuthToken("at-NEW-SECRET-0123456789", "rt-SECRET-0123456789", 1893560000.0,
                         account.credential.extras)
    store.write(Account(id=account.id, provider="openai", label="me", credential=renewed))
    data = json.loads((auth_dir / "me@example.com.json").read_text())
    assert (data["access_token"], data["expires_at"], data["project_id"]) == ("at-NEW-SECRET-0123456789",
                                                                             1893560000, "proj-1")
    store.write(Account(id=account.id, provider="openai", label="me", credential=ApiKey(SECRET)))
    data = json.loads((auth_dir / "me@example.com.json").read_text())
    assert "access_token" not in data and "refresh_token" not in data and data["api_key"] == SECRET


def test_disable_rewrites_a_file_and_keeps_config_choices_in_overrides(store: AccountStore,
                                                                      auth_dir: Path) -> None:
    put(auth_dir / "work.json", key_file(note="mine"))
    store.reload()
    store.set_disabled("work", True)
    assert json.loads((auth_dir / "work.json").read_text()) == {**key_file(note="mine"), "disabled": True}
    store.set_disabled("openai#1", True)
    assert json.loads((auth_dir / "overrides.json").read_text()) == {"openai#1": {"disabled": True}}
    assert stat.S_IMODE((auth_dir / "overrides.json").stat().st_mode) == 0o600

    again = AccountStore.open(make_config(auth_dir))  # another worker, or the next start
    assert [a.id for a in again.snapshot() if a.disabled] == ["openai#1", "work"]
    again.set_disabled("openai#1", False)
    assert json.loads((auth_dir / "overrides.json").read_text()) == {}
    store.reload()
    assert [a.id for a in store.snapshot() if a.disabled] == ["work"]


def test_config_accounts_cannot_be_written_or_deleted_and_missing_ones_are_key_errors(
        store: AccountStore) -> None:
    with pytest.raises(ValueError, match="config file"):
        store.delete("openai#0")
    with pytest.raises(ValueError, match="config file"):
        store.write(Account(id="openai#0", provider="openai", label="x", credential=ApiKey("k")))
    with pytest.raises(ValueError, match="not a valid account id"):
        store.write(Account(id="../escape", provider="openai", label="x", credential=ApiKey("k")))
    with pytest.raises(ValueError, match="not in the config"):
        store.write(Account(id="x", provider="nope", label="x", credential=ApiKey("k")))
    with pytest.raises(KeyError):
        store.delete("absent")
    with pytest.raises(KeyError):
        store.set_disabled("absent", True)


def test_a_file_readable_by_others_is_used_with_a_warning_and_left_as_it_is(
        store: AccountStore, auth_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = put(auth_dir / "shared.json", key_file(), mode=0o644)
    with caplog.at_level(logging.WARNING, "crossroute.accounts"):
        store.reload()
        store.reload()
    assert store.get("shared") is not None
    assert [r.getMessage() for r in caplog.records] == [
        "auth file shared.json can be read by other users (mode 644); run chmod 600 on it"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_a_new_provider_in_the_config_makes_its_files_count(store: AccountStore, auth_dir: Path) -> None:
    put(auth_dir / "later.json", {**key_file(), "provider": "later"})
    store.reload()
    assert store.get("later") is None
    config = make_config(auth_dir, [{"name": "later", "kind": "openai", "api_keys": ["k"]}])
    assert store.use_config(config)
    assert ids(store) == ["later#0", "later"]


# ---------------------------------------------------------------- malformed files


def _fifo(path: Path) -> None:
    os.mkfifo(path, 0o600)


def _outside_symlink(path: Path) -> None:
    outside = put(path.parent.parent / "outside.json", key_file())
    path.symlink_to(outside)


MALFORMED: list[tuple[str, Callable[[Path], object], str]] = [
    ("torn.json", lambda p: put(p, b'{"provider": "openai", "api_key": "' + SECRET.encode()), "not valid JSON"),
    ("list.json", lambda p: put(p, b'["' + SECRET.encode() + b'"]'), "a list, not a JSON object"),
    ("nokey.json", lambda p: put(p, {"provider": "openai"}), 'field "api_key" is missing'),
    ("typed.json", lambda p: put(p, key_file(priority="high")), 'field "priority" must be an integer'),
    ("kind.json", lambda p: put(p, key_file(type="cookie")), 'field "type" must be'),
    ("when.json", lambda p: put(p, {"provider": "openai", "type": "oauth", "access_token": SECRET,
                                     "expires_at": "soon"}), "RFC 3339"),
    ("proxy.json", lambda p: put(p, key_file(proxy=f"socks5://u:{SECRET}@h:1")), "proxies are not supported"),
    ("crlf.json", lambda p: put(p, key_file(key=SECRET + "\r\nx-forged: 1")), 'field "api_key" contains control'),
    ("header.json", lambda p: put(p, key_file(headers={"x-a": "b\r\nx-forged: 1"})), "cannot be sent in HTTP"),
    ("stranger.json", lambda p: put(p, {**key_file(), "provider": "nope"}), "provider 'nope' is not in the config"),
    ("-dash.json", lambda p: put(p, key_file()), "not a valid account id"),
    ("big.json", lambda p: put(p, key_file(pad="x" * MAX_FILE_BYTES)), f"larger than {MAX_FILE_BYTES} bytes"),
    ("fifo.json", _fifo, "not a regular file"),
    ("link.json", _outside_symlink, "a symlink to a file outside the auth dir"),
    ("dangling.json", lambda p: p.symlink_to(p.parent / "gone"), "a broken symlink"),
]


@pytest.mark.parametrize(("name", "make", "reason"), MALFORMED, ids=[case[0] for case in MALFORMED])
def test_a_malformed_file_is_logged_by_name_and_reason_and_changes_nothing_else(
        store: AccountStore, auth_dir: Path, caplog: pytest.LogCaptureFixture,
        name: str, make: Callable[[Path], object], reason: str) -> None:
    put(auth_dir / "good.json", key_file())
    store.reload()
    before = store.snapshot()
    make(auth_dir / name)
    with caplog.at_level(logging.DEBUG):
        store.reload()
        store.reload()  # an unchanged bad file is not reported again
    assert store.snapshot() == before
    lines = [r.getMessage() for r in caplog.records if r.name == "crossroute.accounts"]
    assert len(lines) == 1 and f"auth file {name}: " in lines[0] and reason in lines[0], lines
    assert SECRET not in caplog.text


def test_a_good_file_gone_bad_drops_its_account_until_fixed(store: AccountStore, auth_dir: Path,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    path = put(auth_dir / "work.json", key_file())
    store.reload()
    assert store.get("work") is not None
    put(path, key_file(weight=-1))
    with caplog.at_level(logging.ERROR, "crossroute.accounts"):
        assert store.reload()
    assert store.get("work") is None
    assert 'auth file work.json: field "weight" must be at least 0' in caplog.text
    assert "earlier version is dropped" in caplog.text
    put(path, key_file(weight=3))
    store.reload()
    account = store.get("work")
    assert account is not None and account.weight == 3


def test_secrets_stay_out_of_logs_reprs_and_errors(store: AccountStore, auth_dir: Path,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        store.write(Account(id="work", provider="openai", label="Work", credential=ApiKey(SECRET),
                            proxy="http://user:proxy-SECRET@127.0.0.1:3128"))
        store.write(Account(id="login", provider="openai", label="me",
                            credential=OAuthToken(SECRET + "-access", SECRET + "-refresh", 1.0)))
        store.set_disabled("work", True)
        put(auth_dir / "work.json", b'{"api_key": "' + SECRET.encode() + b'", "provider": ')
        store.reload()
        with pytest.raises(ValueError, match="work.json: not valid JSON") as refused:
            store.set_disabled("work", False)
    shown = caplog.text + repr(store.snapshot()) + repr(store.get("login")) + str(refused.value)
    shown += repr(store.get("login").credential)  # type: ignore[union-attr]
    assert "work.json" in caplog.text
    for secret in (SECRET, CONFIG_SECRET, "proxy-SECRET"):
        assert secret not in shown


# ---------------------------------------------------------------- processes


KILLED_WRITER = """
    import json, sys
    from pathlib import Path
    from crossroute.accounts.files import write_atomic
    path = Path(sys.argv[1])
    for n in range(1, 100_000):
        body = {"provider": "openai", "type": "api_key", "api_key": "k", "n": n, "pad": "x" * (n * 97 % 400_000)}
        write_atomic(path, json.dumps(body).encode())
        if n == 1:
            print("writing", flush=True)
"""


def test_kill_9_mid_rewrite_leaves_the_old_or_the_new_file_never_a_torn_one(store: AccountStore,
                                                                           auth_dir: Path) -> None:
    path = auth_dir / "busy.json"
    seen = set()
    rng = random.Random(9)
    for _ in range(6):
        writer = run_python(KILLED_WRITER, str(path))
        assert writer.stdout is not None and writer.stdout.readline() == "writing\n"
        time.sleep(rng.uniform(0.02, 0.4))
        assert writer.poll() is None, writer.stderr.read() if writer.stderr else ""  # killed mid-loop
        writer.send_signal(signal.SIGKILL)
        writer.wait(timeout=10)
        data = json.loads(path.read_bytes())  # whole: the old version or the new one
        assert len(data["pad"]) == data["n"] * 97 % 400_000
        seen.add(data["n"])
        store.reload()
        assert store.get("busy") is not None
    assert len(seen) > 1  # the kills landed at different points of the loop


LOCKED_WRITER = """
    import json, sys, time
    from pathlib import Path
    from crossroute.accounts.files import FlockLock
    path, rounds = Path(sys.argv[1]), int(sys.argv[2])
    lock = FlockLock(path.parent / ".locks")
    for n in range(rounds):
        body = json.dumps({"n": n, "pad": "y" * (n * 101 % 50_000)}).encode()
        with lock.hold("acc"), open(path, "r+b") as file:  # in place, on purpose: only the lock protects it
            file.truncate(0)
            for start in range(0, len(body), 4096):
                file.write(body[start:start + 4096])
                file.flush()
                time.sleep(0.0005)
    print("done", flush=True)
"""

LOCKED_READER = """
    import json, sys, time
    from pathlib import Path
    from crossroute.accounts.files import FlockLock
    path, stop = Path(sys.argv[1]), Path(sys.argv[2])
    lock = FlockLock(path.parent / ".locks")
    reads, versions, deadline = 0, set(), time.monotonic() + 60
    while not stop.exists() and time.monotonic() < deadline:
        with lock.hold("acc", shared=True):
            data = json.loads(path.read_bytes())
        assert len(data["pad"]) == data["n"] * 101 % 50_000, data["n"]
        reads += 1
        versions.add(data["n"])
        if reads == 1:
            print("reading", flush=True)
        time.sleep(0.001)  # two readers back to back could hold the shared lock forever and starve the writer
    print(reads, len(versions), flush=True)
"""


def readers_beside_a_writer(tmp_path: Path, reader: tuple[str, ...], writer: tuple[str, ...]) -> list[tuple[str, str]]:
    """Two reader processes (script, args..., then a stop file) run while one writer process does its
    rounds; each reader's (stdout, stderr) once the writer is done and they have stopped. The writer
    starts once both readers have read once (they print "reading"), so a slow start cannot miss it."""
    stop = tmp_path / "stop"
    readers = [run_python(*reader, str(stop)) for _ in range(2)]
    for process in readers:
        assert process.stdout is not None and process.stdout.readline() == "reading\n"
    writing = run_python(*writer)
    try:
        out, err = writing.communicate(timeout=120)
        assert writing.returncode == 0 and out == "done\n", err
    finally:
        stop.touch()
    results = []
    for process in readers:
        out, err = process.communicate(timeout=60)
        assert process.returncode == 0, err
        results.append((out, err))
    return results


def test_readers_under_the_shared_lock_never_see_a_rewrite_half_way(tmp_path: Path) -> None:
    path = tmp_path / "auth" / "acc.json"
    path.parent.mkdir()
    path.write_text(json.dumps({"n": 0, "pad": ""}))
    for out, _ in readers_beside_a_writer(tmp_path, (LOCKED_READER, str(path)), (LOCKED_WRITER, str(path), "400")):
        reads, versions = map(int, out.split())
        assert reads > 0 and versions > 1  # they did read while the writer was at work


STORE_WRITER = """
    import sys
    from crossroute.accounts.model import Account, ApiKey
    from crossroute.accounts.store import AccountStore
    from crossroute.config import Config
    config = Config.model_validate({"state": {"auth_dir": sys.argv[1]},
                                    "providers": [{"name": "openai", "kind": "openai"}]})
    store = AccountStore.open(config)
    for n in range(300):
        store.write(Account(id="acc", provider="openai", label="L" * n, credential=ApiKey("k" * (n + 1)),
                            priority=n))
    print("done", flush=True)
"""

STORE_READER = """
    import logging, sys, time
    from pathlib import Path
    from crossroute.accounts.store import AccountStore
    from crossroute.config import Config
    logging.basicConfig(level=logging.WARNING)
    config = Config.model_validate({"state": {"auth_dir": sys.argv[1]},
                                    "providers": [{"name": "openai", "kind": "openai"}]})
    stop = Path(sys.argv[2])
    store = AccountStore.open(config)
    reloads, deadline = 0, time.monotonic() + 60
    while not stop.exists() and time.monotonic() < deadline:
        store.reload()
        account = store.get("acc")
        n = account.priority
        assert (account.label, account.secret) == ("L" * n, "k" * (n + 1)), n
        reloads += 1
        if reloads == 1:
            print("reading", flush=True)
    print(reloads, flush=True)
"""


def test_store_readers_in_other_processes_always_see_a_whole_account(store: AccountStore,
                                                                     auth_dir: Path, tmp_path: Path) -> None:
    store.write(Account(id="acc", provider="openai", label="", credential=ApiKey("k"), priority=0))
    for out, err in readers_beside_a_writer(tmp_path, (STORE_READER, str(auth_dir)), (STORE_WRITER, str(auth_dir))):
        assert int(out) > 0, err
        assert err == ""  # nothing was ever logged as malformed


HOLDER = """
    import sys, time
    from pathlib import Path
    from crossroute.accounts.files import FlockLock
    with FlockLock(Path(sys.argv[1])).hold("work"):
        print("holding", flush=True)
        time.sleep(60)  # killed by the test long before
"""


def test_a_reader_waits_for_the_writer_and_keeps_what_it_had_while_the_lock_is_busy(
        store: AccountStore, auth_dir: Path) -> None:
    put(auth_dir / "work.json", key_file("old"))
    store.reload()
    holder = run_python(HOLDER, str(auth_dir / ".locks"))
    assert holder.stdout is not None and holder.stdout.readline() == "holding\n"
    try:
        with pytest.raises(LockTimeout):
            with FlockLock(auth_dir / ".locks").hold("work", shared=True, timeout=0.2):
                pass
        put(auth_dir / "work.json", key_file("new"))  # as if the writer were mid-refresh
        store.lock_timeout = 0.2
        store.reload()
        assert store.get("work").label == "old"  # type: ignore[union-attr]
    finally:
        holder.kill()
        holder.wait(timeout=10)
    store.reload()
    assert store.get("work").label == "new"  # type: ignore[union-attr]


# ---------------------------------------------------------------- the watcher


async def _until(condition: Callable[[], bool], timeout: float = 10.0,
                 poke: Callable[[], object] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the watcher did not pick up the change in time"
        if poke is not None:
            poke()
        await asyncio.sleep(0.1)


async def test_the_watcher_applies_an_added_edited_and_removed_file_without_a_restart(
        store: AccountStore, auth_dir: Path) -> None:
    snapshots: list[list[Account]] = []
    store.subscribe(snapshots.append)
    stop = asyncio.Event()
    task = asyncio.create_task(watch_auth_dir(store, stop))
    try:
        # The watcher is live once it sees a probe (written again until it does).
        await _until(lambda: store.get("probe") is not None,
                     poke=lambda: write_atomic(auth_dir / "probe.json", json.dumps(key_file()).encode()))

        write_atomic(auth_dir / "added.json", json.dumps(key_file("first")).encode())
        await _until(lambda: store.get("added") is not None)
        assert snapshots[-1] == store.snapshot()

        put(auth_dir / "added.json", key_file("edited in place", disabled=True))  # as an editor saves
        await _until(lambda: getattr(store.get("added"), "label", None) == "edited in place")
        assert store.get("added").disabled  # type: ignore[union-attr]

        (auth_dir / "added.json").unlink()
        await _until(lambda: store.get("added") is None)

        put(auth_dir / "overrides.json", {"openai#0": {"disabled": True}})
        await _until(lambda: store.get("openai#0").disabled)  # type: ignore[union-attr]
        assert snapshots[-1] == store.snapshot()
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)

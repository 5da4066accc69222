"""The accounts a gateway may use: the config's keys plus one file per account
in the auth dir (`state.auth_dir`).

How the pieces fit:
- `from_config.accounts_from_config` turns `providers[].api_keys` into accounts
  (`<provider>#<n>`); they change only with the config.
- `authfile` reads and writes the JSON of one account file, `<id>.json`.
- `files` writes atomically (temp, fsync, rename, fsync the dir), reads only
  small regular files inside the dir, and holds the per-account lock
  (`AccountLock`: shared to read, exclusive to rewrite).
- `AccountStore` (here) keeps the current set, rescans the dir on demand (a
  file whose stat is unchanged is not read again), writes/deletes/disables
  accounts and tells subscribers when the set changed.
- `watch.watch_auth_dir` rescans when the dir changes, so a file added, edited
  or removed takes effect without a restart.

The set is a function of the config and the files alone, so every worker (and
every restart) sees the same accounts: a file that cannot be used (bad JSON, a
missing or mistyped field, an unknown provider, a bad name, too big, not a
regular file) is logged once with its name and the reason and its account is
left out, even if an earlier version of it was good. Other accounts are not
touched. Options for the config's own accounts (`disable`) live in
`<auth dir>/overrides.json`, `{"<id>": {"disabled": true}}`, since the config
file is the user's and is not rewritten."""

from __future__ import annotations

import asyncio
import logging
import os
import stat
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crossroute.accounts.authfile import (
    ACCOUNT_ID_RULE,
    MAX_FILE_BYTES,
    OVERRIDES_STEM,
    BadAccountFile,
    load_json_object,
    parse_account,
    render_account,
    render_object,
    valid_account_id,
)
from crossroute.accounts.files import (
    DEFAULT_LOCK_TIMEOUT,
    AccountLock,
    FlockLock,
    LockTimeout,
    UnreadableFile,
    read_small_file,
    remove_durably,
    remove_stale_temps,
    write_atomic,
)
from crossroute.accounts.from_config import accounts_from_config
from crossroute.accounts.model import Account

if TYPE_CHECKING:
    from crossroute.config import Config

log = logging.getLogger("crossroute.accounts")

LOCK_DIR = ".locks"
OVERRIDES_FILE = f"{OVERRIDES_STEM}.json"
Subscriber = Callable[[list[Account]], None]


@dataclass(frozen=True, slots=True)
class _Entry:
    signature: tuple[int, ...]  # the file's stat when it was read: unchanged means not read again
    account: Account | None  # None: the file is not usable (and was logged)


class AccountStore:
    lock_timeout = DEFAULT_LOCK_TIMEOUT  # a reader waits this long for a writer, then keeps what it had

    def __init__(self, config: Config, lock: AccountLock | None = None) -> None:
        self.auth_dir = Path(config.state.auth_dir)
        self.lock: AccountLock = lock or FlockLock(self.auth_dir / LOCK_DIR)
        self._providers = frozenset(provider.name for provider in config.providers)
        self._config_accounts = accounts_from_config(config)
        self._entries: dict[str, _Entry] = {}  # by file name
        self._overrides: tuple[tuple[int, ...], dict[str, Any]] = ((), {})
        self._accounts: dict[str, Account] = {}  # by id, in snapshot order
        self._subscribers: list[Subscriber] = []
        self._mutex = threading.RLock()

    @classmethod
    def open(cls, config: Config, lock: AccountLock | None = None) -> AccountStore:
        """A store with the auth dir created (mode 0700) and read."""
        store = cls(config, lock)
        try:
            store.auth_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            warn_if_open(store.auth_dir)
            remove_stale_temps(store.auth_dir)
        except OSError as exc:
            log.error("auth dir %s cannot be created (%s); only the config's accounts are used",
                      store.auth_dir, exc.strerror)
        store.reload()
        return store

    # ------------------------------------------------------------ reading

    def snapshot(self) -> list[Account]:
        """The config's accounts in config order, then the files' by id."""
        return list(self._accounts.values())

    def get(self, account_id: str) -> Account | None:
        return self._accounts.get(account_id)

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Call `callback(snapshot)` whenever the set changes (from the thread
        that changed it: the watcher's event loop, or a writer's). Returns the
        unsubscribe function."""
        self._subscribers.append(callback)
        return lambda: self._subscribers.remove(callback)

    def reload(self) -> bool:
        """Rescan the auth dir; True (and subscribers told) if the set changed."""
        snapshot = self._refresh()
        if snapshot is not None:
            self._notify(snapshot)
        return snapshot is not None

    async def reload_async(self) -> bool:
        """`reload` with the file reads (which may wait on a lock) off the event loop."""
        snapshot = await asyncio.to_thread(self._refresh)
        if snapshot is not None:
            self._notify(snapshot)
        return snapshot is not None

    def use_config(self, config: Config) -> bool:
        """Take a reloaded config (same auth dir): its keys and providers."""
        if Path(config.state.auth_dir) != self.auth_dir:
            raise ValueError("state.auth_dir changed: open a new AccountStore")
        with self._mutex:
            self._providers = frozenset(provider.name for provider in config.providers)
            self._config_accounts = accounts_from_config(config)
            self._entries = {}  # each file is judged again against the new providers
            return self.reload()

    # ------------------------------------------------------------ writing

    def write(self, account: Account) -> Account:
        """Create or replace the file of `account` (atomically, mode 0600),
        keeping fields of the old file that the model does not hold."""
        self._check_file_account(account.id)
        if account.provider not in self._providers:
            raise ValueError(f"provider {account.provider!r} is not in the config")
        path = self._path(account.id)
        with self._mutex:
            self.auth_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            with self.lock.hold(account.id):
                write_atomic(path, render_account(account, self._existing_object(path)))
            self.reload()
            return self._accounts[account.id]

    def delete(self, account_id: str) -> None:
        self._check_file_account(account_id)
        with self._mutex:
            with self.lock.hold(account_id):
                try:
                    remove_durably(self._path(account_id))
                except FileNotFoundError:
                    raise KeyError(account_id) from None
            self.reload()

    def set_disabled(self, account_id: str, disabled: bool) -> None:
        """A file account's file gets `"disabled": ...`; a config account's
        choice is kept in overrides.json (the config file is left alone)."""
        if self._is_config_account(account_id):
            self._set_override(account_id, "disabled", disabled if disabled else None)
        else:
            self._check_file_account(account_id)
            self._edit_file(account_id, lambda data: data.__setitem__("disabled", disabled))

    # ------------------------------------------------------------ internals

    def _path(self, account_id: str) -> Path:
        return self.auth_dir / f"{account_id}.json"

    def _is_config_account(self, account_id: str) -> bool:
        return any(account.id == account_id for account in self._config_accounts)

    def _check_file_account(self, account_id: str) -> None:
        if self._is_config_account(account_id):
            raise ValueError(f"account {account_id} comes from the config file; change it there")
        if not valid_account_id(account_id):
            raise ValueError(f"{account_id!r} is not a valid account id ({ACCOUNT_ID_RULE})")

    def _existing_object(self, path: Path) -> dict[str, Any]:
        """The JSON of the file about to be replaced, so its extra fields live on."""
        try:
            return load_json_object(read_small_file(path, self.auth_dir, MAX_FILE_BYTES))
        except (OSError, ValueError):
            return {}

    def _edit_file(self, account_id: str, change: Callable[[dict[str, Any]], None]) -> None:
        path = self._path(account_id)
        with self._mutex:
            with self.lock.hold(account_id):
                data = self._read_object(path, account_id)
                change(data)
                write_atomic(path, render_object(data))
            self.reload()

    def _set_override(self, account_id: str, name: str, value: Any) -> None:
        path = self.auth_dir / OVERRIDES_FILE
        with self._mutex:
            self.auth_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            with self.lock.hold(OVERRIDES_STEM):
                data = self._read_object(path, None) if path.exists() else {}
                options = data.setdefault(account_id, {})
                if value is None:
                    options.pop(name, None)
                else:
                    options[name] = value
                if not options:
                    del data[account_id]
                write_atomic(path, render_object(data))
            self.reload()

    def _read_object(self, path: Path, account_id: str | None) -> dict[str, Any]:
        try:
            return load_json_object(read_small_file(path, self.auth_dir, MAX_FILE_BYTES))
        except FileNotFoundError:
            raise KeyError(account_id) from None
        except (UnreadableFile, BadAccountFile) as exc:
            raise ValueError(f"auth file {path.name}: {exc}; fix or remove it first") from None

    def _notify(self, snapshot: list[Account]) -> None:
        for callback in list(self._subscribers):
            try:
                callback(snapshot)
            except Exception:
                log.exception("an account-set subscriber failed")

    def _refresh(self) -> list[Account] | None:
        """Rescan; the new snapshot if the set changed, else None."""
        with self._mutex:
            self._entries = self._scan()
            self._overrides = self._read_overrides()
            accounts = self._build()
            if list(accounts.values()) == list(self._accounts.values()):
                return None
            self._accounts = accounts
            return list(accounts.values())

    def _build(self) -> dict[str, Account]:
        overrides = self._overrides[1]
        accounts = {}
        for account in self._config_accounts:
            disabled = overrides.get(account.id, {}).get("disabled")
            accounts[account.id] = account if disabled is None else replace(account, disabled=disabled)
        files = (entry.account for entry in self._entries.values() if entry.account is not None)
        accounts.update((account.id, account) for account in sorted(files, key=lambda account: account.id))
        return accounts

    def _scan(self) -> dict[str, _Entry]:
        try:
            names = sorted(os.listdir(self.auth_dir))
        except OSError as exc:
            if self._entries:
                log.error("auth dir %s cannot be read (%s); its accounts are not used", self.auth_dir,
                          exc.strerror)
            return {}
        entries = {}
        for name in names:
            if name.startswith(".") or not name.endswith(".json") or name == OVERRIDES_FILE:
                continue
            entry = self._entry(name, self._entries.get(name))
            if entry is not None:
                entries[name] = entry
        return entries

    def _entry(self, name: str, previous: _Entry | None) -> _Entry | None:
        path = self.auth_dir / name
        try:
            st = os.stat(path)
        except FileNotFoundError:
            st = None  # vanished since the listing, or a broken symlink
        except OSError as exc:
            return self._reject(name, (0,), f"unreadable ({exc.strerror})", previous)
        if st is None and not os.path.lexists(path):
            return None
        signature = _signature(st) if st else (0,)
        if previous is not None and previous.signature == signature:
            return previous
        try:
            account = self._load(name, path)
        except LockTimeout:
            return previous  # a writer is at work; its rename will bring another scan
        except (UnreadableFile, BadAccountFile) as exc:
            return self._reject(name, signature, str(exc), previous)
        except OSError as exc:
            return self._reject(name, signature, f"unreadable ({exc.strerror})", previous)
        if account.provider not in self._providers:
            log.warning("auth file %s: provider %r is not in the config; the file is ignored",
                        name, account.provider)
            return _Entry(signature, None)
        if st is not None and st.st_mode & 0o077:
            log.warning("auth file %s can be read by other users (mode %03o); run chmod 600 on it",
                        name, stat.S_IMODE(st.st_mode))
        return _Entry(signature, account)

    def _load(self, name: str, path: Path) -> Account:
        account_id = name.removesuffix(".json")
        if not valid_account_id(account_id):
            raise BadAccountFile(f"the name is not a valid account id ({ACCOUNT_ID_RULE})")
        with self.lock.hold(account_id, shared=True, timeout=self.lock_timeout):
            raw = read_small_file(path, self.auth_dir, MAX_FILE_BYTES)
        return parse_account(account_id, raw, str(path))

    @staticmethod
    def _reject(name: str, signature: tuple[int, ...], reason: str, previous: _Entry | None) -> _Entry:
        dropped = " (its earlier version is dropped too)" if previous and previous.account else ""
        log.error("auth file %s: %s; its account is not used until the file is fixed%s", name, reason, dropped)
        return _Entry(signature, None)

    def _read_overrides(self) -> tuple[tuple[int, ...], dict[str, Any]]:
        path = self.auth_dir / OVERRIDES_FILE
        try:
            signature = _signature(os.stat(path))
        except OSError:
            return (), {}
        if signature == self._overrides[0]:
            return self._overrides
        try:
            with self.lock.hold(OVERRIDES_STEM, shared=True, timeout=self.lock_timeout):
                data = load_json_object(read_small_file(path, self.auth_dir, MAX_FILE_BYTES))
            _check_overrides(data)
        except LockTimeout:
            return self._overrides
        except (UnreadableFile, BadAccountFile, OSError) as exc:
            reason = f"unreadable ({exc.strerror})" if isinstance(exc, OSError) else str(exc)
            log.error("%s: %s; no overrides apply until it is fixed", OVERRIDES_FILE, reason)
            return signature, {}
        return signature, data


def warn_if_open(auth_dir: Path) -> None:
    """A warning when users other than the owner can enter the auth dir (its files hold tokens)."""
    mode = stat.S_IMODE(os.stat(auth_dir).st_mode)
    if mode & 0o077:
        log.warning("auth dir %s can be read by other users (mode %03o); run chmod 700 on it", auth_dir, mode)


def _check_overrides(data: dict[str, Any]) -> None:
    for options in data.values():
        if not isinstance(options, dict):
            raise BadAccountFile("must map account ids to objects")
        if not isinstance(options.get("disabled", False), bool):
            raise BadAccountFile('field "disabled" must be true or false')


def _signature(st: os.stat_result) -> tuple[int, ...]:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_mode)

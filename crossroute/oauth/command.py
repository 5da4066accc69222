"""`crossroute login <provider>` and `crossroute login --list`.

`<provider>` is a provider's name in the config or a login kind. The login's
account is a file in the auth dir (0600, written atomically under the
account's lock): a new one per label, the same one again for a label already
logged in (which is how an account that needs a new login gets it)."""

from __future__ import annotations

import getpass
import logging
import os
import stat
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TextIO

import httpx

from crossroute.accounts.authfile import (
    MAX_FILE_BYTES,
    BadAccountFile,
    load_json_object,
    new_account_id,
    parse_account,
    render_account,
    valid_account_id,
)
from crossroute.accounts.files import FlockLock, UnreadableFile, read_small_file, write_atomic
from crossroute.accounts.model import Account, OAuthToken
from crossroute.accounts.store import LOCK_DIR, warn_if_open
from crossroute.config import Config
from crossroute.oauth import LOGINS, LoginKind, Unavailable
from crossroute.oauth.base import Flow, LoginContext, LoginFailed
from crossroute.oauth.discovery import describe_found, find_logins
from crossroute.oauth.http import control_client
from crossroute.providers.redaction import scrub
from crossroute.upstream_proxy import UnusableProxy

log = logging.getLogger("crossroute.oauth")


class UsageError(Exception):
    """A command line that names something that cannot be logged in to (exit status 2)."""


@dataclass(frozen=True, slots=True)
class Target:
    kind: LoginKind
    provider: str  # the provider name the account file names
    auth_url: str
    configured: bool  # whether the config has that provider (else the file waits for one)
    proxy: str | None = None  # the provider's `proxy:` (None: the environment's)


def list_logins(out: TextIO) -> None:
    rows = [(name, str(entry.status), entry.title + (f": {entry.status.note}" if entry.status.note else ""))
            for name, entry in LOGINS.items()]
    widths = [max(len(row[i]) for row in rows) for i in range(2)]
    for name, status, note in rows:
        print(f"{name.ljust(widths[0])}  {status.ljust(widths[1])}  {note}", file=out)
    found = describe_found(find_logins())
    print(*(found or ["No agent CLI logins found on this machine (Codex CLI, Kimi CLI, Qwen Code)."]),
          sep="\n", file=out)


def resolve(config: Config, name: str) -> Target:
    """The login `name` stands for: a configured provider of a login kind, or a login kind."""
    provider = next((p for p in config.providers if p.name == name), None)
    if provider is not None:
        entry = LOGINS.get(provider.kind)
        if not isinstance(entry, LoginKind):
            raise UsageError(f"provider {name} is of kind {provider.kind}, which takes API keys, not a login")
        assert provider.auth_url is not None
        return Target(entry, provider.name, provider.auth_url, True, provider.proxy)
    entry = LOGINS.get(name)
    if entry is None:
        known = ", ".join(sorted({*LOGINS, *(p.name for p in config.providers if p.kind in LOGINS)}))
        raise UsageError(f"no provider or login kind {name!r} (known: {known}; see crossroute login --list)")
    if isinstance(entry, Unavailable) or not entry.flows:
        raise LoginFailed(f"{entry.title}: {entry.status}" + (f"; {entry.status.note}" if entry.status.note else ""))
    of_kind = [p for p in config.providers if p.kind == name]
    if len(of_kind) > 1:
        raise UsageError(f"several providers are of kind {name} ({', '.join(p.name for p in of_kind)}): "
                         "name the one to log in to")
    if of_kind:
        assert of_kind[0].auth_url is not None
        return Target(entry, of_kind[0].name, of_kind[0].auth_url, True, of_kind[0].proxy)
    return Target(entry, name, entry.auth_url, False)


def choose_flow(kind: LoginKind, device: bool, browser: bool, importing: bool, token: bool = False) -> Flow:
    wanted: Flow | None = ("import" if importing else "token" if token else "device" if device
                           else "browser" if browser else None)
    if wanted is None:
        return next((flow for flow in kind.flows if flow not in ("import", "token")), kind.flows[0])
    if wanted not in kind.flows:
        offered = ", ".join(f"--{flow}" for flow in kind.flows)
        raise UsageError(f"{kind.title} has no {wanted} login (it offers {offered})")
    return wanted


def run_login(config: Config, name: str, *, label: str | None, device: bool = False, browser: bool = False,
              import_path: str | None = None, token: bool = False, open_browser: bool = True,
              out: TextIO = sys.stdout) -> Account:
    """`token`: log in with a token the user gives on stdin (a prompt without echo on a terminal),
    never on the command line, where the shell's history and `ps` would keep it."""
    target = resolve(config, name)
    flow = choose_flow(target.kind, device, browser, import_path is not None, token)
    if flow == "import":
        credential = import_token(target.kind, import_path or "")
    else:
        secret = read_secret(f"{target.kind.title} token: ") if flow == "token" else ""
        credential = _log_in(target, flow, out, open_browser, secret)
    account = save_login(Path(config.state.auth_dir), target.provider,
                         label or target.kind.default_label(credential) or target.provider, credential)
    print(f"Logged in: account {account.id} (label {account.label}) for provider {target.provider}", file=out)
    if not target.configured:
        print(f"To use it, add to the config's providers: - {{name: {target.provider}, kind: {target.kind.name}}} "
              f"(`crossroute serve` without a config serves it as it is)", file=out)
    return account


def _log_in(target: Target, flow: Flow, out: TextIO, open_browser: bool, secret: str = "") -> OAuthToken:
    """The kind's flow over a client through the provider's proxy; its failure as one line without a token."""
    try:
        with control_client(target.auth_url, target.proxy) as http:
            ctx = LoginContext(http, target.auth_url, out, open_browser)
            return target.kind.token_login(secret, ctx) if flow == "token" else target.kind.login(flow, ctx)
    except LoginFailed as exc:
        raise LoginFailed(scrub(str(exc), [secret] if secret else ())) from None
    except UnusableProxy as exc:
        raise LoginFailed(str(exc)) from None
    except httpx.HTTPError as exc:  # a flow that let one through
        raise LoginFailed(f"the OAuth server could not be reached ({type(exc).__name__})") from None


def read_secret(prompt: str, limit: int = 16 * 1024) -> str:
    """A token from the user: typed at a prompt that does not echo it, or the first line of piped input."""
    if sys.stdin is not None and sys.stdin.isatty():
        secret = getpass.getpass(prompt)
    else:
        secret = sys.stdin.readline(limit) if sys.stdin is not None else ""
    secret = secret.strip()
    if not secret:
        raise LoginFailed("no token was given (type it at the prompt, or pipe it: ... | crossroute login ... --token)")
    return secret


def import_token(kind: LoginKind, path_text: str) -> OAuthToken:
    """The token of a credential file the user names (or the kind's usual one); never read unasked."""
    path = Path(path_text).expanduser() if path_text else kind.default_import_path()
    if path is None:
        raise LoginFailed(f"{kind.title}: name the file to import: crossroute login {kind.name} --import PATH")
    try:
        data = load_json_object(read_small_file(path, path.parent, MAX_FILE_BYTES))
    except FileNotFoundError:
        raise LoginFailed(f"{path} does not exist") from None
    except (UnreadableFile, BadAccountFile) as exc:
        raise LoginFailed(f"{path}: {exc}") from None
    except OSError as exc:
        raise LoginFailed(f"{path} cannot be read ({exc.strerror})") from None
    return kind.import_token(data)


def save_login(auth_dir: Path, provider: str, label: str, token: OAuthToken) -> Account:
    """The account file for this login: the file of the same provider and label if there is
    one (its options kept, `needs_login` cleared), else a new one."""
    auth_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    warn_if_open(auth_dir)
    existing = _same_login(auth_dir, provider, label)
    if existing is None:
        account_id = new_account_id(provider, label)
        account = Account(account_id, provider, label, token, source=str(auth_dir / f"{account_id}.json"))
    else:
        account = replace(existing, credential=token, needs_login=None)
    path = Path(account.source)
    with FlockLock(auth_dir / LOCK_DIR).hold(account.id):
        write_atomic(path, render_account(account, _object_at(path)))
    return account


def _same_login(auth_dir: Path, provider: str, label: str) -> Account | None:
    for path in sorted(auth_dir.glob("*.json")):
        account_id = path.stem
        if not valid_account_id(account_id) or not _regular(path):
            continue
        try:
            account = parse_account(account_id, read_small_file(path, auth_dir, MAX_FILE_BYTES), str(path))
        except (OSError, ValueError):
            continue
        if account.provider == provider and account.label == label and isinstance(account.credential, OAuthToken):
            return account
    return None


def _regular(path: Path) -> bool:
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


def _object_at(path: Path) -> dict[str, Any]:
    try:
        return load_json_object(read_small_file(path, path.parent, MAX_FILE_BYTES))
    except (OSError, ValueError):
        return {}

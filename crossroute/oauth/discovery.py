"""Logins the user's own agent CLIs keep on this machine, found for the zero-config start and
`crossroute login --list`. Each is only named, with the `crossroute login <kind> --import
<path>` command that would use it: a file is looked at (it exists), never opened, and nothing
is used until the user runs that command.

    Codex CLI   $CODEX_HOME/auth.json, else ~/.codex/auth.json
    Kimi CLI    $KIMI_SHARE_DIR/credentials/kimi-code.json, else ~/.kimi/credentials/kimi-code.json
    Qwen Code   ~/.qwen/oauth_creds.json"""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from crossroute.oauth import LOGINS, LoginKind

# login kind -> (the CLI that keeps the file, the variable that moves its home, the file under that home,
#                the home without the variable, relative to the user's home)
_CLI_FILES: dict[str, tuple[str, str | None, str, str]] = {
    "codex": ("Codex CLI", "CODEX_HOME", "auth.json", ".codex"),
    "kimi": ("Kimi CLI", "KIMI_SHARE_DIR", "credentials/kimi-code.json", ".kimi"),
    "qwen": ("Qwen Code", None, "oauth_creds.json", ".qwen"),
}


@dataclass(frozen=True, slots=True)
class FoundLogin:
    kind: str
    owner: str  # the CLI whose file it is
    path: Path

    @property
    def command(self) -> str:
        return f"crossroute login {self.kind} --import {shlex.quote(str(self.path))}"

    def describe(self) -> str:
        entry = LOGINS.get(self.kind)
        if isinstance(entry, LoginKind) and "import" in entry.flows:
            return f"{self.owner} login at {self.path}: to use it, run {self.command}"
        status = entry.status if entry is not None else "not supported"
        return f"{self.owner} login at {self.path} (crossroute cannot import it: {self.kind} is {status})"


def cli_login_file(kind: str, env: Mapping[str, str] = os.environ) -> Path | None:
    """Where the kind's own CLI keeps its login (whether or not the file exists); None: no known CLI."""
    known = _CLI_FILES.get(kind)
    if known is None:
        return None
    _, variable, name, default_home = known
    moved = env.get(variable) if variable else None
    home = Path(moved).expanduser() if moved else _user_home(env) / default_home
    return home / name


def find_logins(env: Mapping[str, str] = os.environ) -> list[FoundLogin]:
    """The agent CLIs' login files that exist here (looked at, not opened)."""
    found = []
    for kind, (owner, *_) in _CLI_FILES.items():
        path = cli_login_file(kind, env)
        if path is not None and path.is_file():
            found.append(FoundLogin(kind, owner, path))
    return found


def describe_found(found: list[FoundLogin]) -> list[str]:
    """The lines that name them (none: no lines)."""
    if not found:
        return []
    return ["Logins found on this machine (not used until imported):", *(f"  {login.describe()}" for login in found)]


def _user_home(env: Mapping[str, str]) -> Path:
    home = env.get("HOME")
    return Path(home) if home else Path.home()

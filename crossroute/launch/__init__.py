"""`crossroute launch <client>`: start an agent CLI pointed at the gateway.

Each client gets a throwaway home / config dir (the user's own configuration
is never read or written), the gateway's address and key, the model the user
named, and its nonessential outbound traffic switched off (telemetry, update
checks, feature flags that would send the key to the client's vendor).

One module per client (crossroute/launch/<client>.py) names the wire formats the
client can speak (`FORMATS`, its default first) and has a `build` function returning
a `Launch`; it is imported only when that client is launched."""

from __future__ import annotations

import importlib
import os
import shlex
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Protocol

from crossroute.launch.base import PLACEHOLDER_KEY, Gateway, Launch

__all__ = ["CLIENTS", "PLACEHOLDER_KEY", "Gateway", "Launch", "describe", "prepare", "run"]

# client name -> its module under crossroute/launch/ (and the program looked up on PATH)
CLIENTS = ("codex", "claude", "gemini", "opencode", "qwen", "crush", "pi", "aider", "cline", "kilo")

class ClientModule(Protocol):
    FORMATS: tuple[str, ...]  # the wire formats the client can speak, its default first

    def build(self, gateway: Gateway, model: str, home: Path, program: str, fmt: str) -> Launch: ...


def client_module(client: str) -> ClientModule:
    if client not in CLIENTS:
        raise ValueError(f"unknown client {client!r}; choose one of {', '.join(CLIENTS)}")
    module: ClientModule = importlib.import_module(f"crossroute.launch.{client}")  # type: ignore[assignment]
    return module


def client_format(client: str, fmt: str | None) -> str:
    """The wire format the client is set up to speak: the one asked for, else its default."""
    spoken = client_module(client).FORMATS
    if fmt is None:
        return spoken[0]
    if fmt not in spoken:
        raise ValueError(f"{client} cannot speak {fmt}; it speaks {', '.join(spoken)}")
    return fmt


def prepare(client: str, gateway: Gateway, model: str, home: Path, program: str | None = None,
            fmt: str | None = None) -> Launch:
    launch = client_module(client).build(gateway, model, home, program or client, client_format(client, fmt))
    for relative, content in launch.files.items():
        path = home / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")
        path.chmod(0o600)
    return launch


def describe(client: str, launch: Launch, home: Path, extra_args: list[str]) -> str:
    """The --print form, for people who start the client themselves. Home-moving
    variables go on the command line alone, so pasting never changes the shell's HOME."""
    lines = [f"# {client} through crossroute (config files written under {home})"]
    local = launch.command_line_only()
    lines += [f"export {k}={shlex.quote(v)}" for k, v in launch.env.items() if k not in local]
    for relative, content in launch.files.items():
        if relative in launch.summarised:
            lines.append(f"# {home / relative}: written by crossroute ({len(content)} bytes)")
            continue
        lines += [f"# {home / relative}:", *(f"#   {line}" for line in content.rstrip().splitlines())]
    lines += [f"# {note}" for note in launch.notes]
    homes = [f"{k}={shlex.quote(v)}" for k, v in launch.env.items() if k in local]
    lines.append(" ".join([*homes, shlex.join([launch.program, *launch.args, *extra_args])]))
    return "\n".join(lines)


def run(client: str, gateway: Gateway, model: str, extra_args: list[str], *, program: str | None = None,
        fmt: str | None = None, print_only: bool = False) -> int:
    client_format(client, fmt)  # an unknown client or format fails before anything is written
    binary = program or shutil.which(client)
    if print_only:
        home = Path(tempfile.mkdtemp(prefix=f"crossroute-{client}-"))
        launch = prepare(client, gateway, model, home, binary or client, fmt)
        print(describe(client, launch, home, extra_args))
        return 0
    if binary is None:
        raise FileNotFoundError(f"{client} is not on PATH; install it or pass --bin")
    with tempfile.TemporaryDirectory(prefix=f"crossroute-{client}-") as tmp:
        home = Path(tmp)
        launch = prepare(client, gateway, model, home, binary, fmt)
        # PWD as well: OpenCode takes its project directory from it, and a caller may not have set it
        env = {**os.environ, "PWD": os.getcwd(), **launch.env}
        return subprocess.call([launch.program, *launch.args, *extra_args], env=env)

"""What a client builder returns, and what it is given."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

PLACEHOLDER_KEY = "crossroute-no-key"
# Variables that move where a client keeps its files: --print puts them on the command line
# only, so pasting the printed lines never changes the caller's own HOME or XDG dirs.
XDG_DIRS = {"XDG_CONFIG_HOME": ".config", "XDG_DATA_HOME": ".local/share", "XDG_CACHE_HOME": ".cache",
            "XDG_STATE_HOME": ".local/state"}
HOME_VARIABLES = frozenset({"HOME", *XDG_DIRS})


def temp_home_env(home: Path) -> dict[str, str]:
    """HOME and the XDG base dirs, all inside the temporary home, for clients that read either."""
    return {"HOME": str(home), **{variable: str(home / relative) for variable, relative in XDG_DIRS.items()}}


@dataclass(slots=True)
class Gateway:
    url: str  # http://host:port
    key: str | None

    @property
    def client_key(self) -> str:
        """The key a client sends; clients refuse to start without one even when the gateway needs none."""
        return self.key or PLACEHOLDER_KEY


@dataclass(slots=True)
class Launch:
    """Everything needed to start one client: the program, its arguments,
    environment additions and files to write (relative to the temp home)."""

    program: str
    args: list[str]
    env: dict[str, str] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    # files shown by --print as one line (long and machine-made, such as Codex's model catalog)
    summarised: tuple[str, ...] = ()
    # the client's own variables that --print keeps on the command line like HOME: its config and
    # data dirs, and anything that exported would change the caller's other programs
    scoped: tuple[str, ...] = ()

    def command_line_only(self) -> frozenset[str]:
        return HOME_VARIABLES | frozenset(self.scoped)

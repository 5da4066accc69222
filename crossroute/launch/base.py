"""What a client builder returns, and what it is given."""

from __future__ import annotations

from dataclasses import dataclass, field

PLACEHOLDER_KEY = "crossroute-no-key"
# Variables that move where a client keeps its files: --print puts them on the command line
# only, so pasting the printed lines never changes the caller's own HOME or XDG dirs.
HOME_VARIABLES = frozenset({"HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME"})


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

"""What a client builder returns, and what it is given."""

from __future__ import annotations

from dataclasses import dataclass, field

PLACEHOLDER_KEY = "crossroute-no-key"
# Variables that move where a client keeps its files: --print puts them on the command line
# only, so pasting the printed lines never changes the caller's own HOME or XDG dirs. Also
# E2E_TEST (Cline's feature-flag switch), too generic a name to leave exported in a shell.
HOME_VARIABLES = ("HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME",
                  "CRUSH_GLOBAL_CONFIG", "CRUSH_GLOBAL_DATA", "CRUSH_CACHE_DIR", "CRUSH_SKILLS_DIR",
                  "PI_CODING_AGENT_DIR", "PI_CODING_AGENT_SESSION_DIR", "E2E_TEST")


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

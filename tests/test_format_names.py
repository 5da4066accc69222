"""Nothing outside crossroute/formats/ branches on a format name: the core asks
the format object (`call.fmt.model_in_url`, `provider.format.parse_error`, ...),
so a format-name string literal anywhere else is a branch waiting to happen."""

from __future__ import annotations

import ast
from pathlib import Path

import crossroute
from crossroute import ir

PACKAGE = Path(crossroute.__file__).parent
NAMES = frozenset(ir.FORMATS)

# Files where the same words name something else, each with its reason. None in server/ or routing/.
ALLOWED = {
    "ir.py": "defines the format names themselves (ir.Format), which the formats import",
    "kinds.py": "provider kinds and presets as plain data, read by the config without loading the formats",
    "launch/__init__.py": "agent CLI names (`crossroute launch gemini`)",
}
# Packages whose files name formats for another reason: the agent CLIs say which formats they speak.
ALLOWED_PACKAGES = {"launch/": "each agent CLI's module names the wire formats that client speaks"}


def format_names_in(source: str, filename: str = "<source>") -> list[tuple[int, str]]:
    """(line, literal) of every string constant equal to a format name, f-string parts included."""
    return sorted((node.lineno, node.value) for node in ast.walk(ast.parse(source, filename))
                  if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in NAMES)


def core_files() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "formats" not in p.relative_to(PACKAGE).parts)


def test_no_format_name_literal_outside_formats() -> None:
    found = {}
    for path in core_files():
        rel = path.relative_to(PACKAGE).as_posix()
        if rel in ALLOWED or rel.startswith(tuple(ALLOWED_PACKAGES)):
            continue
        hits = format_names_in(path.read_text(encoding="utf-8"), rel)
        if hits:
            found[rel] = hits
    assert not found, f"format names outside crossroute/formats/ (use crossroute.formats.GEMINI etc.): {found}"


def test_every_exemption_is_still_needed() -> None:
    for rel in ALLOWED:
        path = PACKAGE / rel
        assert path.is_file(), f"{rel} is allowed but gone: drop it from ALLOWED"
        assert format_names_in(path.read_text(encoding="utf-8"), rel), f"{rel} no longer needs its exemption"


def test_the_check_sees_comparisons_calls_and_fstrings() -> None:
    source = 'if fmt == "gemini":\n    f(call, "anthropic")\nx = f"openai-chat"\ny = "gemini-2.5-pro"\n'
    assert format_names_in(source) == [(1, "gemini"), (2, "anthropic"), (3, "openai-chat")]

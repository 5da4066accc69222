"""Logins: the login-kind registry (`LOGINS`), one module per login provider.

    kind = login_kind("kimi")            # a LoginKind, or an Unavailable entry saying why not
    token = kind.login("device", ctx)    # crossroute/oauth/command.py runs this for `crossroute login`
    manager_for(kind, auth_url)          # refreshes (crossroute/oauth/refresh.py), used by the providers

A new login provider is a module here with a `LoginKind` subclass, one entry
in `LOGINS`, its defaults in crossroute/kinds.py (LOGIN_KINDS, DEFAULT_BASE_URLS)
and its provider class in crossroute/providers/."""

from __future__ import annotations

from crossroute.oauth.base import LoginKind, Status, Unavailable
from crossroute.oauth.codebuddy import CodeBuddyLogin
from crossroute.oauth.codex import CodexLogin
from crossroute.oauth.kimi import KimiLogin
from crossroute.oauth.qoder import QoderLogin
from crossroute.oauth.qwen import QwenLogin

LOGINS: dict[str, LoginKind | Unavailable] = {
    "kimi": KimiLogin(),
    "codex": CodexLogin(),
    "qwen": QwenLogin(),
    "qoder": QoderLogin(),
    "codebuddy": CodeBuddyLogin(),
    "claude": Unavailable("claude", "Claude.ai subscription (Claude Code login)", Status(
        "unsupported", "Anthropic authorises those credentials for Claude Code only",
        "use an Anthropic API key (kind: anthropic)")),
    "antigravity": Unavailable("antigravity", "Antigravity (Google)", Status(
        "unsupported", "its terms forbid third-party clients and accounts get banned", "use a Gemini API key")),
    "gemini-cli": Unavailable("gemini-cli", "Gemini CLI personal Google login", Status(
        "ended", "2026-06-18", "use a Gemini API key (kind: gemini)")),
}


def login_kind(name: str) -> LoginKind | Unavailable | None:
    return LOGINS.get(name)


__all__ = ["LOGINS", "LoginKind", "Status", "Unavailable", "login_kind"]

"""What `crossroute accounts` shows: each account with its shared state (as the
running gateway's workers left it in the state file), secrets masked."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from crossroute.accounts.model import Account, OAuthToken, mask
from crossroute.state.accounts import AccountView

REASON_WORDS = {"rate_limited": "rate limited", "quota_exhausted": "quota", "auth": "auth", "server": "server"}
COLUMNS = ("ID", "PROVIDER", "LABEL", "STATE", "IN FLIGHT", "REQUESTS", "TOKENS IN/OUT", "LAST ERROR", "SECRET")


@dataclass(frozen=True, slots=True)
class AccountRow:
    account: Account
    view: AccountView
    state: str  # "ready", "cooling", "disabled", "needs_login"

    def as_json(self) -> dict[str, Any]:
        view = self.view
        cooling = self.state == "cooling"
        return {
            "id": self.account.id, "provider": self.account.provider, "label": self.account.label,
            "source": self.account.source, "state": self.state,
            "cooling_until": view.cooling_until if cooling else None,
            "reason": view.reason if cooling else None,
            "in_flight": view.in_flight, "requests": view.requests,
            "input_tokens": view.input_tokens, "output_tokens": view.output_tokens, "errors": view.errors,
            "last_error": ({"status": view.last_status, "kind": view.last_kind, "at": view.last_error_at}
                           if view.last_status else None),
            "secret": mask(self.account.secret),
        }

    def cells(self, now: float) -> tuple[str, ...]:
        view = self.view
        return (self.account.id, self.account.provider, self.account.label or "-", self.describe_state(now),
                str(view.in_flight), str(view.requests), f"{view.input_tokens}/{view.output_tokens}",
                f"{view.last_status} {view.last_kind}".rstrip() if view.last_status else "-",
                mask(self.account.secret))

    def describe_state(self, now: float) -> str:
        if self.state == "cooling":
            why = REASON_WORDS.get(self.view.reason or "", "backoff")
            return f"cooling until {local_time(self.view.cooling_until, now)} ({why})"
        return self.state.replace("_", " ")


def rows(accounts: Sequence[Account], views: dict[str, AccountView], now: float | None = None) -> list[AccountRow]:
    now = time.time() if now is None else now
    return [AccountRow(account, views[account.id], state_of(account, views[account.id], now)) for account in accounts]


def state_of(account: Account, view: AccountView, now: float) -> str:
    if account.disabled:
        return "disabled"
    if needs_login(account, now):
        return "needs_login"
    if view.cooling_until > now:
        return "cooling"
    return "ready"


def needs_login(account: Account, now: float) -> bool:
    """An OAuth token that has run out and cannot be refreshed."""
    token = account.credential
    return (isinstance(token, OAuthToken) and not token.refresh_token
            and token.expires_at is not None and token.expires_at <= now)


def local_time(when: float, now: float) -> str:
    """HH:MM:SS local time, with the date in front when it is not today."""
    moment = datetime.fromtimestamp(when)
    if moment.date() == datetime.fromtimestamp(now).date():
        return moment.strftime("%H:%M:%S")
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def render_table(table: Sequence[AccountRow], now: float | None = None) -> str:
    now = time.time() if now is None else now
    lines = [COLUMNS, *(row.cells(now) for row in table)]
    widths = [max(len(line[column]) for line in lines) for column in range(len(COLUMNS))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
                     for line in lines)

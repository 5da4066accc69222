"""What `crossroute accounts` shows: each account with its shared state (as the
running gateway's workers left it in the state file), secrets masked."""

from __future__ import annotations

import shlex
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

import httpx

from crossroute.accounts.model import Account, OAuthToken, mask
from crossroute.state.accounts import AccountView, Quota, UsageWindow
from crossroute.upstream_proxy import UnusableProxy

if TYPE_CHECKING:
    from crossroute.config import ProviderConfig

RELOGIN_NOTICE = 3 * 86400.0  # seconds before a token that cannot be refreshed runs out that it shows `needs login`
QUOTA_TIMEOUT = 5.0  # seconds for a provider's quota answer
REASON_WORDS = {"rate_limited": "rate limited", "quota_exhausted": "quota", "auth": "auth", "server": "server"}
COLUMNS = ("ID", "PROVIDER", "LABEL", "STATE", "IN FLIGHT", "REQUESTS", "TOKENS IN/OUT", "QUOTA LEFT", "LAST ERROR",
           "SECRET")


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
            "quota": _quota_json(view.quota),
            "secret": mask(self.account.secret),
            "login": isinstance(self.account.credential, OAuthToken),
            "token_expires_at": _token_expiry(self.account),
            "needs_login": self.account.needs_login,
            "fix": login_command(self.account) if self.state == "needs_login" else None,
        }

    def cells(self, now: float) -> tuple[str, ...]:
        view = self.view
        return (self.account.id, self.account.provider, self.account.label or "-", self.describe_state(now),
                str(view.in_flight), str(view.requests), f"{view.input_tokens}/{view.output_tokens}",
                describe_quota(view.quota, now),
                f"{view.last_status} {view.last_kind}".rstrip() if view.last_status else "-",
                mask(self.account.secret) + describe_login(self.account, now))

    def describe_state(self, now: float) -> str:
        if self.state == "cooling":
            why = REASON_WORDS.get(self.view.reason or "", "backoff")
            return f"cooling until {local_time(self.view.cooling_until, now)} ({why})"
        if self.state == "needs_login":
            expires_at = _token_expiry(self.account)
            if self.account.needs_login is None and expires_at is not None and expires_at > now:
                return (f"needs login by {local_time(expires_at, now)} (its token cannot be refreshed): "
                        f"run {login_command(self.account)}")
            return f"needs login: run {login_command(self.account)}"
        return self.state.replace("_", " ")


def describe_quota(quota: Quota | None, now: float) -> str:
    """`req 4999/5000, tok 1.9M/2M (resets 12:03:10)` or a plan's windows (`5h 23% used (resets 14:03:00),
    week 4% used (...)`): what the upstream said last; `-` if it never did."""
    if quota is None:
        return "-"
    if quota.windows:
        return ", ".join(describe_window(window, now) for window in quota.windows)
    parts = [f"{name} {_amount(left)}/{_amount(limit)}"
             for name, left, limit in (("req", quota.requests_left, quota.requests_limit),
                                       ("tok", quota.tokens_left, quota.tokens_limit)) if left >= 0]
    text = ", ".join(parts) or "?"
    return f"{text} (resets {local_time(quota.resets_at, now)})" if quota.resets_at > now else text


def describe_window(window: UsageWindow, now: float) -> str:
    """`5h 23% used (resets 14:03:00)`: a plan's usage window."""
    text = f"{window.name} {window.used_percent:.0f}% used"
    return f"{text} (resets {local_time(window.resets_at, now)})" if window.resets_at > now else text


def _amount(count: int) -> str:
    if count < 0:
        return "?"
    if count < 10_000:
        return str(count)
    if count < 1_000_000:
        return f"{count / 1000:.4g}k"
    return f"{count / 1_000_000:.4g}M"


def _quota_json(quota: Quota | None) -> dict[str, Any] | None:
    if quota is None:
        return None
    def count(value: int) -> int | None:
        return value if value >= 0 else None
    return {"requests_left": count(quota.requests_left), "requests_limit": count(quota.requests_limit),
            "tokens_left": count(quota.tokens_left), "tokens_limit": count(quota.tokens_limit),
            "resets_at": quota.resets_at or None, "seen_at": quota.seen_at,
            "windows": [{"window": w.name, "minutes": w.minutes, "used_percent": w.used_percent,
                         "resets_at": w.resets_at or None} for w in quota.windows]}


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
    """A refresh token the provider refused, or an OAuth token that cannot be refreshed and runs out
    within RELOGIN_NOTICE (shown ahead, with the date, rather than failing on the day)."""
    token = account.credential
    return account.needs_login is not None or (isinstance(token, OAuthToken) and not token.refresh_token
            and token.expires_at is not None and token.expires_at - RELOGIN_NOTICE <= now)


def with_reported_quotas(accounts: Sequence[Account], views: dict[str, AccountView],
                         providers: Sequence[ProviderConfig]) -> dict[str, AccountView]:
    """The views with the quota that login kinds which report one (`LoginKind.reports_quota`) give now
    for each usable account; an account whose provider does not answer keeps its view."""
    from crossroute.oauth import LOGINS, LoginKind
    from crossroute.oauth.http import control_client

    configs = {provider.name: provider for provider in providers}
    for account in accounts:
        provider = configs.get(account.provider)
        kind = LOGINS.get(provider.kind) if provider is not None else None
        token = account.credential
        if (provider is None or provider.auth_url is None or not isinstance(kind, LoginKind) or not kind.reports_quota
                or not isinstance(token, OAuthToken) or not account.usable):
            continue
        proxy = provider.proxy if account.proxy is None else account.proxy
        try:
            with control_client(provider.auth_url, proxy, timeout=QUOTA_TIMEOUT) as http:
                quota = kind.fetch_quota(http, provider.auth_url, token)
        except (httpx.HTTPError, UnusableProxy):
            continue
        if quota is not None:
            views[account.id] = replace(views[account.id], quota=quota)
    return views


def describe_login(account: Account, now: float) -> str:
    """For a login's secret cell: when its access token runs out (never the token itself)."""
    expires_at = _token_expiry(account)
    if not isinstance(account.credential, OAuthToken) or account.needs_login is not None:
        return ""
    if expires_at is None:
        return " (login)"
    if expires_at <= now:
        return " (login, token expired: refreshed on next use)" if account.credential.refresh_token else \
            " (login, token expired)"
    return f" (login, token until {local_time(expires_at, now)})"


def _token_expiry(account: Account) -> float | None:
    token = account.credential
    return token.expires_at if isinstance(token, OAuthToken) else None


def login_command(account: Account) -> str:
    """The command that gives the account a new login (same provider and label, so the same file)."""
    return f"crossroute login {shlex.quote(account.provider)} --label {shlex.quote(account.label)}"


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

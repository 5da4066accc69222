"""Keeping login accounts' tokens fresh: ahead of expiry (by the kind's lead
time, before a request uses the token) and once after a 401.

One refresh per account at a time across every worker and process: the
refresh holds the account's lock (`AccountLock`, a flock on the host; a Redis
lock for replicas will fit the same seam) and reads the account file again
once it has it. If another process refreshed meanwhile, its token is used and
no call is made. The new tokens (a rotating refresh token above all) are
written to the file atomically before the new access token is handed to
anyone, so a kill -9 at any point leaves the old file or the new one.

A refusal that a retry cannot fix (`invalid_grant`, a revoked token) writes
`needs_login` into the file: every worker and `crossroute accounts` then see
it, routing skips the account, and no one calls the OAuth server for it again
until a new login replaces the file. A passing failure (network, 5xx) keeps
the current token while it lasts and waits `RETRY_SECONDS` before trying again."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import NoReturn

import httpx

from crossroute.accounts.authfile import MAX_FILE_BYTES, load_json_object, parse_account, render_account
from crossroute.accounts.files import AccountLock, FlockLock, LockTimeout, read_small_file, write_atomic
from crossroute.accounts.model import Account, OAuthToken
from crossroute.accounts.store import LOCK_DIR
from crossroute.oauth.base import HTTP_TIMEOUT, LoginKind, RefreshRejected, RefreshUnavailable
from crossroute.oauth.http import control_client
from crossroute.upstream_proxy import UnusableProxy

log = logging.getLogger("crossroute.oauth")

LOCK_WAIT = HTTP_TIMEOUT * 2  # a waiter outlasts the holder's one refresh call
RETRY_SECONDS = 30.0  # after a passing failure, no new try for this long (no storm on a down server)


def default_lock(auth_dir: Path) -> AccountLock:
    return FlockLock(auth_dir / LOCK_DIR)


class NeedsLogin(RefreshRejected):
    """The account's file says it needs a new login; nothing was called."""


class RefreshManager:
    """The tokens of one login kind's accounts (one manager per kind and OAuth server
    per process: `manager_for`). An account's file is `account.source`."""

    def __init__(self, kind: LoginKind, auth_url: str, *,
                 lock_for: Callable[[Path], AccountLock] = default_lock,
                 clock: Callable[[], float] = time.time) -> None:
        self.kind = kind
        self.auth_url = auth_url
        self.lead = kind.refresh_lead
        self._lock_for = lock_for
        self._clock = clock
        self._latest: dict[str, OAuthToken] = {}  # account id -> the newest token this process has seen
        self._refused: dict[str, str] = {}  # account id -> the access token whose refresh was refused
        self._retry_at: dict[str, float] = {}  # account id -> no refresh try before this (a passing failure)
        self._turns: dict[str, asyncio.Lock] = {}  # one refresh per account among this process's tasks

    # ------------------------------------------------------------ what requests call

    def current(self, account: Account) -> OAuthToken:
        """The newest token known for the account: its own, or one this process refreshed since
        (the auth-dir watcher brings the file's change to the account a moment later)."""
        token = _token_of(account)
        latest = self._latest.get(account.id)
        if latest is None or latest.access_token == token.access_token:
            return token
        if _later(latest, token):
            return latest
        del self._latest[account.id]  # the file moved past it (a new login)
        return token

    def expiring(self, token: OAuthToken) -> bool:
        return token.expires_at is not None and token.expires_at - self.lead <= self._clock()

    async def fresh_token(self, account: Account, proxy: str | None = None) -> OAuthToken:
        """A token good for more than the lead time, refreshed first if needed (no await when it is good).
        `proxy` is the provider's choice for the account (`Provider.proxy_for`; None: the environment's)."""
        token = self.current(account)
        if not self.expiring(token):
            return token
        return await self._refresh_async(account, token, rejected=False, proxy=proxy)

    async def after_rejection(self, account: Account, proxy: str | None = None) -> OAuthToken:
        """A new token after the API refused the one the request carried (`current`, a 401):
        another process's, or one refreshed now."""
        return await self._refresh_async(account, self.current(account), rejected=True, proxy=proxy)

    # ------------------------------------------------------------ the locked refresh

    def refresh(self, account: Account, stale: OAuthToken, proxy: str | None = None) -> OAuthToken:
        """Replace `stale` under the account's lock (blocking: the lock, the file, one HTTP call)."""
        path = account_path(account)
        try:
            with self._lock_for(path.parent).hold(account.id, timeout=LOCK_WAIT):
                return self._refresh_locked(account.id, path, stale, proxy)
        except LockTimeout:
            raise RefreshUnavailable(f"another refresh held the account's lock for over {LOCK_WAIT:g} s") from None

    def _refresh_locked(self, account_id: str, path: Path, stale: OAuthToken, proxy: str | None) -> OAuthToken:
        raw = read_small_file(path, path.parent, MAX_FILE_BYTES)
        on_disk = parse_account(account_id, raw, str(path))
        if on_disk.needs_login is not None:
            raise NeedsLogin(on_disk.needs_login)
        token = _token_of(on_disk)
        if token.access_token != stale.access_token and not self.expiring(token):
            self._latest[account_id] = token  # another process (or a new login) got there first
            return token
        if not token.refresh_token:
            self._mark_needs_login(path, raw, on_disk, "the login has no refresh token")
        try:
            fresh = self._call_refresh(token, proxy)
        except RefreshRejected as exc:
            self._mark_needs_login(path, raw, on_disk, str(exc))
        write_atomic(path, render_account(replace(on_disk, credential=fresh), load_json_object(raw)))
        self._latest[account_id] = fresh
        log.info("account %s: token refreshed", account_id)
        return fresh

    def _call_refresh(self, token: OAuthToken, proxy: str | None) -> OAuthToken:
        """The kind's refresh call, its errors holding no token (whatever the OAuth server echoed)."""
        try:
            with control_client(self.auth_url, proxy) as http:
                return self.kind.refresh(http, self.auth_url, token)
        except RefreshRejected as exc:
            raise RefreshRejected(_scrubbed(exc, token)) from None
        except RefreshUnavailable as exc:
            raise RefreshUnavailable(_scrubbed(exc, token)) from None
        except httpx.HTTPError as exc:
            raise RefreshUnavailable(f"the OAuth server could not be reached ({type(exc).__name__})") from None
        except UnusableProxy as exc:
            raise RefreshUnavailable(str(exc)) from None

    def _mark_needs_login(self, path: Path, raw: bytes, account: Account, reason: str) -> NoReturn:
        write_atomic(path, render_account(replace(account, needs_login=reason), load_json_object(raw)))
        log.warning("account %s needs a new login (%s): run crossroute login %s --label %s", account.id, reason,
                    account.provider, account.label)
        raise RefreshRejected(reason)

    # ------------------------------------------------------------ off the event loop, one at a time

    async def _refresh_async(self, account: Account, stale: OAuthToken, rejected: bool,
                             proxy: str | None = None) -> OAuthToken:
        turn = self._turns.setdefault(account.id, asyncio.Lock())
        async with turn:
            latest = self.current(account)
            if latest.access_token != stale.access_token and not self.expiring(latest):
                return latest  # a task of this process refreshed while this one waited
            if self._refused.get(account.id) == stale.access_token:
                raise NeedsLogin("its refresh token was refused")
            if self._clock() < self._retry_at.get(account.id, 0.0):
                return _still_good(stale, self._clock(), rejected, "the last refresh failed moments ago")
            try:
                return await asyncio.to_thread(self.refresh, account, stale, proxy)
            except RefreshRejected:
                self._refused[account.id] = stale.access_token
                raise
            except (RefreshUnavailable, OSError, ValueError) as exc:
                self._retry_at[account.id] = self._clock() + RETRY_SECONDS
                log.warning("account %s: token refresh failed (%s); next try in %.0f s", account.id,
                            _reason(exc), RETRY_SECONDS)
                return _still_good(stale, self._clock(), rejected, _reason(exc))


_MANAGERS: dict[tuple[str, str], RefreshManager] = {}


def manager_for(kind: LoginKind, auth_url: str) -> RefreshManager:
    """This process's manager for a kind and OAuth server (shared by the providers of successive configs)."""
    key = (kind.name, auth_url)
    manager = _MANAGERS.get(key)
    if manager is None:
        manager = _MANAGERS[key] = RefreshManager(kind, auth_url)
    return manager


def account_path(account: Account) -> Path:
    if account.source == "config":
        raise RefreshUnavailable("a login account must be a file in the auth dir")
    return Path(account.source)


def _token_of(account: Account) -> OAuthToken:
    token = account.credential
    if not isinstance(token, OAuthToken):
        raise RefreshRejected("the account holds an API key, not a login")
    return token


def _later(a: OAuthToken, b: OAuthToken) -> bool:
    """Whether `a` expires after `b` (a token without an expiry counts as the later one)."""
    if a.expires_at is None:
        return True
    return b.expires_at is not None and a.expires_at > b.expires_at


def _still_good(token: OAuthToken, now: float, rejected: bool, reason: str) -> OAuthToken:
    """The current token while it lasts, after a refresh that could not be done."""
    if rejected or (token.expires_at is not None and token.expires_at <= now):
        raise RefreshUnavailable(reason)
    return token


def _scrubbed(exc: Exception, token: OAuthToken) -> str:
    from crossroute.providers.redaction import scrub  # the providers package imports this module

    return scrub(str(exc), [token.access_token, *([token.refresh_token] if token.refresh_token else [])])


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError):
        return f"the account file could not be used ({exc.strerror or type(exc).__name__})"
    return str(exc)

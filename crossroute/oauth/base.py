"""What every login provider declares, and the errors of logging in and refreshing.

A login kind (`LoginKind`) is one module in this package: its name (also the
provider `kind:` in the config), its status for `crossroute login --list`,
its default OAuth server and API (crossroute/kinds.py, read by the config),
how long before expiry its tokens are refreshed, the flows it logs in with,
how it refreshes, and how a token answer becomes an `OAuthToken` (+ extras).
The HTTP is httpx (control plane); the data plane never waits on it except
for a refresh, which the refresh manager runs off the event loop."""

from __future__ import annotations

import os
import re
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal, TextIO

import httpx

from crossroute.accounts.model import OAuthToken
from crossroute.kinds import DEFAULT_BASE_URLS, LOGIN_KINDS
from crossroute.state.accounts import Quota

Flow = Literal["device", "browser", "import", "token"]  # token: a token the user pastes (`--token`)
HTTP_TIMEOUT = 15.0  # seconds for one call to an OAuth server
_ERROR_CODE = re.compile(r"[a-z][a-z0-9_.-]{0,63}")
# Refresh answers that mean the refresh token is gone for good: only a new login helps.
TERMINAL_REFRESH_ERRORS = frozenset({"invalid_grant", "invalid_client", "unauthorized_client", "access_denied",
                                     "refresh_token_reused", "invalid_token", "expired_token"})


class LoginFailed(Exception):
    """A login that did not complete; the message is one line for the user and holds no secret."""


class RefreshRejected(Exception):
    """The OAuth server refused the refresh token for good (`invalid_grant`, revoked): the
    account needs a new login. The message is a short reason with no secret in it."""


class RefreshUnavailable(Exception):
    """The refresh could not be done now (network, 5xx, 429, a lock held too long); try later."""


@dataclass(frozen=True, slots=True)
class Status:
    """What `crossroute login --list` says of a login provider."""

    state: Literal["available", "ended", "unsupported"]
    detail: str = ""  # the date a service ended, or why it is not supported
    note: str = ""  # what to use instead, or a remark

    def __str__(self) -> str:
        if self.state == "ended":
            return f"service ended ({self.detail})"
        if self.state == "unsupported":
            return f"not supported ({self.detail})"
        return "available"


def read_line(prompt: str, limit: int = 64 * 1024) -> str:
    """input() without sys.stdin's buffer: a flow may read in a daemon thread while another
    answer wins, and a daemon thread left holding that buffer's lock aborts the interpreter's exit.
    EOFError when the input is closed."""
    sys.stdout.write(prompt)
    sys.stdout.flush()
    line = b""
    while not line.endswith(b"\n") and len(line) < limit:
        chunk = os.read(0, 4096)
        if not chunk:
            if not line:
                raise EOFError
            break
        line += chunk
    return line.decode("utf-8", "replace").strip()


@dataclass(slots=True)
class LoginContext:
    """What a flow needs from the command that runs it."""

    http: httpx.Client
    auth_url: str  # the OAuth server's base (the config's auth_url or the kind's default)
    out: TextIO  # where the user reads the instructions and the progress
    open_browser: bool = True
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    ask: Callable[[str], str] = read_line  # a line from the user (a redirect URL pasted on a headless host)


class LoginKind:
    """A login provider. Subclasses set the class attributes and implement `login`
    (and `refresh` when the kind's refresh is not the RFC 6749 one of `refresh_grant`)."""

    name: ClassVar[str]
    title: ClassVar[str]
    status: ClassVar[Status]
    flows: ClassVar[tuple[Flow, ...]] = ()  # the first is the default; none: `crossroute login` explains why not
    refresh_lead: ClassVar[float] = 300.0  # seconds before expiry a token is refreshed
    reports_quota: ClassVar[bool] = False  # whether `fetch_quota` asks the provider (`crossroute accounts` shows it)

    @property
    def auth_url(self) -> str:
        return LOGIN_KINDS[self.name].auth_url

    @property
    def base_url(self) -> str:
        url = DEFAULT_BASE_URLS[self.name]
        assert url is not None
        return url

    def login(self, flow: Flow, ctx: LoginContext) -> OAuthToken:
        """Run `flow` (one of `flows`, not "import") to its end; LoginFailed otherwise."""
        raise LoginFailed(f"{self.title}: {flow} login is not available")

    def refresh(self, http: httpx.Client, auth_url: str, token: OAuthToken) -> OAuthToken:
        """A new token for `token` (its extras carried over): RefreshRejected or RefreshUnavailable otherwise."""
        raise RefreshRejected("this kind cannot refresh its tokens")

    def token_login(self, secret: str, ctx: LoginContext) -> OAuthToken:
        """The account for a token the user pasted (`--token`: a personal access token, an API key)."""
        raise LoginFailed(f"{self.title} has no token login")

    def fetch_quota(self, http: httpx.Client, auth_url: str, token: OAuthToken) -> Quota | None:
        """The plan's usage as the provider reports it (only with `reports_quota`); None: not told."""
        return None

    def import_token(self, data: Mapping[str, Any]) -> OAuthToken:
        """The token in a credential file the user already has (`--import PATH`)."""
        raise LoginFailed(f"{self.title} has no import")

    def default_import_path(self) -> Path | None:
        """Where `--import` without a PATH looks (the provider's own CLI's file), if anywhere."""
        return None

    def default_label(self, token: OAuthToken) -> str | None:
        """A label from the token (an email in its claims, say) when `--label` is not given."""
        return None

    def request_headers(self, token: OAuthToken) -> dict[str, str]:
        """Headers the API wants with this account's token besides the bearer (an account or device id)."""
        return {}

    def answer_extras(self, answer: Mapping[str, Any]) -> dict[str, Any]:
        """What of a token answer besides the tokens is kept in the account file."""
        return {name: answer[name] for name in ("token_type", "scope") if isinstance(answer.get(name), str)}

    def token_from_answer(self, answer: Mapping[str, Any], previous: OAuthToken | None = None,
                          now: float | None = None) -> OAuthToken:
        """An RFC 6749 token answer as an OAuthToken. A refresh answer may leave out the refresh
        token (the old one stays) and carries the previous token's extras over."""
        access = answer.get("access_token")
        if not isinstance(access, str) or not access:
            raise RefreshUnavailable("the token answer has no access_token")
        refresh = answer.get("refresh_token")
        if not isinstance(refresh, str) or not refresh:
            refresh = previous.refresh_token if previous else None
        lifetime = answer.get("expires_in")
        if isinstance(lifetime, str):
            try:
                lifetime = float(lifetime)
            except ValueError:
                lifetime = None
        now = time.time() if now is None else now
        expires_at = now + float(lifetime) if isinstance(lifetime, int | float) and lifetime > 0 else None
        extras = {**(previous.extras if previous else {}), **self.answer_extras(answer)}
        return OAuthToken(access, refresh, expires_at, extras)


@dataclass(frozen=True, slots=True)
class Unavailable:
    """A login provider crossroute lists but does not log in to (by policy, or a service that ended)."""

    name: str
    title: str
    status: Status


def refresh_grant(http: httpx.Client, token_url: str, form: Mapping[str, str],
                  headers: Mapping[str, str] | None = None) -> dict[str, Any]:
    """POST an RFC 6749 section 6 refresh (`form` has grant_type, refresh_token, client_id, ...):
    the token answer, RefreshRejected for a refusal that a retry cannot fix, RefreshUnavailable
    for one it may. Neither error quotes the answer's text, only its error code."""
    try:
        response = http.post(token_url, data=dict(form), headers=dict(headers or {}))
    except httpx.HTTPError as exc:
        raise RefreshUnavailable(f"the OAuth server could not be reached ({type(exc).__name__})") from None
    answer = json_object(response)
    code = error_code(answer)
    if response.status_code == 200 and code is None:
        return answer
    reason = f"{code} (HTTP {response.status_code})" if code else f"HTTP {response.status_code}"
    if code in TERMINAL_REFRESH_ERRORS or response.status_code in (400, 401, 403):
        raise RefreshRejected(f"the refresh token was refused: {reason}")
    raise RefreshUnavailable(f"the OAuth server did not refresh: {reason}")


def json_object(response: httpx.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def error_code(answer: Mapping[str, Any]) -> str | None:
    """The answer's OAuth `error` code, if it is one (a short word, so it can be shown and logged)."""
    code = answer.get("error")
    if isinstance(code, dict):  # some servers nest it: {"error": {"code": ...}}
        code = code.get("code") or code.get("type")
    if isinstance(code, str) and _ERROR_CODE.fullmatch(code):
        return code
    return None if code is None else "error"

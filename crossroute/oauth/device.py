"""The RFC 8628 device authorization grant, as a client: ask for a device code,
show the user where to enter it (and open a browser when there is a display),
then poll the token endpoint at the server's interval (5 s more after each
`slow_down`) until the user approves, denies, or the code expires.
PKCE (S256) is added when the kind's grant asks for it (Qwen)."""

from __future__ import annotations

import os
import sys
import webbrowser
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from crossroute.oauth.base import LoginContext, LoginFailed, error_code, json_object
from crossroute.oauth.pkce import Pkce

DEVICE_GRANT_TYPE = "urn:ietf:params:oauth:grant-type:device_code"
DEFAULT_INTERVAL = 5.0  # RFC 8628 section 3.5, when the server names none
MIN_INTERVAL = 1.0
SLOW_DOWN_STEP = 5.0  # RFC 8628 section 3.5
MAX_WAIT = 15 * 60.0  # no login waits longer, whatever the server says
QUIET_PROGRESS = 30.0  # without a terminal, a progress line at most this often
MAX_NETWORK_ERRORS = 3  # polls in a row that fail to reach the server before the login gives up
_FAILURES = {
    "expired_token": "the code expired before the sign-in was approved (expired_token); run the command again",
    "access_denied": "the sign-in was denied (access_denied)",
}


@dataclass(frozen=True, slots=True)
class DeviceGrant:
    """One kind's device grant endpoints and parameters."""

    device_url: str  # the device authorization endpoint
    token_url: str
    client_id: str
    scope: str | None = None
    pkce: bool = False  # send code_challenge (S256) and then code_verifier
    headers: Mapping[str, str] = field(default_factory=dict)  # on every call (Kimi's X-Msh-*)


@dataclass(frozen=True, slots=True)
class DeviceCode:
    device_code: str
    user_code: str
    verification_uri: str
    verification_uri_complete: str | None
    expires_in: float
    interval: float


def run_device_flow(grant: DeviceGrant, ctx: LoginContext) -> dict[str, Any]:
    """The token answer once the user approved; LoginFailed with a one-line reason otherwise."""
    pkce = Pkce.new() if grant.pkce else None
    code = request_device_code(grant, ctx.http, pkce)
    show_instructions(code, ctx)
    return poll_for_token(grant, code, ctx, pkce)


def request_device_code(grant: DeviceGrant, http: httpx.Client, pkce: Pkce | None) -> DeviceCode:
    form = {"client_id": grant.client_id}
    if grant.scope:
        form["scope"] = grant.scope
    if pkce is not None:
        form.update(code_challenge=pkce.challenge, code_challenge_method=pkce.method)
    answer = _post(http, grant.device_url, form, grant.headers)
    if answer.status_code != 200:
        code = error_code(json_object(answer))
        raise LoginFailed(f"the OAuth server refused to start a login ({code or f'HTTP {answer.status_code}'})")
    return _device_code(json_object(answer))


def _device_code(data: dict[str, Any]) -> DeviceCode:
    device_code, user_code = data.get("device_code"), data.get("user_code")
    uri = data.get("verification_uri") or data.get("verification_url")
    if not all(isinstance(v, str) and v for v in (device_code, user_code, uri)):
        raise LoginFailed("the OAuth server's device authorization answer lacks device_code, user_code or "
                          "verification_uri")
    complete = data.get("verification_uri_complete")
    return DeviceCode(str(device_code), str(user_code), str(uri), complete if isinstance(complete, str) else None,
                      seconds_of(data.get("expires_in"), MAX_WAIT), max(MIN_INTERVAL, seconds_of(data.get("interval"),
                                                                                            DEFAULT_INTERVAL)))


def show_instructions(code: DeviceCode, ctx: LoginContext) -> None:
    out = ctx.out
    print(f"To sign in, open {code.verification_uri} and enter the code {code.user_code}", file=out)
    if code.verification_uri_complete:
        print(f"(or open {code.verification_uri_complete})", file=out)
    if ctx.open_browser and has_display():
        try:
            opened = webbrowser.open(code.verification_uri_complete or code.verification_uri)
        except webbrowser.Error:
            opened = False
        if opened:
            print("A browser was opened at that address.", file=out)
    out.flush()


def has_display() -> bool:
    """Whether a browser could show up for the user (not on a headless host or over plain ssh)."""
    if sys.platform in ("darwin", "win32"):
        return not os.environ.get("SSH_CONNECTION")
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def poll_for_token(grant: DeviceGrant, code: DeviceCode, ctx: LoginContext, pkce: Pkce | None) -> dict[str, Any]:
    form = {"grant_type": DEVICE_GRANT_TYPE, "client_id": grant.client_id, "device_code": code.device_code}
    if pkce is not None:
        form["code_verifier"] = pkce.verifier
    interval = code.interval
    # the server should have said `expired_token` by the code's end (Poll adds one interval of grace)
    with Poll(ctx, min(code.expires_in, MAX_WAIT), _FAILURES["expired_token"]) as poll:
        while True:
            answer = poll.call(interval, lambda: ctx.http.post(grant.token_url, data=form,
                                                               headers=dict(grant.headers)))
            if answer is None:
                continue
            data = json_object(answer)
            code_word = error_code(data)
            if answer.status_code == 200 and code_word is None and isinstance(data.get("access_token"), str):
                return data
            if code_word == "authorization_pending":
                continue
            if code_word == "slow_down" or (answer.status_code == 429 and code_word is None):
                interval += SLOW_DOWN_STEP
                continue
            raise LoginFailed(_FAILURES.get(code_word or "", f"the OAuth server refused the login "
                                                             f"({code_word or f'HTTP {answer.status_code}'})"))


class Poll:
    """The rounds of a login's polling, in a `with` (the progress line ends with it): each `call` waits
    its interval, gives up once `lifetime` (and one interval) is past, shows the progress and makes the
    round's request. A server out of reach is tried again; MAX_NETWORK_ERRORS in a row end the login."""

    def __init__(self, ctx: LoginContext, lifetime: float, expired: str, server: str = "the OAuth server") -> None:
        self.ctx = ctx
        self.lifetime = lifetime
        self.expired = expired  # the one line a login that ran out of time ends with
        self.server = server
        self.progress = PollProgress(ctx)
        self.started = ctx.clock()
        self.network_errors = 0

    def __enter__(self) -> Poll:
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.done()

    def call(self, interval: float, request: Callable[[], httpx.Response]) -> httpx.Response | None:
        """The round's answer, or None when the server could not be reached this time."""
        self.ctx.sleep(interval)
        elapsed = self.ctx.clock() - self.started
        if elapsed > self.lifetime + interval:
            raise LoginFailed(self.expired)
        self.progress.waiting(elapsed)
        try:
            answer = request()
        except httpx.HTTPError as exc:
            self.network_errors += 1
            if self.network_errors >= MAX_NETWORK_ERRORS:
                raise LoginFailed(f"{self.server} could not be reached ({type(exc).__name__})") from None
            return None
        self.network_errors = 0
        return answer


class PollProgress:
    """`waiting for approval... 12 s` rewritten in place on a terminal; an occasional line elsewhere."""

    def __init__(self, ctx: LoginContext) -> None:
        self.out = ctx.out
        self.tty = ctx.out.isatty()
        self.last_line = -QUIET_PROGRESS
        self.shown = False

    def waiting(self, elapsed: float) -> None:
        if self.tty:
            self.out.write(f"\rwaiting for approval... {elapsed:.0f} s ")
        elif elapsed - self.last_line >= QUIET_PROGRESS:
            self.out.write(f"waiting for approval... ({elapsed:.0f} s so far)\n")
            self.last_line = elapsed
        self.shown = True
        self.out.flush()

    def done(self) -> None:
        if self.tty and self.shown:
            self.out.write("\n")
            self.out.flush()


def _post(http: httpx.Client, url: str, form: dict[str, str], headers: Mapping[str, str]) -> httpx.Response:
    try:
        return http.post(url, data=form, headers=dict(headers))
    except httpx.HTTPError as exc:
        raise LoginFailed(f"the OAuth server could not be reached ({type(exc).__name__})") from None


def seconds_of(value: Any, default: float) -> float:
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return default
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return float(value)
    return default

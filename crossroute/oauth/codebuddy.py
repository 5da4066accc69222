"""CodeBuddy (Tencent): the "state" polling login of its plugin API, and the
headers its chat API wants with a login's token.

    POST {auth}/v2/plugin/auth/state?platform=CLI  {}  -> {code: 0, data: {state, authUrl}}
    GET  {auth}/v2/plugin/auth/token?state=S            -> code 11217 while the user signs in,
                                                           then {code: 0, data: {accessToken, ...}}
    GET  {auth}/v2/plugin/login/account?state=S         -> {code: 0, data: {uid, nickname, enterpriseId}}
    POST {auth}/v2/plugin/auth/token/refresh  {}  (X-Refresh-Token, X-Domain) -> new tokens;
                                                           code 12153: the session is gone, log in again

Every plugin answer is the envelope `{code, msg, data}`, code 0 meaning ok.
These wire facts come from third-party reimplementations (shared/protocols/
providers.md section 8), not from a published API. crossroute names itself in
the user agent: it does not pose as the CodeBuddy CLI. API keys (`ck_...`) need
no login: `api_keys` in the provider entry, or an auth-dir file of type api_key."""

from __future__ import annotations

import time
import webbrowser
from collections.abc import Mapping
from typing import Any, ClassVar
from urllib.parse import urlsplit

import httpx

from crossroute import __version__
from crossroute.accounts.model import OAuthToken
from crossroute.oauth.base import (
    Flow,
    LoginContext,
    LoginFailed,
    LoginKind,
    RefreshRejected,
    RefreshUnavailable,
    Status,
    json_object,
)
from crossroute.oauth.device import Poll, has_display

USER_AGENT = f"crossroute/{__version__}"
PENDING = 11217  # the token poll's "still logging in"
SESSION_GONE = 12153  # the refresh's "Offline user session not found": only a new login helps
POLL_INTERVAL = 2.0  # seconds between two token polls (third-party clients poll every 1-5 s)
MAX_WAIT = 5 * 60.0  # the login page's state lasts about this long
_EXTRAS = (("uid", "user_id"), ("nickname", "nickname"), ("enterpriseId", "enterprise_id"),
           ("tenantId", "tenant_id"), ("domain", "domain"))


class CodeBuddyLogin(LoginKind):
    name = "codebuddy"
    title = "CodeBuddy (Tencent)"
    status = Status("available", note="browser login (state polling) or ck_ API keys in the config; wire facts "
                                      "from third-party reimplementations, not a published API")
    flows: ClassVar[tuple[Flow, ...]] = ("browser",)
    refresh_lead = 600.0

    def login(self, flow: Flow, ctx: LoginContext) -> OAuthToken:
        if flow != "browser":
            raise LoginFailed(f"{self.title} logs in through its login page only")
        state, page = self._start(ctx)
        show_page(page, ctx)
        data = self._poll(state, ctx)
        token = self.token_from_data(data, domain=urlsplit(ctx.auth_url).hostname or "")
        account = self._account(ctx, state, token)
        return OAuthToken(token.access_token, token.refresh_token, token.expires_at, {**token.extras, **account})

    def refresh(self, http: httpx.Client, auth_url: str, token: OAuthToken) -> OAuthToken:
        assert token.refresh_token is not None
        headers = {**login_headers(), "authorization": f"Bearer {token.access_token}",
                   "x-refresh-token": token.refresh_token, "x-domain": str(token.extras.get("domain") or "")}
        try:
            response = http.post(f"{auth_url}/v2/plugin/auth/token/refresh", json={}, headers=headers)
        except httpx.HTTPError as exc:
            raise RefreshUnavailable(f"the login server could not be reached ({type(exc).__name__})") from None
        answer = json_object(response)
        code = answer.get("code")
        if response.status_code == 200 and code == 0 and isinstance(answer.get("data"), dict):
            return self.token_from_data(answer["data"], previous=token)
        reason = f"code {code} (HTTP {response.status_code})" if isinstance(code, int) else \
            f"HTTP {response.status_code}"
        if code == SESSION_GONE or response.status_code in (400, 401, 403) or \
                (isinstance(code, int) and code != 0 and response.status_code == 200):
            raise RefreshRejected(f"the refresh token was refused: {reason}")
        raise RefreshUnavailable(f"the login server did not refresh: {reason}")

    def request_headers(self, token: OAuthToken) -> dict[str, str]:
        """The account's user, enterprise and domain beside the bearer (empty ones left out)."""
        headers = {"user-agent": USER_AGENT}
        for extra, header in (("user_id", "x-user-id"), ("enterprise_id", "x-enterprise-id"),
                              ("tenant_id", "x-tenant-id"), ("domain", "x-domain")):
            value = token.extras.get(extra)
            if isinstance(value, str) and value:
                headers[header] = value
        return headers

    def default_label(self, token: OAuthToken) -> str | None:
        nickname = token.extras.get("nickname")
        return nickname if isinstance(nickname, str) and nickname else None

    def token_from_data(self, data: Mapping[str, Any], previous: OAuthToken | None = None, domain: str = "",
                        now: float | None = None) -> OAuthToken:
        """The `data` of a token answer (camelCase, expiry as expiresIn seconds or expiresAt) as an OAuthToken;
        a refresh answer may leave out the refresh token and the domain (the previous ones stay)."""
        access = data.get("accessToken")
        if not isinstance(access, str) or not access:
            raise RefreshUnavailable("the token answer has no accessToken")
        refresh = data.get("refreshToken")
        if not isinstance(refresh, str) or not refresh:
            refresh = previous.refresh_token if previous else None
        extras = dict(previous.extras) if previous else ({"domain": domain} if domain else {})
        extras.update(_extras(data))
        return OAuthToken(access, refresh, _expiry(data, time.time() if now is None else now), extras)

    # ------------------------------------------------------------ the steps of a login

    def _start(self, ctx: LoginContext) -> tuple[str, str]:
        answer = _call(ctx, "POST", f"{ctx.auth_url}/v2/plugin/auth/state", params={"platform": "CLI"}, json={})
        data = answer.get("data")
        state = data.get("state") if isinstance(data, dict) else None
        page = data.get("authUrl") if isinstance(data, dict) else None
        if answer.get("code") != 0 or not isinstance(state, str) or not state or not isinstance(page, str):
            raise LoginFailed(f"the login server refused to start a login ({_code_text(answer)})")
        return state, page

    def _poll(self, state: str, ctx: LoginContext) -> Mapping[str, Any]:
        expired = "the login page expired before the sign-in was completed; run the command again"
        with Poll(ctx, MAX_WAIT, expired, "the login server") as poll:
            while True:
                response = poll.call(POLL_INTERVAL, lambda: _request(ctx, "GET", f"{ctx.auth_url}/v2/plugin/auth/token",
                                                                     params={"state": state}))
                if response is None:
                    continue
                answer = _plugin_answer(response)
                code, data = answer.get("code"), answer.get("data")
                if code == PENDING:
                    continue
                if code == 0 and isinstance(data, dict) and data.get("accessToken") and \
                        isinstance(data["accessToken"], str):
                    return data
                raise LoginFailed(f"the login was not completed ({_code_text(answer)})")

    def _account(self, ctx: LoginContext, state: str, token: OAuthToken) -> dict[str, Any]:
        """Who logged in (uid, nickname, enterprise): the chat API wants the uid beside the token."""
        headers = {"authorization": f"Bearer {token.access_token}",
                   **({"x-domain": token.extras["domain"]} if token.extras.get("domain") else {})}
        answer = _call(ctx, "GET", f"{ctx.auth_url}/v2/plugin/login/account", params={"state": state},
                       headers=headers)
        data = answer.get("data")
        if answer.get("code") != 0 or not isinstance(data, dict):
            raise LoginFailed(f"the login server did not say which account logged in ({_code_text(answer)})")
        return _extras(data)


def show_page(page: str, ctx: LoginContext) -> None:
    print(f"To sign in, open {page}", file=ctx.out)
    if ctx.open_browser and has_display():
        try:
            opened = webbrowser.open(page)
        except webbrowser.Error:
            opened = False
        if opened:
            print("A browser was opened at that address.", file=ctx.out)
    ctx.out.flush()


def login_headers() -> dict[str, str]:
    return {"user-agent": USER_AGENT, "x-requested-with": "XMLHttpRequest"}


def _call(ctx: LoginContext, method: str, url: str, *, params: Mapping[str, str],
          json: Any = None, headers: Mapping[str, str] | None = None) -> dict[str, Any]:
    """One plugin API call: its `{code, msg, data}` answer, whatever the HTTP status says."""
    try:
        response = _request(ctx, method, url, params=params, json=json, headers=headers)
    except httpx.HTTPError as exc:
        raise LoginFailed(f"the login server could not be reached ({type(exc).__name__})") from None
    return _plugin_answer(response)


def _request(ctx: LoginContext, method: str, url: str, *, params: Mapping[str, str],
             json: Any = None, headers: Mapping[str, str] | None = None) -> httpx.Response:
    return ctx.http.request(method, url, params=dict(params), json=json, headers={**login_headers(), **(headers or {})})


def _plugin_answer(response: httpx.Response) -> dict[str, Any]:
    answer = json_object(response)
    if "code" not in answer:
        answer["code"] = f"HTTP {response.status_code}"
    return answer


def _code_text(answer: Mapping[str, Any]) -> str:
    """`code 11218: state expired`: the answer's code and its message, one short line."""
    code, message = answer.get("code"), answer.get("msg")
    text = f"code {code}" if isinstance(code, int) else str(code)
    if isinstance(message, str) and message:
        text += f": {' '.join(message.split())[:120]}"
    return text


def _extras(data: Mapping[str, Any]) -> dict[str, Any]:
    extras: dict[str, Any] = {}
    for name, extra in _EXTRAS:
        value = data.get(name)
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if isinstance(value, str) and value:
            extras[extra] = value
    return extras


def _expiry(data: Mapping[str, Any], now: float) -> float | None:
    at, lifetime = data.get("expiresAt"), data.get("expiresIn")
    if isinstance(at, int | float) and not isinstance(at, bool) and at > 0:
        return float(at) / 1000 if at > 1e12 else float(at)  # milliseconds, as some answers give it
    if isinstance(lifetime, int | float) and not isinstance(lifetime, bool) and lifetime > 0:
        return now + float(lifetime)
    return None

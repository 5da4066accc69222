"""Codex (the ChatGPT plan's login): OpenAI's auth server (auth.openai.com) with
a browser login (authorization code + PKCE S256, the loopback callback on
localhost:1455) or Codex's own device login, refresh 5 days ahead of expiry
with rotating refresh tokens, and `--import` of the user's own
`~/.codex/auth.json`. The API is the ChatGPT Codex Responses backend
(crossroute/providers/codex.py); each request names the ChatGPT account the
token's claims carry. crossroute names itself (originator, user agent): it
does not pose as the Codex CLI."""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import httpx
import jwt

from crossroute import __version__
from crossroute.accounts.model import OAuthToken
from crossroute.oauth.base import (
    Flow,
    LoginContext,
    LoginFailed,
    LoginKind,
    Status,
    error_code,
    json_object,
    refresh_grant,
)
from crossroute.oauth.device import (
    DEFAULT_INTERVAL,
    MAX_WAIT,
    MIN_INTERVAL,
    DeviceCode,
    Poll,
    seconds_of,
    show_instructions,
)
from crossroute.oauth.loopback import CodeGrant, exchange_code, run_browser_flow

CLIENT_ID = "app_EMoamEEZ73f0CkXaXp7hrann"  # Codex's public client id (no secret)
AUTH_CLAIM = "https://api.openai.com/auth"
PROFILE_CLAIM = "https://api.openai.com/profile"
LOGIN_SCOPE = "openid email profile offline_access"
REFRESH_SCOPE = "openid profile email"
CALLBACK_PORT = 1455  # the loopback port registered for Codex's client id
CALLBACK_PATH = "/auth/callback"
PORT_VARIABLE = "CROSSROUTE_CODEX_CALLBACK_PORT"  # another port, for a mirror's or a test's OAuth server
AUTHORIZE_PARAMS = {"prompt": "login", "id_token_add_organizations": "true", "codex_cli_simplified_flow": "true"}
ORIGINATOR = "crossroute"
# What of the id token's claims the account file keeps (the id token itself is not kept).
_CLAIM_EXTRAS = (("account_id", "chatgpt_account_id"), ("plan_type", "chatgpt_plan_type"))


class CodexLogin(LoginKind):
    name = "codex"
    title = "Codex (ChatGPT plan)"
    status = Status("available", note=f"browser login (callback on localhost:{CALLBACK_PORT}, or paste the "
                                      "address), --device, or --import ~/.codex/auth.json")
    flows: ClassVar[tuple[Flow, ...]] = ("browser", "device", "import")
    refresh_lead = 5 * 86400.0  # CLIProxyAPI's lead; the access tokens live about 10 days

    def token_url(self, auth_url: str) -> str:
        return f"{auth_url}/oauth/token"

    def login(self, flow: Flow, ctx: LoginContext) -> OAuthToken:
        if flow == "browser":
            answer = run_browser_flow(self.code_grant(ctx.auth_url), ctx)
        elif flow == "device":
            answer = self.device_login(ctx)
        else:
            raise LoginFailed(f"{self.title}: {flow} login is not available")
        token = self.token_from_answer(answer)
        if "account_id" not in token.extras:
            raise LoginFailed("the login's tokens name no ChatGPT account")
        return token

    def code_grant(self, auth_url: str) -> CodeGrant:
        return CodeGrant(f"{auth_url}/oauth/authorize", self.token_url(auth_url), CLIENT_ID, LOGIN_SCOPE,
                         callback_port(), CALLBACK_PATH, verifier_bytes=96, params=AUTHORIZE_PARAMS)

    def device_login(self, ctx: LoginContext) -> dict[str, Any]:
        """Codex's own device login (not RFC 8628): a user code to enter at `/codex/device`, polled until
        the server hands over an authorization code and its verifier, exchanged as the browser's is."""
        auth = ctx.auth_url
        started = _post_json(ctx.http, f"{auth}/api/accounts/deviceauth/usercode", {"client_id": CLIENT_ID})
        data = json_object(started)
        device_auth_id, code = data.get("device_auth_id"), data.get("user_code") or data.get("usercode")
        if started.status_code != 200 or not isinstance(device_auth_id, str) or not isinstance(code, str):
            word = error_code(data) or f"HTTP {started.status_code}"
            raise LoginFailed(f"the OAuth server did not start a device login ({word}); try the browser login")
        interval = max(MIN_INTERVAL, seconds_of(data.get("interval"), DEFAULT_INTERVAL))
        show_instructions(DeviceCode(device_auth_id, code, f"{auth}/codex/device", None, MAX_WAIT, interval), ctx)
        granted = _poll_device(ctx, f"{auth}/api/accounts/deviceauth/token",
                               {"device_auth_id": device_auth_id, "user_code": code}, interval)
        return exchange_code(ctx.http, self.token_url(auth), CLIENT_ID, str(granted["authorization_code"]),
                             f"{auth}/deviceauth/callback", str(granted["code_verifier"]))

    def refresh(self, http: httpx.Client, auth_url: str, token: OAuthToken) -> OAuthToken:
        assert token.refresh_token is not None
        answer = refresh_grant(http, self.token_url(auth_url),
                               {"client_id": CLIENT_ID, "grant_type": "refresh_token",
                                "refresh_token": token.refresh_token, "scope": REFRESH_SCOPE})
        return self.token_from_answer(answer, token)

    def answer_extras(self, answer: Mapping[str, Any]) -> dict[str, Any]:
        """The ChatGPT account id, plan and email from the answer's id token (else its access token)."""
        extras = super().answer_extras(answer)
        extras.update(identity_of(str(answer.get("id_token") or ""), str(answer.get("access_token") or "")))
        return extras

    def token_from_answer(self, answer: Mapping[str, Any], previous: OAuthToken | None = None,
                          now: float | None = None) -> OAuthToken:
        token = super().token_from_answer(answer, previous, now)
        if token.expires_at is None:  # no expires_in: the access token's own `exp`
            token = OAuthToken(token.access_token, token.refresh_token, expiry_of(token.access_token), token.extras)
        return token

    def import_token(self, data: Mapping[str, Any]) -> OAuthToken:
        """codex-rs's auth.json (`{"tokens": {id_token, access_token, refresh_token, account_id}, ...}`),
        or a flat file of the same keys (CLIProxyAPI's)."""
        tokens = data.get("tokens")
        if not isinstance(tokens, Mapping):
            if isinstance(data.get("OPENAI_API_KEY"), str) and "access_token" not in data:
                raise LoginFailed("the file holds an OpenAI API key, not a ChatGPT login "
                                  "(use it with kind: openai)")
            tokens = data
        access, refresh = tokens.get("access_token"), tokens.get("refresh_token")
        if not isinstance(access, str) or not access or not isinstance(refresh, str) or not refresh:
            raise LoginFailed("the file has no ChatGPT login (tokens.access_token and tokens.refresh_token)")
        extras = identity_of(str(tokens.get("id_token") or ""), access)
        if isinstance(tokens.get("account_id"), str) and tokens["account_id"]:
            extras["account_id"] = tokens["account_id"]
        if "account_id" not in extras:
            raise LoginFailed("the file's tokens name no ChatGPT account")
        return OAuthToken(access, refresh, expiry_of(access), extras)

    def default_import_path(self) -> Path | None:
        return Path(os.environ.get("CODEX_HOME") or "~/.codex").expanduser() / "auth.json"

    def default_label(self, token: OAuthToken) -> str | None:
        email = token.extras.get("email")
        return email if isinstance(email, str) and email else None

    def request_headers(self, token: OAuthToken) -> dict[str, str]:
        account_id = token.extras.get("account_id")
        if not isinstance(account_id, str) or not account_id:
            account_id = identity_of("", token.access_token).get("account_id", "")
        return {**_CLIENT_HEADERS, "chatgpt-account-id": account_id}


_CLIENT_HEADERS = {"originator": ORIGINATOR, "user-agent": f"crossroute/{__version__}",
                   "accept": "text/event-stream"}


def callback_port() -> int:
    value = os.environ.get(PORT_VARIABLE, "")
    if not value:
        return CALLBACK_PORT
    if not value.isdigit() or not 0 < int(value) < 65536:
        raise LoginFailed(f"{PORT_VARIABLE} must be a port number")
    return int(value)


def _poll_device(ctx: LoginContext, url: str, body: dict[str, str], interval: float) -> dict[str, Any]:
    """The `{authorization_code, code_verifier}` once approved: 403 and 404 mean not yet."""
    with Poll(ctx, MAX_WAIT, _EXPIRED) as poll:
        while True:
            answer = poll.call(interval, lambda: ctx.http.post(url, json=body))
            if answer is None:
                continue
            data = json_object(answer)
            if answer.status_code == 200 and isinstance(data.get("authorization_code"), str) \
                    and isinstance(data.get("code_verifier"), str):
                return data
            if answer.status_code in (403, 404):
                continue
            word = error_code(data)
            if word == "access_denied":
                raise LoginFailed("the sign-in was denied (access_denied)")
            if word in ("deviceauth_expired", "expired_token"):
                raise LoginFailed(_EXPIRED)
            raise LoginFailed(f"the OAuth server refused the login ({word or f'HTTP {answer.status_code}'})")


_EXPIRED = "the code expired before the sign-in was approved; run the command again"


def _post_json(http: httpx.Client, url: str, body: dict[str, str]) -> httpx.Response:
    try:
        return http.post(url, json=body)
    except httpx.HTTPError as exc:
        raise LoginFailed(f"the OAuth server could not be reached ({type(exc).__name__})") from None


@functools.lru_cache(maxsize=256)
def claims_of(token: str) -> dict[str, Any]:
    """A JWT's claims, unverified. These are tokens the OAuth server handed to us
    (over TLS, from the login or the user's own file) and that we only send back
    to OpenAI, which verifies them: reading which account they name needs no
    signature check (and the JWKS call it would cost). Not a JWT: no claims."""
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return {}
    return claims if isinstance(claims, dict) else {}


def identity_of(id_token: str, access_token: str) -> dict[str, Any]:
    """{account_id, plan_type, email} as far as the tokens' claims say (the id token's first)."""
    found: dict[str, Any] = {}
    for claims in (claims_of(id_token) if id_token else {}, claims_of(access_token) if access_token else {}):
        auth = claims.get(AUTH_CLAIM)
        if isinstance(auth, dict):
            for extra, claim in _CLAIM_EXTRAS:
                if isinstance(auth.get(claim), str) and auth[claim]:
                    found.setdefault(extra, auth[claim])
        profile = claims.get(PROFILE_CLAIM)
        email = claims.get("email") or (profile.get("email") if isinstance(profile, dict) else None)
        if isinstance(email, str) and email:
            found.setdefault("email", email)
    return found


def expiry_of(access_token: str) -> float:
    """The access token's `exp`; unknown: now, so it is refreshed before its first use."""
    exp = claims_of(access_token).get("exp")
    return float(exp) if isinstance(exp, int | float) and not isinstance(exp, bool) else time.time()

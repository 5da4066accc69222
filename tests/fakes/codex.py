"""FakeCodex: the two services a Codex (ChatGPT login) provider talks to, in one server on 127.0.0.1.

- The OpenAI auth server as the Codex CLI uses it (auth.openai.com, point `auth_url` at `fake.url`):
  browser login (authorization code + PKCE S256, redirect to a registered loopback URI), Codex's own
  device login (not RFC 8628), the token endpoint with rotating refresh tokens, and the JWKS the
  RS256-signed id/access tokens verify with.
- The ChatGPT Codex backend (chatgpt.com/backend-api, point `base_url` at `fake.base_url`): Responses
  streaming at /codex/responses with the backend's own body rules, the model list, the usage endpoint,
  and the plan's 5-hour / weekly usage windows on every answer.

    with FakeCodex() as fake:
        fake.script(Turn(text="hi"))       # what the model answers, as with FakeUpstream
        fake.approve()                      # the user approves the newest device login
        fake.expire_access_tokens()         # the next backend request answers 401 token_expired
        fake.use_up("primary")              # the next backend request answers 429 usage_limit_reached
        fake.counters.refresh_calls         # how many refresh grants the token endpoint saw

What each endpoint checks, and where the facts come from: tests/fakes/README.md.
"""

from __future__ import annotations

import asyncio
import functools
import secrets
import uuid
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import jwt
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa

from . import openai_common as oc
from . import openai_responses as responses
from .login import (
    Counters,
    DeviceLogins,
    Grant,
    Grants,
    Identity,
    LoginState,
    PendingLogin,
    RefreshOutcome,
    pkce_matches,
    s256,
    user_code,
)
from .script import Recorded, Script
from .threaded import ThreadedApp, json_answer
from .wire import Exchange, FakeState, Issued, Rejection, ScriptedModel, next_turn

CLIENT_ID = "app_EMoamEEZ73f0CkXaXp7hrann"
ISSUER = "https://auth.openai.com"
AUTH_CLAIM = "https://api.openai.com/auth"
PROFILE_CLAIM = "https://api.openai.com/profile"
ACCESS_AUDIENCE = "https://api.openai.com/v1"
KEY_ID = "fake-codex-signing-key"
LOGIN_SCOPE = "openid profile email offline_access"
LOOPBACK_REDIRECTS = ("http://localhost:1455/auth/callback", "http://localhost:1457/auth/callback")
CODEX_MODELS = ("gpt-5.5", "gpt-5.4", "gpt-5.4-mini", "gpt-5.3-codex")
# Top-level fields the backend refuses with {"detail": "Unsupported parameter: <name>"}; the last three are the
# ones CLIProxyAPI strips without a recorded error (UNCERTAIN that the backend refuses them).
UNSUPPORTED = (
    "max_output_tokens", "max_tool_calls", "temperature", "top_p", "frequency_penalty", "presence_penalty",
    "stream_options", "truncation", "metadata", "safety_identifier", "background",
    "user", "prompt_cache_retention", "context_management",
)  # fmt: skip
REFRESH_MESSAGES = {
    "refresh_token_reused": "Your refresh token has already been used to generate a new access token. "
    "Please try signing in again.",
    "refresh_token_expired": "Your refresh token has expired. Please try signing in again.",
    "refresh_token_invalidated": "Your refresh token has been invalidated. Please try signing in again.",
}
REFRESH_CODES = {
    RefreshOutcome.REUSED: "refresh_token_reused",
    RefreshOutcome.EXPIRED: "refresh_token_expired",
    RefreshOutcome.REVOKED: "refresh_token_invalidated",
}


@functools.cache
def signing_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_jwks() -> dict[str, Any]:
    key = jwt.algorithms.RSAAlgorithm.to_jwk(signing_key().public_key(), as_dict=True)
    return {"keys": [{**key, "kid": KEY_ID, "use": "sig", "alg": "RS256"}]}


@dataclass
class IssuedCode:
    challenge: str
    redirect_uri: str
    identity: Identity
    scope: str
    expires_at: float
    used: bool = False


@dataclass
class UsageWindow:
    """One of the plan's usage windows: `limit` answered requests per `minutes`, counted from the first."""

    name: str
    minutes: int
    limit: int
    used: int = 0
    started: float | None = None

    def roll(self, now: float) -> None:
        if self.started is not None and now >= self.started + self.minutes * 60:
            self.used, self.started = 0, None

    def count(self, now: float) -> None:
        self.started = now if self.started is None else self.started
        self.used += 1

    def percent(self) -> float:
        return min(100.0, 100.0 * self.used / self.limit)

    def exhausted(self) -> bool:
        return self.used >= self.limit

    def reset_at(self, now: float) -> int:
        return int((now if self.started is None else self.started) + self.minutes * 60)

    def headers(self, now: float) -> dict[str, str]:
        prefix = f"x-codex-{self.name}"
        return {
            f"{prefix}-used-percent": f"{self.percent():g}",
            f"{prefix}-window-minutes": str(self.minutes),
            f"{prefix}-reset-at": str(self.reset_at(now)),
            f"{prefix}-reset-after-seconds": str(max(0, self.reset_at(now) - int(now))),
        }

    def window_object(self, now: float) -> dict[str, Any]:
        return {
            "used_percent": self.percent(),
            "limit_window_seconds": self.minutes * 60,
            "reset_after_seconds": max(0, self.reset_at(now) - int(now)),
            "reset_at": self.reset_at(now),
        }


@dataclass
class Usage:
    primary: UsageWindow = field(default_factory=lambda: UsageWindow("primary", 300, 100))
    secondary: UsageWindow = field(default_factory=lambda: UsageWindow("secondary", 10080, 1000))

    def windows(self) -> tuple[UsageWindow, UsageWindow]:
        return self.primary, self.secondary

    def roll(self, now: float) -> None:
        for window in self.windows():
            window.roll(now)


class BackendRefusal(Exception):
    """An error answer from the Codex backend, already in its wire shape."""

    def __init__(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        super().__init__(status)
        self.status, self.body, self.headers = status, body, headers or {}


def detail(status: int, message: str) -> BackendRefusal:
    return BackendRefusal(status, {"detail": message})


def api_error(status: int, message: str, code: str | None, **extra: Any) -> BackendRefusal:
    error = {"message": message, "type": "invalid_request_error", "param": None, "code": code, **extra}
    return BackendRefusal(status, {"error": error})


def oauth_error(status: int, code: str, description: str) -> web.Response:
    return json_answer({"error": code, "error_description": description}, status)


class FakeCodex(ScriptedModel, ThreadedApp):
    """See the module docstring. `identity` is who signs in unless approve()/deny() name someone else."""

    thread_name = "fake-codex"

    def __init__(
        self,
        *,
        identity: Identity | None = None,
        access_ttl: int = 864000,
        device_interval: int = 5,
        device_ttl: int = 900,
        device_login_enabled: bool = True,
        redirect_uris: Sequence[str] = LOOPBACK_REDIRECTS,
        models: Sequence[str] = CODEX_MODELS,
        revoke_on_reuse: bool = True,
        require_account_header: bool = True,
    ) -> None:
        super().__init__()
        self.identity = identity or Identity()
        self.access_ttl = access_ttl
        self.device_interval = device_interval
        self.device_ttl = device_ttl
        self.device_login_enabled = device_login_enabled
        self.extra_redirect_uris = list(redirect_uris)
        self.models = tuple(models)
        self.require_account_header = require_account_header
        self.refresh_delay = 0.0  # seconds a refresh answer waits after the rotation took effect
        self.counters = Counters()
        self.grants = Grants("rt_", revoke_on_reuse=revoke_on_reuse)
        self.device = DeviceLogins()
        self.usage = Usage()
        self._codes: dict[str, IssuedCode] = {}
        self._browser_decisions: deque[tuple[LoginState, Identity | None]] = deque()
        self._access: dict[str, Grant] = {}  # jti -> the grant the access token came from
        self._expired_jtis: set[str] = set()
        self._script = Script()
        self._state = FakeState(self._script, Issued(), self.models, None)
        self.start()

    # ------------------------------------------------------------- controls

    @property
    def base_url(self) -> str:
        return f"{self.url}/backend-api/codex"

    @property
    def redirect_uris(self) -> list[str]:
        return [*self.extra_redirect_uris, f"{self.url}/deviceauth/callback"]

    def allow_redirect(self, uri: str) -> None:
        """Register one more redirect URI, e.g. a test's loopback callback on a free port."""
        self.extra_redirect_uris.append(uri)

    def issue_tokens(self, identity: Identity | None = None) -> dict[str, Any]:
        """The token answer of a completed login, without the login (for files to import)."""
        with self.lock:
            return self._token_answer(self.grants.issue(identity or self.identity, LOGIN_SCOPE))

    def auth_json(self, identity: Identity | None = None) -> dict[str, Any]:
        """A ~/.codex/auth.json as codex-rs writes it after a ChatGPT login, holding fresh tokens of this fake."""
        who = identity or self.identity
        tokens = self.issue_tokens(who)
        kept = {key: tokens[key] for key in ("id_token", "access_token", "refresh_token")}
        last_refresh = datetime.fromtimestamp(self.now(), UTC).isoformat().replace("+00:00", "Z")
        return {
            "auth_mode": "chatgpt",
            "OPENAI_API_KEY": None,
            "tokens": {**kept, "account_id": who.account_id},
            "last_refresh": last_refresh,
        }

    def approve(self, user_code: str | None = None, *, identity: Identity | None = None) -> None:
        """The user signs in and approves: the named (or newest) pending device login, or else the next
        browser authorization."""
        self._decide(user_code, LoginState.APPROVED, identity or self.identity)

    def deny(self, user_code: str | None = None) -> None:
        self._decide(user_code, LoginState.DENIED, None)

    def expire_access_tokens(self) -> None:
        """Every access token handed out so far answers 401 token_expired from now on."""
        with self.lock:
            self._expired_jtis.update(self._access)

    def expire_refresh_tokens(self) -> None:
        with self.lock:
            for grant in self.grants.all():
                grant.expired = True

    def revoke_all(self) -> None:
        with self.lock:
            for grant in self.grants.all():
                grant.revoked = True

    def use_up(self, window: str = "primary") -> None:
        """Spend the whole named usage window ("primary" = 5 hours, "secondary" = weekly)."""
        with self.lock:
            target: UsageWindow = getattr(self.usage, window)
            target.started = self.now() if target.started is None else target.started
            target.used = target.limit

    def backend_requests(self) -> list[Recorded]:
        """The model calls (`/responses`), not the model-list or usage ones."""
        return [r for r in self.requests if r.protocol == "codex" and r.path.endswith("/responses")]

    def _decide(self, code: str | None, state: LoginState, identity: Identity | None) -> None:
        with self.lock:
            if code is not None or self.device.pending(self.now()):
                self.device.decide(code, state, identity, self.now())
            else:
                self._browser_decisions.append((state, identity))

    # ------------------------------------------------------------- app

    def build_app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/oauth/authorize", self._authorize)
        app.router.add_post("/oauth/token", self._token)
        app.router.add_get("/.well-known/jwks.json", self._jwks)
        app.router.add_post("/api/accounts/deviceauth/usercode", self._device_usercode)
        app.router.add_post("/api/accounts/deviceauth/token", self._device_token)
        app.router.add_get("/codex/device", self._device_page)
        app.router.add_post("/backend-api/codex/responses", self._responses)
        app.router.add_get("/backend-api/codex/models", self._models)
        app.router.add_get("/backend-api/wham/usage", self._usage)
        app.router.add_route("*", "/{tail:.*}", self._not_found)
        return app

    # ------------------------------------------------------------- browser login

    async def _authorize(self, request: web.Request) -> web.StreamResponse:
        await self.record(request, "codex-auth")
        query = request.query
        redirect = query.get("redirect_uri", "")
        if query.get("client_id") != CLIENT_ID or redirect not in self.redirect_uris:
            # RFC 6749 4.1.2.1: never redirect to an unregistered URI; the user sees the error instead.
            return web.Response(status=400, text="Unknown client_id or unregistered redirect_uri.")
        state = query.get("state")
        scope = query.get("scope", "")

        def back(**params: str) -> web.Response:
            if state is not None:
                params["state"] = state
            return web.Response(status=302, headers={"Location": f"{redirect}?{urlencode(params)}"})

        if query.get("response_type") != "code":
            return back(error="unsupported_response_type", error_description="response_type must be code")
        if not query.get("code_challenge") or query.get("code_challenge_method") != "S256":
            return back(
                error="invalid_request", error_description="PKCE with code_challenge_method=S256 is required"
            )
        with self.lock:
            decision, who = (
                self._browser_decisions.popleft()
                if self._browser_decisions
                else (LoginState.APPROVED, self.identity)
            )
            if decision is LoginState.DENIED:
                return back(error="access_denied", error_description="The user denied the request")
            code = self._issue_code(query["code_challenge"], redirect, who or self.identity, scope)
        return back(code=code, scope=scope)

    def _issue_code(self, challenge: str, redirect_uri: str, identity: Identity, scope: str) -> str:
        code = "ac_" + secrets.token_urlsafe(24)
        self._codes[code] = IssuedCode(challenge, redirect_uri, identity, scope, self.now() + 600)
        return code

    async def _jwks(self, request: web.Request) -> web.StreamResponse:
        return json_answer(public_jwks())

    # ------------------------------------------------------------- token endpoint

    async def _token(self, request: web.Request) -> web.StreamResponse:
        recorded = await self.record(request, "codex-auth")
        body = recorded.body if isinstance(recorded.body, dict) else {}
        with self.lock:
            self.counters.token_calls += 1
            answer = self._grant(body)
        if body.get("grant_type") == "refresh_token":
            await asyncio.sleep(
                self.refresh_delay
            )  # the new tokens exist already: a client killed now loses them
        return answer

    def _grant(self, body: dict[str, Any]) -> web.Response:
        if body.get("client_id") != CLIENT_ID:
            return oauth_error(401, "invalid_client", "Unknown or missing client_id.")
        grant_type = body.get("grant_type")
        if grant_type == "authorization_code":
            self.counters.code_exchanges += 1
            return self._exchange_code(body)
        if grant_type == "refresh_token":
            self.counters.refresh_calls += 1
            return self._refresh(body)
        return oauth_error(400, "unsupported_grant_type", f"Unsupported grant_type: {grant_type}")

    def _exchange_code(self, body: dict[str, Any]) -> web.Response:
        issued = self._codes.get(str(body.get("code", "")))
        if issued is None or issued.used or issued.expires_at < self.now():
            return oauth_error(400, "invalid_grant", "Invalid or expired authorization code.")
        if body.get("redirect_uri") != issued.redirect_uri:
            return oauth_error(400, "invalid_grant", "redirect_uri does not match the authorization request.")
        if not pkce_matches(body.get("code_verifier"), issued.challenge):
            return oauth_error(400, "invalid_grant", "code_verifier does not match the code_challenge.")
        issued.used = True
        return json_answer(self._token_answer(self.grants.issue(issued.identity, issued.scope)))

    def _refresh(self, body: dict[str, Any]) -> web.Response:
        outcome, grant = self.grants.redeem(str(body.get("refresh_token", "")))
        if outcome is RefreshOutcome.OK and grant is not None:
            return json_answer(self._token_answer(grant))
        if outcome is RefreshOutcome.UNKNOWN:
            return oauth_error(400, "invalid_grant", "Invalid refresh token.")
        code = REFRESH_CODES[outcome]
        refusal = api_error(401, REFRESH_MESSAGES[code], code)
        return json_answer(refusal.body, refusal.status)

    def _token_answer(self, grant: Grant) -> dict[str, Any]:
        now = int(self.now())
        return {
            "id_token": self._id_token(grant.identity, now),
            "access_token": self._access_token(grant, now),
            "refresh_token": grant.current,
            "token_type": "Bearer",
            "expires_in": self.access_ttl,
            "scope": grant.scope,
        }

    def _id_token(self, who: Identity, now: int) -> str:
        claims = {
            "iss": ISSUER, "aud": [CLIENT_ID], "sub": f"auth0|{who.user_id}", "iat": now, "exp": now + 3600,
            "auth_time": now, "email": who.email, "email_verified": True,
            AUTH_CLAIM: {
                "chatgpt_account_id": who.account_id, "chatgpt_plan_type": who.plan,
                "chatgpt_user_id": who.user_id, "user_id": who.user_id,
                "organizations": [{"id": f"org-{who.account_id}", "is_default": True, "role": "owner",
                                   "title": "Personal"}],
            },
        }  # fmt: skip
        return sign(claims)

    def _access_token(self, grant: Grant, now: int) -> str:
        who, jti = grant.identity, str(uuid.uuid4())
        self._access[jti] = grant
        claims = {
            "iss": ISSUER, "aud": [ACCESS_AUDIENCE], "sub": f"auth0|{who.user_id}", "iat": now,
            "exp": now + self.access_ttl, "jti": jti, "client_id": CLIENT_ID, "scp": grant.scope.split(),
            AUTH_CLAIM: {"chatgpt_account_id": who.account_id, "chatgpt_plan_type": who.plan,
                         "chatgpt_user_id": who.user_id, "user_id": who.user_id},
            PROFILE_CLAIM: {"email": who.email, "email_verified": True},
        }  # fmt: skip
        return sign(claims)

    # ------------------------------------------------------------- device login (Codex's own, not RFC 8628)

    async def _device_usercode(self, request: web.Request) -> web.StreamResponse:
        recorded = await self.record(request, "codex-auth")
        body = recorded.body if isinstance(recorded.body, dict) else {}
        with self.lock:
            self.counters.device_requests += 1
            if not self.device_login_enabled:
                return json_answer({"detail": "Not Found"}, 404)
            if body.get("client_id") != CLIENT_ID:
                return json_answer(api_error(400, "Unknown client_id.", "invalid_client").body, 400)
            login = PendingLogin(
                key="deviceauth_" + secrets.token_hex(12), user_code=user_code(), challenge=None,
                expires_at=self.now() + self.device_ttl, interval=self.device_interval,
            )  # fmt: skip
            self.device.add(login)
        # The interval travels as a string: codex-rs parses it from a JSON string.
        return json_answer(
            {"device_auth_id": login.key, "user_code": login.user_code, "interval": str(self.device_interval)}
        )

    async def _device_token(self, request: web.Request) -> web.StreamResponse:
        recorded = await self.record(request, "codex-auth")
        body = recorded.body if isinstance(recorded.body, dict) else {}
        with self.lock:
            self.counters.polls += 1
            login = self.device.get(str(body.get("device_auth_id", "")))
            if login is None or login.user_code != body.get("user_code") or login.state is LoginState.DONE:
                return json_answer(
                    api_error(404, "Device authorization not found.", "deviceauth_not_found").body, 404
                )
            login.polls += 1
            if login.expires_at < self.now():
                message = "Device authorization has expired. Please try again."
                return json_answer(api_error(400, message, "deviceauth_expired").body, 400)
            if login.state is LoginState.PENDING:
                message = "Device authorization is unknown. Please try again."
                return json_answer(api_error(403, message, "deviceauth_authorization_unknown").body, 403)
            if login.state is LoginState.DENIED:
                return json_answer(api_error(400, "The user denied the request.", "access_denied").body, 400)
            login.state = LoginState.DONE
            verifier = secrets.token_urlsafe(64)
            challenge = s256(verifier)
            assert login.identity is not None
            code = self._issue_code(challenge, f"{self.url}/deviceauth/callback", login.identity, LOGIN_SCOPE)
        return json_answer(
            {"authorization_code": code, "code_challenge": challenge, "code_verifier": verifier}
        )

    async def _device_page(self, request: web.Request) -> web.StreamResponse:
        return web.Response(
            text="<html><body>Enter the code shown in your terminal.</body></html>", content_type="text/html"
        )

    # ------------------------------------------------------------- the Codex backend

    async def _responses(self, request: web.Request) -> web.StreamResponse:
        recorded = await self.record(request, "codex")
        try:
            grant = self._authenticate(request)
            body = recorded.body
            if not isinstance(body, dict):
                raise detail(400, "Invalid JSON body")
            check_codex_body(body, self.models)
            responses.validate(body, self._state.issued)
            headers = self._spend(grant)
            turn = await next_turn(self._state, body)
        except BackendRefusal as refusal:
            return json_answer(refusal.body, refusal.status, refusal.headers)
        except Rejection as rejection:
            return oc.error_response(rejection)
        exchange = Exchange(request, body, turn, self._state.issued, body["model"])
        return await responses.stream_reply(exchange, CodexPlan(exchange), headers)

    async def _models(self, request: web.Request) -> web.StreamResponse:
        await self.record(request, "codex")
        try:
            self._authenticate(request)
        except BackendRefusal as refusal:
            return json_answer(refusal.body, refusal.status)
        entries = [
            {"slug": m, "display_name": m, "context_window": 272000, "supported_in_api": True}
            for m in self.models
        ]
        return json_answer({"models": entries})

    async def _usage(self, request: web.Request) -> web.StreamResponse:
        await self.record(request, "codex")
        try:
            grant = self._authenticate(request)
        except BackendRefusal as refusal:
            return json_answer(refusal.body, refusal.status)
        now = self.now()
        with self.lock:
            self.usage.roll(now)
            limit_reached = any(w.exhausted() for w in self.usage.windows())
            body = {
                "plan_type": grant.identity.plan,
                "rate_limit": {
                    "allowed": not limit_reached, "limit_reached": limit_reached,
                    "primary_window": self.usage.primary.window_object(now),
                    "secondary_window": self.usage.secondary.window_object(now),
                },
                "credits": {"has_credits": False, "unlimited": False, "balance": "0"},
            }  # fmt: skip
        return json_answer(body)

    async def _not_found(self, request: web.Request) -> web.StreamResponse:
        await self.record(request, "unknown")
        return json_answer({"detail": "Not Found"}, 404)

    def _authenticate(self, request: web.Request) -> Grant:
        """The bearer must be one of our access tokens, unexpired, with the account header matching its claim."""
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise api_error(401, "Missing bearer or basic authentication in header", None)
        try:
            claims = jwt.decode(
                token.strip(),
                signing_key().public_key(),
                algorithms=["RS256"],
                audience=ACCESS_AUDIENCE,
                options={"verify_exp": False},
            )
        except jwt.InvalidTokenError:
            raise api_error(
                401, "Could not parse your authentication token. Please try signing in again.", "invalid_jwt"
            ) from None
        with self.lock:
            grant = self._access.get(str(claims.get("jti")))
            expired = claims["exp"] <= self.now() or claims.get("jti") in self._expired_jtis
        if grant is None or grant.revoked:
            raise api_error(
                401,
                "Your authentication token has been invalidated. Please try signing in again.",
                "token_invalidated",
            )
        if expired:
            raise api_error(
                401, "Provided authentication token is expired. Please try signing in again.", "token_expired"
            )
        account = request.headers.get("ChatGPT-Account-Id")
        if self.require_account_header and account is None:
            raise detail(400, "Missing chatgpt-account-id header")
        if account is not None and account != claims[AUTH_CLAIM]["chatgpt_account_id"]:
            raise detail(403, "chatgpt-account-id does not match the authenticated account")
        return grant

    def _spend(self, grant: Grant) -> dict[str, str]:
        """Count one answered request in both windows, or refuse with usage_limit_reached when one is spent."""
        now = self.now()
        with self.lock:
            self.usage.roll(now)
            windows = self.usage.windows()
            spent = [w for w in windows if w.exhausted()]
            if not spent:
                for window in windows:
                    window.count(now)
            headers = self._usage_headers(grant, now)
        if spent:
            resets_at = max(w.reset_at(now) for w in spent)
            error = {
                "type": "usage_limit_reached", "message": "The usage limit has been reached",
                "plan_type": grant.identity.plan, "resets_at": resets_at,
                "resets_in_seconds": max(0, resets_at - int(now)),
            }  # fmt: skip
            raise BackendRefusal(429, {"error": error}, headers)
        return headers

    def _usage_headers(self, grant: Grant, now: float) -> dict[str, str]:
        headers = {
            "x-codex-plan-type": grant.identity.plan,
            "x-codex-active-limit": "codex",
            "x-codex-credits-has-credits": "False",
            "x-codex-credits-unlimited": "False",
            "x-codex-credits-balance": "0",
        }
        for window in self.usage.windows():
            headers.update(window.headers(now))
        return headers


class CodexPlan(responses.Plan):
    """The backend's answer: the terminal event's `output` is empty, the items come only in
    response.output_item.done events (the client must rebuild the output from those)."""

    def response(
        self,
        status: str,
        output: list[dict[str, Any]],
        usage: dict[str, Any] | None,
        error: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        return super().response(status, [] if status in ("completed", "incomplete") else output, usage, error)


def check_codex_body(body: dict[str, Any], models: tuple[str, ...]) -> None:
    """The backend's own rules, in the order it reports them; then the public Responses rules apply."""
    if not isinstance(body.get("instructions"), str):
        raise detail(400, "Instructions are required")
    if body.get("store") is not False:
        raise detail(400, "Store must be set to false")
    if body.get("stream") is not True:
        raise detail(400, "Stream must be set to true")
    for name in UNSUPPORTED:
        if name in body:
            raise detail(400, f"Unsupported parameter: {name}")
    tier = body.get("service_tier")
    if tier is not None and tier != "priority":
        raise detail(400, f"Unsupported service_tier: {tier}")
    if body.get("model") not in models:
        raise detail(
            400, f"The '{body.get('model')}' model is not supported when using Codex with a ChatGPT account."
        )
    items = body.get("input")
    if isinstance(items, list):
        check_codex_items([item for item in items if isinstance(item, dict)])


def check_codex_items(items: list[dict[str, Any]]) -> None:
    answered = {item.get("call_id") for item in items if item.get("type") == "function_call_output"}
    for item in items:
        if item.get("role") == "system":
            raise detail(400, "System messages are not allowed")
        if item.get("type") == "function_call" and item.get("call_id") not in answered:
            raise detail(400, f"No tool output found for function call {item.get('call_id')}.")


def sign(claims: dict[str, Any]) -> str:
    return jwt.encode(claims, signing_key(), algorithm="RS256", headers={"kid": KEY_ID})

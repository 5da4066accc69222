"""FakeQwen: the Qwen OAuth server (chat.qwen.ai) and the DashScope OpenAI-compatible chat API it hands
out as `resource_url` (portal.qwen.ai), in one server on 127.0.0.1.

- OAuth: RFC 8628 device authorization with PKCE S256 (the device-code request carries the
  code_challenge, the token poll the code_verifier), the RFC's polling errors (authorization_pending,
  slow_down, expired_token, access_denied), refresh with rotating refresh tokens, and `resource_url` in
  every token answer.
- Chat: POST /v1/chat/completions (also /compatible-mode/v1/...) with the OAuth access token or a
  DashScope API key, the DashScope headers, the per-model output-token cap, and the free tier's daily
  quota (`insufficient_quota`, reset at midnight Beijing time).

    with FakeQwen(daily_limit=2) as fake:
        fake.script(Turn(text="hi"))   # what the model answers, as with FakeUpstream
        fake.approve()                  # the user approves the newest device login
        fake.slow_down_next()           # the next poll answers 429 slow_down
        fake.expire_access_tokens()     # chat answers 401 until the client refreshes
        fake.counters.refresh_calls

What each endpoint checks, and where the facts come from: tests/fakes/README.md.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from aiohttp import web

from . import openai_common as oc
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
    user_code,
)
from .openai_chat import OpenAIChat
from .script import Recorded, Script
from .threaded import ThreadedApp, json_answer
from .wire import FakeState, Issued, Rejection, ScriptedModel

CLIENT_ID = "f0304373b74a44d2b584a3fb70ca9e56"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
SCOPE = "openid profile email model.completion"
OAUTH_AUTH_TYPE = "qwen-oauth"
# Output caps per model (max_tokens above the cap is refused, not clipped): the seed plugin's table.
OUTPUT_CAPS: Mapping[str, int] = {
    "coder-model": 65536,
    "vision-model": 8192,
    "qwen3-coder-plus": 65536,
    "qwen3-coder-flash": 65536,
}
BEIJING = timezone(timedelta(hours=8))
QUOTA_MESSAGE = "Free allocated quota exceeded."
ENDED_MESSAGE = "Qwen OAuth free tier has been discontinued."


class QuotaExceeded(Exception):
    """The free tier's refusal: an OpenAI-style error whose type and code are both insufficient_quota."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message

    def answer(self) -> web.Response:
        error = {
            "message": self.message,
            "type": "insufficient_quota",
            "param": None,
            "code": "insufficient_quota",
        }
        return json_answer({"error": error}, self.status, {"x-request-id": secrets.token_hex(16)})


@dataclass
class AccessToken:
    grant: Grant
    expires_at: float


class FakeQwen(ScriptedModel, ThreadedApp):
    """See the module docstring. `resource_url=None` hands out this fake's own URL (with its http:// scheme,
    which a client keeps); pass a bare host like "portal.qwen.ai" to test the client's normalisation."""

    thread_name = "fake-qwen"

    def __init__(
        self,
        *,
        identity: Identity | None = None,
        access_ttl: int = 21600,
        device_ttl: int = 600,
        interval: int | None = None,
        min_poll_interval: float = 0.0,
        resource_url: str | None = None,
        output_caps: Mapping[str, int] = OUTPUT_CAPS,
        daily_limit: int | None = None,
        quota_status: int = 429,
        api_keys: Sequence[str] = (),
        rotate_refresh: bool = True,
        revoke_on_reuse: bool = False,
    ) -> None:
        super().__init__()
        self.identity = identity or Identity(account_id="qwen-user-0001", email="user@example.com")
        self.access_ttl = access_ttl
        self.device_ttl = device_ttl
        self.interval = interval
        self.min_poll_interval = min_poll_interval
        self.resource_url = resource_url
        self.output_caps = dict(output_caps)
        self.daily_limit = daily_limit
        self.quota_status = quota_status
        self.api_keys = set(api_keys)
        self.free_tier_ended = False
        self.omit_refresh_token = False
        self.refresh_delay = 0.0  # seconds a refresh answer waits after the rotation took effect
        self.counters = Counters()
        self.grants = Grants("qrt_", rotate=rotate_refresh, revoke_on_reuse=revoke_on_reuse)
        self.device = DeviceLogins()
        self._access: dict[str, AccessToken] = {}
        self._slow_downs = 0
        self._daily: dict[tuple[str, str], int] = {}  # (account, Beijing date) -> answered requests
        self._script = Script()
        self._state = FakeState(self._script, Issued(), tuple(self.output_caps), None)
        self.start()

    # ------------------------------------------------------------- controls

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    def issue_tokens(self, identity: Identity | None = None) -> dict[str, Any]:
        """The token answer of a completed login, without the login (for files to import)."""
        with self.lock:
            return self._token_answer(
                self.grants.issue(identity or self.identity, SCOPE), include_refresh=True
            )

    def oauth_creds(self, identity: Identity | None = None) -> dict[str, Any]:
        """A ~/.qwen/oauth_creds.json as qwen-code writes it (expiry_date in epoch milliseconds)."""
        tokens = self.issue_tokens(identity)
        kept = {key: tokens[key] for key in ("access_token", "refresh_token", "token_type", "resource_url")}
        return {**kept, "expiry_date": int((self.now() + tokens["expires_in"]) * 1000)}

    def approve(self, user_code: str | None = None, *, identity: Identity | None = None) -> None:
        """The user signs in and approves the named (or newest) pending device login."""
        with self.lock:
            self.device.decide(user_code, LoginState.APPROVED, identity or self.identity, self.now())

    def deny(self, user_code: str | None = None) -> None:
        with self.lock:
            self.device.decide(user_code, LoginState.DENIED, None, self.now())

    def slow_down_next(self, polls: int = 1) -> None:
        """The next `polls` device-token polls answer 429 slow_down whatever their pace."""
        with self.lock:
            self._slow_downs += polls

    def keep_refresh_tokens(self) -> None:
        """From now on a refresh neither rotates the refresh token nor returns one: the client keeps its own
        (qwen-code and CLIProxyAPI both allow an answer without refresh_token)."""
        with self.lock:
            self.omit_refresh_token = True
            self.grants.rotate = False

    def expire_access_tokens(self) -> None:
        with self.lock:
            for token in self._access.values():
                token.expires_at = min(token.expires_at, self.now() - 1)

    def revoke_all(self) -> None:
        with self.lock:
            for grant in self.grants.all():
                grant.revoked = True

    def end_free_tier(self) -> None:
        """What the service did on 2026-04-15: every OAuth chat request is refused as out of quota."""
        self.free_tier_ended = True

    def used_today(self, identity: Identity | None = None) -> int:
        with self.lock:
            return self._daily.get(((identity or self.identity).account_id, self._beijing_date()), 0)

    def chat_requests(self) -> list[Recorded]:
        return [r for r in self.requests if r.protocol == "dashscope"]

    def resource_url_for(self, identity: Identity) -> str:
        return identity.resource_url or self.resource_url or self.url

    # ------------------------------------------------------------- app

    def build_app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/api/v1/oauth2/device/code", self._device_code)
        app.router.add_post("/api/v1/oauth2/token", self._token)
        app.router.add_get("/authorize", self._authorize_page)
        for prefix in ("/v1", "/compatible-mode/v1"):
            app.router.add_post(f"{prefix}/chat/completions", self._chat)
            app.router.add_get(f"{prefix}/models", self._models)
        app.router.add_route("*", "/{tail:.*}", self._not_found)
        return app

    # ------------------------------------------------------------- device authorization (RFC 8628 + PKCE)

    async def _device_code(self, request: web.Request) -> web.StreamResponse:
        recorded = await self.record(request, "qwen-auth")
        form = form_of(recorded)
        with self.lock:
            self.counters.device_requests += 1
            if form.get("client_id") != CLIENT_ID:
                return oauth_error(400, "invalid_client", "Unknown or missing client_id.")
            challenge = form.get("code_challenge")
            if not challenge or form.get("code_challenge_method") != "S256":
                return oauth_error(
                    400, "invalid_request", "code_challenge with code_challenge_method=S256 is required."
                )
            login = PendingLogin(
                key=secrets.token_urlsafe(32), user_code=user_code(1, 8), challenge=challenge,
                expires_at=self.now() + self.device_ttl, interval=self.interval or 0,
            )  # fmt: skip
            self.device.add(login)
        answer: dict[str, Any] = {
            "device_code": login.key,
            "user_code": login.user_code,
            "verification_uri": f"{self.url}/authorize",
            "verification_uri_complete": f"{self.url}/authorize?user_code={login.user_code}&client=qwen-code",
            "expires_in": self.device_ttl,
        }
        if self.interval is not None:
            answer["interval"] = self.interval
        return json_answer(answer)

    async def _authorize_page(self, request: web.Request) -> web.StreamResponse:
        await self.record(request, "qwen-auth")
        return web.Response(
            text="<html><body>Sign in to authorize qwen-code.</body></html>", content_type="text/html"
        )

    async def _token(self, request: web.Request) -> web.StreamResponse:
        recorded = await self.record(request, "qwen-auth")
        form = form_of(recorded)
        with self.lock:
            self.counters.token_calls += 1
            answer = self._grant(form)
        if form.get("grant_type") == "refresh_token":
            await asyncio.sleep(
                self.refresh_delay
            )  # the new tokens exist already: a client killed now loses them
        return answer

    def _grant(self, form: dict[str, str]) -> web.Response:
        if form.get("client_id") != CLIENT_ID:
            return oauth_error(400, "invalid_client", "Unknown or missing client_id.")
        grant_type = form.get("grant_type")
        if grant_type == DEVICE_GRANT:
            self.counters.polls += 1
            return self._poll(form)
        if grant_type == "refresh_token":
            self.counters.refresh_calls += 1
            return self._refresh(form)
        return oauth_error(400, "unsupported_grant_type", f"Unsupported grant_type: {grant_type}")

    def _poll(self, form: dict[str, str]) -> web.Response:
        login = self.device.get(form.get("device_code", ""))
        if login is None or login.state is LoginState.DONE:
            return oauth_error(400, "invalid_grant", "Invalid device_code.")
        now = self.now()
        too_fast = login.last_poll is not None and now - login.last_poll < self.min_poll_interval
        login.last_poll, login.polls = now, login.polls + 1
        if login.expires_at < now:
            return oauth_error(400, "expired_token", "The device code has expired.")
        if self._slow_downs or too_fast:
            self._slow_downs = max(0, self._slow_downs - 1)
            return oauth_error(429, "slow_down", "Polling too frequently.")
        if login.state is LoginState.DENIED:
            return oauth_error(400, "access_denied", "The user denied the authorization request.")
        if login.state is LoginState.PENDING:
            return oauth_error(400, "authorization_pending", "The authorization request is still pending.")
        assert login.challenge is not None and login.identity is not None
        if not pkce_matches(form.get("code_verifier"), login.challenge):
            return oauth_error(400, "invalid_grant", "code_verifier does not match the code_challenge.")
        login.state = LoginState.DONE
        grant = self.grants.issue(login.identity, SCOPE)
        return json_answer(self._token_answer(grant, include_refresh=True))

    def _refresh(self, form: dict[str, str]) -> web.Response:
        outcome, grant = self.grants.redeem(form.get("refresh_token", ""))
        if outcome is not RefreshOutcome.OK or grant is None:
            return oauth_error(400, "invalid_grant", "Invalid refresh token.")
        return json_answer(self._token_answer(grant, include_refresh=not self.omit_refresh_token))

    def _token_answer(self, grant: Grant, *, include_refresh: bool) -> dict[str, Any]:
        token = "qat_" + secrets.token_urlsafe(32)
        self._access[token] = AccessToken(grant, self.now() + self.access_ttl)
        answer: dict[str, Any] = {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": self.access_ttl,
            "scope": grant.scope,
            "resource_url": self.resource_url_for(grant.identity),
        }
        if include_refresh:
            answer["refresh_token"] = grant.current
        return answer

    # ------------------------------------------------------------- DashScope chat

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        recorded = await self.record(request, "dashscope")
        try:
            identity = self._authenticate(request)
            body = recorded.body
            if not isinstance(body, dict):
                raise Rejection(400, "The request body is not a valid JSON object.")
            self._check_model_and_cap(body)
            if identity is not None:
                self._spend_quota(identity)
            return await OpenAIChat().serve("chat", request, body, self._state)
        except Rejection as rejection:
            return oc.error_response(rejection)
        except QuotaExceeded as refusal:
            return refusal.answer()

    async def _models(self, request: web.Request) -> web.StreamResponse:
        await self.record(request, "dashscope")
        try:
            self._authenticate(request)
        except Rejection as rejection:
            return oc.error_response(rejection)
        except QuotaExceeded as refusal:
            return refusal.answer()
        data = [
            {"id": name, "object": "model", "created": 0, "owned_by": "qwen"} for name in self.output_caps
        ]
        return json_answer({"object": "list", "data": data})

    async def _not_found(self, request: web.Request) -> web.StreamResponse:
        await self.record(request, "unknown")
        return oc.error_response(
            Rejection(404, f"Unknown request URL: {request.method} {request.path}.", code="unknown_url")
        )

    def _authenticate(self, request: web.Request) -> Identity | None:
        """The OAuth identity behind the bearer, or None for a DashScope API key. An OAuth token counts only
        with X-DashScope-AuthType: qwen-oauth; without it the token is checked as an API key."""
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise Rejection(401, "You didn't provide an API key.", code="invalid_api_key")
        if request.headers.get("X-DashScope-AuthType") != OAUTH_AUTH_TYPE:
            if token in self.api_keys:
                return None
            raise Rejection(401, "Incorrect API key provided.", code="invalid_api_key")
        with self.lock:
            access = self._access.get(token)
            valid = access is not None and not access.grant.revoked and access.expires_at > self.now()
        if access is None or not valid:
            raise Rejection(401, "invalid access token or token expired", code="invalid_api_key")
        if self.free_tier_ended:
            raise QuotaExceeded(self.quota_status, ENDED_MESSAGE)
        return access.grant.identity

    def _check_model_and_cap(self, body: dict[str, Any]) -> None:
        model = body.get("model")
        if model not in self.output_caps:
            raise Rejection(
                404,
                f"The model `{model}` does not exist or you do not have access to it.",
                code="model_not_found",
            )
        cap = self.output_caps[model]
        for key in ("max_tokens", "max_completion_tokens"):
            value = body.get(key)
            if isinstance(value, int) and not isinstance(value, bool) and value > cap:
                raise Rejection(
                    400,
                    f"<400> InternalError.Algo.InvalidParameter: Range of max_tokens should be [1, {cap}]",
                    code="invalid_parameter_error",
                )

    def _spend_quota(self, identity: Identity) -> None:
        with self.lock:
            day = (identity.account_id, self._beijing_date())
            if self.daily_limit is not None and self._daily.get(day, 0) >= self.daily_limit:
                raise QuotaExceeded(self.quota_status, QUOTA_MESSAGE)
            self._daily[day] = self._daily.get(day, 0) + 1

    def _beijing_date(self) -> str:
        return datetime.fromtimestamp(self.now(), UTC).astimezone(BEIJING).date().isoformat()

    def next_quota_reset(self) -> float:
        """When the daily quota comes back: the next midnight in Beijing, as a unix time on the fake's clock."""
        today = datetime.fromtimestamp(self.now(), UTC).astimezone(BEIJING)
        midnight = (today + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
        return midnight.timestamp()


def oauth_error(status: int, code: str, description: str) -> web.Response:
    return json_answer({"error": code, "error_description": description}, status)


def form_of(recorded: Recorded) -> dict[str, str]:
    """The form fields of a request; a JSON body reads as no fields, as these endpoints only read forms."""
    is_form = recorded.headers.get("content-type", "").startswith("application/x-www-form-urlencoded")
    return recorded.body if is_form and isinstance(recorded.body, dict) else {}

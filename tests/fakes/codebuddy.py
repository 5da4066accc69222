"""FakeCodeBuddy: CodeBuddy's plugin login API (the "state" polling login and its refresh) and its
stream-only OpenAI Chat API, in one server on 127.0.0.1, for the international host or the China one
(`region`, which sets the `domain` its logins carry and the chat API checks).

    with FakeCodeBuddy(api_keys=["ck_fake.secret"]) as fake:
        fake.script(Turn(text="hi"))   # what the model answers, as with FakeUpstream
        fake.approve()                  # the user signs in on the newest login page
        fake.deny()                     # ... or refuses it
        fake.expire_access_tokens()     # chat answers 401 until the client refreshes
        fake.counters.refresh_calls

What each endpoint checks, and where the facts come from: tests/fakes/README.md.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from .login import Counters, Grant, Grants, Identity, LoginState, RefreshOutcome
from .openai_chat import OpenAIChat
from .script import Recorded, Script
from .threaded import ThreadedApp, json_answer
from .wire import FakeState, Issued, Rejection, ScriptedModel

DOMAINS = {"intl": "www.codebuddy.ai", "cn": "copilot.tencent.com"}
MODELS = ("gpt-5.5", "gpt-5.4", "claude-sonnet-4.6", "gemini-3.1-pro", "glm-5.1", "kimi-k2.5")
PENDING, EXPIRED, DENIED, SESSION_GONE = 11217, 11218, 11219, 12153  # 11218/11219: UNCERTAIN
INVALID, BAD_PARAMETER = 11101, 11133
MAX_OUTPUT_TOKENS = 32000
NO_SYSTEM = "Parse message failed: 11101:invalid request"
NO_STREAM = "Non-stream chat request is currently not supported"


class Refusal(Exception):
    """A CodeBuddy answer `{"code", "msg"[, "extError"]}` with an HTTP status."""

    def __init__(self, status: int, code: int, msg: str, param: str | None = None) -> None:
        super().__init__(msg)
        self.status, self.code, self.msg, self.param = status, code, msg, param

    def answer(self) -> web.Response:
        body: dict[str, Any] = {"code": self.code, "msg": self.msg}
        if self.param is not None:
            body["extError"] = {"param": self.param}
        return json_answer(body, self.status)


@dataclass
class LoginPage:
    """One `state` between "open this page" and the client collecting its tokens."""

    state: str
    expires_at: float
    decision: LoginState = LoginState.PENDING
    identity: Identity | None = None
    grant: Grant | None = None


@dataclass
class AccessToken:
    grant: Grant
    expires_at: float


class FakeCodeBuddy(ScriptedModel, ThreadedApp):
    thread_name = "fake-codebuddy"

    def __init__(self, *, region: str = "intl", identity: Identity | None = None, api_keys: Sequence[str] = (),
                 access_ttl: int = 86400, state_ttl: int = 300, models: Sequence[str] = MODELS) -> None:
        super().__init__()
        self.domain = DOMAINS[region]
        self.identity = identity or Identity(account_id="cb-user-0001", email="buddy@example.com",
                                             user_id="uid-0001")
        self.api_keys = set(api_keys)
        self.access_ttl = access_ttl
        self.state_ttl = state_ttl
        self.models = tuple(models)
        self.refresh_delay = 0.0
        self.refusals: list[Refusal] = []  # the next chat answers, before any check but authentication
        self.counters = Counters()
        self.grants = Grants("cbr_", rotate=True, revoke_on_reuse=False)
        self.pages: dict[str, LoginPage] = {}
        self._access: dict[str, AccessToken] = {}
        self._script = Script()
        self._state = FakeState(self._script, Issued(), self.models, None)
        self.start()

    # ------------------------------------------------------------- controls

    @property
    def base_url(self) -> str:
        return f"{self.url}/v2"

    def approve(self, identity: Identity | None = None) -> None:
        """The user signs in on the newest open login page."""
        with self.lock:
            page = self._newest_page()
            page.decision, page.identity = LoginState.APPROVED, identity or self.identity

    def deny(self) -> None:
        with self.lock:
            self._newest_page().decision = LoginState.DENIED

    def issue_tokens(self, identity: Identity | None = None) -> dict[str, Any]:
        """A finished login's token `data` with the account's fields (uid, nickname), without the login."""
        identity = identity or self.identity
        with self.lock:
            return {**self._token_data(self.grants.issue(identity, "chat")), **account_of(identity)}

    def fail_next(self, status: int, code: int, msg: str, param: str | None = None) -> None:
        """The next chat request (once authenticated) is refused with CodeBuddy's `{code, msg[, extError]}`."""
        with self.lock:
            self.refusals.append(Refusal(status, code, msg, param))

    def expire_access_tokens(self) -> None:
        with self.lock:
            for token in self._access.values():
                token.expires_at = min(token.expires_at, self.now() - 1)

    def revoke_all(self) -> None:
        with self.lock:
            for grant in self.grants.all():
                grant.revoked = True

    def chat_requests(self) -> list[Recorded]:
        return [r for r in self.requests if r.protocol == "codebuddy-chat"]

    # ------------------------------------------------------------- app

    def build_app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v2/plugin/auth/state", self._start_login)
        app.router.add_get("/login", self._login_page)
        app.router.add_get("/v2/plugin/auth/token", self._poll)
        app.router.add_get("/v2/plugin/login/account", self._account)
        app.router.add_post("/v2/plugin/auth/token/refresh", self._refresh)
        app.router.add_post("/v2/chat/completions", self._chat)
        app.router.add_get("/v3/config", self._config)
        app.router.add_route("*", "/{tail:.*}", self._not_found)
        return app

    # ------------------------------------------------------------- the state login

    async def _start_login(self, request: web.Request) -> web.StreamResponse:
        await self.record(request, "codebuddy-auth")
        with self.lock:
            self.counters.device_requests += 1
            if request.query.get("platform") not in ("CLI", "IDE"):
                return Refusal(400, INVALID, "invalid platform").answer()
            page = LoginPage(secrets.token_urlsafe(24), self.now() + self.state_ttl)
            self.pages[page.state] = page
        auth_url = f"{self.url}/login?platform={request.query['platform']}&state={page.state}"
        return ok({"state": page.state, "authUrl": auth_url})

    async def _login_page(self, request: web.Request) -> web.StreamResponse:
        await self.record(request, "codebuddy-auth")
        return web.Response(text="<html><body>Sign in to CodeBuddy.</body></html>", content_type="text/html")

    async def _poll(self, request: web.Request) -> web.StreamResponse:
        await self.record(request, "codebuddy-auth")
        with self.lock:
            self.counters.polls += 1
            page = self.pages.get(request.query.get("state", ""))
            if page is None or page.decision is LoginState.DONE:
                return Refusal(200, EXPIRED, "state not found").answer()
            if page.expires_at < self.now():
                return Refusal(200, EXPIRED, "login state expired").answer()
            if page.decision is LoginState.DENIED:
                return Refusal(200, DENIED, "login cancelled by user").answer()
            if page.decision is LoginState.PENDING:
                return Refusal(200, PENDING, "login ing...").answer()
            assert page.identity is not None
            page.decision, page.grant = LoginState.DONE, self.grants.issue(page.identity, "chat")
            return ok(self._token_data(page.grant))

    async def _account(self, request: web.Request) -> web.StreamResponse:
        await self.record(request, "codebuddy-auth")
        with self.lock:
            page = self.pages.get(request.query.get("state", ""))
            try:
                grant = self._bearer_grant(request)
            except Refusal as refusal:
                return refusal.answer()
            if page is None or page.grant is not grant:
                return Refusal(200, INVALID, "state does not belong to this token").answer()
            return ok(account_of(grant.identity))

    async def _refresh(self, request: web.Request) -> web.StreamResponse:
        await self.record(request, "codebuddy-auth")
        with self.lock:
            self.counters.token_calls += 1
            self.counters.refresh_calls += 1
            answer = self._rotate(request)
        await asyncio.sleep(self.refresh_delay)  # the new tokens exist already: a client killed now loses them
        return answer

    def _rotate(self, request: web.Request) -> web.Response:
        if request.headers.get("X-Domain") != self.domain:
            return Refusal(400, INVALID, "X-Domain is missing or wrong").answer()
        outcome, grant = self.grants.redeem(request.headers.get("X-Refresh-Token", ""))
        if outcome is not RefreshOutcome.OK or grant is None:
            return Refusal(200, SESSION_GONE, "Offline user session not found").answer()
        return ok(self._token_data(grant))

    def _token_data(self, grant: Grant) -> dict[str, Any]:
        token = "cba_" + secrets.token_urlsafe(32)
        self._access[token] = AccessToken(grant, self.now() + self.access_ttl)
        return {"accessToken": token, "refreshToken": grant.current, "expiresIn": self.access_ttl,
                "tokenType": "Bearer", "domain": self.domain}

    def _newest_page(self) -> LoginPage:
        pending = [p for p in self.pages.values() if p.decision is LoginState.PENDING and p.expires_at > self.now()]
        if not pending:
            raise LookupError("no open login page")
        return pending[-1]

    # ------------------------------------------------------------- chat and the model list

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        recorded = await self.record(request, "codebuddy-chat")
        try:
            with self.lock:
                self._authenticate(request)
                if self.refusals:
                    raise self.refusals.pop(0)
            body = recorded.body
            if not isinstance(body, dict):
                raise Refusal(400, INVALID, "Parse message failed")
            check_codebuddy_rules(body, self.models)
            return await OpenAIChat().serve("chat", request, body, self._state)
        except Refusal as refusal:
            return refusal.answer()
        except Rejection as rejection:  # the OpenAI rules, or a scripted error: in CodeBuddy's envelope
            code = INVALID if rejection.status == 400 else rejection.status
            return Refusal(rejection.status, code, f"Parse message failed: {rejection.message}"
                           if rejection.status == 400 else rejection.message).answer()

    async def _config(self, request: web.Request) -> web.StreamResponse:
        await self.record(request, "codebuddy-config")
        try:
            with self.lock:
                self._authenticate(request)
        except Refusal as refusal:
            return refusal.answer()
        return ok({"models": [{"id": name, "name": name, "vision": True} for name in self.models]})

    async def _not_found(self, request: web.Request) -> web.StreamResponse:
        await self.record(request, "unknown")
        return Refusal(404, 404, f"Unknown request URL: {request.method} {request.path}").answer()

    def _authenticate(self, request: web.Request) -> None:
        """Both auth headers with the same secret: an API key, or a live login token with its user and domain."""
        scheme, _, secret = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not secret or request.headers.get("X-API-Key") != secret:
            raise Refusal(401, 401, "missing or mismatched Authorization / X-API-Key")
        if secret in self.api_keys:
            return
        grant = self._bearer_grant(request)
        if request.headers.get("X-User-Id") != grant.identity.user_id or request.headers.get("X-Domain") != \
                self.domain:
            raise Refusal(403, 403, "X-User-Id or X-Domain does not match the token")

    def _bearer_grant(self, request: web.Request) -> Grant:
        secret = request.headers.get("Authorization", "").partition(" ")[2]
        access = self._access.get(secret)
        if access is None or access.grant.revoked:
            raise Refusal(401, 401, "invalid token")
        if access.expires_at <= self.now():
            raise Refusal(401, 401, "token expired")
        return access.grant


def check_codebuddy_rules(body: dict[str, Any], models: tuple[str, ...]) -> None:
    """What the API refuses before the OpenAI rules: a non-stream request, no system message (or a
    `developer` one), more than
    32000 output tokens, a tool_choice that is not a string, an unknown model."""
    if body.get("stream") is not True:
        raise Refusal(400, INVALID, NO_STREAM)
    messages = body.get("messages")
    if not isinstance(messages, list) or not any(isinstance(m, dict) and m.get("role") == "system"
                                                 for m in messages):
        raise Refusal(400, INVALID, NO_SYSTEM)
    if any(isinstance(m, dict) and m.get("role") == "developer" for m in messages):
        raise Refusal(400, INVALID, "Parse message failed: unknown role developer")
    for name in ("max_tokens", "max_completion_tokens"):
        value = body.get(name)
        if isinstance(value, int) and value > MAX_OUTPUT_TOKENS:
            raise Refusal(400, BAD_PARAMETER, "Invalid request parameters", param="max_output_tokens")
    if "tool_choice" in body and not isinstance(body["tool_choice"], str):
        raise Refusal(400, INVALID, "Parse message failed: tool_choice must be a string")
    if body.get("model") not in models:
        raise Refusal(400, INVALID, f"model {body.get('model')} is not supported")


def account_of(identity: Identity) -> dict[str, Any]:
    return {"uid": identity.user_id, "nickname": identity.email, "enterpriseId": "", "type": "personal"}


def ok(data: Any) -> web.Response:
    return json_answer({"code": 0, "msg": "OK", "data": data})

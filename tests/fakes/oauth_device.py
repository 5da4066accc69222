"""A faithful fake OAuth server for device logins, and the Kimi Code API behind it.

`OAuthDeviceServer` is RFC 8628 (device authorization grant) plus RFC 6749
section 6 (refresh), configurable for each provider's variant (paths, client
id, PKCE S256, the statuses its errors come with, a device-id header bound to
the login), so the Qwen and Codex fakes can mount it too:

    server = OAuthDeviceServer(client_id="...", device_path="/api/oauth/device_authorization",
                               token_path="/api/oauth/token")
    server.add_routes(app)                 # an aiohttp Application
    server.approve_after = 3               # the user approves at the 3rd poll (None: never)
    server.deny = True                     # ... or denies there
    server.slow_down_on = {2}              # polls answered `slow_down` (the interval grows by 5 s)
    server.issue(device_id="d1")           # a token answer, as a login would get, to seed account files

Polls before the interval is up get `slow_down` and are counted in `too_fast`;
a code past its lifetime gets `expired_token`. Refresh tokens rotate: each
refresh answers a new pair and the old refresh token is dead from then on
(reusing it: `invalid_grant`). `refresh_calls` counts refresh requests; with
`refresh_delay` the answer waits, and a client that leaves meanwhile changes
nothing (the handler is cancelled before the rotation); with `refresh_outage`
every refresh fails with that status. `issued` holds every
token handed out, so tests can look for them where they must not be.

`FakeKimi` puts it behind the Kimi paths with Kimi's API at
/coding/v1/chat/completions: the bearer must be a live access token and the
`X-Msh-Device-Id` the one its login was made with, else 401; the body is served
by the OpenAI Chat fake. GET /coding/v1/models lists `models` (OpenAI's shape, as
Kimi Code answers it), with the same check; `models_outage` makes it fail."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from .openai_chat import OpenAIChat
from .script import Recorded, Script
from .threaded import ThreadedApp
from .wire import FakeState, Issued, Rejection, ScriptedModel

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
SLOW_DOWN_STEP = 5.0
EARLY_SLACK = 0.3  # seconds a poll may come early (timer jitter) before it counts as too fast
KIMI_CLIENT_ID = "17e5f671-d194-4dfb-9706-5516cb48c098"
KIMI_MODELS = ("kimi-for-coding", "kimi-for-coding-highspeed")


@dataclass
class DeviceLogin:
    device_code: str
    user_code: str
    expires_at: float
    interval: float
    last_poll: float  # the issue time until the first poll
    device_id: str | None
    challenge: str | None
    polls: int = 0
    done: bool = False


@dataclass
class AccessGrant:
    expires_at: float
    device_id: str | None


@dataclass
class OAuthDeviceServer:
    client_id: str
    device_path: str
    token_path: str
    pkce: bool = False  # the device request must carry an S256 code_challenge, the poll its verifier
    interval: float = 1.0
    code_lifetime: float = 600.0
    access_lifetime: float = 3600.0
    error_status: int = 400  # device-flow errors (pending, slow_down, expired, denied)
    refusal_status: int = 400  # a refused refresh token
    device_header: str | None = None  # a header whose value is bound to the login (Kimi: X-Msh-Device-Id)
    token_prefix: str = "tok"
    # what the user does, and faults
    approve_after: int | None = 2
    deny: bool = False
    slow_down_on: set[int] = field(default_factory=set)
    refresh_delay: float = 0.0
    refresh_outage: int | None = None  # a status (503) every refresh gets, changing nothing
    # what happened
    refresh_calls: int = 0
    refresh_refused: int = 0
    too_fast: int = 0
    poll_times: list[float] = field(default_factory=list)
    logins: list[DeviceLogin] = field(default_factory=list)
    issued: list[str] = field(default_factory=list)
    access: dict[str, AccessGrant] = field(default_factory=dict)
    refresh_tokens: dict[str, str | None] = field(default_factory=dict)  # live refresh token -> device id

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post(self.device_path, self._device_authorization)
        app.router.add_post(self.token_path, self._token)

    # ------------------------------------------------------------ for tests

    def issue(self, device_id: str | None = None, lifetime: float | None = None) -> dict[str, Any]:
        """A token answer (and the tokens live on the server), as a finished login gets."""
        access = f"{self.token_prefix}-at-{secrets.token_hex(12)}"
        refresh = f"{self.token_prefix}-rt-{secrets.token_hex(12)}"
        seconds = self.access_lifetime if lifetime is None else lifetime
        self.access[access] = AccessGrant(time.time() + seconds, device_id)
        self.refresh_tokens[refresh] = device_id
        self.issued += [access, refresh]
        return {"access_token": access, "refresh_token": refresh, "token_type": "Bearer", "expires_in": float(seconds),
                "scope": "kimi-code"}

    def revoke(self, refresh_token: str) -> None:
        self.refresh_tokens.pop(refresh_token, None)

    def expire(self, access_token: str) -> None:
        """The server stops taking an access token before the expiry it announced."""
        self.access.pop(access_token, None)

    def grant_for(self, access_token: str) -> AccessGrant | None:
        grant = self.access.get(access_token)
        return grant if grant is not None and grant.expires_at > time.time() else None

    # ------------------------------------------------------------ the endpoints

    async def _device_authorization(self, request: web.Request) -> web.Response:
        form = await request.post()
        if form.get("client_id") != self.client_id:
            return self._error(400, "invalid_client")
        challenge = form.get("code_challenge")
        if self.pkce and (not isinstance(challenge, str) or form.get("code_challenge_method") != "S256"):
            return self._error(400, "invalid_request", "code_challenge (S256) is required")
        device_id = request.headers.get(self.device_header) if self.device_header else None
        if self.device_header and not device_id:
            return self._error(400, "invalid_request", f"{self.device_header} is required")
        login = DeviceLogin(secrets.token_urlsafe(24), f"{secrets.randbelow(10**4):04d}-{secrets.randbelow(10**4):04d}",
                            time.time() + self.code_lifetime, self.interval, time.time(), device_id,
                            challenge if isinstance(challenge, str) else None)
        self.logins.append(login)
        base = f"{request.scheme}://{request.host}"
        return web.json_response({
            "device_code": login.device_code, "user_code": login.user_code,
            "verification_uri": f"{base}/device", "verification_uri_complete": f"{base}/device?code={login.user_code}",
            "expires_in": self.code_lifetime, "interval": self.interval})

    async def _token(self, request: web.Request) -> web.Response:
        form = await request.post()
        if form.get("client_id") != self.client_id:
            return self._error(400, "invalid_client")
        grant_type = form.get("grant_type")
        if grant_type == DEVICE_GRANT:
            return self._poll(str(form.get("device_code", "")), form.get("code_verifier"))
        if grant_type == "refresh_token":
            return await self._refresh(str(form.get("refresh_token", "")))
        return self._error(400, "unsupported_grant_type")

    def _poll(self, device_code: str, verifier: Any) -> web.Response:
        now = time.time()
        self.poll_times.append(now)
        login = next((item for item in self.logins if item.device_code == device_code and not item.done), None)
        if login is None:
            return self._error(self.error_status, "invalid_grant", "unknown device code")
        if self.pkce and not _verifier_matches(verifier, login.challenge):
            return self._error(400, "invalid_grant", "code_verifier does not match")
        if now > login.expires_at:
            login.done = True
            return self._error(self.error_status, "expired_token")
        early = now - login.last_poll < login.interval - EARLY_SLACK
        login.last_poll = now
        login.polls += 1
        if early or login.polls in self.slow_down_on:
            self.too_fast += early
            login.interval += SLOW_DOWN_STEP
            return self._error(self.error_status, "slow_down")
        if self.approve_after is None or login.polls < self.approve_after:
            return self._error(self.error_status, "authorization_pending")
        login.done = True
        if self.deny:
            return self._error(self.error_status, "access_denied")
        return web.json_response(self.issue(login.device_id))

    async def _refresh(self, refresh_token: str) -> web.Response:
        self.refresh_calls += 1
        if self.refresh_delay:
            await asyncio.sleep(self.refresh_delay)  # a client that leaves cancels this: nothing rotates
        if self.refresh_outage is not None:
            return self._error(self.refresh_outage, "temporarily_unavailable")
        if refresh_token not in self.refresh_tokens:
            self.refresh_refused += 1
            return self._error(self.refusal_status, "invalid_grant", "the refresh token is invalid or was used")
        device_id = self.refresh_tokens.pop(refresh_token)
        return web.json_response(self.issue(device_id))

    @staticmethod
    def _error(status: int, code: str, description: str | None = None) -> web.Response:
        body: dict[str, Any] = {"error": code}
        if description:
            body["error_description"] = description
        return web.json_response(body, status=status)


def _verifier_matches(verifier: Any, challenge: str | None) -> bool:
    if not isinstance(verifier, str) or challenge is None:
        return False
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode() == challenge


class FakeKimi(ScriptedModel, ThreadedApp):
    """Kimi's OAuth server and Kimi Code API on one port: auth_url = url, base_url = url + /coding/v1.
    The model's answers are scripted as with FakeUpstream: `script(Turn(...))` or `respond_with(...)`."""

    thread_name = "fake-kimi"

    def __init__(self, **oauth: Any) -> None:
        super().__init__()
        self.oauth = OAuthDeviceServer(KIMI_CLIENT_ID, "/api/oauth/device_authorization", "/api/oauth/token",
                                       refusal_status=401, device_header="X-Msh-Device-Id", token_prefix="kimi",
                                       **oauth)
        self.refused: list[Recorded] = []  # API requests answered 401 (`requests` holds the accepted ones)
        self.models: list[str] = list(KIMI_MODELS)  # what GET /coding/v1/models lists
        self.models_outage: int | None = None  # a status every model-list request gets instead
        self.model_lists: list[Recorded] = []  # the model-list requests that were answered with the list
        self.model_list_calls = 0  # every model-list request, refused or not
        self.refused_lists: list[Recorded] = []  # model-list requests answered 401 (not in `refused`)
        self._chat = OpenAIChat()
        self._script = Script()
        self._state = FakeState(self._script, Issued(), KIMI_MODELS, None)
        self.start()

    @property
    def base_url(self) -> str:
        return f"{self.url}/coding/v1"

    def build_app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        self.oauth.add_routes(app)
        app.router.add_post("/coding/v1/chat/completions", self._chat_completions)
        app.router.add_get("/coding/v1/models", self._list_models)
        return app

    async def _list_models(self, request: web.Request) -> web.Response:
        """Kimi Code's model list: OpenAI's shape plus `context_length` and `supports_reasoning`."""
        self.model_list_calls += 1
        recorded = await self.record(request, "models")
        self.requests.remove(recorded)  # `requests` holds the chat requests
        refusal = self._unauthorized(request, recorded, self.refused_lists)
        if refusal is not None:
            return refusal
        if self.models_outage is not None:
            return web.json_response({"error": {"message": "The service is temporarily unavailable",
                                                "type": "server_error"}}, status=self.models_outage)
        self.model_lists.append(recorded)
        return web.json_response({"object": "list", "data": [
            {"id": name, "object": "model", "created": 1761264000, "owned_by": "moonshot",
             "context_length": 262144, "supports_reasoning": True} for name in self.models]})

    def _unauthorized(self, request: web.Request, recorded: Recorded, refused: list[Recorded]) -> web.Response | None:
        """A 401 unless the bearer is a live access token sent with its login's device id (the refused
        request is kept in `refused`)."""
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        grant = self.oauth.grant_for(token.strip()) if scheme.lower() == "bearer" else None
        if grant is not None and request.headers.get("X-Msh-Device-Id") == grant.device_id:
            return None
        refused.append(recorded)
        why = "The access token is invalid or expired" if grant is None else "The device id does not match"
        return web.json_response({"error": {"message": why, "type": "invalid_authentication_error"}}, status=401)

    async def _chat_completions(self, request: web.Request) -> web.StreamResponse:
        recorded = await self.record(request, self._chat.name)
        refusal = self._unauthorized(request, recorded, self.refused)
        if refusal is not None:
            self.requests.remove(recorded)
            return refusal
        try:
            if not isinstance(recorded.body, dict):
                raise Rejection(400, "The request body is not a valid JSON object.")
            return await self._chat.serve("chat", request, recorded.body, self._state)
        except Rejection as rejection:
            return self._chat.error_response(rejection)

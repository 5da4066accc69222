"""Qwen Code (qwen.ai OAuth): RFC 8628 device login with PKCE (S256) at
chat.qwen.ai, refresh 20 minutes ahead of expiry with a rotating refresh
token, and a per-account API host (`resource_url`, kept in the account file).

The free tier behind this login ended on 2026-04-15; the login is built for
the deployments and accounts where it still answers, and `crossroute login
--list` says so. Paid DashScope API keys need no login: `kind: openai,
preset: dashscope`. crossroute names itself in the DashScope user-agent
headers: it does not pose as Qwen Code."""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import httpx

from crossroute.accounts.model import OAuthToken
from crossroute.oauth.base import Flow, LoginContext, LoginFailed, LoginKind, Status, refresh_grant
from crossroute.oauth.device import DeviceGrant, run_device_flow
from crossroute.providers.dashscope import DASHSCOPE_HEADERS, USER_AGENT

CLIENT_ID = "f0304373b74a44d2b584a3fb70ca9e56"  # Qwen Code's public client id (no secret)
SCOPE = "openid profile email model.completion"
ENDED = "2026-04-15"
OAUTH_HEADERS: Mapping[str, str] = {**DASHSCOPE_HEADERS, "x-dashscope-authtype": "qwen-oauth"}


class QwenLogin(LoginKind):
    name = "qwen"
    title = "Qwen Code (qwen.ai OAuth)"
    status = Status("ended", ENDED, "the free tier ended; the login is implemented for deployments and accounts "
                                    "where it still answers (paid DashScope API keys: kind: openai, preset: dashscope)")
    flows: ClassVar[tuple[Flow, ...]] = ("device", "import")
    refresh_lead = 20 * 60.0  # CLIProxyAPI's lead (providers.md section 0)

    def grant(self, auth_url: str) -> DeviceGrant:
        return DeviceGrant(f"{auth_url}/api/v1/oauth2/device/code", f"{auth_url}/api/v1/oauth2/token", CLIENT_ID,
                           SCOPE, pkce=True, headers={"user-agent": USER_AGENT})

    def login(self, flow: Flow, ctx: LoginContext) -> OAuthToken:
        if flow != "device":
            raise LoginFailed(f"{self.title} logs in with a device code only (no --browser)")
        print(f"Note: Qwen's free OAuth tier ended on {ENDED}; this login works only where the service still "
              "answers.", file=ctx.out)
        return self.token_from_answer(run_device_flow(self.grant(ctx.auth_url), ctx))

    def refresh(self, http: httpx.Client, auth_url: str, token: OAuthToken) -> OAuthToken:
        assert token.refresh_token is not None
        answer = refresh_grant(http, f"{auth_url}/api/v1/oauth2/token",
                               {"grant_type": "refresh_token", "refresh_token": token.refresh_token,
                                "client_id": CLIENT_ID}, {"user-agent": USER_AGENT})
        return self.token_from_answer(answer, token)

    def answer_extras(self, answer: Mapping[str, Any]) -> dict[str, Any]:
        """The token type and scope, and the account's API host (`resource_url`, which a refresh may move)."""
        return {name: answer[name] for name in ("token_type", "scope", "resource_url")
                if isinstance(answer.get(name), str) and answer[name]}

    def request_headers(self, token: OAuthToken) -> dict[str, str]:
        return dict(OAUTH_HEADERS)

    def default_import_path(self) -> Path:
        return Path.home() / ".qwen" / "oauth_creds.json"

    def import_token(self, data: Mapping[str, Any]) -> OAuthToken:
        """qwen-code's `~/.qwen/oauth_creds.json`: the tokens, `expiry_date` (epoch milliseconds), `resource_url`."""
        access, refresh = data.get("access_token"), data.get("refresh_token")
        if not isinstance(access, str) or not access or not isinstance(refresh, str) or not refresh:
            raise LoginFailed("the file has no access_token and refresh_token")
        return OAuthToken(access, refresh, _expiry(data.get("expiry_date")), self.answer_extras(data))


def resource_base(resource_url: str) -> str:
    """The API base for a `resource_url`: `portal.qwen.ai` becomes `https://portal.qwen.ai/v1`
    (a scheme and `/v1` are added when missing, as qwen-code does)."""
    url = resource_url.strip().rstrip("/")
    if "://" not in url:
        url = f"https://{url}"
    return url if url.endswith("/v1") else f"{url}/v1"


def _expiry(value: Any) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return float(value) / 1000 if value > 1e12 else float(value)
    return time.time()  # unknown: refreshed before its first use

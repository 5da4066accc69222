"""Kimi Code (Moonshot's subscription): RFC 8628 device login without PKCE,
refresh 5 minutes ahead of expiry, the OpenAI-format API at
`https://api.kimi.com/coding/v1`. Every auth and API call carries the
`X-Msh-*` device headers, with a device id made at login and kept in the
account file (`device_id`). crossroute names itself in them: it does not pose
as another client."""

from __future__ import annotations

import functools
import platform
import socket
import time
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any, ClassVar

import httpx

from crossroute import __version__
from crossroute.accounts.model import OAuthToken
from crossroute.oauth.base import Flow, LoginContext, LoginFailed, LoginKind, Status, refresh_grant
from crossroute.oauth.device import DeviceGrant, run_device_flow

CLIENT_ID = "17e5f671-d194-4dfb-9706-5516cb48c098"  # Kimi Code's public client id (no secret)


class KimiLogin(LoginKind):
    name = "kimi"
    title = "Kimi Code (Moonshot subscription)"
    status = Status("available", note="device login; --import takes a token file with access/refresh tokens")
    flows: ClassVar[tuple[Flow, ...]] = ("device", "import")
    refresh_lead = 300.0

    def grant(self, auth_url: str, device_id: str) -> DeviceGrant:
        return DeviceGrant(f"{auth_url}/api/oauth/device_authorization", f"{auth_url}/api/oauth/token", CLIENT_ID,
                           headers=device_headers(device_id))

    def login(self, flow: Flow, ctx: LoginContext) -> OAuthToken:
        if flow != "device":
            raise LoginFailed(f"{self.title} logs in with a device code only (no --browser)")
        device_id = str(uuid.uuid4())
        answer = run_device_flow(self.grant(ctx.auth_url, device_id), ctx)
        token = self.token_from_answer(answer)
        return OAuthToken(token.access_token, token.refresh_token, token.expires_at,
                          {**token.extras, "device_id": device_id})

    def refresh(self, http: httpx.Client, auth_url: str, token: OAuthToken) -> OAuthToken:
        assert token.refresh_token is not None
        device_id = str(token.extras.get("device_id") or "")
        answer = refresh_grant(http, f"{auth_url}/api/oauth/token",
                               {"client_id": CLIENT_ID, "grant_type": "refresh_token",
                                "refresh_token": token.refresh_token}, device_headers(device_id))
        return self.token_from_answer(answer, token)

    def request_headers(self, token: OAuthToken) -> dict[str, str]:
        return device_headers(str(token.extras.get("device_id") or ""))

    def import_token(self, data: Mapping[str, Any]) -> OAuthToken:
        """A token file with `access_token`, `refresh_token`, `device_id` and the expiry as
        `expires_at` (Unix seconds) or `expired` (RFC 3339), as other Kimi tools keep it."""
        access, refresh = data.get("access_token"), data.get("refresh_token")
        if not isinstance(access, str) or not access or not isinstance(refresh, str) or not refresh:
            raise LoginFailed("the file has no access_token and refresh_token")
        extras = {name: data[name] for name in ("device_id", "token_type", "scope") if isinstance(data.get(name), str)}
        extras.setdefault("device_id", str(uuid.uuid4()))
        return OAuthToken(access, refresh, _expiry(data), extras)


def device_headers(device_id: str) -> dict[str, str]:
    """The `X-Msh-*` headers (lower case, as the data-plane client's header names are)."""
    headers = dict(_this_machine())
    if device_id:
        headers["x-msh-device-id"] = device_id
    return headers


@functools.cache
def _this_machine() -> tuple[tuple[str, str], ...]:
    return (("x-msh-platform", "crossroute"), ("x-msh-version", __version__),
            ("x-msh-device-name", socket.gethostname() or "unknown"),
            ("x-msh-device-model", f"{platform.system()} {platform.machine()}".strip() or "unknown"),
            ("user-agent", f"crossroute/{__version__}"))


def _expiry(data: Mapping[str, Any]) -> float | None:
    value = data.get("expires_at", data.get("expired"))
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value) / 1000 if value > 1e12 else float(value)  # milliseconds, as some files keep it
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except ValueError:
            raise LoginFailed("the file's expiry is not an RFC 3339 time") from None
    return time.time()  # unknown: refreshed before its first use

"""Qoder (Alibaba): two logins and the COSY request signature.

- The browser login: a PKCE pair, a nonce and a machine id make a sign-in address on
  qoder.com (`/device/selectAccounts`); the user signs in there while the client polls
  `GET {openapi}/api/v1/deviceToken/poll` (404 or 202 while pending, not RFC 8628). The
  answer's `dt-` token lasts about 30 days. Qoder's refresh endpoints refuse these tokens
  (the seed found a 403; one other source disagrees, so nothing is refreshed): the account
  shows `needs login` ahead of expiry, with the date (crossroute/accounts/report.py).
- The Personal Access Token (`crossroute login qoder --token`): `POST {openapi}/api/v1/
  jobToken/exchange` turns the `pt-` token into a job token of about a day. The personal
  token is kept as the account's refresh token, and the job token is renewed by exchanging
  it again.
- COSY (`cosy_headers`): every chat and model-list request is signed over its exact body.

All wire facts come from third-party reimplementations (shared/protocols/providers.md
section 7, seed 000), not from Qoder's documentation. The signature needs the protocol
version and client type Qoder's servers check (`COSY_VERSION`, `CLIENT_TYPE`); the user
agent names crossroute. Regions: the defaults are the global hosts; a CN account sets
`auth_url: https://openapi.qoder.com.cn` and `base_url: https://gateway.qoder.com.cn`
(tokens do not cross regions)."""

from __future__ import annotations

import base64
import functools
import hashlib
import os
import platform
import time
import uuid
import webbrowser
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlencode, urlsplit

import httpx
import orjson
from cryptography.hazmat.primitives import padding, serialization
from cryptography.hazmat.primitives.asymmetric import padding as asymmetric_padding
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

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
from crossroute.oauth.pkce import Pkce
from crossroute.state.accounts import Quota, UsageWindow

CLIENT_ID = "e883ade2-e6e3-4d6d-adf7-f92ceff5fdcb"  # the CLI's public client id (no secret)
COSY_VERSION = "0.2.16"  # the signing protocol level the servers accept (an older one: 403 Signature invalid)
CLIENT_TYPE = "5"  # the CLI client type of the protocol
USER_AGENT = f"crossroute/{__version__}"
POLL_INTERVAL = 1.0
LOGIN_WAIT = 5 * 60.0
QUOTA_WINDOW_MINUTES = 30 * 1440  # the plan's credits are counted per monthly cycle (UNCERTAIN)
# The sign-in pages for the OpenAPI hosts of the two regions; another host (a test double) serves its own.
WEB_HOSTS = {"https://openapi.qoder.sh": "https://qoder.com", "https://openapi.qoder.com.cn": "https://qoder.cn"}
# Qoder's RSA public key (1024 bits), public in several clients; CROSSROUTE_QODER_PUBLIC_KEY names a PEM
# file that replaces it (a test double's key).
PUBLIC_KEY_PEM = b"""-----BEGIN PUBLIC KEY-----
MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDA8iMH5c02LilrsERw9t6Pv5Nc
4k6Pz1EaDicBMpdpxKduSZu5OANqUq8er4GM95omAGIOPOh+Nx0spthYA2BqGz+l
6HRkPJ7S236FZz73In/KVuLnwI8JJ2CbuJap8kvheCCZpmAWpb/cPx/3Vr/J6I17
XcW+ML9FoCI6AOvOzwIDAQAB
-----END PUBLIC KEY-----
"""
PUBLIC_KEY_ENV = "CROSSROUTE_QODER_PUBLIC_KEY"


class QoderLogin(LoginKind):
    name = "qoder"
    title = "Qoder (Alibaba)"
    status = Status("available", note="browser sign-in or --token (a Personal Access Token); its wire facts come "
                                      "from third-party reimplementations, not from Qoder")
    flows: ClassVar[tuple[Flow, ...]] = ("browser", "token")
    refresh_lead = 300.0
    reports_quota = True

    # ------------------------------------------------------------ the browser login

    def login(self, flow: Flow, ctx: LoginContext) -> OAuthToken:
        if flow != "browser":
            raise LoginFailed(f"{self.title} logs in in a browser or with --token")
        pkce = Pkce.new(48)  # a 64-character verifier, as the official client makes
        nonce, machine_id = str(uuid.uuid4()), str(uuid.uuid4())
        url = sign_in_url(ctx.auth_url, pkce, nonce, machine_id)
        print(f"To sign in, open {url}", file=ctx.out)
        if ctx.open_browser and has_display():
            try:
                if webbrowser.open(url):
                    print("A browser was opened at that address.", file=ctx.out)
            except webbrowser.Error:
                pass
        ctx.out.flush()
        answer = poll_for_token(ctx, nonce, pkce.verifier)
        return self._account_token(ctx.http, ctx.auth_url, answer, machine_id, "browser", None)

    # ------------------------------------------------------------ the Personal Access Token

    def token_login(self, secret: str, ctx: LoginContext) -> OAuthToken:
        if not secret.startswith("pt-"):
            raise LoginFailed("a Qoder Personal Access Token starts with pt- (create one in Qoder's settings)")
        try:
            answer = exchange_personal_token(ctx.http, ctx.auth_url, secret)
        except (RefreshRejected, RefreshUnavailable) as exc:
            raise LoginFailed(str(exc)) from None
        return self._account_token(ctx.http, ctx.auth_url, answer, str(uuid.uuid4()), "token", secret)

    def refresh(self, http: httpx.Client, auth_url: str, token: OAuthToken) -> OAuthToken:
        """A job token's renewal (the personal token exchanged again); a browser login has none."""
        if token.extras.get("login") != "token" or not token.refresh_token:
            raise RefreshRejected("Qoder does not refresh browser-login tokens")
        answer = exchange_personal_token(http, auth_url, token.refresh_token)
        return OAuthToken(_token_in(answer), token.refresh_token, expiry_of(answer), token.extras)

    def _account_token(self, http: httpx.Client, auth_url: str, answer: Mapping[str, Any], machine_id: str,
                       login: str, refresh: str | None) -> OAuthToken:
        access = _token_in(answer)
        user = user_info(http, auth_url, access)
        extras = {"login": login, "machine_id": machine_id,
                  "user_id": str(user.get("id") or user.get("uid") or answer.get("user_id") or ""),
                  "name": str(user.get("name") or ""), "email": str(user.get("email") or "")}
        if not extras["user_id"]:
            raise LoginFailed("Qoder's answer names no user id, which the request signature needs")
        return OAuthToken(access, refresh, expiry_of(answer), extras)

    def default_label(self, token: OAuthToken) -> str | None:
        return str(token.extras.get("email") or "") or None

    def request_headers(self, token: OAuthToken) -> dict[str, str]:
        return {"user-agent": USER_AGENT}

    # ------------------------------------------------------------ the plan's usage

    def fetch_quota(self, http: httpx.Client, auth_url: str, token: OAuthToken) -> Quota | None:
        """The plan's credits (`GET {openapi}/api/v2/quota/usage`) as one usage window; None if not told."""
        answer = http.get(f"{auth_url}/api/v2/quota/usage", headers={"authorization": f"Bearer {token.access_token}",
                                                                     "user-agent": USER_AGENT})
        return quota_of(_unwrapped(json_object(answer))) if answer.status_code == 200 else None


# ---------------------------------------------------------------- login helpers


def sign_in_url(auth_url: str, pkce: Pkce, nonce: str, machine_id: str) -> str:
    web = WEB_HOSTS.get(auth_url.rstrip("/"), auth_url.rstrip("/"))
    query = urlencode({"challenge": pkce.challenge, "challenge_method": pkce.method, "nonce": nonce,
                       "machine_id": machine_id, "client_id": CLIENT_ID})
    return f"{web}/device/selectAccounts?{query}"


def poll_for_token(ctx: LoginContext, nonce: str, verifier: str) -> dict[str, Any]:
    """Poll until the sign-in is done (404 or 202: still pending); LoginFailed on a refusal or after LOGIN_WAIT."""
    url = f"{ctx.auth_url}/api/v1/deviceToken/poll"
    params = {"nonce": nonce, "verifier": verifier, "challenge_method": "S256"}
    expired = f"the sign-in was not completed within {LOGIN_WAIT / 60:.0f} minutes; run the command again"
    with Poll(ctx, LOGIN_WAIT, expired, "Qoder") as poll:
        while True:
            answer = poll.call(POLL_INTERVAL, lambda: ctx.http.get(url, params=params,
                                                                   headers={"user-agent": USER_AGENT}))
            if answer is None or answer.status_code in (202, 404):
                continue
            data = _unwrapped(json_object(answer))
            if answer.status_code == 200 and isinstance(data.get("token") or data.get("access_token"), str):
                return data
            raise LoginFailed(f"Qoder refused the sign-in (HTTP {answer.status_code})")


def exchange_personal_token(http: httpx.Client, auth_url: str, personal_token: str) -> dict[str, Any]:
    """A job token for a Personal Access Token: RefreshRejected if Qoder refuses it, RefreshUnavailable for now."""
    try:
        answer = http.post(f"{auth_url}/api/v1/jobToken/exchange", json={"personal_token": personal_token},
                           headers={"cosy-version": COSY_VERSION, "cosy-clienttype": CLIENT_TYPE,
                                    "user-agent": USER_AGENT})
    except httpx.HTTPError as exc:
        raise RefreshUnavailable(f"Qoder could not be reached ({type(exc).__name__})") from None
    data = _unwrapped(json_object(answer))
    if answer.status_code == 200 and isinstance(data.get("token"), str) and data["token"]:
        return data
    if answer.status_code in (400, 401, 403, 404):
        raise RefreshRejected(f"Qoder refused the personal access token (HTTP {answer.status_code})")
    raise RefreshUnavailable(f"Qoder did not exchange the personal access token (HTTP {answer.status_code})")


def user_info(http: httpx.Client, auth_url: str, access: str) -> dict[str, Any]:
    """`GET {openapi}/api/v1/userinfo`: the user's id, name and email ({} when it cannot be read)."""
    try:
        answer = http.get(f"{auth_url}/api/v1/userinfo", headers={"authorization": f"Bearer {access}",
                                                                  "user-agent": USER_AGENT})
    except httpx.HTTPError:
        return {}
    return _unwrapped(json_object(answer)) if answer.status_code == 200 else {}


def _unwrapped(data: dict[str, Any]) -> dict[str, Any]:
    """Some answers come as {code, data}: the data."""
    inner = data.get("data")
    return inner if isinstance(inner, dict) and "token" not in data else data


def _token_in(answer: Mapping[str, Any]) -> str:
    token = answer.get("token") or answer.get("access_token")
    if not isinstance(token, str) or not token:
        raise LoginFailed("Qoder's answer has no token")
    return token


def expiry_of(answer: Mapping[str, Any], now: float | None = None) -> float | None:
    """`expires_at` (RFC 3339, or Unix seconds or milliseconds), else `expires_in` (seconds or milliseconds)."""
    now = time.time() if now is None else now
    at = answer.get("expires_at") or answer.get("expire_time")
    if isinstance(at, str):
        try:
            return datetime.fromisoformat(at.replace("Z", "+00:00")).timestamp()
        except ValueError:
            at = int(at) if at.isdigit() else None
    if isinstance(at, int | float) and not isinstance(at, bool) and at > 0:
        return at / 1000 if at > 1e12 else float(at)
    lifetime = answer.get("expires_in")
    if isinstance(lifetime, int | float) and not isinstance(lifetime, bool) and lifetime > 0:
        return now + (lifetime / 1000 if lifetime > 1e8 else lifetime)  # 30 days in ms is > 1e8
    return None


def quota_of(data: Mapping[str, Any], now: float | None = None) -> Quota | None:
    user = data.get("userQuota")
    user = user if isinstance(user, dict) else {}
    percent = data.get("totalUsagePercentage", user.get("percentage"))
    if not isinstance(percent, int | float) or isinstance(percent, bool):
        used, total = user.get("used"), user.get("total")
        if not (isinstance(used, int | float) and isinstance(total, int | float) and total > 0):
            return None
        percent = 100.0 * used / total
    resets = expiry_of({"expires_at": data.get("expiresAt") or user.get("expiresAt")}) or 0.0
    now = time.time() if now is None else now
    return Quota(seen_at=now, windows=(UsageWindow(QUOTA_WINDOW_MINUTES, float(percent), resets),))


# ---------------------------------------------------------------- COSY


@dataclass(frozen=True, slots=True)
class CosyUser:
    """Who signs: the account's user and machine (from its token's extras) and its token."""

    user_id: str
    token: str
    name: str = ""
    email: str = ""
    machine_id: str = ""

    @classmethod
    def of(cls, token: OAuthToken) -> CosyUser:
        extras = token.extras
        return cls(str(extras.get("user_id") or ""), token.access_token, str(extras.get("name") or ""),
                   str(extras.get("email") or ""), str(extras.get("machine_id") or ""))


def signature_path(url: str) -> str:
    """The signed path: the URL's path without its leading `/algo` (the query is not signed)."""
    path = urlsplit(url).path
    return path[len("/algo"):] if path.startswith("/algo/") else path


def cosy_headers(user: CosyUser, url: str, body: bytes, now: float | None = None) -> dict[str, str]:
    """The full COSY header set for a request of `body` (the exact bytes sent) to `url`."""
    aes_key = uuid.uuid4().hex[:16].encode()  # 16 random ASCII characters; the IV is the key
    info = base64.b64encode(_aes_cbc(aes_key, orjson.dumps({
        "uid": user.user_id, "security_oauth_token": user.token, "name": user.name, "aid": "", "email": user.email,
    }))).decode()
    cosy_key = base64.b64encode(public_key().encrypt(aes_key, asymmetric_padding.PKCS1v15())).decode()
    request_id = str(uuid.uuid4())
    payload = base64.b64encode(orjson.dumps({"version": "v1", "requestId": request_id, "info": info,
                                             "cosyVersion": COSY_VERSION, "ideVersion": ""})).decode()
    date = str(int(time.time() if now is None else now))
    path = signature_path(url)
    signed = b"\n".join((payload.encode(), cosy_key.encode(), date.encode(), body, path.encode()))
    return {
        "authorization": f"Bearer COSY.{payload}.{hashlib.md5(signed).hexdigest()}",
        "cosy-key": cosy_key, "cosy-date": date, "cosy-user": user.user_id, "cosy-version": COSY_VERSION,
        "cosy-machineid": user.machine_id, "cosy-machinetoken": user.machine_id, "cosy-machinetype": CLIENT_TYPE,
        "cosy-machineos": machine_os(), "cosy-clienttype": CLIENT_TYPE, "cosy-clientip": "127.0.0.1",
        "cosy-bodyhash": hashlib.md5(body).hexdigest(), "cosy-bodylength": str(len(body)), "cosy-sigpath": path,
        "cosy-data-policy": "disagree", "cosy-organization-id": "", "cosy-organization-tags": "",
        "login-version": "v2", "x-request-id": request_id, "user-agent": USER_AGENT,
    }


def _aes_cbc(key: bytes, data: bytes) -> bytes:
    padder = padding.PKCS7(128).padder()
    encryptor = Cipher(algorithms.AES(key), modes.CBC(key)).encryptor()
    return encryptor.update(padder.update(data) + padder.finalize()) + encryptor.finalize()


@functools.cache
def public_key() -> RSAPublicKey:
    path = os.environ.get(PUBLIC_KEY_ENV)
    key = serialization.load_pem_public_key(Path(path).read_bytes() if path else PUBLIC_KEY_PEM)
    if not isinstance(key, RSAPublicKey):
        raise ValueError(f"{PUBLIC_KEY_ENV} is not an RSA public key")
    return key


@functools.cache
def machine_os() -> str:
    """`x86_64_linux`, `aarch64_darwin`: the protocol's name for this machine."""
    machine = platform.machine().lower().replace("amd64", "x86_64").replace("arm64", "aarch64")
    return f"{machine or 'unknown'}_{platform.system().lower() or 'unknown'}"

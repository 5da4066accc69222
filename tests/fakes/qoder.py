"""FakeQoder: Qoder's OpenAPI host (sign-in polling, personal tokens, user info, quota) and its chat
gateway (COSY-signed model list and agent chat), in one server on 127.0.0.1.

- Sign-in: the browser opens `/device/selectAccounts?challenge=...&nonce=...` (a test visits it
  as the user's browser would), `approve()` signs the user in, and the client's polls of
  `/api/v1/deviceToken/poll?nonce=...&verifier=...` answer 404 until then, then the token once
  S256(verifier) matches the page's challenge. Device tokens cannot be refreshed (403).
- Personal tokens: `personal_token()` makes a `pt-` token; `/api/v1/jobToken/exchange` trades it
  for a job token of `job_ttl` seconds.
- COSY: the fake has its own RSA key pair (`public_key_file`: point CROSSROUTE_QODER_PUBLIC_KEY at
  it). It verifies every signed request itself, as the server would: the header set, the path, the
  body's hash and length, the MD5 signature, the AES key under its RSA key, the token inside the
  encrypted info. A wrong or missing part answers 403 `Signature invalid`; an expired token 401.
- Chat: the body Qoder takes (string contents only, no system role, a known `model_config.key`,
  `session_type`), answered as the nested SSE `{"body": "<chat chunk>", "statusCodeValue": 200}`.

    with FakeQoder() as fake:
        fake.script(Turn(text="hi"))     # the model's answers, as with FakeUpstream
        fake.approve()                    # the user signs in on the newest sign-in page
        fake.expire_tokens()              # signed calls answer 401 until a new login

What each endpoint checks, and where the facts come from: tests/fakes/README.md.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import tempfile
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web
from cryptography.hazmat.primitives import padding, serialization
from cryptography.hazmat.primitives.asymmetric import padding as asymmetric_padding
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from .login import Counters, Identity, pkce_matches
from .openai_chat import ChunkWriter, validate, write_chunks
from .script import Recorded, Script
from .threaded import ThreadedApp, json_answer
from .wire import (
    Exchange,
    FakeState,
    Issued,
    Rejection,
    ScriptedModel,
    Sink,
    next_turn,
    open_stream,
    run_stream,
)

COSY_VERSION = "0.2.16"
SIGNATURE_INVALID = "Signature invalid"
DATE_SKEW = 300  # seconds a Cosy-Date may be off the fake's clock (UNCERTAIN)
REQUIRED_HEADERS = ("Cosy-Key", "Cosy-Date", "Cosy-User", "Cosy-Version", "Cosy-Sigpath", "Cosy-Bodyhash",
                    "Cosy-Bodylength", "Cosy-Machineid", "Cosy-Clienttype")
DEFAULT_MODEL = "auto"
MODELS: tuple[dict[str, Any], ...] = (
    {"key": "auto", "display_name": "Auto", "enable": True, "is_default": True, "is_reasoning": False,
     "is_vl": True, "max_input_tokens": 200000, "max_output_tokens": 32768, "price_factor": 1,
     "context_config": {"default": {"token_count": 200000}}},
    {"key": "lite", "display_name": "Lite", "enable": True, "is_default": False, "is_reasoning": False,
     "is_vl": False, "max_input_tokens": 200000, "max_output_tokens": 16384, "price_factor": 0,
     "context_config": {"default": {"token_count": 200000}}},
    {"key": "qmodel", "display_name": "Qwen3.6-Plus", "enable": True, "is_default": False, "is_reasoning": True,
     "is_vl": False, "max_input_tokens": 256000, "max_output_tokens": 65536, "price_factor": 1,
     "context_config": {"default": {"token_count": 256000}},
     "thinking_config": {"enabled": {"efforts": ["low", "medium", "high"]}}},
    {"key": "retired", "display_name": "Retired", "enable": False, "is_default": False, "is_reasoning": False,
     "is_vl": False, "max_input_tokens": 8000, "max_output_tokens": 4096},
)


@dataclass
class SignIn:
    """One sign-in page a browser opened, and what the user did there."""

    nonce: str
    challenge: str
    machine_id: str
    identity: Identity | None = None  # set once the user signed in
    collected: bool = False


@dataclass
class Token:
    identity: Identity
    expires_at: float
    kind: str  # "device" or "job"


@dataclass
class SignedCall:
    """A request whose COSY signature the fake verified: who signed, and the decrypted info."""

    path: str
    token: str
    info: dict[str, Any]
    payload: dict[str, Any]


@dataclass
class Usage:
    used: float = 0.0
    total: float = 1000.0
    per_request: float = 1.0
    cycle_ends: float = 0.0


@dataclass
class Answered:
    """What the chat endpoint served: the model it answered with, and the body it was asked with."""

    model: str
    body: dict[str, Any] = field(default_factory=dict)


class FakeQoder(ScriptedModel, ThreadedApp):
    thread_name = "fake-qoder"

    def __init__(self, *, identity: Identity | None = None, device_ttl: int = 30 * 86400, job_ttl: int = 86400,
                 models: tuple[dict[str, Any], ...] = MODELS) -> None:
        super().__init__()
        self.identity = identity or Identity(account_id="qoder-user-0001", user_id="qoder-user-0001",
                                             email="coder@example.com")
        self.device_ttl, self.job_ttl = device_ttl, job_ttl
        self.models = [dict(model) for model in models]
        self.counters = Counters()
        self.sign_ins: dict[str, SignIn] = {}
        self.tokens: dict[str, Token] = {}
        self.personal: dict[str, Identity] = {}
        self.signed: list[SignedCall] = []
        self.answered: list[Answered] = []
        self.usage = Usage()
        self._private = rsa.generate_private_key(public_exponent=65537, key_size=1024)
        self._key_dir = tempfile.TemporaryDirectory(prefix="fake-qoder-")
        self.public_key_file = Path(self._key_dir.name) / "qoder-public.pem"
        self.public_key_file.write_bytes(self._private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
        self._script = Script()
        self._state = FakeState(self._script, Issued(), tuple(m["key"] for m in self.models), None)
        self.start()

    def stop(self) -> None:
        super().stop()
        self._key_dir.cleanup()

    # ------------------------------------------------------------- controls

    def approve(self, nonce: str | None = None, *, identity: Identity | None = None) -> None:
        """The user signs in on the named (or newest) sign-in page."""
        with self.lock:
            sign_in = self.sign_ins[nonce] if nonce else list(self.sign_ins.values())[-1]
            sign_in.identity = identity or self.identity

    def issue_device_token(self, identity: Identity | None = None, lifetime: float | None = None) -> dict[str, Any]:
        """A completed sign-in's poll answer, without the sign-in (for seeded accounts)."""
        with self.lock:
            return self._device_answer(identity or self.identity, lifetime)

    def personal_token(self, identity: Identity | None = None) -> str:
        token = "pt-" + secrets.token_urlsafe(24)
        with self.lock:
            self.personal[token] = identity or self.identity
        return token

    def expire_tokens(self) -> None:
        with self.lock:
            for token in self.tokens.values():
                token.expires_at = min(token.expires_at, self.now() - 1)

    def chat_requests(self) -> list[Recorded]:
        return [r for r in self.requests if r.protocol == "qoder-chat"]

    # ------------------------------------------------------------- app

    def build_app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_get("/device/selectAccounts", self._sign_in_page)
        app.router.add_get("/api/v1/deviceToken/poll", self._poll)
        app.router.add_post("/api/v1/deviceToken/refresh", self._refresh)
        app.router.add_post("/algo/api/v3/user/refresh_token", self._refresh)
        app.router.add_post("/api/v1/jobToken/exchange", self._exchange)
        app.router.add_get("/api/v1/userinfo", self._user_info)
        app.router.add_get("/api/v2/quota/usage", self._quota)
        app.router.add_get("/algo/api/v2/model/list", self._model_list)
        app.router.add_post("/algo/api/v2/service/pro/sse/agent_chat_generation", self._chat)
        app.router.add_route("*", "/{tail:.*}", self._not_found)
        return app

    # ------------------------------------------------------------- sign-in

    async def _sign_in_page(self, request: web.Request) -> web.StreamResponse:
        recorded = await self.record(request, "qoder-auth")
        query = recorded.query
        if query.get("challenge_method") != "S256" or not all(query.get(n) for n in ("challenge", "nonce",
                                                                                        "machine_id", "client_id")):
            return web.Response(status=400, text="bad sign-in link")
        with self.lock:
            self.sign_ins[query["nonce"]] = SignIn(query["nonce"], query["challenge"], query["machine_id"])
        return web.Response(text="<html><body>Choose the account to sign in with.</body></html>",
                            content_type="text/html")

    async def _poll(self, request: web.Request) -> web.StreamResponse:
        recorded = await self.record(request, "qoder-auth")
        query = recorded.query
        with self.lock:
            self.counters.polls += 1
            sign_in = self.sign_ins.get(query.get("nonce", ""))
            if sign_in is None or sign_in.identity is None or sign_in.collected:
                return json_answer({"code": "404", "message": "not found"}, 404)  # pending
            if query.get("challenge_method") != "S256" or not pkce_matches(query.get("verifier"), sign_in.challenge):
                return json_answer({"code": "400", "message": "verifier mismatch"}, 400)  # UNCERTAIN
            sign_in.collected = True
            return json_answer(self._device_answer(sign_in.identity, None))

    def _device_answer(self, identity: Identity, lifetime: float | None) -> dict[str, Any]:
        token = "dt-" + secrets.token_urlsafe(32)
        ttl = self.device_ttl if lifetime is None else lifetime
        expires_at = self.now() + ttl
        self.tokens[token] = Token(identity, expires_at, "device")
        return {"id": str(uuid.uuid4()), "token": token, "refresh_token": "drt-" + secrets.token_urlsafe(32),
                "user_id": identity.user_id, "expires_at": _rfc3339(expires_at), "expires_in": int(ttl * 1000),
                "refresh_token_expires_in": 365 * 86400 * 1000}

    async def _refresh(self, request: web.Request) -> web.StreamResponse:
        await self.record(request, "qoder-auth")
        with self.lock:
            self.counters.refresh_calls += 1
        return json_answer({"code": "403", "message": "Forbidden"}, 403)  # device tokens are not refreshed

    async def _exchange(self, request: web.Request) -> web.StreamResponse:
        recorded = await self.record(request, "qoder-auth")
        body = recorded.body if isinstance(recorded.body, dict) else {}
        with self.lock:
            self.counters.token_calls += 1
            identity = self.personal.get(str(body.get("personal_token", "")))
            if identity is None or recorded.headers.get("cosy-clienttype") != "5":
                return json_answer({"code": "401", "message": "invalid personal token"}, 401)
            token = "jt-" + secrets.token_urlsafe(32)
            self.tokens[token] = Token(identity, self.now() + self.job_ttl, "job")
        return json_answer({"token": token, "expires_at": _rfc3339(self.now() + self.job_ttl)})

    def _bearer(self, request: web.Request) -> Identity:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        with self.lock:
            found = self.tokens.get(token)
        if found is None or found.expires_at <= self.now():
            raise Rejection(401, "TOKEN_EXPIRE")
        return found.identity

    async def _user_info(self, request: web.Request) -> web.StreamResponse:
        await self.record(request, "qoder-auth")
        try:
            identity = self._bearer(request)
        except Rejection as rejection:
            return json_answer({"code": "401", "message": rejection.message}, 401)
        return json_answer({"id": identity.user_id, "name": identity.account_id, "username": identity.account_id,
                            "email": identity.email, "organization_id": ""})

    async def _quota(self, request: web.Request) -> web.StreamResponse:
        await self.record(request, "qoder-auth")
        try:
            self._bearer(request)
        except Rejection as rejection:
            return json_answer({"code": "401", "message": rejection.message}, 401)
        usage = self.usage
        ends = usage.cycle_ends or self.now() + 20 * 86400
        return json_answer({"userQuota": {"used": usage.used, "total": usage.total,
                                          "remaining": usage.total - usage.used, "unit": "credit"},
                            "totalUsagePercentage": round(100 * usage.used / usage.total, 2),
                            "isQuotaExceeded": usage.used >= usage.total, "expiresAt": _rfc3339(ends)})

    # ------------------------------------------------------------- COSY

    def verify(self, request: web.Request, raw: bytes) -> Token:
        """The token a signed request carries, after checking the signature as the server does:
        Rejection 403 `Signature invalid` for any wrong or missing part, 401 for an expired token."""
        headers = request.headers
        scheme = "Bearer COSY."
        authorization = headers.get("Authorization", "")
        if not authorization.startswith(scheme) or any(name not in headers for name in REQUIRED_HEADERS):
            raise Rejection(403, SIGNATURE_INVALID)
        payload_b64, _, signature = authorization[len(scheme):].partition(".")
        path = request.path.removeprefix("/algo")
        if (headers["Cosy-Sigpath"] != path or headers["Cosy-Bodyhash"] != hashlib.md5(raw).hexdigest()
                or headers["Cosy-Bodylength"] != str(len(raw))):
            raise Rejection(403, SIGNATURE_INVALID)
        signed = b"\n".join((payload_b64.encode(), headers["Cosy-Key"].encode(), headers["Cosy-Date"].encode(), raw,
                             path.encode()))
        if not hmac.compare_digest(signature, hashlib.md5(signed).hexdigest()):
            raise Rejection(403, SIGNATURE_INVALID)
        try:
            payload, info = self._open_envelope(payload_b64, headers["Cosy-Key"])
            date = int(headers["Cosy-Date"])
        except (ValueError, binascii.Error, orjson.JSONDecodeError, KeyError, TypeError):
            raise Rejection(403, SIGNATURE_INVALID) from None
        if (payload.get("version") != "v1" or payload.get("cosyVersion") != COSY_VERSION
                or headers["Cosy-Version"] != COSY_VERSION or abs(self.now() - date) > DATE_SKEW
                or info.get("uid") != headers["Cosy-User"]):
            raise Rejection(403, SIGNATURE_INVALID)
        with self.lock:
            token = self.tokens.get(str(info.get("security_oauth_token")))
        if token is None or token.expires_at <= self.now():
            raise Rejection(401, "TOKEN_EXPIRE")
        if token.identity.user_id != info["uid"]:
            raise Rejection(403, SIGNATURE_INVALID)
        self.signed.append(SignedCall(request.path, str(info["security_oauth_token"]), info, payload))
        return token

    def _open_envelope(self, payload_b64: str, cosy_key: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """The payload and its info, decrypted with the fake's private key (ValueError if they do not open)."""
        payload = orjson.loads(base64.b64decode(payload_b64, validate=True))
        aes_key = self._private.decrypt(base64.b64decode(cosy_key, validate=True), asymmetric_padding.PKCS1v15())
        if len(aes_key) != 16:
            raise ValueError("not an AES-128 key")
        decryptor = Cipher(algorithms.AES(aes_key), modes.CBC(aes_key)).decryptor()
        padded = decryptor.update(base64.b64decode(payload["info"], validate=True)) + decryptor.finalize()
        unpadder = padding.PKCS7(128).unpadder()
        info = orjson.loads(unpadder.update(padded) + unpadder.finalize())
        if not isinstance(payload, dict) or not isinstance(info, dict):
            raise ValueError("not objects")
        return payload, info

    # ------------------------------------------------------------- the gateway

    async def _model_list(self, request: web.Request) -> web.StreamResponse:
        recorded = await self.record(request, "qoder-models")
        try:
            self.verify(request, recorded.raw)
        except Rejection as rejection:
            return qoder_error(rejection)
        return json_answer({"chat": self.models, "inline": []})

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        recorded = await self.record(request, "qoder-chat")
        try:
            self.verify(request, recorded.raw)
            body = recorded.body
            if not isinstance(body, dict):
                raise Rejection(400, "request body is not a JSON object")
            inner = self._inner_chat(body)
            turn = await next_turn(self._state, inner)
        except Rejection as rejection:
            return qoder_error(rejection)
        with self.lock:
            self.usage.used += self.usage.per_request
        response = await open_stream(request, "text/event-stream;charset=UTF-8", turn.headers)
        sink = Sink(request, Enveloped(response), turn, envelope_error)  # type: ignore[arg-type]
        writer = ChunkWriter(Exchange(request, inner, turn, self._state.issued, inner["model"]))
        return await run_stream(response, lambda: write_chunks(sink, writer, turn))

    def _inner_chat(self, body: dict[str, Any]) -> dict[str, Any]:
        """The OpenAI chat request inside Qoder's body, after Qoder's own rules."""
        config = body.get("model_config")
        key = config.get("key") if isinstance(config, dict) else None
        known = {model["key"]: model for model in self.models if model.get("enable", True)}
        if key not in known:
            raise Rejection(400, f"model not found: {key}", code="400")  # UNCERTAIN: the wording and status
        # Without the CLI's session type the server answers with its default model, whatever was asked.
        model = key if body.get("session_type") == "qodercli" else DEFAULT_MODEL
        messages = body.get("messages")
        for index, message in enumerate(messages if isinstance(messages, list) else []):
            if isinstance(message, dict) and not isinstance(message.get("content"), str):
                raise Rejection(400, f"messages[{index}].content must be a string")  # UNCERTAIN: the status
            if isinstance(message, dict) and message.get("role") in ("system", "developer"):
                raise Rejection(500, "Internal Server Error")
        inner = {"model": model, "messages": messages, "stream": True, "stream_options": {"include_usage": True}}
        if body.get("tools"):
            inner["tools"] = body["tools"]
        validate(inner)
        self.answered.append(Answered(model, body))
        return inner

    async def _not_found(self, request: web.Request) -> web.StreamResponse:
        await self.record(request, "unknown")
        return json_answer({"code": "404", "message": f"Not Found: {request.path}"}, 404)


class Enveloped:
    """What the sink writes to: each `data:` frame of a chat chunk goes out inside Qoder's envelope."""

    def __init__(self, response: web.StreamResponse) -> None:
        self.response = response

    async def write(self, data: bytes) -> None:
        out = []
        for frame in data.split(b"\n\n"):
            if not frame.startswith(b"data: "):
                continue
            inner = frame[len(b"data: "):]
            status = 200
            if inner.startswith(b'{"error"'):
                error = orjson.loads(inner)
                status = int(error["error"].pop("status", 500))
                inner = orjson.dumps(error)
            out.append(envelope(inner.decode(), status))
        await self.response.write(b"".join(out))


def envelope(body: str, status: int = 200) -> bytes:
    wrapped = {"headers": {}, "body": body, "statusCode": "OK" if status == 200 else str(status),
               "statusCodeValue": status}
    return b"data:" + orjson.dumps(wrapped) + b"\n\n"


def envelope_error(status: int, message: str) -> bytes:
    """A mid-stream error: its status travels in the envelope's statusCodeValue."""
    return b"data: " + orjson.dumps({"error": {"message": message, "code": str(status), "status": status}}) + b"\n\n"


def qoder_error(rejection: Rejection) -> web.Response:
    """Qoder's error answer (its shape is UNCERTAIN: a code and a message)."""
    return json_answer({"code": rejection.code or str(rejection.status), "message": rejection.message,
                        "success": False}, rejection.status)


def _rfc3339(when: float) -> str:
    return datetime.fromtimestamp(when, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

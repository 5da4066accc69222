"""The provider hooks through the real gateway: a provider that signs each final
request (HMAC over time, path and body bytes) and refreshes a token after a 401,
and one that wraps Gemini in a private envelope, against fakes that verify them."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import hmac
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from aiohttp import web

from crossroute import kinds, providers
from crossroute.accounts import Account, ApiKey
from crossroute.providers import UpstreamRequest
from crossroute.providers.gemini import GeminiProvider
from crossroute.providers.openai_compat import OpenAICompatProvider
from tests.gateway_runner import RunningGateway

CLIENT_KEY = "sk-client-hooks"
TEXT = "hello from the hooks"


class SignedChat(OpenAICompatProvider):
    """Signs the bytes that go up; after a 401 on token "old", refreshes to "new"."""

    kind = "signed-chat"

    async def prepare(self, request: UpstreamRequest, account: Account) -> UpstreamRequest:
        stamp = str(time.time())
        request.headers["x-timestamp"] = stamp
        request.headers["x-signature"] = signature(account.secret, stamp, urlsplit(request.url).path, request.body)
        return request

    async def refresh(self, account: Account) -> Account | None:
        fresh = {"old": "new", "stale": "stale-too"}.get(account.secret)
        return dataclasses.replace(account, credential=ApiKey(fresh)) if fresh else None

    def count_tokens_url(self, model: str) -> str | None:
        return f"{self.base_url}/count"

    def read_token_count(self, answer: Any) -> int | None:
        return answer.get("total") if isinstance(answer, dict) else None


class EnvelopedGemini(GeminiProvider):
    kind = "enveloped-gemini"
    has_envelope = True

    def wrap_body(self, body: dict[str, Any], model: str) -> dict[str, Any]:
        return {"model": model, "request": body}

    def unwrap_response(self, obj: Any) -> Any:
        return obj["response"]

    def unwrap_event(self, obj: Any) -> Any:
        return obj["response"]


def signature(key: str, stamp: str, path: str, body: bytes) -> str:
    return hmac.new(key.encode(), f"{stamp}\n{path}\n".encode() + body, hashlib.sha256).hexdigest()


# ------------------------------------------------------------------ the fake upstream

class Fake:
    """Checks signatures and envelopes; records every request it got."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, dict[str, str], bytes]] = []
        self.loop = asyncio.new_event_loop()
        self.port = 0
        ready = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(ready,), daemon=True)
        self.thread.start()
        assert ready.wait(10)
        self.url = f"http://127.0.0.1:{self.port}"

    def _run(self, ready: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self.chat)
        app.router.add_post("/v1/count", self.count)
        app.router.add_post("/v1beta/models/{action}", self.gemini)
        self.runner = web.AppRunner(app)
        self.loop.run_until_complete(self.runner.setup())
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        self.loop.run_until_complete(site.start())
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        ready.set()
        self.loop.run_forever()
        self.loop.run_until_complete(self.runner.cleanup())
        self.loop.close()

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)

    async def _signed(self, request: web.Request) -> tuple[bytes, web.Response | None]:
        body = await request.read()
        self.seen.append((request.path, dict(request.headers), body))
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        if token in ("old", "stale", "stale-too"):
            return body, web.json_response({"error": {"message": "token expired", "type": "auth"}}, status=401)
        expected = signature(token, request.headers.get("x-timestamp", ""), request.path, body)
        if not hmac.compare_digest(expected, request.headers.get("x-signature", "")):
            return body, web.json_response({"error": {"message": "bad signature", "type": "auth"}}, status=403)
        return body, None

    async def chat(self, request: web.Request) -> web.StreamResponse:
        body, refusal = await self._signed(request)
        if refusal is not None:
            return refusal
        payload = json.loads(body)
        if not payload.get("stream"):
            return web.json_response({
                "id": "c1", "object": "chat.completion", "created": 1, "model": payload["model"],
                "choices": [{"index": 0, "message": {"role": "assistant", "content": TEXT}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}})
        chunks = [{"role": "assistant", "content": TEXT[:5]}, {"content": TEXT[5:]}]
        events = [{"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": payload["model"],
                   "choices": [{"index": 0, "delta": delta, "finish_reason": None}]} for delta in chunks]
        events.append({"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": payload["model"],
                       "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
        return await sse(request, [json.dumps(e) for e in events] + ["[DONE]"])

    async def count(self, request: web.Request) -> web.Response:
        _, refusal = await self._signed(request)
        return refusal or web.json_response({"total": 77})

    async def gemini(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.seen.append((request.path, dict(request.headers), body))
        envelope = json.loads(body)
        if set(envelope) != {"model", "request"} or "contents" not in envelope["request"]:
            return web.json_response({"error": {"code": 400, "message": "no envelope", "status": "INVALID_ARGUMENT"}},
                                     status=400)
        if request.match_info["action"].endswith(":generateContent"):
            return web.json_response({"response": gemini_chunk(TEXT, final=True)})
        return await sse(request, [json.dumps({"response": gemini_chunk(TEXT[:5], final=False)}),
                                   json.dumps({"response": gemini_chunk(TEXT[5:], final=True)})])


def gemini_chunk(text: str, final: bool) -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": [{"text": text}]}, "index": 0}
    if final:
        candidate["finishReason"] = "STOP"
    return {"candidates": [candidate], "modelVersion": "env-real",
            "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 4, "totalTokenCount": 7}}


async def sse(request: web.Request, datas: list[str]) -> web.StreamResponse:
    response = web.StreamResponse(headers={"content-type": "text/event-stream"})
    await response.prepare(request)
    for data in datas:
        await response.write(f"data: {data}\n\n".encode())
    await response.write_eof()
    return response


# ------------------------------------------------------------------ fixtures

@pytest.fixture(scope="module")
def test_kinds() -> Iterator[None]:
    """The two test providers, known to the config and the registry for this module only."""
    with pytest.MonkeyPatch.context() as patch:
        for cls in (SignedChat, EnvelopedGemini):
            patch.setitem(kinds.DEFAULT_BASE_URLS, cls.kind, None)
            patch.setitem(providers.KINDS, cls.kind, cls)
        yield


@pytest.fixture(scope="module")
def fake() -> Iterator[Fake]:
    upstream = Fake()
    yield upstream
    upstream.stop()


@pytest.fixture(scope="module")
def gateway(test_kinds: None, fake: Fake, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningGateway]:
    config = {
        "server": {"api_keys": [CLIENT_KEY]},
        "providers": [
            {"name": "signer", "kind": "signed-chat", "base_url": f"{fake.url}/v1", "api_keys": ["sign-key"],
             "models": [{"name": "signed", "upstream": "signed-real"}]},
            {"name": "refresher", "kind": "signed-chat", "base_url": f"{fake.url}/v1", "api_keys": ["old"],
             "models": [{"name": "refreshing", "upstream": "refreshing-real"}]},
            {"name": "revoked", "kind": "signed-chat", "base_url": f"{fake.url}/v1", "api_keys": ["stale"],
             "models": [{"name": "revoked", "upstream": "revoked-real"}]},
            {"name": "enveloper", "kind": "enveloped-gemini", "base_url": fake.url, "api_keys": ["env-key"],
             "models": [{"name": "env", "upstream": "env-real"}]},
        ],
    }
    with RunningGateway(config, Path(tmp_path_factory.mktemp("hooks")) / "state.sqlite3") as running:
        yield running


def post(gateway: RunningGateway, path: str, body: dict[str, Any]) -> tuple[int, bytes]:
    request = urllib.request.Request(f"{gateway.url}{path}", json.dumps(body).encode(), method="POST", headers={
        "content-type": "application/json", "authorization": f"Bearer {CLIENT_KEY}", "x-api-key": CLIENT_KEY,
        "anthropic-version": "2023-06-01"})
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def streamed_text(raw: bytes) -> str:
    """The text of every SSE event, in whichever format carried it."""
    out = []
    for line in raw.decode().splitlines():
        if not line.startswith("data: ") or line == "data: [DONE]":
            continue
        event = json.loads(line[6:])
        for choice in event.get("choices", ()):
            out.append(choice.get("delta", {}).get("content") or "")
        out.append(event.get("delta", {}).get("text", "") if isinstance(event.get("delta"), dict) else "")
        for candidate in event.get("candidates", ()):
            out.extend(part.get("text", "") for part in candidate.get("content", {}).get("parts", ()))
    return "".join(out)


CHAT = {"model": "signed", "messages": [{"role": "user", "content": "hi"}]}
ANTHROPIC = {"model": "signed", "max_tokens": 50, "messages": [{"role": "user", "content": "hi"}]}
GEMINI = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}


# ------------------------------------------------------------------ signing

@pytest.mark.parametrize("stream", [False, True])
def test_chat_client_through_a_signing_provider(gateway: RunningGateway, fake: Fake, stream: bool) -> None:
    fake.seen.clear()
    status, raw = post(gateway, "/v1/chat/completions", {**CHAT, "stream": stream})
    assert status == 200, raw
    text = streamed_text(raw) if stream else json.loads(raw)["choices"][0]["message"]["content"]
    assert text == TEXT
    [(path, headers, body)] = fake.seen
    assert json.loads(body)["model"] == "signed-real"
    assert headers["x-signature"] == signature("sign-key", headers["x-timestamp"], path, body)


@pytest.mark.parametrize("stream", [False, True])
def test_anthropic_client_through_a_signing_provider(gateway: RunningGateway, fake: Fake, stream: bool) -> None:
    fake.seen.clear()
    status, raw = post(gateway, "/v1/messages", {**ANTHROPIC, "stream": stream})
    assert status == 200, raw
    text = streamed_text(raw) if stream else json.loads(raw)["content"][0]["text"]
    assert text == TEXT
    assert len(fake.seen) == 1 and "x-signature" in fake.seen[0][1]


def test_a_401_refreshes_the_token_and_retries_once(gateway: RunningGateway, fake: Fake) -> None:
    fake.seen.clear()
    status, raw = post(gateway, "/v1/chat/completions", {**CHAT, "model": "refreshing"})
    assert status == 200, raw
    assert json.loads(raw)["choices"][0]["message"]["content"] == TEXT
    tokens = [headers["Authorization"] for _, headers, _ in fake.seen]
    assert tokens == ["Bearer old", "Bearer new"]  # exactly two upstream calls, the second re-signed
    path, headers, body = fake.seen[1]
    assert headers["x-signature"] == signature("new", headers["x-timestamp"], path, body)


def test_a_second_401_after_the_refresh_is_an_auth_failure(gateway: RunningGateway, fake: Fake) -> None:
    fake.seen.clear()
    status, raw = post(gateway, "/v1/chat/completions", {**CHAT, "model": "revoked"})
    assert status == 401, raw
    assert [headers["Authorization"] for _, headers, _ in fake.seen] == ["Bearer stale", "Bearer stale-too"]
    fake.seen.clear()
    status, _ = post(gateway, "/v1/chat/completions", {**CHAT, "model": "revoked"})
    assert status in (429, 503) and fake.seen == []  # the account cools down like any auth failure


def test_count_tokens_goes_through_an_account_and_its_prepare_hook(gateway: RunningGateway, fake: Fake) -> None:
    fake.seen.clear()
    status, raw = post(gateway, "/v1/messages/count_tokens", {"model": "signed", "messages": ANTHROPIC["messages"]})
    assert status == 200, raw
    assert json.loads(raw) == {"input_tokens": 77}  # the provider's count, accepted by the signature check
    [(path, headers, _)] = fake.seen
    assert path == "/v1/count" and headers["Authorization"] == "Bearer sign-key"


# ------------------------------------------------------------------ envelope

@pytest.mark.parametrize("stream", [False, True])
def test_chat_client_through_an_enveloped_provider(gateway: RunningGateway, fake: Fake, stream: bool) -> None:
    fake.seen.clear()
    status, raw = post(gateway, "/v1/chat/completions", {**CHAT, "model": "env", "stream": stream})
    assert status == 200, raw
    text = streamed_text(raw) if stream else json.loads(raw)["choices"][0]["message"]["content"]
    assert text == TEXT
    [(_, _, body)] = fake.seen
    assert json.loads(body)["model"] == "env-real"


@pytest.mark.parametrize("stream", [False, True])
def test_gemini_client_through_an_enveloped_provider_is_translated(gateway: RunningGateway, fake: Fake,
                                                                   stream: bool) -> None:
    fake.seen.clear()
    action = "streamGenerateContent?alt=sse" if stream else "generateContent"
    status, raw = post(gateway, f"/v1beta/models/env:{action}", GEMINI)
    assert status == 200, raw
    if stream:
        assert streamed_text(raw) == TEXT
        assert b'"response"' not in raw
    else:
        answer = json.loads(raw)
        assert "response" not in answer
        assert answer["candidates"][0]["content"]["parts"][0]["text"] == TEXT
    [(_, _, body)] = fake.seen
    assert json.loads(body)["request"]["contents"][0]["parts"][0]["text"] == "hi"

"""Codex (ChatGPT login) accounts serving requests through the real gateway
against FakeCodex: every client format, streaming or not, reaching the Codex
backend with the account's token and ChatGPT account header in the body the
backend accepts; `--import` of the user's ~/.codex/auth.json; the live model
list's answer read."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from crossroute.accounts.model import OAuthToken
from crossroute.config import parse_config
from crossroute.providers.codex import CodexProvider
from tests.fakes import Turn
from tests.fakes.codex import FakeCodex
from tests.gateway_runner import RunningGateway
from tests.login_codex import MODEL, codex_config, identity, seed_codex
from tests.login_kimi import CLIENT_KEY, bearer, cli, file_of, write_config
from tests.test_fakes import sse_events

HEADERS = {"authorization": f"Bearer {CLIENT_KEY}"}
USER = [{"role": "user", "content": "hi"}]
# One request per client format, non-stream and stream, each reaching the Codex (Responses) backend.
REQUESTS: dict[str, tuple[str, dict[str, Any], str]] = {
    "openai-chat": ("/v1/chat/completions", {"model": MODEL, "messages": USER}, ""),
    "openai-responses": ("/v1/responses", {"model": MODEL, "input": "hi"}, ""),
    "anthropic": ("/v1/messages", {"model": MODEL, "max_tokens": 50, "messages": USER}, ""),
    "gemini": (f"/v1beta/models/{MODEL}:generateContent", {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]},
               f"/v1beta/models/{MODEL}:streamGenerateContent?alt=sse"),
}


@pytest.fixture
def codex() -> Iterator[FakeCodex]:
    with FakeCodex(device_interval=1) as fake:
        yield fake


def ask(url: str, fmt: str = "openai-chat", stream: bool = False, **extra: Any) -> httpx.Response:
    path, body, stream_path = REQUESTS[fmt]
    if stream:
        path, body = (stream_path, body) if stream_path else (path, {**body, "stream": True})
    return httpx.post(f"{url}{path}", json={**body, **extra}, headers=HEADERS, timeout=30)


def answer_text(fmt: str, answer: httpx.Response) -> str:
    data = answer.json()
    if fmt == "openai-chat":
        return str(data["choices"][0]["message"]["content"])
    if fmt == "openai-responses":
        return "".join(part["text"] for item in data["output"] if item["type"] == "message"
                       for part in item["content"])
    if fmt == "anthropic":
        return "".join(block["text"] for block in data["content"] if block["type"] == "text")
    return "".join(part["text"] for part in data["candidates"][0]["content"]["parts"])


def streamed_text(fmt: str, sse: str) -> str:
    """The answer's text, joined from the deltas of the format's stream."""
    pieces = []
    for _, data in sse_events(sse):
        if data == "[DONE]":
            continue
        event = json.loads(data)
        if fmt == "openai-chat" and event["choices"]:
            pieces.append(event["choices"][0]["delta"].get("content") or "")
        elif fmt == "openai-responses" and event["type"] == "response.output_text.delta":
            pieces.append(event["delta"])
        elif fmt == "anthropic" and event["type"] == "content_block_delta":
            pieces.append(event["delta"].get("text", ""))
        elif fmt == "gemini":
            content = event["candidates"][0].get("content", {})
            pieces.extend(part.get("text", "") for part in content.get("parts", []))
    return "".join(pieces)


def test_each_client_format_reaches_the_codex_backend_streaming_or_not(codex: FakeCodex, tmp_path: Path) -> None:
    account = seed_codex(tmp_path / "auth", codex, "work")
    token = file_of(account)["access_token"]
    with RunningGateway(codex_config(tmp_path, codex), tmp_path / "state.sqlite3") as gateway:
        for fmt in REQUESTS:
            codex.script(Turn(text=f"whole answer for {fmt}"))
            answer = ask(gateway.url, fmt)
            assert answer.status_code == 200, (fmt, answer.text)
            assert answer_text(fmt, answer) == f"whole answer for {fmt}"  # assembled from the backend's stream
            codex.script(Turn(text=f"streamed to {fmt}"))
            streamed = ask(gateway.url, fmt, stream=True)
            assert streamed.status_code == 200, (fmt, streamed.text)
            assert streamed_text(fmt, streamed.text) == f"streamed to {fmt}"
    seen = codex.backend_requests()
    assert len(seen) == 8
    for recorded in seen:
        assert recorded.path == "/backend-api/codex/responses" and recorded.body["model"] == MODEL
        assert bearer(recorded) == token and recorded.headers["chatgpt-account-id"] == "acct-work"
        assert recorded.headers["originator"] == "crossroute"
        assert recorded.headers["user-agent"].startswith("crossroute/")
        assert recorded.body["stream"] is True and recorded.body["store"] is False
        assert isinstance(recorded.body["instructions"], str)
    assert codex.counters.refresh_calls == 0


def test_a_request_with_what_the_backend_refuses_is_made_to_fit(codex: FakeCodex, tmp_path: Path) -> None:
    seed_codex(tmp_path / "auth", codex, "work")
    with RunningGateway(codex_config(tmp_path, codex), tmp_path / "state.sqlite3") as gateway:
        chat = ask(gateway.url, "openai-chat", temperature=0.2, top_p=0.9, max_tokens=99, user="u1",
                   messages=[{"role": "system", "content": "be brief"}, *USER])
        assert chat.status_code == 200, chat.text
        sent = codex.backend_requests()[-1].body
        assert sent["instructions"] == "be brief"
        assert not {"temperature", "top_p", "max_output_tokens", "user"} & set(sent)
        responses = ask(gateway.url, "openai-responses", max_output_tokens=64, temperature=1, store=True,
                        input=[{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}])
        assert responses.status_code == 200, responses.text
        sent = codex.backend_requests()[-1].body
        assert sent["store"] is False and "max_output_tokens" not in sent
        assert all(item.get("role") != "system" for item in sent["input"])
        again = ask(gateway.url, "openai-responses", previous_response_id=responses.json()["id"], input="more")
        assert again.status_code == 200, again.text  # the gateway keeps the conversation, not the backend
        assert "previous_response_id" not in codex.backend_requests()[-1].body


def test_import_takes_the_users_codex_auth_json_and_labels_it_with_the_email(codex: FakeCodex, tmp_path: Path,
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    config = write_config(tmp_path, codex_config(tmp_path, codex))
    home = tmp_path / "codex-home"
    home.mkdir()
    auth_json = codex.auth_json(identity("me"))
    (home / "auth.json").write_text(json.dumps(auth_json))
    monkeypatch.setenv("CODEX_HOME", str(home))
    done = cli("login", "codex", "--config", str(config), "--import")
    assert done.returncode == 0, done.stderr
    assert "(label me@example.com)" in done.stdout
    [saved] = (tmp_path / "auth").glob("*.json")
    data = json.loads(saved.read_text())
    assert data["access_token"] == auth_json["tokens"]["access_token"]
    assert data["refresh_token"] == auth_json["tokens"]["refresh_token"]
    assert data["account_id"] == "acct-me" and data["provider"] == "codex"
    assert data["expires_at"] > 0 and "id_token" not in data
    assert codex.counters.code_exchanges == 0 and codex.counters.device_requests == 0
    shown = done.stdout + done.stderr
    assert not [value for value in auth_json["tokens"].values() if len(value) > 20 and value in shown]

    key_only = tmp_path / "key.json"
    key_only.write_text(json.dumps({"OPENAI_API_KEY": "sk-not-a-login", "tokens": None}))
    refused = cli("login", "codex", "--config", str(config), "--import", str(key_only))
    assert refused.returncode == 1 and "API key, not a ChatGPT login" in refused.stderr
    assert "sk-not-a-login" not in refused.stderr + refused.stdout

    with RunningGateway(codex_config(tmp_path, codex), tmp_path / "state.sqlite3") as gateway:
        assert ask(gateway.url, "anthropic").status_code == 200
    assert codex.backend_requests()[-1].headers["chatgpt-account-id"] == "acct-me"


def test_the_live_model_list_is_asked_with_the_accounts_headers_and_read() -> None:
    provider = CodexProvider(parse_config("providers: [{name: codex, kind: codex}]").providers[0])
    token = OAuthToken("at-1", "rt-1", None, {"account_id": "acct-1"})
    request = provider.models_request(token)
    assert request is not None
    url, headers = request
    assert url.startswith("https://chatgpt.com/backend-api/codex/models?client_version=")
    assert headers["authorization"] == "Bearer at-1" and headers["chatgpt-account-id"] == "acct-1"
    answer = {"models": [{"slug": "gpt-5.5", "display_name": "GPT-5.5"}, {"slug": "gpt-5.4"}, {"name": "x"}, "y"]}
    assert provider.models_from_answer(answer) == ["gpt-5.5", "gpt-5.4"]
    assert provider.models_from_answer({"data": []}) == [] and provider.models_from_answer(None) == []

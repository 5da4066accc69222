"""FakeCodeBuddy enforces what the real service enforces (providers.md section 8, seed 001): both auth
headers, a login's user and domain, stream only and a system message (11101), at most 32000 output
tokens (11133), a string tool_choice, no `developer` role, 401 for an expired token; and its state login
answers pending (11217), then the tokens, the account, and a rotating refresh (12153 for an old token)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx2 as httpx
import pytest

from tests.fakes.codebuddy import FakeCodeBuddy

KEY = "ck_fakeid.fakesecret"
SYSTEM = {"role": "system", "content": "be brief"}
USER = {"role": "user", "content": "hi"}


@pytest.fixture
def fake() -> Iterator[FakeCodeBuddy]:
    with FakeCodeBuddy(api_keys=[KEY]) as server:
        yield server


def chat(fake: FakeCodeBuddy, headers: dict[str, str] | None = None, **body: Any) -> httpx.Response:
    payload = {"model": "gpt-5.4", "messages": [SYSTEM, USER], "stream": True, **body}
    return httpx.post(f"{fake.base_url}/chat/completions", json=payload, timeout=10,
                      headers={"authorization": f"Bearer {KEY}", "x-api-key": KEY} if headers is None else headers)


def test_a_good_request_streams_openai_chunks_with_usage(fake: FakeCodeBuddy) -> None:
    answer = chat(fake, stream_options={"include_usage": True})
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/event-stream")
    assert '"usage":{"prompt_tokens"' in answer.text and answer.text.rstrip().endswith("data: [DONE]")


@pytest.mark.parametrize("change,code,text", [
    ({"stream": False}, 11101, "Non-stream chat request is currently not supported"),
    ({"messages": [USER]}, 11101, "Parse message failed: 11101:invalid request"),
    ({"messages": [{"role": "developer", "content": "x"}, SYSTEM, USER]}, 11101, "developer"),
    ({"max_tokens": 32001}, 11133, "Invalid request parameters"),
    ({"tools": [{"type": "function", "function": {"name": "f"}}],
      "tool_choice": {"type": "function", "function": {"name": "f"}}}, 11101, "tool_choice must be a string"),
    ({"model": "gpt-1"}, 11101, "not supported"),
])
def test_what_the_service_refuses_comes_back_in_its_envelope(fake: FakeCodeBuddy, change: dict[str, Any],
                                                            code: int, text: str) -> None:
    answer = chat(fake, **change)
    assert answer.status_code == 400
    assert answer.json()["code"] == code and text in answer.json()["msg"]


@pytest.mark.parametrize("headers", [
    {"authorization": f"Bearer {KEY}"},
    {"x-api-key": KEY},
    {"authorization": f"Bearer {KEY}", "x-api-key": "ck_other.key"},
    {"authorization": "Bearer ck_unknown.key", "x-api-key": "ck_unknown.key"},
])
def test_both_auth_headers_with_a_known_secret_are_required(fake: FakeCodeBuddy, headers: dict[str, str]) -> None:
    assert chat(fake, headers).status_code == 401


def login_on(fake: FakeCodeBuddy) -> tuple[str, dict[str, Any]]:
    started = httpx.post(f"{fake.url}/v2/plugin/auth/state", params={"platform": "CLI"}, json={}, timeout=10).json()
    state = started["data"]["state"]
    assert started["code"] == 0 and state in started["data"]["authUrl"]
    poll = httpx.get(f"{fake.url}/v2/plugin/auth/token", params={"state": state}, timeout=10).json()
    assert poll["code"] == 11217
    fake.approve()
    done = httpx.get(f"{fake.url}/v2/plugin/auth/token", params={"state": state}, timeout=10).json()
    assert done["code"] == 0
    return state, done["data"]


def test_a_login_token_needs_its_user_and_domain_and_expires_with_401(fake: FakeCodeBuddy) -> None:
    state, tokens = login_on(fake)
    bearer = {"authorization": f"Bearer {tokens['accessToken']}", "x-api-key": tokens["accessToken"]}
    account = httpx.get(f"{fake.url}/v2/plugin/login/account", params={"state": state}, headers=bearer,
                        timeout=10).json()
    assert account["code"] == 0 and account["data"]["uid"] == "uid-0001"
    assert chat(fake, bearer).status_code == 403
    full = {**bearer, "x-user-id": "uid-0001", "x-domain": "www.codebuddy.ai"}
    assert chat(fake, full).status_code == 200
    fake.expire_access_tokens()
    expired = chat(fake, full)
    assert expired.status_code == 401 and expired.json()["msg"] == "token expired"


def test_the_refresh_rotates_and_an_old_refresh_token_is_a_gone_session(fake: FakeCodeBuddy) -> None:
    _, tokens = login_on(fake)

    def refresh(token: str, domain: str = "www.codebuddy.ai") -> dict[str, Any]:
        answer: dict[str, Any] = httpx.post(f"{fake.url}/v2/plugin/auth/token/refresh", json={}, timeout=10, headers={
            "authorization": f"Bearer {tokens['accessToken']}", "x-refresh-token": token, "x-domain": domain}).json()
        return answer

    assert refresh(tokens["refreshToken"], "copilot.tencent.com")["code"] == 11101
    fresh = refresh(tokens["refreshToken"])
    assert fresh["code"] == 0 and fresh["data"]["refreshToken"] != tokens["refreshToken"]
    assert refresh(tokens["refreshToken"]) == {"code": 12153, "msg": "Offline user session not found"}


def test_a_state_expires_and_a_refused_sign_in_says_so() -> None:
    with FakeCodeBuddy(state_ttl=60) as fake:
        started = httpx.post(f"{fake.url}/v2/plugin/auth/state", params={"platform": "CLI"}, json={},
                             timeout=10).json()
        fake.advance(61)
        expired = httpx.get(f"{fake.url}/v2/plugin/auth/token", params={"state": started["data"]["state"]},
                            timeout=10).json()
        assert expired["code"] == 11218
        other = httpx.post(f"{fake.url}/v2/plugin/auth/state", params={"platform": "IDE"}, json={},
                           timeout=10).json()
        fake.deny()
        denied = httpx.get(f"{fake.url}/v2/plugin/auth/token", params={"state": other["data"]["state"]},
                           timeout=10).json()
        assert denied["code"] == 11219

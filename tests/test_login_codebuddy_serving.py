"""CodeBuddy serving requests through the real gateway against FakeCodeBuddy: each client format
(the official SDKs), streaming and not, with tools, reaching the stream-only API and coming back right
with its usage; the system message ensured; images; API-key accounts from the config and from an
auth-dir file; a login's headers, for the international and the China host; the live model list (a
login's or a key's); refresh ahead of expiry, after a 401, and refused; CodeBuddy's error codes in each
client format's error shape; no key or token in any answer or log line."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from crossroute.providers.codebuddy import SYSTEM_PROMPT
from tests.clients import CLIENTS, SYSTEM
from tests.fakes.codebuddy import FakeCodeBuddy
from tests.fakes.script import ToolCallSpec, Turn
from tests.gateway_runner import RunningGateway
from tests.login_kimi import CLIENT_KEY, bearer, file_of
from tests.test_login_codebuddy import codebuddy_config, seed_login
from tests.test_login_models import eventually, listed
from tests.upstream_view import view_openai

KEY, OTHER_KEY = "ck_fakeid01.secret-one", "ck_fakeid02.secret-two"
MODEL = "gpt-5.4"
HEADERS = {"authorization": f"Bearer {CLIENT_KEY}"}
PIXEL = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
# One non-stream request per client format, each without a system message.
REQUESTS: dict[str, tuple[str, dict[str, Any]]] = {
    "chat": ("/v1/chat/completions", {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}),
    "responses": ("/v1/responses", {"model": MODEL, "input": "hi", "store": False}),
    "anthropic": ("/v1/messages", {"model": MODEL, "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}]}),
    "gemini": (f"/v1beta/models/{MODEL}:generateContent", {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}),
}


@pytest.fixture
def codebuddy() -> Iterator[FakeCodeBuddy]:
    with FakeCodeBuddy(api_keys=[KEY, OTHER_KEY]) as fake:
        yield fake


def ask(url: str, fmt: str, model: str = MODEL, stream: bool = False) -> httpx.Response:
    path, body = REQUESTS[fmt]
    body = {**body}
    if fmt == "gemini":
        path = path.replace(MODEL, model).replace(":generateContent", ":streamGenerateContent?alt=sse" if stream
                                                  else ":generateContent")
    else:
        body["model"] = model
        if stream:
            body["stream"] = True
    return httpx.post(f"{url}{path}", json=body, headers=HEADERS, timeout=30)


def seen(fake: FakeCodeBuddy, index: int = -1) -> dict[str, Any]:
    body: dict[str, Any] = fake.chat_requests()[index].body
    return body


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("client_name", list(CLIENTS))
def test_each_client_format_with_tools_reaches_codebuddy_and_comes_back_right(
        codebuddy: FakeCodeBuddy, tmp_path: Path, client_name: str, stream: bool) -> None:
    codebuddy.script(Turn(tool_calls=[ToolCallSpec("get_weather", {"city": "Paris"}, id="call_w1")], usage=(21, 5, 0, 0)),
                     Turn(text="Sunny in Paris.", usage=(30, 4, 0, 0)))
    with RunningGateway(codebuddy_config(tmp_path, codebuddy, api_keys=[KEY]), tmp_path / "state.sqlite3") as gateway:
        client = CLIENTS[client_name](gateway.url, CLIENT_KEY, MODEL)
        client.user("What is the weather in Paris?")
        first = client.turn(stream=stream, tools=True)
        assert [(c.name, c.args) for c in first.calls] == [("get_weather", {"city": "Paris"})]
        assert first.finish == "tool"
        client.tool_results({first.calls[0].id: "sunny, 21 C"})
        second = client.turn(stream=stream, tools=True)
    assert (second.text, second.finish) == ("Sunny in Paris.", "stop")
    assert (second.input_tokens, second.output_tokens) == (30, 4)  # the usage survived (assembled or streamed)
    asked, answered = codebuddy.chat_requests()
    for request in (asked, answered):
        body = request.body
        assert body["stream"] is True and body["stream_options"]["include_usage"] is True
        assert body["messages"][0]["role"] == "system" and view_openai(body).system == SYSTEM
        assert view_openai(body).tool_names == ["get_weather", "get_time"]
        assert request.headers["authorization"] == f"Bearer {KEY}" and request.headers["x-api-key"] == KEY
    replay = view_openai(answered.body)
    assert [name for _, name in replay.calls] == ["get_weather"]
    assert len(replay.results) == 1 and "sunny, 21 C" in replay.results[0][1]


@pytest.mark.parametrize("client_name", list(CLIENTS))
def test_reasoning_comes_back_to_each_client_format(codebuddy: FakeCodeBuddy, tmp_path: Path,
                                                   client_name: str) -> None:
    codebuddy.script(Turn(reasoning="Paris is in France.", text="It is Paris."))
    with RunningGateway(codebuddy_config(tmp_path, codebuddy, api_keys=[KEY]), tmp_path / "state.sqlite3") as gateway:
        client = CLIENTS[client_name](gateway.url, CLIENT_KEY, MODEL)
        client.user("Which city?")
        result = client.turn(stream=True, reasoning=True)
    assert (result.reasoning, result.text) == ("Paris is in France.", "It is Paris.")
    assert seen(codebuddy).get("reasoning_effort")  # the effort the client asked for, in the API's own field


def test_a_system_message_is_ensured_and_a_developer_one_becomes_system(codebuddy: FakeCodeBuddy,
                                                                      tmp_path: Path) -> None:
    with RunningGateway(codebuddy_config(tmp_path, codebuddy, api_keys=[KEY]), tmp_path / "state.sqlite3") as gateway:
        for fmt in REQUESTS:
            answer = ask(gateway.url, fmt)
            assert answer.status_code == 200, (fmt, answer.text)
            assert seen(codebuddy)["messages"][0] == {"role": "system", "content": SYSTEM_PROMPT}, fmt
        developer = httpx.post(f"{gateway.url}/v1/chat/completions", headers=HEADERS, timeout=30, json={
            "model": MODEL, "max_tokens": 100_000, "messages": [{"role": "developer", "content": "be terse"},
                                                                 {"role": "user", "content": "hi"}]})
        assert developer.status_code == 200, developer.text
        assert [m["role"] for m in seen(codebuddy)["messages"]] == ["system", "user"]
        assert seen(codebuddy)["messages"][0]["content"] == "be terse" and seen(codebuddy)["max_tokens"] == 32000
        tools = [{"type": "function", "function": {"name": name, "parameters": {"type": "object"}}}
                 for name in ("get_weather", "get_time")]
        named = httpx.post(f"{gateway.url}/v1/chat/completions", headers=HEADERS, timeout=30, json={
            "model": MODEL, "messages": [{"role": "user", "content": "time?"}], "tools": tools,
            "tool_choice": {"type": "function", "function": {"name": "get_time"}}})
        assert named.status_code == 200, named.text
    assert seen(codebuddy)["tool_choice"] == "required"  # the API takes a string only: the tools are narrowed
    assert [t["function"]["name"] for t in seen(codebuddy)["tools"]] == ["get_time"]


def test_images_reach_codebuddy_as_image_url_objects(codebuddy: FakeCodeBuddy, tmp_path: Path) -> None:
    data_url = f"data:image/png;base64,{PIXEL}"
    with RunningGateway(codebuddy_config(tmp_path, codebuddy, api_keys=[KEY]), tmp_path / "state.sqlite3") as gateway:
        answer = httpx.post(f"{gateway.url}/v1/messages", headers=HEADERS, timeout=30, json={
            "model": MODEL, "max_tokens": 100, "messages": [{"role": "user", "content": [
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PIXEL}},
                {"type": "text", "text": "what is this?"}]}]})
        assert answer.status_code == 200, answer.text
    parts = seen(codebuddy)["messages"][-1]["content"]
    assert {"type": "image_url", "image_url": {"url": data_url}} in [
        {"type": p["type"], "image_url": {"url": p["image_url"]["url"]}} for p in parts if p["type"] == "image_url"]


def test_api_keys_from_the_config_and_from_an_auth_dir_file_both_serve(codebuddy: FakeCodeBuddy,
                                                                      tmp_path: Path) -> None:
    auth = tmp_path / "auth"
    auth.mkdir(mode=0o700)
    key_file = auth / "codebuddy-second.json"
    key_file.write_text(json.dumps({"provider": "codebuddy", "type": "api_key", "api_key": OTHER_KEY}))
    key_file.chmod(0o600)
    with RunningGateway(codebuddy_config(tmp_path, codebuddy, api_keys=[KEY]), tmp_path / "state.sqlite3") as gateway:
        for fmt in ("chat", "anthropic", "chat", "gemini"):
            assert ask(gateway.url, fmt).status_code == 200
    used = [bearer(r) for r in codebuddy.chat_requests()]
    assert set(used) == {KEY, OTHER_KEY}
    assert all(r.headers["x-api-key"] == bearer(r) for r in codebuddy.chat_requests())
    assert not any("x-user-id" in r.headers for r in codebuddy.chat_requests())


@pytest.mark.parametrize("region", ["intl", "cn"])
def test_a_login_serves_with_its_headers_and_its_live_model_list(region: str, tmp_path: Path,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with FakeCodeBuddy(region=region) as fake:
        account = seed_login(tmp_path / "auth", fake, "work")
        token = file_of(account)["access_token"]
        config = codebuddy_config(tmp_path, fake, region=region)  # base_url (the fake) wins over the region's host
        with RunningGateway(config, tmp_path / "state.sqlite3") as gateway:
            eventually(lambda: "kimi-k2.5" in listed(gateway.url))  # only the live list has it
            streamed = ask(gateway.url, "chat", model="kimi-k2.5", stream=True)
            whole = ask(gateway.url, "responses", model="kimi-k2.5")
        for answer in (streamed, whole):
            assert answer.status_code == 200, answer.text
            assert token not in answer.text
        assert "[DONE]" in streamed.text and whole.json()["status"] == "completed"
        for request in fake.chat_requests():
            assert bearer(request) == token and request.headers["x-api-key"] == token
            assert request.headers["x-user-id"] == "uid-0001" and request.headers["x-domain"] == fake.domain
            assert request.headers["user-agent"].startswith("crossroute/")
        [config_call] = fake.requests_to("/v3/config")
        assert bearer(config_call) == token
    assert token not in caplog.text and file_of(account)["refresh_token"] not in caplog.text


def test_a_key_fetches_the_live_list_when_no_login_is_there(codebuddy: FakeCodeBuddy, tmp_path: Path) -> None:
    with RunningGateway(codebuddy_config(tmp_path, codebuddy, api_keys=[KEY]), tmp_path / "state.sqlite3") as gateway:
        eventually(lambda: "glm-5.1" in listed(gateway.url, "anthropic"))
        assert ask(gateway.url, "gemini", model="glm-5.1").status_code == 200
    [config_call] = codebuddy.requests_to("/v3/config")
    assert bearer(config_call) == KEY and config_call.headers["x-api-key"] == KEY


def test_a_login_is_refreshed_ahead_of_expiry_and_after_a_401_and_a_refused_refresh_needs_login(
        tmp_path: Path) -> None:
    with FakeCodeBuddy(access_ttl=300) as fake:  # inside the 10-minute lead
        account = seed_login(tmp_path / "auth", fake, "work")
        old = file_of(account)
        fake.access_ttl = 86400  # the tokens of the refreshes last
        with RunningGateway(codebuddy_config(tmp_path, fake, models=[MODEL]), tmp_path / "state.sqlite3") as gateway:
            assert ask(gateway.url, "chat").status_code == 200
            ahead = file_of(account)
            assert fake.counters.refresh_calls == 1 and ahead["access_token"] != old["access_token"]
            assert ahead["refresh_token"] != old["refresh_token"] and ahead["user_id"] == "uid-0001"
            assert bearer(fake.chat_requests()[-1]) == ahead["access_token"]

            fake.expire_access_tokens()  # the server drops it before its announced expiry
            assert ask(gateway.url, "anthropic", stream=True).status_code == 200
            after = file_of(account)
            assert fake.counters.refresh_calls == 2 and bearer(fake.chat_requests()[-1]) == after["access_token"]

            fake.revoke_all()
            refused = ask(gateway.url, "gemini")
            assert refused.status_code == 401, refused.text
        assert "needs_login" in file_of(account) and fake.counters.refresh_calls == 3
        shown = refused.text
        assert not [t for t in (old, ahead, after) for name in ("access_token", "refresh_token") if t[name] in shown]


# (code, HTTP status of the fake's answer, the status the client gets, what the error says); None: the fake's own
# 11101 for a model it does not serve.
ERRORS = [
    (11133, 400, 400, "Invalid request parameters"),
    (14401, 400, 403, "Image model [gpt-image] route config not found"),
    (12153, 400, 401, "Offline user session not found"),
    (11101, None, 400, "model gpt-unknown is not supported"),
]


@pytest.mark.parametrize("code,sent,status,message", ERRORS, ids=[str(e[0]) for e in ERRORS])
@pytest.mark.parametrize("fmt", list(REQUESTS))
def test_codebuddy_error_codes_come_back_in_each_client_formats_error_shape(
        codebuddy: FakeCodeBuddy, tmp_path: Path, fmt: str, code: int, sent: int | None, status: int,
        message: str) -> None:
    config = codebuddy_config(tmp_path, codebuddy, api_keys=[KEY], models=[MODEL, "gpt-unknown"])
    with RunningGateway(config, tmp_path / "state.sqlite3") as gateway:
        if sent is not None:
            codebuddy.fail_next(sent, code, message, "max_output_tokens" if code == 11133 else None)
        answer = ask(gateway.url, fmt, model=MODEL if sent is not None else "gpt-unknown", stream=code == 14401)
    assert answer.status_code == status, answer.text
    assert_error_shape(fmt, answer.json(), f"CodeBuddy refused the request ({code}): {message}", str(code))
    assert KEY not in answer.text
    if code == 11133 and fmt in ("chat", "responses"):
        assert answer.json()["error"]["param"] == "max_output_tokens"


def assert_error_shape(fmt: str, body: dict[str, Any], message: str, code: str) -> None:
    if fmt == "anthropic":
        assert body["type"] == "error" and body["error"]["message"].startswith(message)
        assert body["error"]["type"].endswith("_error")
    elif fmt == "gemini":
        error = body["error"]
        assert error["message"].startswith(message) and error["status"].isupper()
        assert {"reason": code} in [{"reason": d.get("reason")} for d in error.get("details", [])]
    else:
        assert body["error"]["message"].startswith(message) and body["error"]["code"] == code

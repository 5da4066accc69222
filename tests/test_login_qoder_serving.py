"""Qoder logins serving requests through the real gateway against FakeQoder: each client format
(its official SDK), streaming and not, with tools and reasoning, reaching Qoder's agent chat signed
with the account's token and coming back right; the live model list (signed) served and routed;
each model's published config sent with its requests; multipart text flattened and system text
moved where Qoder takes it; an unknown model a 404 in each client's format, never sent upstream;
an expired device token marking the account `needs login` without a refresh call; a job token
renewed by exchanging the personal token again; no token in any answer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from tests.clients import CLIENTS, SYSTEM
from tests.fakes.qoder import FakeQoder
from tests.fakes.script import ToolCallSpec, Turn
from tests.gateway_runner import RunningGateway
from tests.login_kimi import CLIENT_KEY, file_of
from tests.login_qoder import qoder_config, qoder_fixture, seed, seed_personal  # noqa: F401 - the `qoder` fixture
from tests.test_login_models import eventually, listed

HEADERS = {"authorization": f"Bearer {CLIENT_KEY}"}
CHAT_PATH = "/algo/api/v2/service/pro/sse/agent_chat_generation"


def raw_request(url: str, fmt: str, model: str, content: Any = "hi") -> httpx.Response:
    """One plain request in a client format (content: the user message's content, in that format)."""
    if fmt == "chat":
        return httpx.post(f"{url}/v1/chat/completions", headers=HEADERS, timeout=30,
                          json={"model": model, "messages": [{"role": "user", "content": content}]})
    if fmt == "responses":
        return httpx.post(f"{url}/v1/responses", headers=HEADERS, timeout=30,
                          json={"model": model, "input": content, "store": False})
    if fmt == "anthropic":
        return httpx.post(f"{url}/v1/messages", headers={**HEADERS, "anthropic-version": "2023-06-01"}, timeout=30,
                          json={"model": model, "max_tokens": 100, "messages": [{"role": "user", "content": content}]})
    return httpx.post(f"{url}/v1beta/models/{model}:generateContent", headers={"x-goog-api-key": CLIENT_KEY},
                      timeout=30, json={"contents": [{"role": "user", "parts": [{"text": content}]}]})


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("client_name", list(CLIENTS))
def test_each_client_format_reaches_qoder_signed_with_tools_and_reasoning(
        client_name: str, stream: bool, qoder: FakeQoder, tmp_path: Path) -> None:
    account = seed(tmp_path / "auth", qoder, "work")
    qoder.script(Turn(reasoning="Thinking it over.", tool_calls=[ToolCallSpec("get_weather", {"city": "Paris"})]),
                 Turn(text="Sunny in Paris.", usage=(30, 5, 0, 0)))
    with RunningGateway(qoder_config(tmp_path, qoder), tmp_path / "state.sqlite3") as gateway:
        eventually(lambda: "qmodel" in listed(gateway.url))  # from the live list: not built in
        client = CLIENTS[client_name](gateway.url, CLIENT_KEY, "qmodel")
        client.user("Weather in Paris?")
        first = client.turn(stream=stream, tools=True, reasoning=True)
        assert [(call.name, call.args) for call in first.calls] == [("get_weather", {"city": "Paris"})]
        assert first.finish == "tool"
        if client_name == "chat":
            assert first.reasoning == "Thinking it over."
        client.tool_results({first.calls[0].id: "sunny, 21 C"})
        second = client.turn(stream=stream, tools=True)
    assert second.text == "Sunny in Paris." and second.finish == "stop"
    assert [answer.model for answer in qoder.answered] == ["qmodel", "qmodel"]
    body = qoder.answered[-1].body
    assert body["session_type"] == "qodercli" and body["stream"] is True
    published = next(model for model in qoder.models if model["key"] == "qmodel")
    config = body["model_config"]
    assert {name: config[name] for name in ("key", "display_name", "is_reasoning", "max_input_tokens",
                                            "thinking_config", "context_config")} == \
        {name: published[name] for name in ("key", "display_name", "is_reasoning", "max_input_tokens",
                                            "thinking_config", "context_config")}
    assert body["parameters"]["max_tokens"] <= published["max_output_tokens"]
    assert SYSTEM in body["system"] and all(m["role"] not in ("system", "developer") for m in body["messages"])
    assert all(isinstance(m["content"], str) for m in body["messages"])  # the Anthropic SDK's parts, flattened
    assert body["chat_context"]["text"] == "Weather in Paris?"
    assert [tool["function"]["name"] for tool in body["tools"]] == ["get_weather", "get_time"]  # native tools
    assert any(m["role"] == "tool" and m["content"] == "sunny, 21 C" for m in body["messages"])
    signed = {call.path: call.token for call in qoder.signed}
    assert signed == {CHAT_PATH: account.secret, "/algo/api/v2/model/list": account.secret}
    assert body["session_id"] == qoder.answered[0].body["session_id"]  # stable for the account and model


def test_an_unknown_model_is_a_404_in_each_clients_format_and_never_sent(qoder: FakeQoder, tmp_path: Path) -> None:
    seed(tmp_path / "auth", qoder, "work")
    config = qoder_config(tmp_path, qoder, models=[{"name": "auto"}, {"name": "retired"}])
    with RunningGateway(config, tmp_path / "state.sqlite3") as gateway:
        for fmt in CLIENTS:
            for model in ("no-such-model", "retired"):  # unknown to the gateway; configured but not offered
                answer = raw_request(gateway.url, fmt, model)
                assert answer.status_code == 404, (fmt, model, answer.text)
                error = answer.json()["error"]
                if fmt == "anthropic":
                    assert answer.json()["type"] == "error" and error["type"] == "not_found_error"
                elif fmt == "gemini":
                    assert error["status"] == "NOT_FOUND" and error["code"] == 404
                else:
                    assert error["code"] == "model_not_found"
                assert model in error["message"]
        assert raw_request(gateway.url, "chat", "auto").status_code == 200
    assert [answer.model for answer in qoder.answered] == ["auto"]  # no silent downgrade


def test_multipart_text_is_flattened_and_an_image_is_a_clear_400(qoder: FakeQoder, tmp_path: Path) -> None:
    seed(tmp_path / "auth", qoder, "work")
    with RunningGateway(qoder_config(tmp_path, qoder), tmp_path / "state.sqlite3") as gateway:
        parts = [{"type": "text", "text": "first line"}, {"type": "text", "text": "second line"}]
        assert raw_request(gateway.url, "chat", "auto", parts).status_code == 200
        image = [{"type": "text", "text": "what is this?"},
                 {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]
        refused = raw_request(gateway.url, "chat", "auto", image)
    [sent] = qoder.answered
    assert sent.body["messages"][-1]["content"] in ("first line\nsecond line", "first line\n\nsecond line")
    assert refused.status_code == 400 and "text only" in refused.json()["error"]["message"]


def test_an_expired_device_token_needs_a_new_login_without_a_refresh_call(qoder: FakeQoder, tmp_path: Path) -> None:
    account = seed(tmp_path / "auth", qoder, "work")
    with RunningGateway(qoder_config(tmp_path, qoder), tmp_path / "state.sqlite3") as gateway:
        assert raw_request(gateway.url, "chat", "auto").status_code == 200
        qoder.expire_tokens()  # the server ends it before the announced expiry
        refused = raw_request(gateway.url, "anthropic", "auto")
    assert refused.status_code == 401 and refused.json()["error"]["type"] == "authentication_error"
    assert account.secret not in refused.text
    assert file_of(account)["needs_login"]
    assert qoder.counters.refresh_calls == 0  # Qoder refuses to refresh device tokens: none is tried


def test_a_job_token_is_renewed_by_exchanging_the_personal_token_again(qoder: FakeQoder, tmp_path: Path) -> None:
    qoder.job_ttl = 120  # inside the refresh lead
    account, personal = seed_personal(tmp_path / "auth", qoder, "ci")
    qoder.job_ttl = 86400
    with RunningGateway(qoder_config(tmp_path, qoder), tmp_path / "state.sqlite3") as gateway:
        answer = raw_request(gateway.url, "gemini", "auto")
    assert answer.status_code == 200, answer.text
    renewed = file_of(account)
    assert renewed["access_token"] != account.secret and renewed["refresh_token"] == personal
    assert qoder.counters.token_calls == 2  # the seed's exchange and the renewal
    assert {call.token for call in qoder.signed} == {renewed["access_token"]}
    assert personal not in answer.text and renewed["access_token"] not in answer.text

"""Every client format to every provider format, streaming and not, driven by
the official SDKs through a running gateway to the fake upstreams. Each case
checks both ends: what the SDK parsed and what the upstream received."""

from __future__ import annotations

from typing import Any

import anthropic
import httpx2 as httpx
import openai
import orjson
import pytest
from google.genai import errors as genai_errors

from tests.clients import CLIENTS, SYSTEM, Result
from tests.conftest import CLIENT_KEY, MODELS
from tests.fakes import FakeUpstream, ToolCallSpec, Turn
from tests.gateway_runner import RunningGateway
from tests.upstream_view import VIEWS, Seen

CLIENT_NAMES = list(CLIENTS)
UPSTREAMS = list(MODELS)
PAIRS = [(c, u) for c in CLIENT_NAMES for u in UPSTREAMS]
CASES = [(c, u, s) for c, u in PAIRS for s in (False, True)]


def case_id(case: tuple[str, str, bool]) -> str:
    client, upstream, stream = case
    return f"{client}->{upstream}-{'stream' if stream else 'json'}"


def ids(kind: str) -> list[str]:
    return [f"{case_id(c)}-{kind}" for c in CASES]


GENERATE_PATHS = ("/chat/completions", "/responses", "/messages", "enerateContent")


def generations(fake: FakeUpstream) -> list[Any]:
    return [r for r in fake.requests if r.path.endswith(GENERATE_PATHS) or "enerateContent" in r.path]


def last_seen(fake: FakeUpstream, upstream: str) -> Seen:
    records = generations(fake)
    assert records, "the upstream received no request"
    return VIEWS[upstream](records[-1].body)


def client_for(name: str, gateway: RunningGateway, upstream: str) -> Any:
    return CLIENTS[name](gateway.url, CLIENT_KEY, MODELS[upstream])


@pytest.mark.parametrize("case", CASES, ids=ids("text"))
def test_text(case: tuple[str, str, bool], gateway: RunningGateway, clean_fake: FakeUpstream) -> None:
    client_name, upstream, stream = case
    clean_fake.script(Turn(text="Hello from the upstream, all good.", usage=(40, 9, 16, 0)))
    client = client_for(client_name, gateway, upstream)
    client.user("Say hello")
    stop = None if "responses" in (client_name, upstream.removeprefix("openai-")) else ["END"]
    result: Result = client.turn(stream=stream, max_tokens=123, stop=stop)

    assert result.text == "Hello from the upstream, all good."
    assert result.reasoning == ""
    assert result.finish == "stop"
    assert result.output_tokens == 9
    expected_input = 40 - 16 if client_name == "anthropic" else 40  # Anthropic counts cache reads apart
    assert result.input_tokens == expected_input

    record = generations(clean_fake)[-1]
    seen = VIEWS[upstream](record.body)
    assert SYSTEM in seen.system
    assert seen.user_texts == ["Say hello"]
    assert seen.max_tokens == 123
    if client_name != "anthropic":
        assert seen.temperature == pytest.approx(0.2)
    if stop:
        assert seen.stop == ["END"]
    if upstream == "gemini":
        assert "gemini-up-real" in record.path
        assert ("streamGenerateContent" in record.path) is stream
    else:
        assert record.body["model"] == f"{MODELS[upstream]}-real"
        assert bool(record.body.get("stream")) is stream


@pytest.mark.parametrize("case", CASES, ids=ids("tools"))
def test_parallel_tool_calls(case: tuple[str, str, bool], gateway: RunningGateway, clean_fake: FakeUpstream) -> None:
    client_name, upstream, stream = case
    clean_fake.script(
        Turn(tool_calls=[ToolCallSpec("get_weather", {"city": "Paris", "days": 2}), ToolCallSpec("get_time", {"city": "Oslo"})]),
        Turn(text="Sunny in Paris, 9am in Oslo."),
    )
    client = client_for(client_name, gateway, upstream)
    client.user("Weather in Paris and time in Oslo?")
    first = client.turn(stream=stream, tools=True)

    assert [c.name for c in first.calls] == ["get_weather", "get_time"]
    assert first.calls[0].args == {"city": "Paris", "days": 2}
    assert first.calls[1].args == {"city": "Oslo"}
    assert first.finish == "tool"
    assert first.text == ""
    call_ids = [c.id for c in first.calls]
    assert all(call_ids) and len(set(call_ids)) == 2

    seen = last_seen(clean_fake, upstream)
    assert seen.tool_names == ["get_weather", "get_time"]
    if upstream == "gemini":
        assert "$schema" not in orjson.dumps(seen.tool_schemas).decode()

    client.tool_results({call_ids[0]: "18C and sunny", call_ids[1]: "09:00"})
    second = client.turn(stream=stream, tools=True)
    assert second.text == "Sunny in Paris, 9am in Oslo."
    assert second.finish == "stop"

    seen = last_seen(clean_fake, upstream)
    assert [name for _, name in seen.calls] == ["get_weather", "get_time"]
    if upstream == "gemini":  # no ids on Gemini's wire: results pair by name
        assert seen.results == [("get_weather", "18C and sunny"), ("get_time", "09:00")]
    else:
        replayed_ids = [call_id for call_id, _ in seen.calls]
        assert seen.results == [(replayed_ids[0], "18C and sunny"), (replayed_ids[1], "09:00")]


# Which replayed signatures a client can carry back to which upstream family.
def _signature_survives(client_name: str, upstream: str) -> bool:
    if upstream == "openai":
        return False  # Chat Completions has no signatures
    if client_name == "chat":
        return upstream == "gemini"  # only Gemini's, through tool_calls[].extra_content
    return True


@pytest.mark.parametrize("case", CASES, ids=ids("reasoning"))
def test_reasoning_with_signature(case: tuple[str, str, bool], gateway: RunningGateway, clean_fake: FakeUpstream) -> None:
    client_name, upstream, stream = case
    clean_fake.script(
        Turn(reasoning="The user wants Rome's weather; call the tool.", signature="c2lnLWFiYzEyMw==",
             tool_calls=[ToolCallSpec("get_weather", {"city": "Rome"})]),
        Turn(text="It is warm in Rome."),
    )
    client = client_for(client_name, gateway, upstream)
    client.user("Weather in Rome?")
    first = client.turn(stream=stream, tools=True, reasoning=True)
    assert first.text == ""  # reasoning never leaks into the answer
    assert first.reasoning == "The user wants Rome's weather; call the tool."
    assert [c.name for c in first.calls] == ["get_weather"]
    assert last_seen(clean_fake, upstream).reasoning_on

    client.tool_results({first.calls[0].id: "25C"})
    second = client.turn(stream=stream, tools=True, reasoning=True)
    assert second.text == "It is warm in Rome."
    seen = last_seen(clean_fake, upstream)
    if _signature_survives(client_name, upstream):
        assert "c2lnLWFiYzEyMw==" in seen.signatures
    else:
        assert seen.signatures in ([], ["skip_thought_signature_validator"])


def _expect_rate_limit(client_name: str) -> type[Exception]:
    return {"chat": openai.RateLimitError, "responses": openai.RateLimitError,
            "anthropic": anthropic.RateLimitError, "gemini": genai_errors.ClientError}[client_name]


@pytest.mark.parametrize("pair", PAIRS, ids=[f"{c}->{u}-error-429" for c, u in PAIRS])
def test_upstream_429_keeps_status(pair: tuple[str, str], gateway: RunningGateway, clean_fake: FakeUpstream) -> None:
    client_name, upstream = pair
    clean_fake.script(Turn(error=(429, "quota exhausted for now"), retry_after=7))
    client = client_for(client_name, gateway, upstream)
    client.user("hi")
    with pytest.raises(_expect_rate_limit(client_name)) as caught:
        client.turn(stream=False)
    error = caught.value
    if isinstance(error, genai_errors.ClientError):
        assert error.code == 429
        assert "quota exhausted" in (error.message or "")
    else:
        assert error.status_code == 429  # type: ignore[attr-defined]
        assert error.response.headers.get("retry-after") == "7"  # type: ignore[attr-defined]
        assert "quota exhausted" in str(error)


RAW_REQUESTS: dict[str, tuple[str, dict[str, Any]]] = {
    "chat": ("/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}], "stream": True}),
    "responses": ("/v1/responses", {"input": "hi", "stream": True, "store": False}),
    "anthropic": ("/v1/messages", {"max_tokens": 100, "messages": [{"role": "user", "content": "hi"}], "stream": True}),
    "gemini": ("/v1beta/models/{model}:streamGenerateContent?alt=sse", {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}),
}


def _raw_stream(gateway: RunningGateway, client_name: str, model: str) -> str:
    path, body = RAW_REQUESTS[client_name]
    if client_name != "gemini":
        body = {**body, "model": model}
    response = httpx.post(gateway.url + path.format(model=model), json=body, timeout=20,
                          headers={"authorization": f"Bearer {CLIENT_KEY}", "anthropic-version": "2023-06-01"})
    assert response.status_code == 200
    return response.text


def _assert_ends_in_error(client_name: str, text: str) -> None:
    if client_name == "chat":
        assert '"error"' in text
        assert '"finish_reason":"stop"' not in text
    elif client_name == "responses":
        assert "event: response.failed" in text and "response.completed" not in text
    elif client_name == "anthropic":
        assert "event: error" in text and "message_stop" not in text
    else:
        assert '"error"' in text and '"finishReason"' not in text


@pytest.mark.parametrize("pair", PAIRS, ids=[f"{c}->{u}-stream-broken" for c, u in PAIRS])
def test_stream_broken_midway(pair: tuple[str, str], gateway: RunningGateway, clean_fake: FakeUpstream) -> None:
    client_name, upstream = pair
    clean_fake.script(Turn(text="this answer will be cut short by the upstream", break_after=2, chunk_text=6))
    text = _raw_stream(gateway, client_name, MODELS[upstream])
    _assert_ends_in_error(client_name, text)


@pytest.mark.parametrize("pair", PAIRS, ids=[f"{c}->{u}-stream-error-event" for c, u in PAIRS])
def test_stream_error_event(pair: tuple[str, str], gateway: RunningGateway, clean_fake: FakeUpstream) -> None:
    client_name, upstream = pair
    clean_fake.script(Turn(text="starting fine then failing", stream_error=(529, "overloaded upstream")))
    text = _raw_stream(gateway, client_name, MODELS[upstream])
    _assert_ends_in_error(client_name, text)
    assert "overloaded upstream" in text

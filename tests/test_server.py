"""The gateway's own surface: keys, bad input, model lists, token counting,
the Responses store, custom tools, disconnects and stalls."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import anthropic
import httpx2 as httpx
import openai
import pytest
from google import genai
from google.genai import errors as genai_errors
from google.genai import types as gtypes

from tests.conftest import CLIENT_KEY, MODELS, gateway_config
from tests.fakes import FakeUpstream, ToolCallSpec, Turn
from tests.gateway_runner import RunningGateway

AUTH = {"authorization": f"Bearer {CLIENT_KEY}"}


def post(gateway: RunningGateway, path: str, body: Any, headers: dict[str, str] | None = None, **kw: Any) -> httpx.Response:
    content = body if isinstance(body, bytes) else None
    kw.setdefault("timeout", 20)
    return httpx.post(gateway.url + path, content=content, json=None if content is not None else body,
                      headers={**AUTH, **(headers or {})}, **kw)


# ---------------------------------------------------------------- keys


@pytest.mark.parametrize("style", ["bearer", "x-api-key", "x-goog-api-key", "query"])
def test_client_key_styles_are_accepted(style: str, gateway: RunningGateway, clean_fake: FakeUpstream) -> None:
    headers = {"bearer": {"authorization": f"Bearer {CLIENT_KEY}"}, "x-api-key": {"x-api-key": CLIENT_KEY},
               "x-goog-api-key": {"x-goog-api-key": CLIENT_KEY}, "query": {}}[style]
    params = {"key": CLIENT_KEY} if style == "query" else None
    response = httpx.get(gateway.url + "/v1/models", headers=headers, params=params)
    assert response.status_code == 200


def test_wrong_key_gets_401_in_each_format(gateway: RunningGateway) -> None:
    bad_openai = openai.OpenAI(base_url=gateway.url + "/v1", api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad_openai.chat.completions.create(model=MODELS["openai"], messages=[{"role": "user", "content": "x"}])
    bad_anthropic = anthropic.Anthropic(base_url=gateway.url, api_key="wrong", max_retries=0)
    with pytest.raises(anthropic.AuthenticationError):
        bad_anthropic.messages.create(model=MODELS["anthropic"], max_tokens=5, messages=[{"role": "user", "content": "x"}])
    bad_gemini = genai.Client(api_key="wrong", http_options=gtypes.HttpOptions(base_url=gateway.url))
    with pytest.raises(genai_errors.ClientError) as caught:
        bad_gemini.models.generate_content(model=MODELS["gemini"], contents="x")
    assert caught.value.code == 401
    assert "wrong" not in httpx.post(gateway.url + "/v1/messages", headers={"x-api-key": "wrong"}, json={}).text


# ---------------------------------------------------------------- bad input


BAD_BODIES = [
    ("/v1/chat/completions", b"{not json", "error"),
    ("/v1/chat/completions", b"[1, 2]", "error"),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}]}, "error"),
    ("/v1/chat/completions", {"model": 42, "messages": []}, "error"),
    ("/v1/chat/completions", {"model": MODELS["openai"], "messages": "hello"}, "error"),
    ("/v1/chat/completions", {"model": MODELS["anthropic"], "messages": [{"role": "user", "content": 5}]}, "error"),
    ("/v1/responses", {"model": MODELS["gemini"], "input": 17}, "error"),
    ("/v1/responses", {"model": MODELS["anthropic"], "input": [{"type": "function_call_output"}]}, "error"),
    ("/v1/messages", {"model": MODELS["openai"], "messages": [{"role": "user", "content": "hi"}]}, "type"),
    ("/v1/messages", {"model": MODELS["openai"], "max_tokens": "lots", "messages": []}, "type"),
    ("/v1/messages", {"model": MODELS["gemini"], "max_tokens": 5, "messages": [{"role": "user", "content": [{"type": "image"}]}]}, "type"),
    ("/v1beta/models/gemini-up:generateContent", {"contents": "hello"}, "error"),
    ("/v1beta/models/chat-up:generateContent", {"contents": [{"parts": [{"functionResponse": 3}]}]}, "error"),
]


@pytest.mark.parametrize("path,body,key", BAD_BODIES, ids=[f"bad-{i}" for i in range(len(BAD_BODIES))])
def test_bad_input_is_a_4xx_in_the_client_format(path: str, body: Any, key: str, gateway: RunningGateway,
                                                  clean_fake: FakeUpstream) -> None:
    response = post(gateway, path, body, {"anthropic-version": "2023-06-01"})
    assert 400 <= response.status_code < 500, response.text
    payload = response.json()
    assert key in payload
    if key == "type":
        assert payload["type"] == "error" and payload["error"]["type"] == "invalid_request_error"
    assert "Traceback" not in response.text
    assert httpx.get(gateway.url + "/health").status_code == 200


def test_unknown_model_is_404_in_each_format(gateway: RunningGateway) -> None:
    sdk = openai.OpenAI(base_url=gateway.url + "/v1", api_key=CLIENT_KEY, max_retries=0)
    with pytest.raises(openai.NotFoundError) as caught:
        sdk.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "x"}])
    assert "no-such-model" in str(caught.value)
    client = anthropic.Anthropic(base_url=gateway.url, api_key=CLIENT_KEY, max_retries=0)
    with pytest.raises(anthropic.NotFoundError):
        client.messages.create(model="no-such-model", max_tokens=5, messages=[{"role": "user", "content": "x"}])
    gem = genai.Client(api_key=CLIENT_KEY, http_options=gtypes.HttpOptions(base_url=gateway.url))
    with pytest.raises(genai_errors.ClientError) as gcaught:
        gem.models.generate_content(model="no-such-model", contents="x")
    assert gcaught.value.code == 404


def test_oversized_body_is_413(tmp_path: Path, fake: FakeUpstream) -> None:
    config = gateway_config(fake.url)
    config["server"]["max_body_bytes"] = 2048
    with RunningGateway(config, tmp_path / "s.db") as gw:
        response = post(gw, "/v1/messages", {"model": MODELS["anthropic"], "max_tokens": 5,
                                             "messages": [{"role": "user", "content": "x" * 5000}]})
        assert response.status_code == 413
        assert response.json()["error"]["type"] == "request_too_large"


# ---------------------------------------------------------------- addressing and listing


def test_model_by_alias_and_provider_prefix(tmp_path: Path, fake: FakeUpstream) -> None:
    config = gateway_config(fake.url)
    config["providers"][0]["models"] = [{"name": "chat-up", "alias": "coder", "upstream": "chat-up-real"}]
    with RunningGateway(config, tmp_path / "s.db") as gw:
        sdk = openai.OpenAI(base_url=gw.url + "/v1", api_key=CLIENT_KEY, max_retries=0)
        for name, upstream_model in [("coder", "chat-up-real"), ("up-openai/chat-up", "chat-up-real"),
                                     ("up-openai/brand-new-model", "brand-new-model")]:
            fake.clear()
            fake.script(Turn(text="ok"))
            sdk.chat.completions.create(model=name, messages=[{"role": "user", "content": "x"}])
            assert fake.requests[-1].body["model"] == upstream_model
        listed = {m.id for m in sdk.models.list()}
        assert {"chat-up", "coder", "up-openai/chat-up", "claude-up", "gemini-up"} <= listed


def test_model_lists_in_each_shape(gateway: RunningGateway) -> None:
    client = anthropic.Anthropic(base_url=gateway.url, api_key=CLIENT_KEY, max_retries=0)
    assert "claude-up" in {m.id for m in client.models.list()}
    gem = genai.Client(api_key=CLIENT_KEY, http_options=gtypes.HttpOptions(base_url=gateway.url, api_version="v1beta"))
    assert "models/gemini-up" in {m.name for m in gem.models.list()}


# ---------------------------------------------------------------- token counting


def test_count_tokens_uses_the_provider_endpoint_or_an_estimate(gateway: RunningGateway, clean_fake: FakeUpstream) -> None:
    client = anthropic.Anthropic(base_url=gateway.url, api_key=CLIENT_KEY, max_retries=0)
    short = [{"role": "user", "content": "hi"}]
    long = [{"role": "user", "content": "a much longer message about many different things " * 20}]
    upstream_short = client.messages.count_tokens(model=MODELS["anthropic"], messages=short).input_tokens
    assert any(r.path.endswith("/count_tokens") for r in clean_fake.requests)
    upstream_long = client.messages.count_tokens(model=MODELS["anthropic"], messages=long).input_tokens
    assert upstream_long > upstream_short
    local_short = client.messages.count_tokens(model=MODELS["openai"], messages=short).input_tokens
    local_long = client.messages.count_tokens(model=MODELS["openai"], messages=long).input_tokens
    assert 0 < local_short < local_long
    gem = genai.Client(api_key=CLIENT_KEY, http_options=gtypes.HttpOptions(base_url=gateway.url))
    clean_fake.clear()
    counted = gem.models.count_tokens(model=MODELS["gemini"], contents="hello there").total_tokens
    assert counted and counted > 0
    assert any(r.path.endswith(":countTokens") for r in clean_fake.requests)


# ---------------------------------------------------------------- Responses store


def test_previous_response_id_survives_a_restart(tmp_path: Path, fake: FakeUpstream) -> None:
    state = tmp_path / "state.db"
    config = gateway_config(fake.url)
    fake.clear()
    fake.script(Turn(text="My name is Ada."))
    with RunningGateway(config, state) as gw:
        sdk = openai.OpenAI(base_url=gw.url + "/v1", api_key=CLIENT_KEY, max_retries=0)
        first = sdk.responses.create(model=MODELS["anthropic"], input="What is your name?", instructions="Be terse.")
        assert first.output_text == "My name is Ada."
        assert sdk.responses.retrieve(first.id).output_text == "My name is Ada."
    fake.script(Turn(text="You asked my name."))
    with RunningGateway(config, state) as gw:
        sdk = openai.OpenAI(base_url=gw.url + "/v1", api_key=CLIENT_KEY, max_retries=0)
        second = sdk.responses.create(model=MODELS["gemini"], input="What did I ask?", previous_response_id=first.id)
        assert second.output_text == "You asked my name."
        contents = fake.requests[-1].body["contents"]
        texts = [p.get("text") for c in contents for p in c["parts"]]
        assert texts == ["What is your name?", "My name is Ada.", "What did I ask?"]
        items = sdk.responses.input_items.list(second.id)
        assert [i.content[0].text for i in items.data] == ["What did I ask?"]
        sdk.responses.delete(first.id)
        with pytest.raises(openai.NotFoundError):
            sdk.responses.retrieve(first.id)
        with pytest.raises(openai.NotFoundError) as caught:
            sdk.responses.create(model=MODELS["gemini"], input="again", previous_response_id=first.id)
        assert caught.value.code == "previous_response_not_found"


def test_store_false_keeps_nothing(gateway: RunningGateway, clean_fake: FakeUpstream) -> None:
    sdk = openai.OpenAI(base_url=gateway.url + "/v1", api_key=CLIENT_KEY, max_retries=0)
    clean_fake.script(Turn(text="ephemeral"))
    response = sdk.responses.create(model=MODELS["openai"], input="x", store=False)
    with pytest.raises(openai.NotFoundError):
        sdk.responses.retrieve(response.id)


def test_streamed_response_is_stored(gateway: RunningGateway, clean_fake: FakeUpstream) -> None:
    sdk = openai.OpenAI(base_url=gateway.url + "/v1", api_key=CLIENT_KEY, max_retries=0)
    clean_fake.script(Turn(text="streamed and kept"))
    with sdk.responses.stream(model=MODELS["anthropic"], input="x") as events:
        final = events.get_final_response()
    assert sdk.responses.retrieve(final.id).output_text == "streamed and kept"


# ---------------------------------------------------------------- custom tools (Codex apply_patch)

APPLY_PATCH = {"type": "custom", "name": "apply_patch", "description": "Apply a patch",
               "format": {"type": "grammar", "syntax": "lark", "definition": "start: /.+/s"}}
PATCH = "*** Begin Patch\n*** Add File: a.txt\n+hello\n*** End Patch"


@pytest.mark.parametrize("upstream", ["openai", "anthropic", "gemini"])
@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_custom_tool_round_trip(upstream: str, stream: bool, gateway: RunningGateway, clean_fake: FakeUpstream) -> None:
    sdk = openai.OpenAI(base_url=gateway.url + "/v1", api_key=CLIENT_KEY, max_retries=0)
    clean_fake.script(Turn(tool_calls=[ToolCallSpec("apply_patch", {"input": PATCH})]), Turn(text="patched"))
    kwargs: dict[str, Any] = {"model": MODELS[upstream], "input": "add a file", "tools": [APPLY_PATCH], "store": False}
    if stream:
        with sdk.responses.stream(**kwargs) as events:
            first = events.get_final_response()
    else:
        first = sdk.responses.create(**kwargs)
    call = first.output[-1]
    assert call.type == "custom_tool_call" and call.name == "apply_patch" and call.input == PATCH
    tools = str(clean_fake.requests[-1].body)
    assert "apply_patch" in tools and "'input'" in tools
    follow = [{"role": "user", "content": "add a file"}, call.model_dump(exclude_none=True),
              {"type": "custom_tool_call_output", "call_id": call.call_id, "output": "Done!"}]
    second = sdk.responses.create(model=MODELS[upstream], input=follow, tools=[APPLY_PATCH], store=False)
    assert second.output_text == "patched"
    assert "Done!" in str(clean_fake.requests[-1].body)


# ---------------------------------------------------------------- stalls and disconnects


def test_a_stalled_upstream_does_not_delay_others(gateway: RunningGateway, clean_fake: FakeUpstream) -> None:
    clean_fake.script(Turn(text="slow", delay=3.0), Turn(text="fast"))
    slow_result: dict[str, float] = {}

    def slow_call() -> None:
        started = time.monotonic()
        post(gateway, "/v1/chat/completions", {"model": MODELS["openai"], "messages": [{"role": "user", "content": "a"}]})
        slow_result["took"] = time.monotonic() - started

    thread = threading.Thread(target=slow_call)
    thread.start()
    time.sleep(0.3)
    response = post(gateway, "/v1/chat/completions", {"model": MODELS["openai"], "messages": [{"role": "user", "content": "b"}]})
    assert response.json()["choices"][0]["message"]["content"] == "fast"
    assert thread.is_alive()  # the fast answer came back while the slow one still waits
    thread.join()
    assert slow_result["took"] >= 2.5


def test_client_disconnect_cancels_the_upstream_request(gateway: RunningGateway, clean_fake: FakeUpstream) -> None:
    clean_fake.script(Turn(text="never read", delay=2.0))
    body = {"model": MODELS["anthropic"], "max_tokens": 10, "stream": True, "messages": [{"role": "user", "content": "x"}]}
    with pytest.raises(httpx.ReadTimeout):
        post(gateway, "/v1/messages", body, timeout=0.5)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not clean_fake.disconnects:
        time.sleep(0.05)
    assert clean_fake.disconnects, "the upstream connection stayed open after the client left"


def test_server_timing_leaves_out_the_upstream_wait(gateway: RunningGateway, clean_fake: FakeUpstream) -> None:
    clean_fake.script(Turn(text="late", delay=1.5))
    response = post(gateway, "/v1/messages", {"model": MODELS["openai"], "max_tokens": 10,
                                              "messages": [{"role": "user", "content": "x"}]})
    assert response.status_code == 200
    name, _, duration = response.headers["server-timing"].partition(";dur=")
    assert name == "crossroute"
    assert 0 < float(duration) < 750  # the 1.5 s stall upstream is not the gateway's time


@pytest.mark.parametrize("value,expected", [("7", 7.0), ("1.5", 1.5), ("-3", 0.0), ("soon", None), ("", None),
                                            ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0)])
def test_retry_after_values(value: str, expected: float | None) -> None:
    from crossroute.routing.cooldown import retry_after_seconds

    assert retry_after_seconds(value) == expected


def test_an_unexpected_failure_is_answered_in_the_client_format(tmp_path: Path, fake: FakeUpstream) -> None:
    with RunningGateway(gateway_config(fake.url), tmp_path / "s.db") as gw:
        def broken(name: str) -> list[Any]:
            raise RuntimeError("a bug")

        gw.app.pipeline.registry.resolve = broken  # type: ignore[method-assign]
        client = anthropic.Anthropic(base_url=gw.url, api_key=CLIENT_KEY, max_retries=0)
        with pytest.raises(anthropic.InternalServerError) as caught:
            client.messages.create(model=MODELS["openai"], max_tokens=5, messages=[{"role": "user", "content": "x"}])
        assert caught.value.body["error"]["type"] == "api_error"  # type: ignore[index]
        assert httpx.get(gw.url + "/health").status_code == 200

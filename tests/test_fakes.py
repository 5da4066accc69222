"""The fake upstreams checked against the official SDKs, pointed straight at them (no gateway).

Each protocol: plain text (stream and not), parallel tool calls then a second
turn carrying the results, reasoning with a signature, a scripted HTTP error,
an in-stream error, a cut connection, and validation failures. Raw payloads
are also validated with the SDKs' own pydantic models, the strictest offline
check of what a real client accepts.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx2 as httpx
import openai
import orjson
import pytest
from anthropic.types import Message, RawMessageStreamEvent, TextBlock
from google import genai
from google.genai import errors as genai_errors
from google.genai import types as gtypes
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from openai.types.responses import Response, ResponseStreamEvent
from pydantic import TypeAdapter

from tests.fakes import FakeUpstream, ToolCallSpec, Turn
from tests.fakes.script import split_pieces

KEY = "up-key"
USER: Any = [{"role": "user", "content": "hi"}]
WEATHER = [
    ToolCallSpec("get_weather", {"city": "Paris", "days": 2}),
    ToolCallSpec("get_time", {"city": "Oslo"}),
]


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeUpstream]:
    with FakeUpstream(api_key=KEY, models=("fake-model", "other-model")) as upstream:
        yield upstream


@pytest.fixture(autouse=True)
def fresh(fake: FakeUpstream) -> Iterator[None]:
    fake.clear()
    yield
    fake.clear()


def sse_events(text: str) -> list[tuple[str | None, str]]:
    """(event, data) pairs of an SSE body; enough for the fakes' own well-formed output."""
    events: list[tuple[str | None, str]] = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        name, data = None, []
        for line in block.split("\n"):
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].strip())
        if data:
            events.append((name, "\n".join(data)))
    return events


HTTP = httpx.Client(timeout=10)


def claude_text(message: Message) -> str:
    return "".join(block.text for block in message.content if isinstance(block, TextBlock))


def gemini_parts(response: gtypes.GenerateContentResponse) -> list[gtypes.Part]:
    candidates = response.candidates or []
    content = candidates[0].content if candidates else None
    return list(content.parts or []) if content is not None else []


def gemini_finish(response: gtypes.GenerateContentResponse) -> gtypes.FinishReason | None:
    return (response.candidates or [gtypes.Candidate()])[0].finish_reason


def post(fake: FakeUpstream, path: str, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    return HTTP.post(fake.url + path, json=body, headers=headers or {})


# ================================================================= common


@given(st.text(max_size=60), st.integers(min_value=1, max_value=12))
def test_split_pieces_keeps_the_text(text: str, pieces: int) -> None:
    parts = split_pieces(text, pieces)
    assert "".join(parts) == text
    assert len(parts) <= pieces and all(parts)
    if text:
        assert len(parts) == min(pieces, len(text))


def test_queue_pops_in_order_and_defaults_to_ok(fake: FakeUpstream) -> None:
    client = openai.OpenAI(api_key=KEY, base_url=fake.url + "/v1", max_retries=0)
    fake.script(Turn(text="one"), Turn(text="two"))
    answers = [
        client.chat.completions.create(model="m", messages=USER).choices[0].message.content for _ in range(3)
    ]
    assert answers == ["one", "two", "ok"]
    assert [r.protocol for r in fake.requests] == ["openai-chat"] * 3
    assert fake.requests[0].headers["authorization"] == f"Bearer {KEY}"


def test_rejected_request_does_not_consume_a_turn(fake: FakeUpstream) -> None:
    fake.script(Turn(text="kept"))
    assert (
        post(fake, "/v1/chat/completions", {"messages": USER}, {"authorization": f"Bearer {KEY}"}).status_code
        == 400
    )
    assert fake.pending == 1
    assert post(fake, "/v1/chat/completions", {"model": "m", "messages": USER}).status_code == 401
    assert fake.pending == 1


def test_unknown_path_is_404_and_recorded(fake: FakeUpstream) -> None:
    response = post(fake, "/v2/nothing", {"a": 1})
    assert response.status_code == 404
    assert fake.requests[-1].path == "/v2/nothing" and fake.requests[-1].body == {"a": 1}


def test_model_lists_in_each_shape(fake: FakeUpstream) -> None:
    oai = openai.OpenAI(api_key=KEY, base_url=fake.url + "/v1", max_retries=0)
    assert [m.id for m in oai.models.list()] == ["fake-model", "other-model"]
    ant = anthropic.Anthropic(api_key=KEY, base_url=fake.url, max_retries=0)
    assert [m.id for m in ant.models.list()] == ["fake-model", "other-model"]
    gem = genai.Client(api_key=KEY, http_options=gtypes.HttpOptions(base_url=fake.url, api_version="v1beta"))
    assert [m.name for m in gem.models.list()] == ["models/fake-model", "models/other-model"]
    with pytest.raises(openai.NotFoundError):
        oai.models.retrieve("missing")


def test_delay_stalls_and_a_leaving_client_is_recorded(fake: FakeUpstream) -> None:
    fake.script(Turn(text="late", delay=1.0))
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(fake.url + "/v1/chat/completions", json={"model": "m", "messages": USER},
                   headers={"authorization": f"Bearer {KEY}"}, timeout=0.2)  # fmt: skip
    deadline = time.monotonic() + 2
    while not fake.disconnects and time.monotonic() < deadline:
        time.sleep(0.02)
    assert [r.path for r in fake.disconnects] == ["/v1/chat/completions"]
    assert time.monotonic() < deadline - 1.5  # noticed at once, not when the stall ended


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 2**60) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)
TOOL = {
    "name": "f",
    "description": "d",
    "parameters": {"type": "object", "properties": {"a": {"type": "string"}}},
}
VALID_BODIES: dict[str, tuple[str, dict[str, str], Any]] = {
    "chat": ("/v1/chat/completions", {"authorization": f"Bearer {KEY}"}, {
        "model": "m", "stream": False, "tools": [{"type": "function", "function": TOOL}],
        "messages": [{"role": "system", "content": "s"}, {"role": "user", "content": [{"type": "text", "text": "q"}]},
                     {"role": "assistant", "content": None, "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
                     {"role": "tool", "tool_call_id": "c1", "content": "r"}]}),
    "responses": ("/v1/responses", {"authorization": f"Bearer {KEY}"}, {
        "model": "m", "stream": False, "reasoning": {"effort": "low", "summary": "auto"}, "tools": [{"type": "function", **TOOL}],
        "input": [{"role": "user", "content": [{"type": "input_text", "text": "q"}]},
                  {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
                  {"type": "function_call_output", "call_id": "c1", "output": "r"}]}),
    "anthropic": ("/v1/messages", {"x-api-key": KEY, "anthropic-version": "2023-06-01"}, {
        "model": "m", "max_tokens": 2048, "stream": False, "system": [{"type": "text", "text": "s"}],
        "tools": [{"name": "f", "input_schema": {"type": "object"}}],
        "messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "f", "input": {}}]},
                     {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": [{"type": "text", "text": "r"}]}]}]}),
    "gemini": ("/v1beta/models/g:generateContent", {"x-goog-api-key": KEY}, {
        "systemInstruction": {"parts": [{"text": "s"}]},
        "generationConfig": {"thinkingConfig": {"includeThoughts": True}, "maxOutputTokens": 50},
        "tools": [{"functionDeclarations": [{"name": "f", "parameters": {"type": "OBJECT", "properties": {"a": {"type": "STRING"}}}}]}],
        "contents": [{"role": "user", "parts": [{"text": "q"}]}, {"role": "model", "parts": [{"functionCall": {"name": "f", "args": {}}}]},
                     {"role": "user", "parts": [{"functionResponse": {"name": "f", "response": {"output": "r"}}}]}]}),
}  # fmt: skip


def value_paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    paths = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, item in value.items():
            paths += value_paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            paths += value_paths(item, (*prefix, index))
    return paths


def replaced(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    copy = orjson.loads(orjson.dumps(value))
    target = copy
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = new
    return copy


def removed(value: Any, path: tuple[Any, ...]) -> Any:
    copy = orjson.loads(orjson.dumps(value))
    target = copy
    for step in path[:-1]:
        target = target[step]
    del target[path[-1]]
    return copy


@pytest.mark.parametrize("protocol", list(VALID_BODIES))
def test_valid_bodies_pass(fake: FakeUpstream, protocol: str) -> None:
    path, headers, body = VALID_BODIES[protocol]
    assert post(fake, path, body, headers).status_code == 200


@pytest.mark.parametrize("protocol", list(VALID_BODIES))
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_mutated_bodies_never_crash_the_fake(fake: FakeUpstream, protocol: str, data: st.DataObject) -> None:
    path, headers, body = VALID_BODIES[protocol]
    where = data.draw(st.sampled_from(value_paths(body)))
    mutated = (
        replaced(body, where, data.draw(JSON_VALUES)) if data.draw(st.booleans()) else removed(body, where)
    )
    response = post(fake, path, mutated, headers)
    assert response.status_code in (200, 400, 404), response.text
    if response.status_code != 200:
        payload = response.json()
        assert payload["type"] == "error" if protocol == "anthropic" else "message" in payload["error"]


# ================================================================= OpenAI Chat


@pytest.fixture
def chat(fake: FakeUpstream) -> openai.OpenAI:
    return openai.OpenAI(api_key=KEY, base_url=fake.url + "/v1", max_retries=0)


def test_chat_text(fake: FakeUpstream, chat: openai.OpenAI) -> None:
    fake.script(Turn(text="Hello there", usage=(40, 9, 16, 3)))
    raw = chat.chat.completions.with_raw_response.create(model="gpt-x", messages=USER)
    completion = ChatCompletion.model_validate(orjson.loads(raw.content))
    assert completion.choices[0].message.content == "Hello there"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.model == "gpt-x"
    assert completion.usage is not None
    assert (
        completion.usage.prompt_tokens,
        completion.usage.completion_tokens,
        completion.usage.total_tokens,
    ) == (40, 9, 49)
    assert (
        completion.usage.prompt_tokens_details and completion.usage.prompt_tokens_details.cached_tokens == 16
    )
    assert (
        completion.usage.completion_tokens_details
        and completion.usage.completion_tokens_details.reasoning_tokens == 3
    )
    assert raw.headers["x-request-id"].startswith("req_")


def test_chat_text_stream(fake: FakeUpstream, chat: openai.OpenAI) -> None:
    fake.script(Turn(text="Hello streaming world", chunk_text=4, usage=(10, 5, 0, 0)))
    chunks = list(
        chat.chat.completions.create(
            model="m", messages=USER, stream=True, stream_options={"include_usage": True}
        )
    )
    pieces = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert pieces == split_pieces("Hello streaming world", 4)
    assert chunks[0].choices[0].delta.role == "assistant"
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["stop"]
    assert chunks[-1].choices == [] and chunks[-1].usage is not None and chunks[-1].usage.total_tokens == 15


def test_chat_stream_wire_shape(fake: FakeUpstream) -> None:
    fake.script(Turn(text="abc", tool_calls=[ToolCallSpec("f", {"x": 1})]))
    body = {"model": "m", "messages": USER, "stream": True}
    text = post(fake, "/v1/chat/completions", body, {"authorization": f"Bearer {KEY}"}).text
    events = sse_events(text)
    assert all(name is None for name, _ in events)
    assert events[-1][1] == "[DONE]"
    chunks = [ChatCompletionChunk.model_validate(orjson.loads(data)) for _, data in events[:-1]]
    assert all(c.usage is None for c in chunks)  # no usage chunk without include_usage
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_chat_parallel_tool_calls_round_trip(fake: FakeUpstream, chat: openai.OpenAI) -> None:
    fake.script(Turn(tool_calls=WEATHER), Turn(text="Sunny, 9am"))
    calls: dict[int, dict[str, str]] = {}
    finish = None
    for chunk in chat.chat.completions.create(model="m", messages=USER, stream=True):
        delta = chunk.choices[0].delta
        for call in delta.tool_calls or []:
            entry = calls.setdefault(call.index, {"id": "", "name": "", "arguments": ""})
            if call.id:
                assert entry["id"] == ""  # the id comes once, in the first fragment
                entry["id"] = call.id
                entry["name"] = call.function.name if call.function and call.function.name else ""
            if call.function and call.function.arguments:
                entry["arguments"] += call.function.arguments
        finish = chunk.choices[0].finish_reason or finish
    assert finish == "tool_calls"
    assert [calls[i]["name"] for i in (0, 1)] == ["get_weather", "get_time"]
    assert [orjson.loads(calls[i]["arguments"]) for i in (0, 1)] == [
        {"city": "Paris", "days": 2},
        {"city": "Oslo"},
    ]
    assistant: Any = {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": calls[i]["id"],
                "type": "function",
                "function": {"name": calls[i]["name"], "arguments": calls[i]["arguments"]},
            }
            for i in (0, 1)
        ],
    }
    results: Any = [
        {"role": "tool", "tool_call_id": calls[i]["id"], "content": f"result {i}"} for i in (0, 1)
    ]
    second = chat.chat.completions.create(model="m", messages=[*USER, assistant, *results])
    assert second.choices[0].message.content == "Sunny, 9am"
    seen = fake.requests[-1].body["messages"]
    assert [m["role"] for m in seen] == ["user", "assistant", "tool", "tool"]
    assert [m["tool_call_id"] for m in seen[2:]] == [calls[0]["id"], calls[1]["id"]]


def test_chat_tool_calls_non_stream_with_given_ids(fake: FakeUpstream, chat: openai.OpenAI) -> None:
    fake.script(Turn(tool_calls=[ToolCallSpec("f", {"a": [1]}, id="call_given")]))
    message = chat.chat.completions.create(model="m", messages=USER).choices[0]
    assert message.finish_reason == "tool_calls"
    assert message.message.content is None
    assert message.message.tool_calls and message.message.tool_calls[0].id == "call_given"


def test_chat_reasoning_content(fake: FakeUpstream, chat: openai.OpenAI) -> None:
    fake.script(Turn(text="42", reasoning="Let me think it through", signature="ignored"))
    message = chat.chat.completions.create(model="m", messages=USER).choices[0].message
    assert (message.model_extra or {}).get("reasoning_content") == "Let me think it through"
    fake.script(Turn(text="42", reasoning="Let me think it through"))
    chunks = list(chat.chat.completions.create(model="m", messages=USER, stream=True))
    reasoning = "".join((c.choices[0].delta.model_extra or {}).get("reasoning_content") or "" for c in chunks)
    assert reasoning == "Let me think it through"


@pytest.mark.parametrize("stop,finish", [("length", "length"), ("content_filter", "content_filter")])
def test_chat_stop_kinds(fake: FakeUpstream, chat: openai.OpenAI, stop: Any, finish: str) -> None:
    fake.script(Turn(text="cut", stop=stop))
    assert chat.chat.completions.create(model="m", messages=USER).choices[0].finish_reason == finish


def test_chat_http_error_with_retry_after(fake: FakeUpstream, chat: openai.OpenAI) -> None:
    fake.script(Turn(error=(429, "slow down"), retry_after=3))
    with pytest.raises(openai.RateLimitError) as caught:
        chat.chat.completions.create(model="m", messages=USER, stream=True)
    assert caught.value.response.headers["retry-after"] == "3"
    assert caught.value.code == "rate_limit_exceeded" and "slow down" in caught.value.message
    fake.script(Turn(error=(503, "down")))
    with pytest.raises(openai.InternalServerError):
        chat.chat.completions.create(model="m", messages=USER)


def test_chat_stream_error_raises(fake: FakeUpstream, chat: openai.OpenAI) -> None:
    fake.script(Turn(text="starts then fails", stream_error=(500, "upstream exploded")))
    received: list[str] = []
    with pytest.raises(openai.APIError, match="upstream exploded"):
        for chunk in chat.chat.completions.create(model="m", messages=USER, stream=True):
            received.append(chunk.choices[0].delta.content or "")
    assert "".join(received) == split_pieces("starts then fails", 5)[0]


def test_chat_break_after_cuts_the_connection(fake: FakeUpstream, chat: openai.OpenAI) -> None:
    fake.script(Turn(text="this will be cut", chunk_text=8, break_after=3))
    received: list[Any] = []
    with pytest.raises(openai.APIConnectionError):
        for chunk in chat.chat.completions.create(model="m", messages=USER, stream=True):
            received.append(chunk)
    assert len([c for c in received if c.choices[0].delta.content]) == 3
    assert all(c.choices[0].finish_reason is None for c in received)


def test_chat_break_after_without_stream_drops_the_connection(
    fake: FakeUpstream, chat: openai.OpenAI
) -> None:
    fake.script(Turn(text="never", break_after=0))
    with pytest.raises(openai.APIConnectionError):
        chat.chat.completions.create(model="m", messages=USER)


@pytest.mark.parametrize(
    "messages,fragment",
    [
        ([*USER, {"role": "tool", "tool_call_id": "call_1", "content": "x"}], "must be a response to a preceeding"),
        (
            [*USER, {"role": "assistant", "tool_calls": [{"id": "a", "type": "function", "function": {"name": "f", "arguments": "{}"}},
                                                          {"id": "b", "type": "function", "function": {"name": "g", "arguments": "{}"}}]},
             {"role": "tool", "tool_call_id": "a", "content": "x"}, {"role": "user", "content": "next"}],
            "did not have response messages: b",
        ),
        (
            [*USER, {"role": "assistant", "tool_calls": [{"id": "", "type": "function", "function": {"name": "f", "arguments": "{}"}}]}],
            "empty string",
        ),
        ([{"role": "robot", "content": "hi"}], "Invalid value: 'robot'"),
        ([{"role": "user", "content": 5}], "Invalid type"),
        ([], "empty array"),
        ("hello", "expected an array"),
    ],
    ids=["orphan-tool", "unanswered-call", "empty-call-id", "bad-role", "bad-content", "no-messages", "not-a-list"],
)  # fmt: skip
def test_chat_validation(fake: FakeUpstream, chat: openai.OpenAI, messages: Any, fragment: str) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        chat.chat.completions.create(model="m", messages=messages)
    assert fragment in caught.value.message
    body: Any = caught.value.body
    assert body["type"] == "invalid_request_error"


def test_chat_auth_and_missing_fields(fake: FakeUpstream) -> None:
    wrong = openai.OpenAI(api_key="nope", base_url=fake.url + "/v1", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as caught:
        wrong.chat.completions.create(model="m", messages=USER)
    assert caught.value.code == "invalid_api_key"
    for body in (
        {"messages": USER},
        {"model": "m"},
        {"model": "m", "messages": USER, "stream_options": {"include_usage": True}},
    ):
        assert post(fake, "/v1/chat/completions", body, {"authorization": f"Bearer {KEY}"}).status_code == 400
    assert post(fake, "/v1/chat/completions", [1, 2], {"authorization": f"Bearer {KEY}"}).status_code == 400


# ================================================================= OpenAI Responses


def test_responses_text(fake: FakeUpstream, chat: openai.OpenAI) -> None:
    fake.script(Turn(text="Hi from responses", usage=(30, 7, 10, 2)))
    raw = chat.responses.with_raw_response.create(model="gpt-x", input="hi", instructions="be brief")
    response = Response.model_validate(orjson.loads(raw.content))
    assert response.output_text == "Hi from responses"
    assert response.status == "completed" and response.instructions == "be brief"
    assert response.usage and (response.usage.input_tokens, response.usage.output_tokens) == (30, 7)
    assert response.usage.input_tokens_details.cached_tokens == 10
    assert response.usage.output_tokens_details.reasoning_tokens == 2


def test_responses_stream_lifecycle(fake: FakeUpstream, chat: openai.OpenAI) -> None:
    fake.script(Turn(text="streamed answer", chunk_text=3))
    with chat.responses.stream(model="m", input="hi") as stream:
        events = list(stream)
        final = stream.get_final_response()
    assert final.output_text == "streamed answer"
    assert [e.sequence_number for e in events] == list(range(len(events)))
    kinds = [e.type for e in events]
    assert kinds[:3] == ["response.created", "response.in_progress", "response.output_item.added"]
    assert kinds.count("response.output_text.delta") == 3 and kinds[-1] == "response.completed"


def test_responses_stream_wire_shape(fake: FakeUpstream) -> None:
    fake.script(Turn(text="t", reasoning="r", tool_calls=[ToolCallSpec("f", {"k": "v"})]))
    body = {
        "model": "m",
        "input": "hi",
        "stream": True,
        "reasoning": {"summary": "auto"},
        "include": ["reasoning.encrypted_content"],
    }
    text = post(fake, "/v1/responses", body, {"authorization": f"Bearer {KEY}"}).text
    adapter: TypeAdapter[Any] = TypeAdapter(ResponseStreamEvent)
    events = [(name, adapter.validate_python(orjson.loads(data))) for name, data in sse_events(text)]
    assert all(name == event.type for name, event in events)
    kinds = [event.type for _, event in events]
    assert (
        "response.reasoning_summary_text.delta" in kinds and "response.function_call_arguments.delta" in kinds
    )
    done = [event.item for _, event in events if event.type == "response.output_item.done"]
    assert [item.type for item in done] == ["reasoning", "message", "function_call"]
    assert done[0].encrypted_content  # minted when the client asks for it


def test_responses_parallel_calls_round_trip(fake: FakeUpstream, chat: openai.OpenAI) -> None:
    fake.script(Turn(tool_calls=WEATHER), Turn(text="done"))
    with chat.responses.stream(model="m", input="weather?") as stream:
        first = stream.get_final_response()
    calls = [item for item in first.output if item.type == "function_call"]
    assert [(c.name, orjson.loads(c.arguments)) for c in calls] == [(s.name, s.args) for s in WEATHER]
    assert len({c.call_id for c in calls}) == 2 and all(c.id and c.id.startswith("fc_") for c in calls)
    follow: list[Any] = [{"role": "user", "content": "weather?"}]
    follow += [
        {"type": "function_call", "call_id": c.call_id, "name": c.name, "arguments": c.arguments}
        for c in calls
    ]
    follow += [{"type": "function_call_output", "call_id": c.call_id, "output": "fine"} for c in calls]
    assert chat.responses.create(model="m", input=follow).output_text == "done"
    seen = fake.requests[-1].body["input"]
    assert [i["call_id"] for i in seen if i.get("type") == "function_call_output"] == [
        c.call_id for c in calls
    ]


def test_responses_reasoning_signature_round_trip(fake: FakeUpstream, chat: openai.OpenAI) -> None:
    fake.script(
        Turn(reasoning="ponder", signature="enc-sig-1", tool_calls=[ToolCallSpec("f", {})]), Turn(text="ok!")
    )
    first = chat.responses.create(
        model="m",
        input="q",
        reasoning={"effort": "low", "summary": "auto"},
        include=["reasoning.encrypted_content"],
    )
    reasoning = first.output[0]
    assert reasoning.type == "reasoning" and reasoning.encrypted_content == "enc-sig-1"
    assert [s.text for s in reasoning.summary] == ["ponder"]
    call = first.output[1]
    assert call.type == "function_call"
    replay: list[Any] = [
        {"role": "user", "content": "q"},
        {"type": "reasoning", "id": reasoning.id, "summary": [], "encrypted_content": "enc-sig-1"},
        {"type": "function_call", "call_id": call.call_id, "name": "f", "arguments": "{}"},
        {"type": "function_call_output", "call_id": call.call_id, "output": "r"},
    ]
    assert chat.responses.create(model="m", input=replay).output_text == "ok!"
    replay[1]["encrypted_content"] = "forged"
    with pytest.raises(openai.BadRequestError, match="could not be verified"):
        chat.responses.create(model="m", input=replay)


def test_responses_reasoning_is_hidden_unless_asked(fake: FakeUpstream, chat: openai.OpenAI) -> None:
    fake.script(Turn(text="a", reasoning="secret", signature="s"))
    output = chat.responses.create(model="m", input="q").output
    assert output[0].type == "reasoning" and output[0].summary == [] and output[0].encrypted_content is None


def test_responses_length_is_incomplete(fake: FakeUpstream, chat: openai.OpenAI) -> None:
    fake.script(Turn(text="cut", stop="length"))
    events = list(chat.responses.create(model="m", input="q", stream=True))
    assert events[-1].type == "response.incomplete"
    assert (
        events[-1].response.incomplete_details
        and events[-1].response.incomplete_details.reason == "max_output_tokens"
    )


def test_responses_http_error(fake: FakeUpstream, chat: openai.OpenAI) -> None:
    fake.script(Turn(error=(429, "too many"), retry_after=2))
    with pytest.raises(openai.RateLimitError) as caught:
        chat.responses.create(model="m", input="q")
    assert caught.value.response.headers["retry-after"] == "2"


def test_responses_stream_error_is_response_failed(fake: FakeUpstream, chat: openai.OpenAI) -> None:
    fake.script(Turn(text="partial answer", stream_error=(500, "model crashed")))
    events = list(chat.responses.create(model="m", input="q", stream=True))
    assert events[-1].type == "response.failed"
    assert events[-1].response.error and events[-1].response.error.message == "model crashed"
    fake.script(Turn(text="partial answer", stream_error=(500, "model crashed")))
    with (
        pytest.raises(RuntimeError, match="response.completed"),
        chat.responses.stream(model="m", input="q") as stream,
    ):
        stream.get_final_response()


def test_responses_break_after(fake: FakeUpstream, chat: openai.OpenAI) -> None:
    fake.script(Turn(text="will break", chunk_text=5, break_after=2))
    received: list[Any] = []
    with pytest.raises(openai.APIConnectionError):
        for event in chat.responses.create(model="m", input="q", stream=True):
            received.append(event)
    assert [e.type for e in received].count("response.output_text.delta") == 2
    assert all(e.type != "response.completed" for e in received)


@pytest.mark.parametrize(
    "body,fragment",
    [
        ({"model": "m", "input": [{"type": "function_call_output", "call_id": "call_x", "output": "o"}]},
         "No tool call found for function call output with call_id call_x"),
        ({"model": "m"}, "Missing required parameter: 'input'"),
        ({"input": "q"}, "Missing required parameter: 'model'"),
        ({"model": "m", "input": "q", "messages": []}, "Unknown parameter: 'messages'"),
        ({"model": "m", "input": "q", "tools": [{"type": "function", "function": {"name": "f"}}]}, "tools[0].name"),
        ({"model": "m", "input": [{"role": "assistant", "content": [{"type": "input_text", "text": "x"}]}]}, "output_text"),
        ({"model": "m", "input": 17}, "expected an array"),
    ],
    ids=["orphan-output", "no-input", "no-model", "chat-field", "chat-tool", "assistant-input-text", "bad-input"],
)  # fmt: skip
def test_responses_validation(fake: FakeUpstream, body: dict[str, Any], fragment: str) -> None:
    response = post(fake, "/v1/responses", body, {"authorization": f"Bearer {KEY}"})
    assert response.status_code == 400, response.text
    assert fragment in response.json()["error"]["message"]


# ================================================================= Anthropic


ADAPTIVE_OMITTED: Any = {"type": "adaptive", "display": "omitted"}


@pytest.fixture
def claude(fake: FakeUpstream) -> anthropic.Anthropic:
    return anthropic.Anthropic(api_key=KEY, base_url=fake.url, max_retries=0)


def test_anthropic_text(fake: FakeUpstream, claude: anthropic.Anthropic) -> None:
    fake.script(Turn(text="Hello, human", usage=(40, 9, 16, 0)))
    raw = claude.messages.with_raw_response.create(model="claude-x", max_tokens=100, messages=USER)
    message = Message.model_validate(orjson.loads(raw.http_response.content))
    assert [b.type for b in message.content] == ["text"] and claude_text(message) == "Hello, human"
    assert message.stop_reason == "end_turn" and message.model == "claude-x"
    assert (
        message.usage.input_tokens,
        message.usage.cache_read_input_tokens,
        message.usage.output_tokens,
    ) == (24, 16, 9)
    assert fake.requests[-1].protocol == "anthropic"


def test_anthropic_text_stream(fake: FakeUpstream, claude: anthropic.Anthropic) -> None:
    fake.script(Turn(text="Streaming from Claude", chunk_text=4, usage=(12, 6, 2, 0)))
    with claude.messages.stream(model="m", max_tokens=100, messages=USER) as stream:
        pieces = list(stream.text_stream)
        final = stream.get_final_message()
    assert pieces == split_pieces("Streaming from Claude", 4)
    assert (
        final.stop_reason == "end_turn" and final.usage.output_tokens == 6 and final.usage.input_tokens == 10
    )


def test_anthropic_stream_wire_shape(fake: FakeUpstream) -> None:
    fake.script(Turn(text="t", reasoning="r", tool_calls=[ToolCallSpec("f", {"k": [1, 2]})]))
    body = {
        "model": "m",
        "max_tokens": 4000,
        "stream": True,
        "messages": USER,
        "thinking": {"type": "enabled", "budget_tokens": 1024},
    }
    text = post(
        fake, "/v1/messages?beta=true", body, {"x-api-key": KEY, "anthropic-version": "2023-06-01"}
    ).text
    adapter: TypeAdapter[Any] = TypeAdapter(RawMessageStreamEvent)
    events = sse_events(text)
    assert all(name for name, _ in events)
    parsed = [adapter.validate_python(orjson.loads(data)) for name, data in events if name != "ping"]
    kinds = [e.type for e in parsed]
    assert kinds[0] == "message_start" and kinds[-2:] == ["message_delta", "message_stop"]
    starts = [e.content_block.type for e in parsed if e.type == "content_block_start"]
    assert starts == ["thinking", "text", "tool_use"]
    assert kinds.count("content_block_start") == kinds.count("content_block_stop") == 3
    deltas = [e.delta.type for e in parsed if e.type == "content_block_delta"]
    assert "signature_delta" in deltas and "input_json_delta" in deltas
    assert parsed[-2].delta.stop_reason == "tool_use"
    assert fake.requests[-1].query == {"beta": "true"}


def test_anthropic_parallel_tools_round_trip(fake: FakeUpstream, claude: anthropic.Anthropic) -> None:
    fake.script(Turn(tool_calls=WEATHER), Turn(text="Both done"))
    with claude.messages.stream(model="m", max_tokens=100, messages=USER) as stream:
        first = stream.get_final_message()
    assert first.stop_reason == "tool_use"
    uses = [b for b in first.content if b.type == "tool_use"]
    assert [(u.name, u.input) for u in uses] == [(s.name, s.args) for s in WEATHER]
    results = [{"type": "tool_result", "tool_use_id": u.id, "content": "fine"} for u in uses]
    history = [
        *USER,
        {"role": "assistant", "content": [u.model_dump() for u in uses]},
        {"role": "user", "content": results},
    ]
    second = claude.messages.create(model="m", max_tokens=100, messages=history)
    assert claude_text(second) == "Both done"
    seen = fake.requests[-1].body["messages"][2]["content"]
    assert [b["tool_use_id"] for b in seen] == [u.id for u in uses]


def test_anthropic_thinking_signature_round_trip(fake: FakeUpstream, claude: anthropic.Anthropic) -> None:
    thinking: Any = {"type": "enabled", "budget_tokens": 1024}
    fake.script(
        Turn(reasoning="hmm", signature="sig-anthropic-1", tool_calls=[ToolCallSpec("f", {})]),
        Turn(text="fine"),
    )
    first = claude.messages.create(model="m", max_tokens=2048, messages=USER, thinking=thinking)
    assert first.content[0].type == "thinking"
    assert (first.content[0].thinking, first.content[0].signature) == ("hmm", "sig-anthropic-1")
    use = first.content[1]
    assert use.type == "tool_use"
    history: list[Any] = [
        *USER,
        {"role": "assistant", "content": [first.content[0].model_dump(), use.model_dump()]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "r"}]},
    ]
    second = claude.messages.create(model="m", max_tokens=2048, messages=history, thinking=thinking)
    assert claude_text(second) == "fine"
    history[1]["content"][0]["signature"] = "forged"
    with pytest.raises(anthropic.BadRequestError, match="Invalid signature in thinking block"):
        claude.messages.create(model="m", max_tokens=2048, messages=history, thinking=thinking)


def test_anthropic_thinking_needs_a_thinking_request(fake: FakeUpstream, claude: anthropic.Anthropic) -> None:
    fake.script(Turn(text="plain", reasoning="hidden"), Turn(text="plain", reasoning="shown"))
    assert [b.type for b in claude.messages.create(model="m", max_tokens=50, messages=USER).content] == [
        "text"
    ]
    adaptive = claude.messages.create(
        model="m",
        max_tokens=50,
        messages=USER,
        thinking=ADAPTIVE_OMITTED,
    )
    assert (
        adaptive.content[0].type == "thinking"
        and adaptive.content[0].thinking == ""
        and adaptive.content[0].signature
    )


@pytest.mark.parametrize("status,error", [(429, anthropic.RateLimitError), (529, anthropic.OverloadedError)])
def test_anthropic_http_errors(
    fake: FakeUpstream, claude: anthropic.Anthropic, status: int, error: type[Exception]
) -> None:
    fake.script(Turn(error=(status, "busy"), retry_after=4))
    with pytest.raises(error) as caught:
        claude.messages.create(model="m", max_tokens=10, messages=USER)
    raised: Any = caught.value
    assert raised.response.headers["retry-after"] == "4"
    assert raised.body["error"]["type"] == {429: "rate_limit_error", 529: "overloaded_error"}[status]


def test_anthropic_stream_error_raises(fake: FakeUpstream, claude: anthropic.Anthropic) -> None:
    fake.script(Turn(text="partial", stream_error=(529, "Overloaded")))
    with (
        pytest.raises(anthropic.APIStatusError, match="Overloaded"),
        claude.messages.stream(model="m", max_tokens=10, messages=USER) as stream,
    ):
        list(stream.text_stream)


def test_anthropic_break_after(fake: FakeUpstream, claude: anthropic.Anthropic) -> None:
    fake.script(Turn(text="soon broken", chunk_text=4, break_after=1))
    received: list[Any] = []
    with pytest.raises(
        (anthropic.APIConnectionError, httpx.RemoteProtocolError)
    ):  # the SDK lets the transport error through
        for event in claude.messages.create(model="m", max_tokens=10, messages=USER, stream=True):
            received.append(event)
    assert [e.type for e in received].count("content_block_delta") == 1
    assert "message_stop" not in [e.type for e in received]


TOOL_USE = {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}}


@pytest.mark.parametrize(
    "body,fragment",
    [
        ({"messages": [*USER, {"role": "assistant", "content": [TOOL_USE]}, {"role": "user", "content": "go on"}]},
         "`tool_use` ids were found without `tool_result` blocks immediately after: toolu_1"),
        ({"messages": [{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_9", "content": "x"}]}]},
         "unexpected `tool_use_id` found in `tool_result` blocks: toolu_9"),
        ({"messages": [*USER, {"role": "system", "content": "be nice"}]}, "Input should be 'user' or 'assistant'"),
        ({"messages": [{"role": "assistant", "content": "hello"}]}, "first message must use the \"user\" role"),
        ({"messages": [*USER, {"role": "assistant", "content": [{**TOOL_USE, "input": "[]"}]}]}, "valid dictionary"),
        ({"messages": USER, "thinking": {"type": "enabled", "budget_tokens": 500}}, "greater than or equal to 1024"),
        ({"messages": USER, "thinking": {"type": "enabled", "budget_tokens": 4096}}, "`max_tokens` must be greater"),
        ({"messages": USER, "thinking": {"type": "enabled", "budget_tokens": 1024}, "temperature": 0.3}, "`temperature` may only be set to 1"),
        ({"messages": USER, "reasoning_effort": "high"}, "reasoning_effort: Extra inputs are not permitted"),
        ({"messages": USER, "max_tokens": 0}, "max_tokens: Input should be greater than or equal to 1"),
        ({"messages": [{"role": "user", "content": [{"type": "image"}]}]}, "source: Field required"),
        ({"messages": [*USER, {"role": "assistant", "content": [TOOL_USE]},
                       {"role": "user", "content": [{"type": "tool_result", "tool_use_id": TOOL_USE["id"], "content": "r"}]}],
          "thinking": {"type": "enabled", "budget_tokens": 1024}}, "Expected `thinking` or `redacted_thinking`"),
    ],
    ids=["unanswered-tool-use", "orphan-result", "system-role", "assistant-first", "input-not-object", "small-budget",
         "budget-over-max", "temperature-with-thinking", "extra-field", "zero-max-tokens", "image-without-source",
         "tool-turn-without-thinking"],
)  # fmt: skip
def test_anthropic_validation(
    fake: FakeUpstream, claude: anthropic.Anthropic, body: dict[str, Any], fragment: str
) -> None:
    full = {"model": "m", "max_tokens": 2048, **body}
    with pytest.raises(anthropic.BadRequestError) as caught:
        claude.post("/v1/messages", body=full, cast_to=Message)
    assert fragment in caught.value.message
    body_seen: Any = caught.value.body
    assert body_seen["error"]["type"] == "invalid_request_error"


def test_anthropic_auth_and_version(fake: FakeUpstream) -> None:
    body = {"model": "m", "max_tokens": 5, "messages": USER}
    assert (
        post(fake, "/v1/messages", body, {"x-api-key": KEY, "anthropic-version": "2023-06-01"}).status_code
        == 200
    )
    missing = post(fake, "/v1/messages", body, {"x-api-key": KEY})
    assert missing.status_code == 400 and "anthropic-version" in missing.json()["error"]["message"]
    wrong = post(fake, "/v1/messages", body, {"x-api-key": "bad", "anthropic-version": "2023-06-01"})
    assert wrong.status_code == 401 and wrong.json()["error"]["type"] == "authentication_error"


def test_anthropic_count_tokens(fake: FakeUpstream, claude: anthropic.Anthropic) -> None:
    short = claude.messages.count_tokens(model="m", messages=USER).input_tokens
    long = claude.messages.count_tokens(
        model="m", messages=[{"role": "user", "content": "word " * 200}]
    ).input_tokens
    assert short == len("hi") // 4 + 1 and long == len("word " * 200) // 4 + 1
    assert fake.pending == 0 and fake.requests[-1].path == "/v1/messages/count_tokens"
    fake.script(Turn(text="x"))
    claude.messages.count_tokens(model="m", messages=USER)
    assert fake.pending == 1  # counting pops no turn


# ================================================================= Gemini


@pytest.fixture
def gemini(fake: FakeUpstream) -> genai.Client:
    return genai.Client(api_key=KEY, http_options=gtypes.HttpOptions(base_url=fake.url))


def test_gemini_text(fake: FakeUpstream, gemini: genai.Client) -> None:
    fake.script(Turn(text="Hello from Gemini", usage=(40, 9, 16, 3)))
    response = gemini.models.generate_content(model="gemini-x", contents="hi")
    assert response.text == "Hello from Gemini"
    assert gemini_finish(response) == gtypes.FinishReason.STOP
    usage = response.usage_metadata
    assert usage is not None
    assert (usage.prompt_token_count, usage.candidates_token_count, usage.thoughts_token_count) == (40, 6, 3)
    assert (usage.cached_content_token_count, usage.total_token_count) == (16, 49)
    assert fake.requests[-1].path == "/v1/models/gemini-x:generateContent"
    assert fake.requests[-1].headers["x-goog-api-key"] == KEY


def test_gemini_text_stream(fake: FakeUpstream, gemini: genai.Client) -> None:
    fake.script(Turn(text="Streaming Gemini text", chunk_text=3))
    chunks = list(gemini.models.generate_content_stream(model="g", contents="hi"))
    assert "".join(c.text or "" for c in chunks) == "Streaming Gemini text"
    finishes = [gemini_finish(c) for c in chunks if gemini_finish(c) is not None]
    assert finishes == [gtypes.FinishReason.STOP]
    assert fake.requests[-1].query == {"alt": "sse"}


def test_gemini_wire_shapes(fake: FakeUpstream) -> None:
    fake.script(Turn(text="abc", tool_calls=[ToolCallSpec("f", {"a": 1})]), Turn(text="abc"))
    body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    text = post(fake, "/v1beta/models/g:streamGenerateContent?alt=sse", body, {"x-goog-api-key": KEY}).text
    chunks = [gtypes.GenerateContentResponse.model_validate(orjson.loads(d)) for _, d in sse_events(text)]
    calls = [p.function_call for chunk in chunks for p in gemini_parts(chunk) if p.function_call is not None]
    assert [(c.name, c.args, c.id) for c in calls] == [("f", {"a": 1}, None)]  # no id, like real Gemini
    array = post(fake, "/v1beta/models/g:streamGenerateContent", body, {"x-goog-api-key": KEY}).json()
    assert isinstance(array, list) and array[-1]["candidates"][0]["finishReason"] == "STOP"
    assert (
        "".join(p.get("text", "") for chunk in array for p in chunk["candidates"][0]["content"]["parts"])
        == "abc"
    )


def test_gemini_parallel_calls_and_signature_round_trip(fake: FakeUpstream, gemini: genai.Client) -> None:
    fake.script(Turn(reasoning="plan", signature="c2lnLWdlbQ==", tool_calls=WEATHER), Turn(text="done"))
    config = gtypes.GenerateContentConfig(thinking_config=gtypes.ThinkingConfig(include_thoughts=True))
    first = gemini.models.generate_content(model="g", contents="weather?", config=config)
    parts = gemini_parts(first)
    assert [(p.thought, p.text) for p in parts if p.thought] == [(True, "plan")]
    call_parts = [p for p in parts if p.function_call is not None]
    calls = [p.function_call for p in call_parts if p.function_call is not None]
    assert [(c.name, c.args) for c in calls] == [(s.name, s.args) for s in WEATHER]
    assert call_parts[0].thought_signature == b"sig-gem" and call_parts[1].thought_signature is None
    answers = [
        gtypes.Part.from_function_response(name=c.name or "", response={"output": "fine"}) for c in calls
    ]
    model_turn = gtypes.Content(role="model", parts=parts)
    history = [gtypes.Content(role="user", parts=[gtypes.Part(text="weather?")]), model_turn,
               gtypes.Content(role="user", parts=answers)]  # fmt: skip
    assert gemini.models.generate_content(model="g", contents=history).text == "done"
    sent = fake.requests[-1].body["contents"]
    assert sent[1]["parts"][-2]["thoughtSignature"] == "c2lnLWdlbQ=="
    assert [p["functionResponse"]["name"] for p in sent[2]["parts"]] == ["get_weather", "get_time"]

    unsigned = orjson.loads(orjson.dumps(fake.requests[-1].body))
    for part in unsigned["contents"][1]["parts"]:
        part.pop("thoughtSignature", None)
    missing = post(fake, "/v1beta/models/g:generateContent", unsigned, {"x-goog-api-key": KEY})
    assert missing.status_code == 400 and "Function call is missing a thought_signature" in missing.text
    first_call = next(p for p in unsigned["contents"][1]["parts"] if "functionCall" in p)
    first_call["thoughtSignature"] = "skip_thought_signature_validator"
    assert (
        post(fake, "/v1beta/models/g:generateContent", unsigned, {"x-goog-api-key": KEY}).status_code == 200
    )


def test_gemini_thoughts_need_include_thoughts(fake: FakeUpstream, gemini: genai.Client) -> None:
    fake.script(Turn(text="answer", reasoning="hidden", signature="c2ln"))
    parts = gemini_parts(gemini.models.generate_content(model="g", contents="q"))
    assert [p.text for p in parts] == ["answer"]
    assert parts[-1].thought_signature == b"sig"  # no call: the signature rides on the last text part


def test_gemini_http_error_with_retry_info(fake: FakeUpstream, gemini: genai.Client) -> None:
    fake.script(Turn(error=(429, "Resource has been exhausted"), retry_after=12))
    with pytest.raises(genai_errors.ClientError) as caught:
        gemini.models.generate_content(model="g", contents="q")
    assert caught.value.code == 429 and caught.value.status == "RESOURCE_EXHAUSTED"
    assert {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "12s"} in (
        caught.value.details["error"]["details"]
    )
    response: Any = caught.value.response
    assert response.headers["retry-after"] == "12"


def test_gemini_stream_error_raises(fake: FakeUpstream, gemini: genai.Client) -> None:
    fake.script(Turn(text="partial text", stream_error=(503, "The model is overloaded")))
    received: list[str] = []
    with pytest.raises(genai_errors.ServerError) as caught:
        for chunk in gemini.models.generate_content_stream(model="g", contents="q"):
            received.append(chunk.text or "")
    assert caught.value.code == 503 and received == [split_pieces("partial text", 5)[0]]


def test_gemini_break_after(fake: FakeUpstream, gemini: genai.Client) -> None:
    fake.script(Turn(text="broken stream", chunk_text=4, break_after=2))
    received: list[Any] = []
    with pytest.raises(Exception) as caught:  # noqa: B017 - google-genai surfaces the transport's own error
        for chunk in gemini.models.generate_content_stream(model="g", contents="q"):
            received.append(chunk)
    assert not isinstance(caught.value, AssertionError)
    assert len(received) == 2 and all(gemini_finish(c) is None for c in received)


SCHEMA_FAILURES = [
    {
        "type": "object",
        "properties": {"a": {"type": "string"}},
        "$schema": "http://json-schema.org/draft/2020-12/schema",
    },
    {"type": "object", "properties": {"a": {"type": "string"}}, "additionalProperties": False},
    {"type": "object", "properties": {"n": {"type": "integer", "exclusiveMinimum": 0}}},
    {"type": "object", "properties": {"n": {"type": ["integer", "null"]}}},
    {"type": "object", "properties": {"n": {"const": "x"}}},
    {"type": "object", "properties": {"n": {"oneOf": [{"type": "string"}, {"type": "integer"}]}}},
    {"type": "object", "properties": {"n": {"type": "integer", "maximum": 2**63}}},
    {"type": "object", "properties": {"a": {"type": "array"}}},
    {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["b"]},
    {"type": "object", "properties": {"a": {"type": "string", "properties": {"b": {"type": "string"}}}}},
]


@pytest.mark.parametrize(
    "schema",
    SCHEMA_FAILURES,
    ids=[
        "$schema",
        "additionalProperties",
        "exclusiveMinimum",
        "type-array",
        "const",
        "oneOf",
        "huge-bound",
        "no-items",
        "required",
        "properties-on-string",
    ],
)
def test_gemini_rejects_json_schema_in_parameters(fake: FakeUpstream, schema: dict[str, Any]) -> None:
    tools = [{"functionDeclarations": [{"name": "f", "parameters": schema}]}]
    body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}], "tools": tools}
    response = post(fake, "/v1beta/models/g:generateContent", body, {"x-goog-api-key": KEY})
    assert response.status_code == 400 and response.json()["error"]["status"] == "INVALID_ARGUMENT"
    tools = [{"functionDeclarations": [{"name": "f", "parametersJsonSchema": schema}]}]
    assert (
        post(
            fake, "/v1beta/models/g:generateContent", {**body, "tools": tools}, {"x-goog-api-key": KEY}
        ).status_code
        == 200
    )


def test_gemini_accepts_the_openapi_subset(fake: FakeUpstream, gemini: genai.Client) -> None:
    schema = gtypes.Schema(type=gtypes.Type.OBJECT, required=["city"], properties={
        "city": gtypes.Schema(type=gtypes.Type.STRING, description="name"),
        "days": gtypes.Schema(type=gtypes.Type.INTEGER, minimum=1, maximum=9007199254740991, nullable=True),
        "tags": gtypes.Schema(type=gtypes.Type.ARRAY, items=gtypes.Schema(type=gtypes.Type.STRING, enum=["a", "b"])),
    })  # fmt: skip
    tool = gtypes.Tool(
        function_declarations=[gtypes.FunctionDeclaration(name="get_weather", parameters=schema)]
    )
    config = gtypes.GenerateContentConfig(tools=[tool], system_instruction="be brief")
    assert gemini.models.generate_content(model="g", contents="hi", config=config).text == "ok"


@pytest.mark.parametrize(
    "contents,fragment",
    [
        ([], "contents is not specified"),
        ([{"role": "assistant", "parts": [{"text": "x"}]}], "valid role"),
        ([{"role": "user", "parts": [{"functionResponse": {"name": "f", "response": {"output": "x"}}}]}],
         "function response turn comes immediately after a function call turn"),
        ([{"role": "user", "parts": [{"text": "q"}]}, {"role": "model", "parts": [{"functionCall": {"name": "f", "args": {}}}]},
          {"role": "user", "parts": [{"functionResponse": {"name": "f", "response": "plain"}}]}], "protobuf.Struct"),
        ([{"role": "user", "parts": [{"text": "q"}]}, {"role": "model", "parts": [{"functionCall": {"name": "f", "args": {}}}]},
          {"role": "user", "parts": [{"functionResponse": {"response": {}}}]}], "Name cannot be empty"),
        ([{"role": "user", "parts": [{}]}], "required oneof field 'data'"),
        ([{"role": "user", "parts": [{"text": "q", "bogus": 1}]}], 'Unknown name "bogus"'),
    ],
    ids=["empty", "bad-role", "orphan-response", "response-not-object", "response-without-name", "empty-part", "unknown-field"],
)  # fmt: skip
def test_gemini_validation(fake: FakeUpstream, contents: list[Any], fragment: str) -> None:
    response = post(fake, "/v1beta/models/g:generateContent", {"contents": contents}, {"x-goog-api-key": KEY})
    assert response.status_code == 400, response.text
    assert fragment in response.json()["error"]["message"]


def test_gemini_validation_through_the_sdk(fake: FakeUpstream, gemini: genai.Client) -> None:
    orphan = gtypes.Content(
        role="user", parts=[gtypes.Part.from_function_response(name="f", response={"output": "x"})]
    )
    with pytest.raises(genai_errors.ClientError) as caught:
        gemini.models.generate_content(model="g", contents=[orphan])
    assert caught.value.code == 400 and caught.value.status == "INVALID_ARGUMENT"


def test_gemini_auth(fake: FakeUpstream) -> None:
    wrong = genai.Client(api_key="bad", http_options=gtypes.HttpOptions(base_url=fake.url))
    with pytest.raises(genai_errors.ClientError) as caught:
        wrong.models.generate_content(model="g", contents="q")
    assert caught.value.code == 400
    assert caught.value.details["error"]["details"][0]["reason"] == "API_KEY_INVALID"
    body = {"contents": [{"parts": [{"text": "q"}]}]}
    assert post(fake, f"/v1beta/models/g:generateContent?key={KEY}", body).status_code == 200


def test_gemini_count_tokens(fake: FakeUpstream, gemini: genai.Client) -> None:
    short = gemini.models.count_tokens(model="g", contents="hello").total_tokens
    long = gemini.models.count_tokens(model="g", contents="hello " * 100).total_tokens
    assert short == len("hello") // 4 + 1 and long == len("hello " * 100) // 4 + 1
    wrapped = {
        "generateContentRequest": {
            "model": "models/g",
            "contents": [{"role": "user", "parts": [{"text": "hello"}]}],
        }
    }
    assert (
        post(fake, "/v1beta/models/g:countTokens", wrapped, {"x-goog-api-key": KEY}).json()["totalTokens"]
        == short
    )
    assert fake.pending == 0

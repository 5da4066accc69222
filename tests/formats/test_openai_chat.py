"""OpenAI Chat Completions format: both directions, checked against the openai SDK."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from typing import Any

import httpx2
import openai
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from pydantic import TypeAdapter

from crossroute import ir
from crossroute.formats import openai_chat as chat
from crossroute.ir import (
    Collector,
    Finish,
    GatewayError,
    Image,
    Message,
    Reasoning,
    ReasoningConfig,
    ReasoningDelta,
    Request,
    Response,
    ResponseFormat,
    StreamError,
    StreamStart,
    Text,
    TextDelta,
    Tool,
    ToolCall,
    ToolCallDelta,
    ToolCallStart,
    ToolChoice,
    ToolResult,
    Usage,
)

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def body(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"model": "gpt-x", "messages": [{"role": "user", "content": "hi"}]}
    base.update(fields)
    return base


def sse(*chunks: dict[str, Any] | str) -> bytes:
    out = b""
    for chunk in chunks:
        data = chunk.encode() if isinstance(chunk, str) else orjson.dumps(chunk)
        out += b"data: " + data + b"\n\n"
    return out


def chunk(delta: dict[str, Any] | None = None, finish: str | None = None, **top: Any) -> dict[str, Any]:
    choices = (
        []
        if delta is None and finish is None
        else [{"index": 0, "delta": delta or {}, "finish_reason": finish}]
    )
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "up",
        "choices": choices,
        **top,
    }


def decode_all(data: bytes, cuts: list[int] | None = None) -> list[ir.Event]:
    decoder = chat.StreamDecoder()
    events: list[ir.Event] = []
    start = 0
    for cut in sorted(cuts or []):
        events += decoder.feed(data[start:cut])
        start = cut
    events += decoder.feed(data[start:])
    return events + decoder.close()


def collected(events: list[ir.Event]) -> Response:
    collector = Collector()
    for event in events:
        collector.feed(event)
    return collector.result()


def encode_all(req: Request, events: list[ir.Event], close: bool = True) -> bytes:
    encoder = chat.StreamEncoder(req)
    out = b"".join(encoder.encode(e) for e in events)
    return out + (encoder.close() if close else b"")


def data_lines(stream: bytes) -> list[str]:
    return [frame[len("data: ") :] for frame in stream.decode().split("\n\n") if frame]


def sdk_client(handler: Callable[[httpx2.Request], httpx2.Response]) -> openai.OpenAI:
    http_client = httpx2.Client(transport=httpx2.MockTransport(handler))
    return openai.OpenAI(
        api_key="k", base_url="http://gateway.test/v1", http_client=http_client, max_retries=0
    )


def serve(status: int, content: bytes, content_type: str) -> openai.OpenAI:
    return sdk_client(
        lambda _: httpx2.Response(status, headers={"content-type": content_type}, content=content)
    )


# ================================================================ parse_request


def test_parse_request_reads_a_full_conversation() -> None:
    req = chat.parse_request(
        body(
            messages=[
                {"role": "system", "content": "be brief"},
                {"role": "developer", "content": [{"type": "text", "text": "use tools"}]},
                {"role": "user", "content": "list files"},
                {
                    "role": "assistant",
                    "content": None,
                    "reasoning_content": "need ls",
                    "tool_calls": [
                        {
                            "id": "c1",
                            "type": "function",
                            "function": {"name": "ls", "arguments": '{"d":"."}'},
                        },
                        {"id": "c2", "type": "function", "function": {"name": "pwd", "arguments": "{}"}},
                    ],
                },
                {"role": "tool", "tool_call_id": "c1", "content": "a.txt"},
                {"role": "tool", "tool_call_id": "c2", "content": [{"type": "text", "text": "/w"}]},
                {"role": "system", "content": "late note"},
                {"role": "assistant", "content": "done"},
            ]
        )
    )
    assert [t.text for t in req.system] == ["be brief", "use tools"]
    assert [m.role for m in req.messages] == ["user", "assistant", "tool", "system", "assistant"]
    assistant = req.messages[1].parts
    assert assistant == [
        Reasoning(text="need ls"),
        ToolCall("c1", "ls", '{"d":"."}'),
        ToolCall("c2", "pwd", "{}"),
    ]
    assert req.messages[2].parts == [
        ToolResult("c1", [Text("a.txt")], name="ls"),
        ToolResult("c2", [Text("/w")], name="pwd"),
    ]
    assert req.messages[3].parts == [Text("late note")]
    assert req.source_format == "openai-chat"


def test_parse_request_images_and_notes_for_unsupported_parts() -> None:
    req = chat.parse_request(
        body(
            messages=[
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "look"},
                        {
                            "type": "image_url",
                            "image_url": {"url": "data:image/jpeg;base64,QUJD", "detail": "low"},
                        },
                        {"type": "image_url", "image_url": {"url": "https://x.test/a.png"}},
                        {"type": "input_audio", "input_audio": {"data": "AAA", "format": "wav"}},
                        {"type": "file", "file": {"filename": "r.pdf", "file_data": "data:..."}},
                        {"type": "prompt_cache_breakpoint"},
                    ],
                }
            ]
        )
    )
    parts = req.messages[0].parts
    assert parts[0] == Text("look")
    assert parts[1] == Image(data="QUJD", media_type="image/jpeg", detail="low")
    assert parts[2] == Image(url="https://x.test/a.png")
    assert isinstance(parts[3], Text) and "audio" in parts[3].text
    assert parts[4] == Text("[file omitted: r.pdf]")
    assert len(parts) == 5


def test_parse_request_generation_parameters_and_extras() -> None:
    req = chat.parse_request(
        body(
            max_tokens=100,
            max_completion_tokens=200,
            stop="END",
            temperature=0,
            top_p=0.5,
            reasoning_effort="high",
            response_format={
                "type": "json_schema",
                "json_schema": {"name": "n", "schema": {"type": "object"}, "strict": True},
            },
            stream=True,
            stream_options={"include_usage": True},
            user="u1",
            seed=7,
            parallel_tool_calls=False,
        )
    )
    assert req.max_tokens == 200
    assert req.stop == ["END"]
    assert req.temperature == 0.0 and req.top_p == 0.5
    assert req.reasoning == ReasoningConfig(effort="high")
    assert req.response_format == ResponseFormat(
        "json_schema", schema={"type": "object"}, name="n", strict=True
    )
    assert req.stream is True and req.user == "u1" and req.parallel_tool_calls is False
    assert req.extras == {"stream_options": {"include_usage": True}, "seed": 7}


def test_parse_request_max_tokens_fallback_and_stream_override() -> None:
    req = chat.parse_request(
        body(max_tokens=64, stop=["a", "b"], stream=True), stream=False, model="override"
    )
    assert req.max_tokens == 64 and req.stop == ["a", "b"]
    assert req.stream is False and req.model == "override"


def test_parse_request_tools_and_choices() -> None:
    tools = [
        {
            "type": "function",
            "function": {
                "name": "read",
                "description": "d",
                "parameters": {"type": "object"},
                "strict": False,
            },
        },
        {
            "type": "custom",
            "custom": {
                "name": "apply_patch",
                "format": {"type": "grammar", "grammar": {"definition": "start: x", "syntax": "lark"}},
            },
        },
    ]
    req = chat.parse_request(
        body(tools=tools, tool_choice={"type": "function", "function": {"name": "read"}})
    )
    assert req.tools == [
        Tool("read", "d", {"type": "object"}, strict=False),
        Tool(
            "apply_patch",
            kind="custom",
            custom_format={"type": "grammar", "syntax": "lark", "definition": "start: x"},
        ),
    ]
    assert req.tool_choice == ToolChoice("tool", "read")
    custom = chat.parse_request(
        body(tools=tools, tool_choice={"type": "custom", "custom": {"name": "apply_patch"}})
    )
    assert custom.tool_choice == ToolChoice("tool", "apply_patch")
    for mode in ("none", "auto", "required"):
        assert chat.parse_request(body(tools=tools, tool_choice=mode)).tool_choice == ToolChoice(mode)  # type: ignore[arg-type]


def test_parse_request_allowed_tools_keeps_only_the_allowed_ones() -> None:
    tools = [{"type": "function", "function": {"name": n}} for n in ("a", "b", "c")]
    choice = {
        "type": "allowed_tools",
        "allowed_tools": {"mode": "required", "tools": [{"type": "function", "function": {"name": "b"}}]},
    }
    req = chat.parse_request(body(tools=tools, tool_choice=choice))
    assert req.tool_choice == ToolChoice("required")
    assert [t.name for t in req.tools] == ["b"]


def test_parse_request_legacy_functions() -> None:
    req = chat.parse_request(
        body(
            functions=[{"name": "f", "parameters": {"type": "object"}}],
            function_call={"name": "f"},
            messages=[
                {"role": "user", "content": "go"},
                {"role": "assistant", "content": None, "function_call": {"name": "f", "arguments": "{}"}},
                {"role": "function", "name": "f", "content": "ok"},
            ],
        )
    )
    assert req.tools == [Tool("f", parameters={"type": "object"})]
    assert req.tool_choice == ToolChoice("tool", "f")
    call = req.messages[1].parts[0]
    result = req.messages[2].parts[0]
    assert isinstance(call, ToolCall) and isinstance(result, ToolResult)
    assert call.id.startswith("call_") and result.call_id == call.id and result.name == "f"


def test_parse_request_reads_replayed_signatures() -> None:
    calls = [
        {
            "id": "g1",
            "type": "function",
            "function": {"name": "a", "arguments": "{}"},
            "extra_content": {"google": {"thought_signature": "GSIG"}},
        },
        {
            "id": "g2",
            "type": "function",
            "function": {"name": "b", "arguments": "{}"},
            "extra_content": {"google": {"thought_signature": "anthropic#crx#ASIG"}},
        },
        {"id": "g3", "type": "custom", "custom": {"name": "apply_patch", "input": "*** Begin"}},
    ]
    req = chat.parse_request(
        body(messages=[{"role": "user", "content": "x"}, {"role": "assistant", "tool_calls": calls}])
    )
    assert req.messages[1].parts == [
        Reasoning(signature="GSIG", origin="gemini"),
        ToolCall("g1", "a", "{}"),
        Reasoning(signature="ASIG", origin="anthropic"),
        ToolCall("g2", "b", "{}"),
        ToolCall("g3", "apply_patch", "*** Begin", kind="custom"),
    ]


def test_parse_request_invents_missing_tool_call_ids_and_dumps_object_arguments() -> None:
    req = chat.parse_request(
        body(
            messages=[
                {"role": "assistant", "tool_calls": [{"function": {"name": "f", "arguments": {"a": 1}}}]}
            ]
        )
    )
    call = req.messages[0].parts[0]
    assert isinstance(call, ToolCall)
    assert call.id.startswith("call_") and orjson.loads(call.arguments) == {"a": 1}


@pytest.mark.parametrize(
    ("bad", "param"),
    [
        ({"model": "", "messages": [{"role": "user", "content": "x"}]}, "model"),
        ({"messages": [{"role": "user", "content": "x"}]}, "model"),
        ({"model": "m"}, "messages"),
        ({"model": "m", "messages": []}, "messages"),
        ({"model": "m", "messages": "hi"}, "messages"),
        (body(messages=["hi"]), "messages[0]"),
        (body(messages=[{"role": "robot", "content": "x"}]), "messages[0].role"),
        (body(messages=[{"role": "user", "content": 5}]), "messages[0].content"),
        (
            body(messages=[{"role": "user", "content": [{"type": "text", "text": None}]}]),
            "messages[0].content[0].text",
        ),
        (
            body(
                messages=[
                    {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "file:///etc"}}]}
                ]
            ),
            "messages[0].content[0].image_url.url",
        ),
        (body(messages=[{"role": "tool", "content": "x"}]), "messages[0].tool_call_id"),
        (
            body(messages=[{"role": "assistant", "tool_calls": [{"id": "c"}]}]),
            "messages[0].tool_calls[0].function",
        ),
        (body(messages=[{"role": "assistant", "tool_calls": {"id": "c"}}]), "messages[0].tool_calls"),
        (body(messages=[{"role": "assistant", "reasoning_content": 3}]), "messages[0].reasoning_content"),
        (body(tools={"a": 1}), "tools"),
        (body(tools=[{"type": "function", "function": {"name": 3}}]), "tools[0].function.name"),
        (body(tools=[{"type": "web_search"}]), "tools[0].type"),
        (body(tool_choice="sometimes"), "tool_choice"),
        (body(tool_choice={"type": "function", "function": {}}), "tool_choice.function.name"),
        (body(max_tokens=-1), "max_tokens"),
        (body(max_completion_tokens="10"), "max_completion_tokens"),
        (body(temperature="hot"), "temperature"),
        (body(temperature=True), "temperature"),
        (body(stop=[1]), "stop"),
        (body(reasoning_effort="extreme"), "reasoning_effort"),
        (body(response_format={"type": "yaml"}), "response_format.type"),
        (body(response_format={"type": "json_schema"}), "response_format.json_schema"),
        (body(stream="yes"), "stream"),
        (body(user=5), "user"),
        (body(parallel_tool_calls="true"), "parallel_tool_calls"),
    ],
)
def test_parse_request_rejects_bad_input_with_400(bad: dict[str, Any], param: str) -> None:
    with pytest.raises(GatewayError) as caught:
        chat.parse_request(bad)
    assert caught.value.status == 400 and caught.value.kind == "invalid_request"
    assert caught.value.param == param


def test_parse_request_rejects_a_non_object_body() -> None:
    with pytest.raises(GatewayError) as caught:
        chat.parse_request(["not", "an", "object"])
    assert caught.value.status == 400


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from(["type", "text", "name", "id", "function", "url"]), inner, max_size=3
        )
    ),
    max_leaves=6,
)

_RICH_BODY = body(
    messages=[
        {"role": "system", "content": "s"},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "t"},
                {"type": "image_url", "image_url": {"url": "https://i"}},
            ],
        },
        {
            "role": "assistant",
            "content": "a",
            "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
        },
        {"role": "tool", "tool_call_id": "c", "content": "r"},
    ],
    tools=[{"type": "function", "function": {"name": "f", "parameters": {}}}],
    tool_choice="auto",
    response_format={"type": "json_schema", "json_schema": {"name": "n", "schema": {}}},
)


def _json_paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _json_paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _json_paths(item, (*prefix, index))


_PATHS = [p for p in _json_paths(_RICH_BODY) if p]


@FAST
@given(st.sampled_from(_PATHS), json_values)
def test_parse_request_never_leaks_anything_but_a_400(path: tuple[Any, ...], junk: Any) -> None:
    mutated = copy.deepcopy(_RICH_BODY)
    target = mutated
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = junk
    try:
        chat.parse_request(mutated)
    except GatewayError as err:
        assert err.status == 400 and err.message


_TOP_LEVEL_KEYS = [
    "model", "messages", "tools", "functions", "tool_choice", "function_call", "parallel_tool_calls",
    "max_tokens", "max_completion_tokens", "temperature", "top_p", "top_k", "stop", "reasoning_effort",
    "response_format", "stream", "stream_options", "user",
]  # fmt: skip


@FAST
@given(st.dictionaries(st.sampled_from(_TOP_LEVEL_KEYS), json_values, max_size=6))
def test_parse_request_random_top_level_fields_give_a_request_or_a_400(fields: dict[str, Any]) -> None:
    try:
        req = chat.parse_request({**_RICH_BODY, **fields})
    except GatewayError as err:
        assert err.status == 400
    else:
        chat.render_request(req, "m")  # whatever parsed also renders


# ================================================================ render_request


def _ir_request(**fields: Any) -> Request:
    base = Request(model="client-model", source_format="anthropic")
    for key, value in fields.items():
        setattr(base, key, value)
    return base


def test_render_request_messages_for_a_foreign_client() -> None:
    req = _ir_request(
        system=[Text("one"), Text("two")],
        messages=[
            Message("user", [Text("hi"), Text("there")]),
            Message("system", [Text("mid")]),
            Message(
                "assistant",
                [
                    Reasoning("thinking", signature="ASIG", origin="anthropic"),
                    Text("let me look"),
                    Reasoning(signature="GSIG", origin="gemini"),
                    ToolCall("t1", "ls", '{"d":"."}'),
                    ToolCall("t2", "cat", "{}"),
                ],
            ),
            Message(
                "user",
                [
                    ToolResult("t1", [Text("a"), Image(data="QUJD", media_type="image/png")]),
                    ToolResult("t2", [Text("b")], is_error=True),
                    Text("and now?"),
                ],
            ),
        ],
    )
    out = chat.render_request(req, "up-model")
    assert out["model"] == "up-model" and out["stream"] is False and "stream_options" not in out
    assert out["messages"] == [
        {"role": "system", "content": "one\n\ntwo"},
        {"role": "user", "content": "hi\n\nthere"},
        {"role": "system", "content": "mid"},
        {
            "role": "assistant",
            "content": "let me look",
            "reasoning_content": "thinking",
            "tool_calls": [
                {
                    "id": "t1",
                    "type": "function",
                    "function": {"name": "ls", "arguments": '{"d":"."}'},
                    "extra_content": {"google": {"thought_signature": "GSIG"}},
                },
                {"id": "t2", "type": "function", "function": {"name": "cat", "arguments": "{}"}},
            ],
        },
        {"role": "tool", "tool_call_id": "t1", "content": "a"},
        {"role": "tool", "tool_call_id": "t2", "content": "b"},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Images returned by tool call t1:"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,QUJD"}},
            ],
        },
        {"role": "user", "content": "and now?"},
    ]


def test_render_request_tool_only_assistant_has_null_content_and_no_foreign_signature() -> None:
    req = _ir_request(
        messages=[
            Message("assistant", [Reasoning(signature="ASIG", origin="anthropic"), ToolCall("t", "f", "")])
        ]
    )
    message = chat.render_request(req, "m")["messages"][0]
    assert message == {
        "role": "assistant",
        "content": None,
        "tool_calls": [{"id": "t", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
    }


def test_render_request_images_in_user_content() -> None:
    req = _ir_request(messages=[Message("user", [Text("see"), Image(url="https://x/a.png", detail="high")])])
    assert chat.render_request(req, "m")["messages"][0]["content"] == [
        {"type": "text", "text": "see"},
        {"type": "image_url", "image_url": {"url": "https://x/a.png", "detail": "high"}},
    ]


def test_render_request_parameters() -> None:
    req = _ir_request(
        messages=[Message("user", [Text("x")])],
        tools=[Tool("f", "does f", None), Tool("g", parameters={"type": "object"}, strict=True)],
        tool_choice=ToolChoice("tool", "g"),
        parallel_tool_calls=False,
        max_tokens=50,
        temperature=0.2,
        top_p=0.9,
        top_k=40,
        stop=["X"],
        response_format=ResponseFormat("json_schema", schema={"type": "object"}),
        stream=True,
        user="u",
        extras={"seed": 1},
    )
    out = chat.render_request(req, "m")
    assert out["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "f",
                "description": "does f",
                "parameters": {"type": "object", "properties": {}},
            },
        },
        {"type": "function", "function": {"name": "g", "parameters": {"type": "object"}, "strict": True}},
    ]
    assert out["tool_choice"] == {"type": "function", "function": {"name": "g"}}
    assert out["parallel_tool_calls"] is False
    assert out["max_completion_tokens"] == 50 and out["temperature"] == 0.2 and out["top_p"] == 0.9
    assert out["stop"] == ["X"] and out["user"] == "u"
    assert out["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "response", "schema": {"type": "object"}},
    }
    assert out["stream"] is True and out["stream_options"] == {"include_usage": True}
    assert "top_k" not in out and "seed" not in out  # extras and top_k only on a same-format hop


def test_render_request_without_tools_sends_no_tool_fields() -> None:
    req = _ir_request(
        messages=[Message("user", [Text("x")])], tool_choice=ToolChoice("auto"), parallel_tool_calls=True
    )
    out = chat.render_request(req, "m")
    assert not {"tools", "tool_choice", "parallel_tool_calls"} & out.keys()


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        (ReasoningConfig(effort="high"), "high"),
        (ReasoningConfig(effort="none"), "none"),
        (ReasoningConfig(effort="auto"), None),
        (ReasoningConfig(budget=1024), "low"),
        (ReasoningConfig(budget=20000), "high"),
        (ReasoningConfig(budget=0), "none"),
        (ReasoningConfig(budget=-1), None),
        (ReasoningConfig(summary=True), None),
    ],
)
def test_render_request_reasoning_effort(config: ReasoningConfig, expected: str | None) -> None:
    out = chat.render_request(_ir_request(messages=[Message("user", [Text("x")])], reasoning=config), "m")
    assert out.get("reasoning_effort") == expected


def test_render_request_custom_tools_native_only_for_chat_clients() -> None:
    tool = Tool(
        "apply_patch",
        "patch",
        kind="custom",
        custom_format={"type": "grammar", "syntax": "lark", "definition": "s"},
    )
    call = ToolCall("c", "apply_patch", "*** Begin Patch", kind="custom")
    fields: dict[str, Any] = {
        "tools": [tool],
        "tool_choice": ToolChoice("tool", "apply_patch"),
        "messages": [Message("assistant", [call])],
    }
    native = chat.render_request(_ir_request(source_format="openai-chat", **fields), "m")
    assert native["tools"] == [
        {
            "type": "custom",
            "custom": {
                "name": "apply_patch",
                "description": "patch",
                "format": {"type": "grammar", "grammar": {"definition": "s", "syntax": "lark"}},
            },
        }
    ]
    assert native["tool_choice"] == {"type": "custom", "custom": {"name": "apply_patch"}}
    assert native["messages"][0]["tool_calls"] == [
        {"id": "c", "type": "custom", "custom": {"name": "apply_patch", "input": "*** Begin Patch"}}
    ]
    foreign = chat.render_request(_ir_request(source_format="openai-responses", **fields), "m")
    function = foreign["tools"][0]["function"]
    assert foreign["tools"][0]["type"] == "function" and function["parameters"]["required"] == ["input"]
    assert foreign["tool_choice"] == {"type": "function", "function": {"name": "apply_patch"}}
    wire_call = foreign["messages"][0]["tool_calls"][0]
    assert orjson.loads(wire_call["function"]["arguments"]) == {"input": "*** Begin Patch"}


def test_render_request_same_format_hop_keeps_extras() -> None:
    client = body(
        seed=3, n=1, top_k=20, stream=False, stream_options={"include_usage": True}, metadata={"a": "b"}
    )
    out = chat.render_request(chat.parse_request(client), "m")
    assert out["seed"] == 3 and out["metadata"] == {"a": "b"} and out["top_k"] == 20
    assert "stream_options" not in out  # not allowed on a non-streamed call
    streamed = chat.parse_request(
        {**client, "stream": True, "stream_options": {"include_obfuscation": False}}
    )
    assert chat.render_request(streamed, "m")["stream_options"] == {
        "include_obfuscation": False,
        "include_usage": True,
    }


def test_render_request_body_validates_as_sdk_params() -> None:
    from openai.types.chat.completion_create_params import CompletionCreateParamsStreaming

    out = chat.render_request(chat.parse_request({**_RICH_BODY, "stream": True, "max_tokens": 9}), "m")
    TypeAdapter(CompletionCreateParamsStreaming).validate_python(out)


def _comparable(req: Request) -> tuple[Any, ...]:
    return (
        req.system,
        req.messages,
        req.tools,
        req.tool_choice,
        req.max_tokens,
        req.stop,
        req.reasoning,
        req.response_format,
        req.stream,
        req.temperature,
        req.top_p,
        req.user,
        req.parallel_tool_calls,
    )


def test_chat_request_round_trips_through_render_and_parse() -> None:
    client = body(
        messages=[
            {"role": "system", "content": "sys"},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "q"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA=="}},
                ],
            },
            {
                "role": "assistant",
                "content": "a",
                "reasoning_content": "r",
                "tool_calls": [
                    {
                        "id": "c1",
                        "type": "function",
                        "function": {"name": "f", "arguments": "{}"},
                        "extra_content": {"google": {"thought_signature": "S"}},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "c1", "content": "out"},
            {"role": "system", "content": "mid"},
        ],
        tools=[{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
        tool_choice="required",
        parallel_tool_calls=True,
        max_completion_tokens=10,
        stop=["s"],
        reasoning_effort="low",
        response_format={"type": "json_object"},
        temperature=0.5,
        top_p=1,
        user="me",
        stream=True,
    )
    first = chat.parse_request(client)
    second = chat.parse_request(chat.render_request(first, "gpt-x"))
    assert _comparable(second) == _comparable(first)


# ================================================================ parse_response / render_response


def _completion(message: dict[str, Any], finish: str | None = "stop", **top: Any) -> dict[str, Any]:
    return {
        "id": "chatcmpl-9",
        "object": "chat.completion",
        "created": 5,
        "model": "up",
        "choices": [{"index": 0, "message": {"role": "assistant", **message}, "finish_reason": finish}],
        **top,
    }


def test_parse_response_reads_everything() -> None:
    resp = chat.parse_response(
        _completion(
            {
                "content": "hello",
                "reasoning_content": "hmm",
                "tool_calls": [
                    {
                        "id": "c1",
                        "type": "function",
                        "function": {"name": "f", "arguments": '{"x":1}'},
                        "extra_content": {"google": {"thought_signature": "G"}},
                    },
                    {"type": "function", "function": {"name": "g", "arguments": ""}},
                ],
            },
            finish="stop",
            usage={
                "prompt_tokens": 10,
                "completion_tokens": 5,
                "total_tokens": 15,
                "prompt_tokens_details": {"cached_tokens": 4},
                "completion_tokens_details": {"reasoning_tokens": 2},
            },
        )
    )
    assert resp.id == "chatcmpl-9" and resp.model == "up" and resp.created == 5
    assert resp.parts[:4] == [
        Reasoning("hmm"),
        Text("hello"),
        Reasoning(signature="G", origin="gemini"),
        ToolCall("c1", "f", '{"x":1}'),
    ]
    invented = resp.parts[4]
    assert isinstance(invented, ToolCall) and invented.id.startswith("call_") and invented.arguments == "{}"
    assert resp.stop_reason == "tool_use"  # tool calls win over "stop"
    assert resp.usage == Usage(input_tokens=10, output_tokens=5, cached_tokens=4, reasoning_tokens=2)


@pytest.mark.parametrize(
    ("finish", "stop"),
    [
        ("stop", "end_turn"),
        ("length", "max_tokens"),
        ("content_filter", "content_filter"),
        ("tool_calls", "tool_use"),
        (None, "end_turn"),
        ("weird", "end_turn"),
    ],
)
def test_parse_response_finish_reasons(finish: str | None, stop: str) -> None:
    assert chat.parse_response(_completion({"content": "x"}, finish=finish)).stop_reason == stop


def test_parse_response_custom_call_refusal_and_deepseek_cache() -> None:
    resp = chat.parse_response(
        _completion(
            {
                "content": None,
                "refusal": "no",
                "tool_calls": [{"id": "c", "type": "custom", "custom": {"name": "p", "input": "raw"}}],
            },
            usage={"prompt_tokens": 3, "completion_tokens": 1, "prompt_cache_hit_tokens": 2},
        )
    )
    assert resp.parts == [Text("no"), ToolCall("c", "p", "raw", kind="custom")]
    assert resp.usage is not None and resp.usage.cached_tokens == 2


def test_parse_response_error_body_and_malformed_bodies() -> None:
    with pytest.raises(GatewayError) as caught:
        chat.parse_response({"error": {"message": "slow down", "type": "rate_limit_error"}})
    assert caught.value.kind == "rate_limit" and caught.value.status == 429
    for bad in (
        [1],
        {"choices": "x"},
        {"id": "x"},
        _completion({"tool_calls": [{"id": "c", "function": {}}]}),
    ):
        with pytest.raises(GatewayError) as caught:
            chat.parse_response(bad)
        assert caught.value.status == 502


def test_render_response_validates_with_the_sdk() -> None:
    resp = Response(
        id="upstream-1",
        model="up-model",
        parts=[
            Reasoning("plan", signature="ASIG", origin="anthropic"),
            Text("Here."),
            Reasoning(signature="GSIG", origin="gemini"),
            ToolCall("c1", "read", '{"p":"a"}'),
            ToolCall("c2", "apply_patch", "*** Begin", kind="custom"),
        ],
        stop_reason="end_turn",
        usage=Usage(
            input_tokens=100, output_tokens=20, cached_tokens=60, cache_write_tokens=5, reasoning_tokens=7
        ),
        created=123,
    )
    out = chat.render_response(resp, chat.parse_request(body()))
    parsed = ChatCompletion.model_validate(out)
    assert parsed.id == "chatcmpl-upstream-1" and parsed.model == "up-model" and parsed.created == 123
    choice = parsed.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content == "Here."
    assert out["choices"][0]["message"]["reasoning_content"] == "plan"
    calls = choice.message.tool_calls or []
    assert [c.type for c in calls] == ["function", "custom"]
    assert calls[0].id == "c1" and calls[0].function.name == "read"  # type: ignore[union-attr]
    assert calls[1].custom.input == "*** Begin"  # type: ignore[union-attr]
    wire_calls = out["choices"][0]["message"]["tool_calls"]
    assert wire_calls[0]["extra_content"] == {"google": {"thought_signature": "GSIG"}}
    assert "extra_content" not in wire_calls[1]
    assert "ASIG" not in orjson.dumps(out).decode()
    assert parsed.usage is not None
    assert (parsed.usage.prompt_tokens, parsed.usage.completion_tokens, parsed.usage.total_tokens) == (
        100,
        20,
        120,
    )
    assert parsed.usage.prompt_tokens_details and parsed.usage.prompt_tokens_details.cached_tokens == 60
    assert (
        parsed.usage.completion_tokens_details
        and parsed.usage.completion_tokens_details.reasoning_tokens == 7
    )


@pytest.mark.parametrize(
    ("stop", "finish"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("content_filter", "content_filter"),
        ("error", "stop"),
    ],
)
def test_render_response_finish_reasons(stop: ir.StopReason, finish: str) -> None:
    out = chat.render_response(
        Response(id="chatcmpl-x", model="m", parts=[Text("t")], stop_reason=stop), Request(model="m")
    )
    assert out["id"] == "chatcmpl-x" and out["choices"][0]["finish_reason"] == finish
    assert "usage" not in out
    ChatCompletion.model_validate(out)


def test_render_response_empty_answer_has_empty_string_content() -> None:
    out = chat.render_response(Response(id="", model="", parts=[]), Request(model="asked"))
    assert out["choices"][0]["message"]["content"] == "" and out["model"] == "asked"
    assert out["id"].startswith("chatcmpl-")
    ChatCompletion.model_validate(out)


safe_text = st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=20)
tool_calls_st = st.builds(
    ToolCall,
    id=st.from_regex(r"call_[a-z0-9]{1,8}", fullmatch=True),
    name=st.from_regex(r"[a-z_]{1,10}", fullmatch=True),
    arguments=st.sampled_from(['{"a":1}', "{}", '{"s":"x y"}']),
)
usage_st = st.builds(
    Usage,
    input_tokens=st.integers(0, 10**6),
    output_tokens=st.integers(0, 10**6),
    cached_tokens=st.integers(0, 1000),
    cache_write_tokens=st.integers(0, 1000),
    reasoning_tokens=st.integers(0, 1000),
)


@FAST
@given(
    reasoning=st.none() | safe_text,
    text=st.none() | safe_text,
    calls=st.lists(tool_calls_st, max_size=3, unique_by=lambda c: c.id),
    stop=st.sampled_from(["end_turn", "max_tokens", "content_filter"]),
    usage=st.none() | usage_st,
)
def test_response_round_trips_through_render_and_parse(
    reasoning: str | None, text: str | None, calls: list[ToolCall], stop: ir.StopReason, usage: Usage | None
) -> None:
    parts: list[ir.Part] = []
    if reasoning:
        parts.append(Reasoning(reasoning))
    if text:
        parts.append(Text(text))
    parts.extend(calls)
    resp = Response(id="chatcmpl-r", model="m", parts=parts, stop_reason=stop, usage=usage, created=9)
    wire = chat.render_response(resp, Request(model="m"))
    ChatCompletion.model_validate(wire)
    back = chat.parse_response(wire)
    assert back.parts == parts
    assert back.stop_reason == ("tool_use" if calls else stop)
    assert back.usage == usage and back.id == resp.id and back.created == 9


# ================================================================ StreamDecoder

_UPSTREAM_STREAM = sse(
    chunk({"role": "assistant", "content": ""}),
    chunk({"reasoning_content": "think"}),
    chunk({"content": "Hel"}),
    chunk({"content": "lo é"}),
    chunk(
        {
            "tool_calls": [
                {"index": 0, "id": "c0", "type": "function", "function": {"name": "a", "arguments": ""}}
            ]
        }
    ),
    chunk(
        {
            "tool_calls": [
                {"index": 1, "id": "c1", "type": "function", "function": {"name": "b", "arguments": '{"y"'}}
            ]
        }
    ),
    chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"x":'}}]}),
    chunk({"tool_calls": [{"index": 0, "function": {"arguments": "1}"}}]}),
    chunk({"tool_calls": [{"index": 1, "function": {"arguments": ":2}"}}]}),
    chunk({}, finish="tool_calls"),
    chunk(
        usage={
            "prompt_tokens": 7,
            "completion_tokens": 3,
            "total_tokens": 10,
            "prompt_tokens_details": {"cached_tokens": 2},
            "completion_tokens_details": {"reasoning_tokens": 1},
        }
    ),
    "[DONE]",
)

_EXPECTED_EVENTS: list[ir.Event] = [
    StreamStart("chatcmpl-1", "up"),
    ReasoningDelta(text="think"),
    TextDelta("Hel"),
    TextDelta("lo é"),
    ToolCallStart(0, "c0", "a"),
    ToolCallStart(1, "c1", "b"),
    ToolCallDelta(1, '{"y"'),
    ToolCallDelta(0, '{"x":'),
    ToolCallDelta(0, "1}"),
    ToolCallDelta(1, ":2}"),
    Finish("tool_use", Usage(input_tokens=7, output_tokens=3, cached_tokens=2, reasoning_tokens=1)),
]


def test_stream_decoder_decodes_a_full_stream() -> None:
    assert decode_all(_UPSTREAM_STREAM) == _EXPECTED_EVENTS
    resp = collected(_EXPECTED_EVENTS)
    assert resp.text() == "Hello é"
    assert [(c.name, c.arguments) for c in resp.tool_calls()] == [("a", '{"x":1}'), ("b", '{"y":2}')]


@FAST
@given(st.lists(st.integers(0, len(_UPSTREAM_STREAM)), max_size=12))
def test_stream_decoder_is_independent_of_chunking(cuts: list[int]) -> None:
    assert decode_all(_UPSTREAM_STREAM, cuts) == _EXPECTED_EVENTS


def test_stream_decoder_holds_finish_until_usage() -> None:
    decoder = chat.StreamDecoder()
    events = decoder.feed(sse(chunk({"content": "x"}), chunk({}, finish="stop")))
    assert not any(isinstance(e, Finish) for e in events)
    events = decoder.feed(sse(chunk(usage={"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3})))
    assert events == [Finish("end_turn", Usage(input_tokens=1, output_tokens=2))]
    assert decoder.feed(sse("[DONE]")) == [] and decoder.close() == []


def test_stream_decoder_finish_with_usage_in_the_same_chunk_and_crlf() -> None:
    data = sse(
        chunk({"content": "x"}, finish="length", usage={"prompt_tokens": 1, "completion_tokens": 1})
    ).replace(b"\n", b"\r\n")
    events = decode_all(data)
    assert events[-1] == Finish("max_tokens", Usage(input_tokens=1, output_tokens=1))


def test_stream_decoder_finish_without_usage_ends_at_close() -> None:
    events = decode_all(sse(chunk({"content": "x"}), chunk({}, finish="stop")))
    assert events[-1] == Finish("end_turn", None)


def test_stream_decoder_done_without_finish_reason_is_a_normal_stop() -> None:
    assert decode_all(sse(chunk({"content": "x"}), "[DONE]"))[-1] == Finish("end_turn", None)


def test_stream_decoder_eof_without_finish_is_an_error() -> None:
    events = decode_all(sse(chunk({"content": "partial"})))
    assert isinstance(events[-1], StreamError)
    assert events[-1].error.status == 502 and "ended before it finished" in events[-1].error.message
    assert isinstance(chat.StreamDecoder().close()[0], StreamError)


def test_stream_decoder_in_stream_error_object() -> None:
    events = decode_all(
        sse(
            chunk({"content": "x"}),
            {"error": {"message": "overloaded now", "type": "server_error", "code": None}},
            chunk({"content": "ignored"}),
        )
    )
    assert events[:2] == [StreamStart("chatcmpl-1", "up"), TextDelta("x")]
    assert len(events) == 3 and isinstance(events[2], StreamError)
    assert events[2].error.message == "overloaded now" and events[2].error.kind == "server"
    rate = decode_all(
        sse({"error": {"message": "slow", "type": "rate_limit_error", "code": "rate_limit_exceeded"}})
    )
    assert (
        isinstance(rate[0], StreamError)
        and rate[0].error.status == 429
        and rate[0].error.code == "rate_limit_exceeded"
    )


def test_stream_decoder_rejects_non_json_chunks() -> None:
    events = decode_all(b"data: {not json\n\n")
    assert len(events) == 1 and isinstance(events[0], StreamError) and events[0].error.status == 502


def test_stream_decoder_invents_missing_ids_and_separates_reused_indexes() -> None:
    events = decode_all(
        sse(
            {
                "choices": [
                    {
                        "index": 0,
                        "delta": {"tool_calls": [{"index": 0, "function": {"name": "a", "arguments": "{}"}}]},
                    }
                ]
            },
            chunk({"tool_calls": [{"index": 0, "id": "x1", "function": {"name": "b", "arguments": "{}"}}]}),
            chunk({"tool_calls": [{"index": 0, "id": "x2", "function": {"name": "c", "arguments": "{}"}}]}),
            chunk({}, finish="stop"),
        )
    )
    start = events[0]
    assert isinstance(start, StreamStart) and start.id.startswith("chatcmpl-") and start.model == ""
    starts = [e for e in events if isinstance(e, ToolCallStart)]
    assert [(s.index, s.name) for s in starts] == [(0, "a"), (1, "b"), (2, "c")]
    assert starts[0].id.startswith("call_") and [s.id for s in starts[1:]] == ["x1", "x2"]
    assert events[-1] == Finish("tool_use", None)


def test_stream_decoder_buffers_arguments_until_the_name_arrives() -> None:
    events = decode_all(
        sse(
            chunk({"tool_calls": [{"index": 3, "id": "k", "function": {"arguments": '{"a"'}}]}),
            chunk({"tool_calls": [{"index": 3, "function": {"name": "late", "arguments": ":1}"}}]}),
            chunk({}, finish="tool_calls"),
        )
    )
    assert events[1:3] == [ToolCallStart(0, "k", "late"), ToolCallDelta(0, '{"a":1}')]


def test_stream_decoder_gemini_signature_and_reasoning_field() -> None:
    events = decode_all(
        sse(
            chunk({"reasoning": "r"}),
            chunk(
                {
                    "tool_calls": [
                        {
                            "index": 0,
                            "id": "g",
                            "function": {"name": "f", "arguments": "{}"},
                            "extra_content": {"google": {"thought_signature": "SIG"}},
                        }
                    ]
                }
            ),
            chunk({}, finish="stop"),
        )
    )
    assert events[1:5] == [
        ReasoningDelta(text="r"),
        ReasoningDelta(signature="SIG", origin="gemini"),
        ToolCallStart(0, "g", "f"),
        ToolCallDelta(0, "{}"),
    ]
    assert collected(events).parts[0] == Reasoning(text="r", signature="SIG", origin="gemini")


def test_stream_decoder_custom_tool_call_fragments() -> None:
    events = decode_all(
        sse(
            chunk(
                {
                    "tool_calls": [
                        {
                            "index": 0,
                            "id": "p",
                            "type": "custom",
                            "custom": {"name": "apply_patch", "input": ""},
                        }
                    ]
                }
            ),
            chunk({"tool_calls": [{"index": 0, "custom": {"input": "*** Begin"}}]}),
            chunk({}, finish="tool_calls"),
        )
    )
    assert events[1:3] == [ToolCallStart(0, "p", "apply_patch", "custom"), ToolCallDelta(0, "*** Begin")]


def test_stream_collected_equals_parse_response() -> None:
    resp = collected(decode_all(_UPSTREAM_STREAM))
    body_resp = chat.parse_response(
        _completion(
            {
                "content": "Hello é",
                "reasoning_content": "think",
                "tool_calls": [
                    {"id": "c0", "type": "function", "function": {"name": "a", "arguments": '{"x":1}'}},
                    {"id": "c1", "type": "function", "function": {"name": "b", "arguments": '{"y":2}'}},
                ],
            },
            finish="tool_calls",
            usage={
                "prompt_tokens": 7,
                "completion_tokens": 3,
                "prompt_tokens_details": {"cached_tokens": 2},
                "completion_tokens_details": {"reasoning_tokens": 1},
            },
        )
    )
    assert (resp.parts, resp.stop_reason, resp.usage) == (
        body_resp.parts,
        body_resp.stop_reason,
        body_resp.usage,
    )


chunk_values = st.fixed_dictionaries(
    {},
    optional={
        "id": json_values,
        "model": json_values,
        "usage": json_values,
        "error": json_values,
        "choices": st.lists(
            st.fixed_dictionaries(
                {},
                optional={
                    "index": st.sampled_from([0, 1, None, "0"]),
                    "finish_reason": json_values,
                    "delta": st.fixed_dictionaries(
                        {},
                        optional={
                            "content": json_values,
                            "reasoning_content": json_values,
                            "tool_calls": st.lists(
                                st.fixed_dictionaries(
                                    {},
                                    optional={
                                        "index": json_values,
                                        "id": json_values,
                                        "type": json_values,
                                        "function": json_values,
                                        "custom": json_values,
                                        "extra_content": json_values,
                                    },
                                ),
                                max_size=2,
                            ),
                        },
                    ),
                },
            )
            | json_values,
            max_size=2,
        ),
    },
)


@FAST
@given(st.lists(chunk_values | json_values, max_size=5), st.booleans())
def test_stream_decoder_survives_arbitrary_chunks(chunks: list[Any], done: bool) -> None:
    events = decode_all(sse(*chunks, *(["[DONE]"] if done else [])))
    assert isinstance(events[-1], Finish | StreamError)
    assert sum(isinstance(e, Finish | StreamError) for e in events) == 1
    if not isinstance(events[0], StreamError):
        assert isinstance(events[0], StreamStart)


@FAST
@given(chunk_values | json_values)
def test_parse_response_survives_arbitrary_bodies(value: Any) -> None:
    try:
        chat.parse_response(value)
    except GatewayError as err:
        assert err.status >= 400


# ================================================================ StreamEncoder


def _client_req(include_usage: bool = True) -> Request:
    extras = {"stream_options": {"include_usage": True}} if include_usage else {}
    return chat.parse_request(body(stream=True, **extras))


_EVENTS: list[ir.Event] = [
    StreamStart("up-7", "model-x", usage=Usage(input_tokens=9)),
    ReasoningDelta(text="let me think"),
    ReasoningDelta(signature="ASIG", origin="anthropic"),
    TextDelta("Hi "),
    TextDelta("there"),
    ReasoningDelta(signature="GSIG", origin="gemini"),
    ToolCallStart(0, "c0", "read"),
    ToolCallDelta(0, '{"p":'),
    ToolCallDelta(0, '"a"}'),
    ToolCallStart(1, "c1", "apply_patch", "custom"),
    ToolCallDelta(1, "*** Begin"),
    Finish("end_turn", Usage(input_tokens=9, output_tokens=4, cached_tokens=1, reasoning_tokens=2)),
]


def test_stream_encoder_chunks_validate_and_end_with_done() -> None:
    stream = encode_all(_client_req(), _EVENTS)
    lines = data_lines(stream)
    assert lines[-1] == "[DONE]"
    raw = [orjson.loads(line) for line in lines[:-1]]
    # The SDK's chunk type knows only function calls; custom ones stream as
    # {type:"custom", custom:{name, input}} (the shape reported for OpenAI).
    custom = [r for r in raw if r["choices"] and "custom" in str(r["choices"][0]["delta"].get("tool_calls"))]
    assert [r["choices"][0]["delta"]["tool_calls"] for r in custom] == [
        [{"index": 1, "id": "c1", "type": "custom", "custom": {"name": "apply_patch", "input": ""}}],
        [{"index": 1, "custom": {"input": "*** Begin"}}],
    ]
    chunks = [ChatCompletionChunk.model_validate(r) for r in raw if r not in custom]
    assert {c.id for c in chunks} == {"chatcmpl-up-7"} and {c.model for c in chunks} == {"model-x"}
    assert len({c.created for c in chunks}) == 1
    assert chunks[0].choices[0].delta.role == "assistant" and chunks[0].choices[0].delta.content == ""
    assert raw[1]["choices"][0]["delta"] == {"reasoning_content": "let me think"}
    first_call = next(r for r in raw if r["choices"] and r["choices"][0]["delta"].get("tool_calls"))
    assert first_call["choices"][0]["delta"]["tool_calls"] == [
        {
            "index": 0,
            "id": "c0",
            "type": "function",
            "function": {"name": "read", "arguments": ""},
            "extra_content": {"google": {"thought_signature": "GSIG"}},
        }
    ]
    assert "ASIG" not in stream.decode()
    assert chunks[-2].choices[0].finish_reason == "tool_calls"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None and chunks[-1].usage.total_tokens == 13


def test_stream_encoder_without_include_usage_sends_no_usage_chunk() -> None:
    lines = data_lines(encode_all(_client_req(include_usage=False), _EVENTS))
    assert all(orjson.loads(line)["choices"] for line in lines[:-1])


def test_stream_encoder_output_decodes_back_to_the_same_response() -> None:
    decoded = collected(decode_all(encode_all(_client_req(), _EVENTS)))
    original = collected(_EVENTS)
    assert decoded.parts == [
        Reasoning("let me think"),  # the anthropic signature has no place in Chat
        Text("Hi there"),
        Reasoning(signature="GSIG", origin="gemini"),
        *original.tool_calls(),
    ]
    assert (
        decoded.id == "chatcmpl-up-7"
        and decoded.stop_reason == "tool_use"
        and decoded.usage == original.usage
    )


def test_stream_encoder_drops_a_gemini_signature_not_followed_by_a_call() -> None:
    events: list[ir.Event] = [
        StreamStart("s", "m"),
        ReasoningDelta(signature="G", origin="gemini"),
        TextDelta("x"),
        ToolCallStart(0, "c", "f"),
        Finish("tool_use"),
    ]
    assert "extra_content" not in encode_all(_client_req(), events).decode()


def test_stream_encoder_error_event_then_done() -> None:
    encoder = chat.StreamEncoder(_client_req())
    out = encoder.encode(StreamStart("a", "m")) + encoder.encode(TextDelta("x"))
    out += encoder.encode(StreamError(GatewayError(503, "upstream down", kind="unavailable")))
    lines = data_lines(out)
    assert orjson.loads(lines[-2]) == {
        "error": {
            "message": "upstream down",
            "type": "service_unavailable_error",
            "param": None,
            "code": None,
        }
    }
    assert lines[-1] == "[DONE]"
    assert encoder.encode(TextDelta("late")) == b"" and encoder.close() == b""


def test_stream_encoder_close_without_finish_is_an_error_not_a_clean_stop() -> None:
    encoder = chat.StreamEncoder(_client_req())
    encoder.encode(StreamStart("a", "m"))
    lines = data_lines(encoder.close())
    assert "ended before it finished" in orjson.loads(lines[0])["error"]["message"]
    assert lines[-1] == "[DONE]" and "finish_reason" not in lines[0]


def test_stream_encoder_starts_lazily_and_close_after_finish_is_empty() -> None:
    encoder = chat.StreamEncoder(_client_req(include_usage=False))
    out = encoder.encode(TextDelta("x")) + encoder.encode(Finish("max_tokens"))
    lines = data_lines(out)
    first = orjson.loads(lines[0])
    assert first["id"].startswith("chatcmpl-") and first["model"] == "gpt-x"
    assert orjson.loads(lines[-2])["choices"][0]["finish_reason"] == "length"
    assert encoder.close() == b""


@st.composite
def event_streams(draw: st.DrawFn) -> list[ir.Event]:
    events: list[ir.Event] = [StreamStart("chatcmpl-h", "m")]
    ordinal = 0
    for kind in draw(st.lists(st.sampled_from(["text", "reasoning", "call"]), max_size=6)):
        if kind == "text":
            events.append(TextDelta(draw(safe_text)))
        elif kind == "reasoning":
            events.append(ReasoningDelta(text=draw(safe_text)))
        else:
            custom = draw(st.booleans())
            events.append(
                ToolCallStart(ordinal, f"call_{ordinal}", "tool", "custom" if custom else "function")
            )
            for piece in draw(st.lists(safe_text, max_size=3)):
                events.append(ToolCallDelta(ordinal, piece))
            ordinal += 1
    events.append(
        Finish(
            draw(st.sampled_from(["end_turn", "max_tokens", "content_filter"])), draw(st.none() | usage_st)
        )
    )
    return events


@FAST
@given(event_streams(), st.lists(st.integers(0, 4000), max_size=8))
def test_stream_encoder_then_decoder_round_trips(events: list[ir.Event], cuts: list[int]) -> None:
    stream = encode_all(_client_req(), events)
    decoded = decode_all(stream, [c for c in cuts if c <= len(stream)])
    original, back = collected(events), collected(decoded)
    assert back.parts == original.parts
    assert back.usage == original.usage and back.id == original.id
    assert back.stop_reason == ("tool_use" if original.tool_calls() else original.stop_reason)


def test_sdk_stream_accumulates_text_and_tool_calls() -> None:
    client = serve(200, encode_all(_client_req(), _EVENTS), "text/event-stream")
    text, usage = "", None
    names: dict[int, str] = {}
    arguments: dict[int, str] = {}
    for event in client.chat.completions.create(
        model="gpt-x", messages=[{"role": "user", "content": "hi"}], stream=True
    ):
        usage = event.usage or usage
        for choice in event.choices:
            text += choice.delta.content or ""
            for call in choice.delta.tool_calls or []:
                if call.function and call.function.name:
                    names[call.index] = call.function.name
                if call.function and call.function.arguments:
                    arguments[call.index] = arguments.get(call.index, "") + call.function.arguments
    assert text == "Hi there"
    assert names == {0: "read"} and arguments == {0: '{"p":"a"}'}
    assert usage is not None and usage.prompt_tokens == 9


def test_sdk_stream_helper_builds_the_final_completion() -> None:
    events: list[ir.Event] = [
        StreamStart("s", "m"),
        TextDelta("ok"),
        ToolCallStart(0, "c", "f"),
        ToolCallDelta(0, '{"a":1}'),
        Finish("tool_use"),
    ]
    client = serve(200, encode_all(_client_req(), events), "text/event-stream")
    with client.chat.completions.stream(model="m", messages=[{"role": "user", "content": "x"}]) as stream:
        for _ in stream:
            pass
        final = stream.get_final_completion()
    message = final.choices[0].message
    assert message.content == "ok" and final.choices[0].finish_reason == "tool_calls"
    assert message.tool_calls and message.tool_calls[0].function.arguments == '{"a":1}'  # type: ignore[union-attr]


def test_sdk_raises_on_an_in_stream_error() -> None:
    events: list[ir.Event] = [
        StreamStart("s", "m"),
        TextDelta("part"),
        StreamError(GatewayError(500, "boom")),
    ]
    client = serve(200, encode_all(_client_req(), events), "text/event-stream")
    seen = ""
    with pytest.raises(openai.APIError, match="boom"):
        for event in client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "x"}], stream=True
        ):
            seen += "".join(c.delta.content or "" for c in event.choices)
    assert seen == "part"


# ================================================================ errors


@pytest.mark.parametrize(
    ("err", "sdk_error", "wire_type", "wire_code"),
    [
        (GatewayError(400, "bad", param="messages"), openai.BadRequestError, "invalid_request_error", None),
        (GatewayError(401, "who"), openai.AuthenticationError, "authentication_error", None),
        (GatewayError(403, "no"), openai.PermissionDeniedError, "permission_error", None),
        (
            GatewayError(404, "gone", code="model_not_found"),
            openai.NotFoundError,
            "not_found_error",
            "model_not_found",
        ),
        (
            GatewayError(429, "slow", retry_after=3),
            openai.RateLimitError,
            "rate_limit_error",
            "rate_limit_exceeded",
        ),
        (
            GatewayError(429, "pay", kind="billing"),
            openai.RateLimitError,
            "insufficient_quota",
            "insufficient_quota",
        ),
        (GatewayError(500, "oops"), openai.InternalServerError, "server_error", None),
        (GatewayError(529, "busy"), openai.InternalServerError, "overloaded_error", None),
    ],
)
def test_render_error_is_what_the_sdk_parses(
    err: GatewayError, sdk_error: type[openai.APIStatusError], wire_type: str, wire_code: str | None
) -> None:
    wire = chat.render_error(err)
    assert wire == {
        "error": {"message": err.message, "type": wire_type, "param": err.param, "code": wire_code}
    }
    client = serve(err.status, orjson.dumps(wire), "application/json")
    with pytest.raises(sdk_error) as caught:
        client.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
    assert caught.value.status_code == err.status
    assert (
        caught.value.code == wire_code and caught.value.type == wire_type and caught.value.param == err.param
    )
    assert err.message in caught.value.message
    back = chat.parse_error(err.status, orjson.dumps(wire))
    assert (back.status, back.kind, back.message, back.param) == (
        err.status,
        err.kind,
        err.message,
        err.param,
    )


def test_parse_error_openai_shape_with_quota_and_retry_hint() -> None:
    quota = chat.parse_error(
        429,
        orjson.dumps(
            {
                "error": {
                    "message": "You exceeded your current quota",
                    "type": "insufficient_quota",
                    "param": None,
                    "code": "insufficient_quota",
                }
            }
        ),
    )
    assert (quota.kind, quota.code, quota.status) == ("billing", "insufficient_quota", 429)
    limited = chat.parse_error(
        429,
        orjson.dumps(
            {
                "error": {
                    "message": "Rate limit reached. Please try again in 6m0s.",
                    "type": "tokens",
                    "code": "rate_limit_exceeded",
                }
            }
        ),
    )
    assert limited.kind == "rate_limit" and limited.retry_after == 360.0
    short = chat.parse_error(429, b'{"error":{"message":"Please try again in 120ms.","type":"requests"}}')
    assert short.retry_after == pytest.approx(0.12)


def test_parse_error_tolerates_other_shapes() -> None:
    html = b"<html>" + b"x" * 5000 + b"</html>"
    err = chat.parse_error(502, html)
    assert (
        err.status == 502
        and err.kind == "server"
        and len(err.message) == 1000
        and err.message.startswith("<html>")
    )
    assert chat.parse_error(503, b"").message == "upstream returned HTTP 503"
    vllm = chat.parse_error(
        400, b'{"object":"error","message":"too long","type":"BadRequestError","param":null,"code":400}'
    )
    assert (vllm.kind, vllm.message, vllm.code) == ("invalid_request", "too long", None)
    google = chat.parse_error(
        429,
        orjson.dumps(
            [
                {
                    "error": {
                        "code": 429,
                        "message": "quota",
                        "status": "RESOURCE_EXHAUSTED",
                        "details": [
                            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "12s"}
                        ],
                    }
                }
            ]
        ),
    )
    assert (google.kind, google.message, google.retry_after) == ("rate_limit", "quota", 12.0)
    assert chat.parse_error(401, b'{"error":"bad key"}').message == "bad key"
    assert chat.parse_error(422, b'{"detail":"field missing"}').message == "field missing"
    odd = chat.parse_error(500, b'{"something":"else"}')
    assert odd.message == '{"something":"else"}' and odd.kind == "server"

"""Anthropic Messages format: both directions, streams, errors; checked against the official SDK."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import anthropic
import httpx2
import orjson
import pytest
from anthropic.types import Message
from anthropic.types.shared.error_response import ErrorResponse
from hypothesis import given, settings
from hypothesis import strategies as st

from crossroute import ir
from crossroute.formats import anthropic as fmt
from crossroute.reasoning import BUDGET_BY_EFFORT
from crossroute.sse import SSEParser
from tests.chunking import split_at

# ====================================================================== helpers


def claude_code_body() -> dict[str, Any]:
    """Shaped like what Claude Code 2.1 sends on a follow-up turn."""
    return {
        "model": "claude-sonnet-4-5",
        "max_tokens": 32000,
        "stream": True,
        "system": [
            {"type": "text", "text": "You are Claude Code."},
            {"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}},
        ],
        "messages": [
            {"role": "user", "content": "list files"},
            {"role": "system", "content": "The date is today."},
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "I should run ls", "signature": "sig-1"},
                    {"type": "text", "text": "Running ls."},
                    {"type": "tool_use", "id": "toolu_01", "name": "Bash", "input": {"command": "ls"}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_01", "content": "a.txt\nb.txt",
                     "cache_control": {"type": "ephemeral"}},
                    {"type": "text", "text": "now count them"},
                ],
            },
        ],
        "tools": [
            {"name": "Bash", "description": "Run a command",
             "input_schema": {"type": "object", "properties": {"command": {"type": "string"}},
                              "required": ["command"], "$schema": "https://json-schema.org/draft/2020-12/schema"}},
            {"type": "web_search_20250305", "name": "web_search", "max_uses": 3},
        ],
        "thinking": {"type": "adaptive", "display": "omitted"},
        "output_config": {"effort": "high"},
        "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
        "metadata": {"user_id": "{\"device\":\"x\"}"},
    }


def base_request(**changes: Any) -> ir.Request:
    req = ir.Request(model="client-model", messages=[ir.Message("user", [ir.Text("hi")])])
    for key, value in changes.items():
        setattr(req, key, value)
    return req


def sse(*events: dict[str, Any]) -> bytes:
    return b"".join(b"event: " + e["type"].encode() + b"\ndata: " + orjson.dumps(e) + b"\n\n" for e in events)


def frames(data: bytes) -> list[tuple[str | None, dict[str, Any]]]:
    parser = SSEParser()
    return [(f.event, orjson.loads(f.data)) for f in parser.feed(data) + parser.close()]


def decode(chunks: list[bytes]) -> list[ir.Event]:
    decoder = fmt.StreamDecoder()
    events: list[ir.Event] = []
    for chunk in chunks:
        events.extend(decoder.feed(chunk))
    return events + decoder.close()


def collected(events: list[ir.Event]) -> ir.Response:
    collector = ir.Collector()
    for event in events:
        collector.feed(event)
    return collector.result()




def sdk_client(handler: Callable[[httpx2.Request], httpx2.Response]) -> anthropic.Anthropic:
    transport = httpx2.MockTransport(handler)
    return anthropic.Anthropic(api_key="k", base_url="http://gateway.test", max_retries=0,
                               http_client=httpx2.Client(transport=transport))


def serve_stream(body: bytes, status: int = 200) -> anthropic.Anthropic:
    return sdk_client(lambda request: httpx2.Response(status, content=body,
                                                      headers={"content-type": "text/event-stream"}))


def encode_all(events: list[ir.Event], req: ir.Request | None = None, close: bool = True) -> bytes:
    encoder = fmt.StreamEncoder(req or base_request())
    out = b"".join(encoder.encode(e) for e in events)
    return out + encoder.close() if close else out


# ====================================================================== parse_request


def test_parse_claude_code_body() -> None:
    req = fmt.parse_request(claude_code_body())

    assert req.model == "claude-sonnet-4-5" and req.max_tokens == 32000 and req.stream is True
    assert req.source_format == "anthropic"
    assert [t.text for t in req.system] == ["You are Claude Code.", "Be brief."]
    assert [m.role for m in req.messages] == ["user", "system", "assistant", "tool", "user"]
    assert req.messages[1].parts == [ir.Text("The date is today.")]
    assert req.messages[2].parts == [
        ir.Reasoning(text="I should run ls", signature="sig-1", origin="anthropic"),
        ir.Text("Running ls."),
        ir.ToolCall("toolu_01", "Bash", '{"command":"ls"}'),
    ]
    assert req.messages[3].parts == [ir.ToolResult("toolu_01", [ir.Text("a.txt\nb.txt")], name="Bash")]
    assert req.messages[4].parts == [ir.Text("now count them")]
    assert [t.name for t in req.tools] == ["Bash"]
    assert req.tools[0].parameters and req.tools[0].parameters["required"] == ["command"]
    assert req.reasoning == ir.ReasoningConfig(effort="high", summary=False)
    assert req.user == "{\"device\":\"x\"}"
    assert req.extras["server_tools"] == [{"type": "web_search_20250305", "name": "web_search", "max_uses": 3}]
    assert req.extras["context_management"]["edits"][0]["keep"] == "all"
    assert req.extras["thinking"] == {"type": "adaptive", "display": "omitted"}
    assert "metadata" not in req.extras and "output_config" not in req.extras


def test_parse_user_turn_of_only_tool_results_gives_only_a_tool_message() -> None:
    body = {"model": "m", "max_tokens": 5, "messages": [
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "a", "content": [{"type": "text", "text": "x"}], "is_error": True},
            {"type": "tool_result", "tool_use_id": "b"},
        ]},
    ]}
    req = fmt.parse_request(body)
    assert [m.role for m in req.messages] == ["tool"]
    assert req.messages[0].parts == [ir.ToolResult("a", [ir.Text("x")], is_error=True), ir.ToolResult("b", [])]


def test_parse_images_documents_and_search_results() -> None:
    body = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}},
        {"type": "image", "source": {"type": "url", "url": "https://x.test/a.jpg"}},
        {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "notes"}, "title": "N"},
        {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBER"}},
        {"type": "search_result", "source": "https://s.test", "title": "T",
         "content": [{"type": "text", "text": "found"}]},
    ]}]}
    parts = fmt.parse_request(body).messages[0].parts
    assert parts[0] == ir.Image(data="AAAA", media_type="image/png")
    assert parts[1] == ir.Image(url="https://x.test/a.jpg")
    assert parts[2] == ir.Text("N\n\nnotes")
    assert isinstance(parts[3], ir.Text) and "application/pdf" in parts[3].text and "not forwarded" in parts[3].text
    assert parts[4] == ir.Text("T - https://s.test\n\nfound")


def test_parse_replayed_signatures_keep_their_family() -> None:
    body = {"model": "m", "max_tokens": 5, "messages": [
        {"role": "user", "content": "q"},
        {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "", "signature": "gemini#crx#G-SIG"},
            {"type": "thinking", "thinking": "unsigned", "signature": ""},
            {"type": "redacted_thinking", "data": "opaque"},
            {"type": "server_tool_use", "id": "srv", "name": "web_search", "input": {}},
            {"type": "web_search_tool_result", "tool_use_id": "srv", "content": []},
            {"type": "tool_use", "id": "t1", "name": "f", "input": {}},
        ]},
    ]}
    parts = fmt.parse_request(body).messages[1].parts
    assert parts == [
        ir.Reasoning(text="", signature="G-SIG", origin="gemini"),
        ir.Reasoning(text="unsigned"),
        ir.Reasoning(signature="opaque", origin="anthropic", redacted=True),
        ir.ToolCall("t1", "f", "{}"),
    ]


@pytest.mark.parametrize(
    ("thinking", "output_config", "expected"),
    [
        ({"type": "enabled", "budget_tokens": 4000}, None, ir.ReasoningConfig(budget=4000, summary=True)),
        ({"type": "enabled", "budget_tokens": 4000, "display": "summarized"}, {"effort": "low"},
         ir.ReasoningConfig(effort="low", budget=4000, summary=True)),
        ({"type": "enabled"}, None, ir.ReasoningConfig(effort="auto", summary=True)),
        ({"type": "adaptive"}, None, ir.ReasoningConfig(effort="auto", summary=True)),
        ({"type": "adaptive"}, {"effort": "max"}, ir.ReasoningConfig(effort="max", summary=True)),
        ({"type": "disabled"}, None, ir.ReasoningConfig(effort="none")),
        (None, {"effort": "medium"}, ir.ReasoningConfig(effort="medium")),
        (None, None, None),
    ],
)
def test_parse_thinking(thinking: Any, output_config: Any, expected: ir.ReasoningConfig | None) -> None:
    body: dict[str, Any] = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "q"}]}
    if thinking is not None:
        body["thinking"] = thinking
    if output_config is not None:
        body["output_config"] = output_config
    assert fmt.parse_request(body).reasoning == expected


@pytest.mark.parametrize(
    ("choice", "expected", "parallel"),
    [
        ({"type": "auto"}, ir.ToolChoice("auto"), None),
        ({"type": "any", "disable_parallel_tool_use": True}, ir.ToolChoice("required"), False),
        ({"type": "tool", "name": "Bash"}, ir.ToolChoice("tool", "Bash"), None),
        ({"type": "none"}, ir.ToolChoice("none"), None),
    ],
)
def test_parse_tool_choice(choice: dict[str, Any], expected: ir.ToolChoice, parallel: bool | None) -> None:
    body = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "q"}], "tool_choice": choice}
    req = fmt.parse_request(body)
    assert req.tool_choice == expected and req.parallel_tool_calls is parallel


def test_parse_structured_output_new_and_legacy() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    base = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "q"}]}
    new = fmt.parse_request({**base, "output_config": {"format": {"type": "json_schema", "schema": schema}}})
    legacy = fmt.parse_request({**base, "output_format": {"type": "json_schema", "schema": schema}})
    assert new.response_format == legacy.response_format == ir.ResponseFormat("json_schema", schema=schema)


def test_parse_sampling_and_extras() -> None:
    body = {"model": "m", "max_tokens": 7, "messages": [{"role": "user", "content": "q"}], "temperature": 0.5,
            "top_p": 0.9, "top_k": 40, "stop_sequences": ["END"], "service_tier": "auto", "cache_control": {"type": "ephemeral"}}
    req = fmt.parse_request(body, stream=True)
    assert (req.temperature, req.top_p, req.top_k, req.stop, req.stream) == (0.5, 0.9, 40, ["END"], True)
    assert req.extras == {"service_tier": "auto", "cache_control": {"type": "ephemeral"}}


def test_max_tokens_required_unless_counting() -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "q"}]}
    with pytest.raises(ir.GatewayError) as info:
        fmt.parse_request(body)
    assert info.value.status == 400 and info.value.param == "max_tokens"
    assert fmt.parse_request(body, count_only=True).max_tokens is None


def _mutated(path: list[Any], value: Any) -> dict[str, Any]:
    body = claude_code_body()
    target: Any = body
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return body


@pytest.mark.parametrize(
    ("path", "value", "param"),
    [
        (["model"], 3, "model"),
        (["messages"], "hi", "messages"),
        (["messages"], [], "messages"),
        (["messages", 0], "hi", "messages[0]"),
        (["messages", 0, "role"], "robot", "messages[0].role"),
        (["messages", 0, "content"], 5, "messages[0].content"),
        (["messages", 0, "content"], [{"type": "text"}], "messages[0].content[0].text"),
        (["messages", 0, "content"], [{"type": "video"}], "messages[0].content[0].type"),
        (["messages", 0, "content"], [{"type": "image", "source": {"type": "file", "file_id": "f"}}],
         "messages[0].content[0].source.type"),
        (["messages", 2, "content", 2, "input"], [1, 2], "messages[2].content[2].input"),
        (["messages", 2, "content", 2, "id"], None, "messages[2].content[2].id"),
        (["messages", 3, "content", 0, "tool_use_id"], 7, "messages[3].content[0].tool_use_id"),
        (["messages", 3, "content", 0, "is_error"], "yes", "messages[3].content[0].is_error"),
        (["system"], 12, "system"),
        (["system", 0, "type"], "image", "system[0].type"),
        (["tools"], {"name": "x"}, "tools"),
        (["tools", 0, "name"], None, "tools[0].name"),
        (["tools", 0, "input_schema"], "{}", "tools[0].input_schema"),
        (["tool_choice"], "auto", "tool_choice"),
        (["thinking", "type"], "sometimes", "thinking.type"),
        (["thinking"], {"type": "enabled", "budget_tokens": "lots"}, "thinking.budget_tokens"),
        (["output_config", "effort"], "extreme", "output_config.effort"),
        (["max_tokens"], "100", "max_tokens"),
        (["max_tokens"], True, "max_tokens"),
        (["temperature"], "hot", "temperature"),
        (["stop_sequences"], "END", "stop_sequences"),
        (["metadata"], "u", "metadata"),
        (["stream"], "yes", "stream"),
    ],
)
def test_bad_input_is_a_400_with_param(path: list[Any], value: Any, param: str) -> None:
    with pytest.raises(ir.GatewayError) as info:
        fmt.parse_request(_mutated(path, value))
    assert info.value.status == 400 and info.value.param == param and info.value.kind == "invalid_request"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(["type", "text", "id", "x"]), inner,
                                                                max_size=3),
    max_leaves=8,
)


def _paths(value: Any, prefix: list[Any]) -> list[list[Any]]:
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, child in value.items():
            found.extend(_paths(child, [*prefix, key]))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found.extend(_paths(child, [*prefix, index]))
    return found


ALL_PATHS = _paths(claude_code_body(), [])


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(ALL_PATHS), json_values)
def test_untrusted_fields_never_crash(path: list[Any], value: Any) -> None:
    try:
        req = fmt.parse_request(_mutated(path, value))
    except ir.GatewayError as error:
        assert error.status == 400
        return
    fmt.render_request(req, "upstream")  # whatever parses also renders


def test_non_object_body_is_a_400() -> None:
    with pytest.raises(ir.GatewayError) as info:
        fmt.parse_request([1, 2])
    assert info.value.status == 400


# ====================================================================== render_request


def test_render_hoists_system_and_orders_turns() -> None:
    req = ir.Request(
        model="x",
        system=[ir.Text("top")],
        messages=[
            ir.Message("assistant", [ir.Text("I start")]),
            ir.Message("system", [ir.Text("middle")]),
            ir.Message("assistant", [ir.ToolCall("call.1", "f", '{"a":1}')]),
            ir.Message("user", [ir.Text("before results")]),
            ir.Message("tool", [ir.ToolResult("call.1", [ir.Text("r1"), ir.Image(url="https://i.test/x.png")],
                                              is_error=True)]),
            ir.Message("user", [ir.Text("after results")]),
        ],
        response_format=ir.ResponseFormat("json_object"),
    )
    body = fmt.render_request(req, "claude-up")
    assert body["model"] == "claude-up" and body["max_tokens"] == 8192
    assert [b["text"] for b in body["system"]] == ["top", "middle", fmt.upstream_request.JSON_OBJECT_INSTRUCTION]
    assert body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "(continue)"}]},
        {"role": "assistant", "content": [
            {"type": "text", "text": "I start"},
            {"type": "tool_use", "id": "call_1", "name": "f", "input": {"a": 1}},
        ]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "call_1", "is_error": True, "content": [
                {"type": "text", "text": "r1"},
                {"type": "image", "source": {"type": "url", "url": "https://i.test/x.png"}},
            ]},
            {"type": "text", "text": "before results"},
            {"type": "text", "text": "after results"},
        ]},
    ]


def test_render_empty_conversation_gets_a_user_turn() -> None:
    body = fmt.render_request(ir.Request(model="x", system=[ir.Text("s")]), "m")
    assert body["messages"] == [{"role": "user", "content": [{"type": "text", "text": "(continue)"}]}]


def test_render_sends_only_anthropic_signed_reasoning() -> None:
    req = base_request(messages=[
        ir.Message("user", [ir.Text("q")]),
        ir.Message("assistant", [
            ir.Reasoning("mine", signature="A", origin="anthropic"),
            ir.Reasoning(signature="R", origin="anthropic", redacted=True),
            ir.Reasoning("theirs", signature="G", origin="gemini"),
            ir.Reasoning("unsigned"),
            ir.Text("answer"),
        ]),
        ir.Message("assistant", [ir.Reasoning("only foreign", signature="E", origin="openai")]),
        ir.Message("user", [ir.Text("next")]),
    ])
    messages = fmt.render_request(req, "m")["messages"]
    assert messages == [
        {"role": "user", "content": [{"type": "text", "text": "q"}]},
        {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "mine", "signature": "A"},
            {"type": "redacted_thinking", "data": "R"},
            {"type": "text", "text": "answer"},
        ]},
        {"role": "user", "content": [{"type": "text", "text": "next"}]},
    ]


def test_render_images_and_tool_inputs() -> None:
    req = base_request(messages=[
        ir.Message("user", [ir.Image(data="QUJD", media_type="image/jpeg"), ir.Image(url="data:image/gif;base64,R0lG"),
                            ir.Image(url="https://x.test/a.png"), ir.Image(url="gs://bucket/a.png"), ir.Text("  ")]),
        ir.Message("assistant", [ir.ToolCall("t1", "f", "not json"), ir.ToolCall("t2", "g", "[1]"),
                                 ir.ToolCall("t3", "apply_patch", "*** Begin Patch", kind="custom")]),
    ])
    messages = fmt.render_request(req, "m")["messages"]
    assert messages[0]["content"] == [
        {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "QUJD"}},
        {"type": "image", "source": {"type": "base64", "media_type": "image/gif", "data": "R0lG"}},
        {"type": "image", "source": {"type": "url", "url": "https://x.test/a.png"}},
    ]
    assert [b["input"] for b in messages[1]["content"]] == [{}, {}, {"input": "*** Begin Patch"}]


@pytest.mark.parametrize(
    ("reasoning", "max_tokens", "thinking", "expected_max"),
    [
        (ir.ReasoningConfig(effort="high"), None, {"type": "enabled", "budget_tokens": 24576}, 32768),
        (ir.ReasoningConfig(effort="max"), None, {"type": "enabled", "budget_tokens": 63999}, 64000),
        (ir.ReasoningConfig(effort="medium"), None, {"type": "enabled", "budget_tokens": 8192}, 16384),
        (ir.ReasoningConfig(effort="high"), 4096, {"type": "enabled", "budget_tokens": 4095}, 4096),
        (ir.ReasoningConfig(effort="minimal"), 500, {"type": "enabled", "budget_tokens": 1024}, 1524),
        (ir.ReasoningConfig(budget=2000), 10000, {"type": "enabled", "budget_tokens": 2000}, 10000),
        (ir.ReasoningConfig(effort="auto"), 20000, {"type": "enabled", "budget_tokens": 8192}, 20000),
        (ir.ReasoningConfig(effort="none"), None, {"type": "disabled"}, 8192),
        (ir.ReasoningConfig(summary=True), None, None, 8192),
    ],
)
def test_render_thinking_budget(reasoning: ir.ReasoningConfig, max_tokens: int | None,
                                thinking: dict[str, Any] | None, expected_max: int) -> None:
    body = fmt.render_request(base_request(reasoning=reasoning, max_tokens=max_tokens, temperature=0.3), "m")
    assert body.get("thinking") == thinking
    assert body["max_tokens"] == expected_max
    if thinking and thinking["type"] == "enabled":
        assert 1024 <= thinking["budget_tokens"] < body["max_tokens"]
        assert "temperature" not in body
    else:
        assert body["temperature"] == 0.3


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(sorted(BUDGET_BY_EFFORT)) | st.none(), st.integers(-1, 200000) | st.none(),
       st.integers(0, 200000) | st.none())
def test_render_thinking_budget_always_fits(effort: Any, budget: int | None, max_tokens: int | None) -> None:
    body = fmt.render_request(base_request(reasoning=ir.ReasoningConfig(effort=effort, budget=budget),
                                           max_tokens=max_tokens), "m")
    thinking = body.get("thinking")
    if thinking and thinking["type"] == "enabled":
        assert 1024 <= thinking["budget_tokens"] < body["max_tokens"]
        if max_tokens is not None and max_tokens > 1024:
            assert body["max_tokens"] == max_tokens  # the client's cap is kept
    else:
        assert body["max_tokens"] == (8192 if max_tokens is None else max_tokens)


def test_render_sampling_without_thinking_is_clamped() -> None:
    body = fmt.render_request(base_request(temperature=1.7, top_p=0.8, top_k=20, stop=["X"]), "m")
    assert (body["temperature"], body["top_p"], body["top_k"], body["stop_sequences"]) == (1.0, 0.8, 20, ["X"])


@pytest.mark.parametrize(
    ("choice", "parallel", "expected"),
    [
        (None, None, None),
        (None, False, {"type": "auto", "disable_parallel_tool_use": True}),
        (ir.ToolChoice("auto"), None, {"type": "auto"}),
        (ir.ToolChoice("required"), False, {"type": "any", "disable_parallel_tool_use": True}),
        (ir.ToolChoice("tool", "f"), None, {"type": "tool", "name": "f"}),
        (ir.ToolChoice("none"), False, {"type": "none"}),
    ],
)
def test_render_tool_choice(choice: ir.ToolChoice | None, parallel: bool | None, expected: Any) -> None:
    tools = [ir.Tool("f", "does f", {"properties": {"a": {"type": "string"}}}), ir.Tool("g")]
    body = fmt.render_request(base_request(tools=tools, tool_choice=choice, parallel_tool_calls=parallel), "m")
    assert body.get("tool_choice") == expected
    assert body["tools"] == [
        {"name": "f", "description": "does f", "input_schema": {"type": "object", "properties": {"a": {"type": "string"}}}},
        {"name": "g", "input_schema": {"type": "object", "properties": {}}},
    ]


def test_render_no_tool_choice_without_tools_and_no_thinking_when_forced() -> None:
    assert "tool_choice" not in fmt.render_request(base_request(tool_choice=ir.ToolChoice("required")), "m")
    forced = base_request(tools=[ir.Tool("f")], tool_choice=ir.ToolChoice("tool", "f"),
                          reasoning=ir.ReasoningConfig(effort="high"))
    assert "thinking" not in fmt.render_request(forced, "m")


def test_render_structured_output_and_user() -> None:
    schema = {"type": "object", "properties": {}, "additionalProperties": False}
    body = fmt.render_request(base_request(response_format=ir.ResponseFormat("json_schema", schema=schema, name="n"),
                                           user="u1", stream=True), "m")
    assert body["output_config"] == {"format": {"type": "json_schema", "schema": schema}}
    assert body["metadata"] == {"user_id": "u1"} and body["stream"] is True
    assert "system" not in body


def test_same_format_hop_is_lossless_for_a_canonical_body() -> None:
    body = claude_code_body()
    body["messages"] = [m for m in body["messages"] if m["role"] != "system"]
    body["messages"][0]["content"] = [{"type": "text", "text": "list files"}]
    body["messages"][2]["content"][0] = {"type": "tool_result", "tool_use_id": "toolu_01",
                                         "content": [{"type": "text", "text": "a.txt"}], "is_error": True}
    for tool in body["tools"]:
        tool.pop("cache_control", None)
    body["system"][1].pop("cache_control")
    rendered = fmt.render_request(fmt.parse_request(copy.deepcopy(body)), body["model"])
    assert rendered == body


def test_extras_are_merged_only_on_a_same_format_hop() -> None:
    req = fmt.parse_request(claude_code_body())
    same = fmt.render_request(req, "m")
    assert same["context_management"] == claude_code_body()["context_management"]
    assert same["tools"][-1]["type"] == "web_search_20250305"
    assert same["thinking"] == {"type": "adaptive", "display": "omitted"}
    assert same["output_config"] == {"effort": "high"}
    req.source_format = "openai-chat"
    other = fmt.render_request(req, "m")
    assert "context_management" not in other and len(other["tools"]) == 1
    assert other["thinking"] == {"type": "enabled", "budget_tokens": 24576}
    assert "output_config" not in other


def test_changed_reasoning_is_converted_even_on_a_same_format_hop() -> None:
    req = fmt.parse_request(claude_code_body())
    req.reasoning = ir.ReasoningConfig(effort="low")
    body = fmt.render_request(req, "m")
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 1024}
    assert "effort" not in body.get("output_config", {})


def test_round_trip_through_the_ir() -> None:
    first = fmt.parse_request(claude_code_body())
    again = fmt.parse_request(fmt.render_request(first, first.model))
    first_messages = [m for m in first.messages if m.role != "system"]
    assert again.messages == first_messages
    assert [t.text for t in again.system] == [t.text for t in first.system] + ["The date is today."]
    assert (again.tools, again.reasoning, again.user, again.max_tokens) == (
        first.tools, first.reasoning, first.user, first.max_tokens)


# ====================================================================== responses


def anthropic_message(**changes: Any) -> dict[str, Any]:
    message = {
        "id": "msg_01", "type": "message", "role": "assistant", "model": "claude-x",
        "content": [
            {"type": "thinking", "thinking": "hmm", "signature": "S1"},
            {"type": "redacted_thinking", "data": "RD"},
            {"type": "text", "text": "Let me check."},
            {"type": "tool_use", "id": "toolu_9", "name": "Bash", "input": {"command": "ls"}},
        ],
        "stop_reason": "tool_use", "stop_sequence": None,
        "usage": {"input_tokens": 10, "output_tokens": 20, "cache_read_input_tokens": 100,
                  "cache_creation_input_tokens": 5, "output_tokens_details": {"thinking_tokens": 7}},
    }
    message.update(changes)
    return message


def test_parse_response() -> None:
    resp = fmt.parse_response(anthropic_message())
    assert (resp.id, resp.model, resp.stop_reason) == ("msg_01", "claude-x", "tool_use")
    assert resp.parts == [
        ir.Reasoning("hmm", signature="S1", origin="anthropic"),
        ir.Reasoning(signature="RD", origin="anthropic", redacted=True),
        ir.Text("Let me check."),
        ir.ToolCall("toolu_9", "Bash", '{"command":"ls"}'),
    ]
    assert resp.usage == ir.Usage(input_tokens=115, output_tokens=20, cached_tokens=100, cache_write_tokens=5,
                                  reasoning_tokens=7)


@pytest.mark.parametrize(
    ("wire", "expected"),
    [("end_turn", "end_turn"), ("max_tokens", "max_tokens"), ("stop_sequence", "stop_sequence"),
     ("refusal", "content_filter"), ("pause_turn", "end_turn"), ("model_context_window_exceeded", "max_tokens"),
     (None, "end_turn"), ("tool_use", "end_turn"), ("something_new", "end_turn")],
)
def test_parse_response_stop_reasons(wire: str | None, expected: str) -> None:
    message = anthropic_message(stop_reason=wire, content=[{"type": "text", "text": "x"}])
    assert fmt.parse_response(message).stop_reason == expected
    with_call = anthropic_message(stop_reason=wire)
    assert fmt.parse_response(with_call).stop_reason == "tool_use"


def test_parse_response_rejects_garbage_as_502() -> None:
    bodies: list[Any] = [None, [], {"content": "x"}]
    for body in bodies:
        with pytest.raises(ir.GatewayError) as info:
            fmt.parse_response(body)
        assert info.value.status == 502


def test_render_response_validates_with_the_sdk_and_round_trips() -> None:
    resp = fmt.parse_response(anthropic_message())
    body = fmt.render_response(resp, base_request())
    message = Message.model_validate(body)
    assert message.id == "msg_01" and message.stop_reason == "tool_use"
    assert [b.type for b in message.content] == ["thinking", "redacted_thinking", "text", "tool_use"]
    assert message.usage.input_tokens == 10 and message.usage.cache_read_input_tokens == 100
    assert message.usage.cache_creation_input_tokens == 5 and message.usage.output_tokens == 20
    assert fmt.parse_response(body).parts == resp.parts
    assert fmt.parse_response(body).usage == resp.usage


def test_render_response_for_foreign_reasoning_and_ids() -> None:
    resp = ir.Response(id="abc", model="", parts=[
        ir.Reasoning("thought", signature="enc", origin="openai"),
        ir.Reasoning("", signature="gsig", origin="gemini"),
        ir.ToolCall("call_1", "f", '{"x":1}'),
        ir.Reasoning("plain words"),
        ir.Text(""),
    ], stop_reason="end_turn", usage=ir.Usage(input_tokens=50, output_tokens=3, cached_tokens=20))
    body = fmt.render_response(resp, base_request())
    message = Message.model_validate(body)
    assert message.id == "msg_abc" and message.model == "client-model" and message.stop_reason == "tool_use"
    assert body["content"] == [
        {"type": "thinking", "thinking": "thought", "signature": "openai#crx#enc"},
        {"type": "thinking", "thinking": "", "signature": "gemini#crx#gsig"},
        {"type": "tool_use", "id": "call_1", "name": "f", "input": {"x": 1}},
        {"type": "thinking", "thinking": "plain words", "signature": ""},
    ]
    assert body["usage"]["input_tokens"] == 30 and body["usage"]["cache_read_input_tokens"] == 20
    # Replayed by the client, the signatures find their family again.
    replay = {"model": "m", "max_tokens": 9, "messages": [
        {"role": "user", "content": "q"}, {"role": "assistant", "content": body["content"]}]}
    assert fmt.parse_request(replay).messages[1].parts == [
        ir.Reasoning("thought", signature="enc", origin="openai"),
        ir.Reasoning("", signature="gsig", origin="gemini"),
        ir.ToolCall("call_1", "f", '{"x":1}'),
        ir.Reasoning("plain words"),
    ]


def test_render_response_stop_reasons() -> None:
    for reason, wire in (("content_filter", "refusal"), ("max_tokens", "max_tokens"), ("error", "end_turn"),
                         ("stop_sequence", "stop_sequence"), ("tool_use", "end_turn")):
        body = fmt.render_response(ir.Response("i", "m", [ir.Text("x")], reason), base_request())  # type: ignore[arg-type]
        assert Message.model_validate(body).stop_reason == wire


# ====================================================================== stream decoder

UPSTREAM_STREAM = sse(
    {"type": "message_start", "message": {"id": "msg_up", "type": "message", "role": "assistant", "model": "claude-x",
                                          "content": [], "stop_reason": None, "stop_sequence": None,
                                          "usage": {"input_tokens": 12, "cache_read_input_tokens": 30,
                                                    "output_tokens": 1}}},
    {"type": "ping"},
    {"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": "", "signature": ""}},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "Let me "}},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "think ✓"}},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": "SIG"}},
    {"type": "content_block_stop", "index": 0},
    {"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}},
    {"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "Héllo"}},
    {"type": "content_block_stop", "index": 1},
    {"type": "content_block_start", "index": 2, "content_block": {"type": "tool_use", "id": "toolu_1", "name": "Bash",
                                                                  "input": {}}},
    {"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": ""}},
    {"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": "{\"comm"}},
    {"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": "and\":\"ls\"}"}},
    {"type": "content_block_stop", "index": 2},
    {"type": "content_block_start", "index": 3, "content_block": {"type": "tool_use", "id": "toolu_2", "name": "Now",
                                                                  "input": {}}},
    {"type": "content_block_stop", "index": 3},
    {"type": "message_delta", "delta": {"type": "tool_use", "stop_reason": "tool_use", "stop_sequence": None},
     "usage": {"output_tokens": 40, "input_tokens": 12, "cache_read_input_tokens": 30}},
    {"type": "message_stop"},
)

EXPECTED_EVENTS: list[ir.Event] = [
    ir.StreamStart("msg_up", "claude-x", ir.Usage(input_tokens=42, output_tokens=1, cached_tokens=30)),
    ir.ReasoningDelta(text="Let me ", origin="anthropic"),
    ir.ReasoningDelta(text="think ✓", origin="anthropic"),
    ir.ReasoningDelta(signature="SIG", origin="anthropic"),
    ir.TextDelta("Héllo"),
    ir.ToolCallStart(0, "toolu_1", "Bash"),
    ir.ToolCallDelta(0, "{\"comm"),
    ir.ToolCallDelta(0, "and\":\"ls\"}"),
    ir.ToolCallStart(1, "toolu_2", "Now"),
    ir.ToolCallDelta(1, "{}"),
    ir.Finish("tool_use", ir.Usage(input_tokens=42, output_tokens=40, cached_tokens=30)),
]


def test_decoder_reads_a_whole_stream() -> None:
    assert decode([UPSTREAM_STREAM]) == EXPECTED_EVENTS
    resp = collected(EXPECTED_EVENTS)
    assert resp.parts == [
        ir.Reasoning("Let me think ✓", signature="SIG", origin="anthropic"),
        ir.Text("Héllo"),
        ir.ToolCall("toolu_1", "Bash", '{"command":"ls"}'),
        ir.ToolCall("toolu_2", "Now", "{}"),
    ]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=0), max_size=12))
def test_decoder_is_independent_of_chunking(cuts: list[int]) -> None:
    assert decode(split_at(UPSTREAM_STREAM, cuts)) == EXPECTED_EVENTS


def test_decoder_handles_crlf_and_whole_tool_input() -> None:
    stream = sse(
        {"type": "message_start", "message": {"id": "m1", "model": "x", "usage": {"input_tokens": 1}}},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "redacted_thinking", "data": "RD"}},
        {"type": "content_block_stop", "index": 0},
        {"type": "content_block_start", "index": 1, "content_block": {"type": "tool_use", "name": "f",
                                                                      "input": {"a": [1, 2]}}},
        {"type": "content_block_stop", "index": 1},
        {"type": "content_block_start", "index": 2, "content_block": {"type": "server_tool_use", "id": "s"}},
        {"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": "{}"}},
        {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 2}},
        {"type": "message_stop"},
    ).replace(b"\n", b"\r\n")
    events = decode([stream])
    assert events[1] == ir.ReasoningDelta(signature="RD", origin="anthropic", redacted=True)
    start = events[2]
    assert isinstance(start, ir.ToolCallStart) and start.id.startswith("call_") and start.index == 0
    assert events[3] == ir.ToolCallDelta(0, '{"a":[1,2]}')
    assert events[4] == ir.Finish("tool_use", ir.Usage(input_tokens=1, output_tokens=2))
    assert len(events) == 5


@pytest.mark.parametrize(
    ("error_type", "status", "kind"),
    [("overloaded_error", 529, "overloaded"), ("rate_limit_error", 429, "rate_limit"), ("api_error", 500, "server"),
     ("invalid_request_error", 400, "invalid_request"), ("something_new", 500, "server")],
)
def test_decoder_error_event(error_type: str, status: int, kind: str) -> None:
    stream = sse({"type": "message_start", "message": {"id": "m", "model": "x"}},
                 {"type": "error", "error": {"type": error_type, "message": "busy"}},
                 {"type": "message_stop"})
    events = decode([stream])
    assert len(events) == 2 and isinstance(events[1], ir.StreamError)
    error = events[1].error
    assert (error.status, error.kind, error.message) == (status, kind, "busy")


def test_decoder_early_end_is_an_error_but_a_lost_message_stop_is_not() -> None:
    start = {"type": "message_start", "message": {"id": "m", "model": "x"}}
    text = [{"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": "hi"}}]
    cut = decode([sse(start, *text)])
    assert isinstance(cut[-1], ir.StreamError) and cut[-1].error.status == 502
    assert cut[1] == ir.TextDelta("hi")
    no_stop = decode([sse(start, *text, {"type": "message_delta", "delta": {"stop_reason": "max_tokens"},
                                         "usage": {"output_tokens": 3}})])
    assert no_stop[-1] == ir.Finish("max_tokens", ir.Usage(output_tokens=3))


def test_decoder_malformed_data_is_an_error() -> None:
    events = decode([b"event: message_start\ndata: {not json\n\n", sse({"type": "message_stop"})])
    assert len(events) == 1 and isinstance(events[0], ir.StreamError) and events[0].error.status == 502


# ====================================================================== stream encoder

def sample_response() -> ir.Response:
    return ir.Response(
        id="resp-1", model="up-model",
        parts=[
            ir.Reasoning("step one", signature="S", origin="anthropic"),
            ir.Reasoning(signature="RD", origin="anthropic", redacted=True),
            ir.Reasoning("", signature="gsig", origin="gemini"),
            ir.Text("Hello "),
            ir.ToolCall("call_a", "read", '{"path":"a"}'),
            ir.ToolCall("call_b", "noargs", "{}"),
        ],
        stop_reason="end_turn",
        usage=ir.Usage(input_tokens=100, output_tokens=9, cached_tokens=60, cache_write_tokens=10),
    )


def test_encoder_event_sequence() -> None:
    data = encode_all(list(ir.response_events(sample_response())))
    seen = frames(data)
    assert all(name == payload["type"] for name, payload in seen)
    names = [(name, payload.get("index"), payload.get("content_block", payload.get("delta", {})).get("type"))
             for name, payload in seen]
    assert names == [
        ("message_start", None, None),
        ("content_block_start", 0, "thinking"), ("content_block_delta", 0, "thinking_delta"),
        ("content_block_delta", 0, "signature_delta"), ("content_block_stop", 0, None),
        ("content_block_start", 1, "redacted_thinking"), ("content_block_stop", 1, None),
        ("content_block_start", 2, "thinking"), ("content_block_delta", 2, "signature_delta"),
        ("content_block_stop", 2, None),
        ("content_block_start", 3, "text"), ("content_block_delta", 3, "text_delta"), ("content_block_stop", 3, None),
        ("content_block_start", 4, "tool_use"), ("content_block_delta", 4, "input_json_delta"),
        ("content_block_stop", 4, None),
        ("content_block_start", 5, "tool_use"), ("content_block_delta", 5, "input_json_delta"),
        ("content_block_stop", 5, None),
        ("message_delta", None, None), ("message_stop", None, None),
    ]
    assert seen[0][1]["message"]["id"] == "msg_resp-1"
    assert seen[8][1]["delta"]["signature"] == "gemini#crx#gsig"
    assert seen[-2][1]["delta"] == {"stop_reason": "tool_use", "stop_sequence": None}
    assert seen[-2][1]["usage"] == {"input_tokens": 30, "output_tokens": 9, "cache_creation_input_tokens": 10,
                                    "cache_read_input_tokens": 60}


def test_encoder_output_is_read_by_the_official_sdk() -> None:
    client = serve_stream(encode_all(list(ir.response_events(sample_response()))))
    with client.messages.stream(model="m", max_tokens=10, messages=[{"role": "user", "content": "q"}]) as stream:
        final = stream.get_final_message()
    assert final.id == "msg_resp-1" and final.stop_reason == "tool_use"
    assert [b.type for b in final.content] == ["thinking", "redacted_thinking", "thinking", "text", "tool_use",
                                               "tool_use"]
    first, _, gemini_block, text, call_a, call_b = final.content
    assert first.type == "thinking" and (first.thinking, first.signature) == ("step one", "S")
    assert gemini_block.type == "thinking" and gemini_block.signature == "gemini#crx#gsig"
    assert text.type == "text" and text.text == "Hello "
    assert call_a.type == "tool_use" and call_a.input == {"path": "a"} and call_a.id == "call_a"
    assert call_b.type == "tool_use" and call_b.input == {}
    assert final.usage.input_tokens == 30 and final.usage.output_tokens == 9
    assert final.usage.cache_read_input_tokens == 60


def test_encoder_error_makes_the_sdk_raise() -> None:
    events: list[ir.Event] = [ir.StreamStart("x", "m"), ir.TextDelta("partial"),
                              ir.StreamError(ir.GatewayError(529, "upstream overloaded"))]
    data = encode_all(events)
    assert frames(data)[-1] == ("error", {"type": "error", "error": {"type": "overloaded_error",
                                                                     "message": "upstream overloaded"}})
    with pytest.raises(anthropic.APIStatusError) as info:
        with serve_stream(data).messages.stream(model="m", max_tokens=5, messages=[]) as stream:
            stream.get_final_message()
    assert "upstream overloaded" in str(info.value)


def test_encoder_close_without_finish_is_an_error_never_a_clean_end() -> None:
    encoder = fmt.StreamEncoder(base_request())
    data = encoder.encode(ir.StreamStart("x", "m")) + encoder.encode(ir.TextDelta("cut"))
    data += encoder.close()
    names = [name for name, _ in frames(data)]
    assert names[-1] == "error" and "message_stop" not in names and "message_delta" not in names
    assert encoder.close() == b"" and encoder.encode(ir.TextDelta("late")) == b""
    with pytest.raises(anthropic.APIStatusError):
        with serve_stream(data).messages.stream(model="m", max_tokens=5, messages=[]) as stream:
            stream.get_final_message()


def test_encoder_without_stream_start_and_with_custom_tool() -> None:
    events: list[ir.Event] = [
        ir.ToolCallStart(0, "call_p", "apply_patch", kind="custom"),
        ir.ToolCallDelta(0, '*** Begin "Patch"\n'),
        ir.ToolCallDelta(0, "*** End Patch"),
        ir.Finish("tool_use"),
    ]
    data = encode_all(events, base_request(model="asked-model"))
    client = serve_stream(data)
    with client.messages.stream(model="m", max_tokens=5, messages=[]) as stream:
        final = stream.get_final_message()
    assert final.model == "asked-model" and final.id.startswith("msg_")
    call = final.content[0]
    assert call.type == "tool_use" and call.input == {"input": '*** Begin "Patch"\n*** End Patch'}


def test_encoder_unsigned_reasoning_block_is_well_formed() -> None:
    events: list[ir.Event] = [ir.StreamStart("m1", "x"), ir.ReasoningDelta(text="raw thoughts"), ir.TextDelta("hi"),
                              ir.Finish("end_turn", ir.Usage(output_tokens=2))]
    with serve_stream(encode_all(events)).messages.stream(model="m", max_tokens=5, messages=[]) as stream:
        final = stream.get_final_message()
    block = final.content[0]
    assert block.type == "thinking" and block.thinking == "raw thoughts" and block.signature == ""


part_strategy = st.one_of(
    st.builds(ir.Text, st.text(min_size=1, max_size=8)),
    st.builds(lambda t, s: ir.Reasoning(t, signature=s, origin="anthropic"), st.text(max_size=8),
              st.text(min_size=1, max_size=8)),
    st.builds(lambda s: ir.Reasoning(signature=s, origin="anthropic", redacted=True), st.text(min_size=1, max_size=8)),
    st.builds(lambda i, n, a: ir.ToolCall(f"call_{i}", n, orjson.dumps(a).decode()),
              st.integers(0, 99), st.sampled_from(["f", "g"]),
              st.dictionaries(st.text(max_size=3), st.integers(-999, 999) | st.text(max_size=4), max_size=3)),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(part_strategy, max_size=6), st.sampled_from(["end_turn", "max_tokens", "content_filter"]),
       st.lists(st.integers(min_value=0), max_size=10))
def test_encoder_then_decoder_round_trip(parts: list[ir.Part], stop: ir.StopReason, cuts: list[int]) -> None:
    original = ir.Response("msg_r", "model-r", parts, stop,
                           ir.Usage(input_tokens=20, output_tokens=5, cached_tokens=4, cache_write_tokens=1))
    data = encode_all(list(ir.response_events(original)))
    back = collected(decode(split_at(data, cuts)))
    expected_parts = _merge_adjacent_texts(parts)
    assert back.parts == expected_parts
    has_calls = any(isinstance(p, ir.ToolCall) for p in parts)
    assert back.stop_reason == ("tool_use" if has_calls else stop)
    assert back.usage == original.usage and back.id == "msg_r" and back.model == "model-r"


def _merge_adjacent_texts(parts: list[ir.Part]) -> list[ir.Part]:
    merged: list[ir.Part] = []
    for part in parts:
        if isinstance(part, ir.Text) and merged and isinstance(merged[-1], ir.Text):
            merged[-1] = ir.Text(merged[-1].text + part.text)
        else:
            merged.append(copy.copy(part))
    return merged


# ====================================================================== errors

KINDS_AND_TYPES = [
    ("invalid_request", 400, "invalid_request_error", anthropic.BadRequestError),
    ("authentication", 401, "authentication_error", anthropic.AuthenticationError),
    ("billing", 402, "billing_error", anthropic.PaymentRequiredError),
    ("permission", 403, "permission_error", anthropic.PermissionDeniedError),
    ("not_found", 404, "not_found_error", anthropic.NotFoundError),
    ("request_too_large", 413, "request_too_large", anthropic.ContentTooLargeError),
    ("rate_limit", 429, "rate_limit_error", anthropic.RateLimitError),
    ("server", 500, "api_error", anthropic.InternalServerError),
    ("unavailable", 503, "api_error", anthropic.ServiceUnavailableError),
    ("timeout", 504, "timeout_error", anthropic.GatewayTimeoutError),
    ("overloaded", 529, "overloaded_error", anthropic.OverloadedError),
]


@pytest.mark.parametrize(("kind", "status", "error_type", "sdk_class"), KINDS_AND_TYPES)
def test_render_error_is_what_the_sdk_expects(kind: Any, status: int, error_type: str,
                                             sdk_class: type[anthropic.APIStatusError]) -> None:
    body = fmt.render_error(ir.GatewayError(status, "went wrong", kind=kind))
    assert body == {"type": "error", "error": {"type": error_type, "message": "went wrong"}}
    if error_type != "request_too_large":  # documented by Anthropic, missing from the SDK's union
        ErrorResponse.model_validate(body)
    client = sdk_client(lambda request: httpx2.Response(status, json=body))
    with pytest.raises(sdk_class) as info:
        client.messages.create(model="m", max_tokens=5, messages=[{"role": "user", "content": "q"}])
    assert info.value.status_code == status and "went wrong" in str(info.value)
    parsed = fmt.parse_error(status, orjson.dumps(body))
    assert (parsed.status, parsed.message) == (status, "went wrong")
    assert parsed.kind == (ir.kind_for_status(status) if kind != "unavailable" else "server")


def test_parse_error_tolerates_anything() -> None:
    odd = fmt.parse_error(500, b"<html>bad gateway</html>")
    assert (odd.status, odd.kind, odd.message) == (500, "server", "<html>bad gateway</html>")
    assert fmt.parse_error(503, b"").message == "upstream answered HTTP 503"
    assert fmt.parse_error(400, b'{"error": "plain text"}').message == "plain text"
    detailed = fmt.parse_error(400, orjson.dumps({"type": "error", "error": {
        "type": "invalid_request_error", "message": "m", "details": {"error_code": "prompt_too_long"}}}))
    assert detailed.code == "prompt_too_long" and detailed.kind == "invalid_request"
    overloaded = fmt.parse_error(500, b'{"type":"error","error":{"type":"overloaded_error","message":"x"}}')
    assert overloaded.kind == "overloaded" and overloaded.status == 500
    assert fmt.parse_error(429, b"[1,2]").status == 429


def test_thinking_stays_off_for_a_tool_turn_without_its_signed_thinking() -> None:
    call = ir.ToolCall("toolu_1", "f", "{}")
    result = ir.Message("tool", [ir.ToolResult("toolu_1", [ir.Text("r")])])
    config = ir.ReasoningConfig(effort="medium")
    unsigned = ir.Request(model="m", reasoning=config, max_tokens=20000, messages=[
        ir.Message("user", [ir.Text("q")]), ir.Message("assistant", [ir.Reasoning("thought", None), call]), result])
    assert "thinking" not in fmt.render_request(unsigned, "m")
    signed = ir.Request(model="m", reasoning=config, max_tokens=20000, messages=[
        ir.Message("user", [ir.Text("q")]),
        ir.Message("assistant", [ir.Reasoning("thought", "sig", origin="anthropic"), call]), result])
    body = fmt.render_request(signed, "m")
    assert body["thinking"]["type"] == "enabled"
    assert body["messages"][1]["content"][0] == {"type": "thinking", "thinking": "thought", "signature": "sig"}

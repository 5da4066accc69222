"""crossroute.formats.openai_responses: requests, responses, streams and errors,
checked against the official openai SDK's own models and stream helper."""

from __future__ import annotations

from typing import Any

import httpx2
import openai
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openai.types.responses import Response as SDKResponse
from openai.types.responses import ResponseInputItemParam, ResponseItem, ResponseStreamEvent, ToolParam
from pydantic import TypeAdapter

from crossroute import ir
from crossroute.formats import openai_responses as fmt
from crossroute.sse import SSEParser
from tests.chunking import split_at

STREAM_EVENT = TypeAdapter(ResponseStreamEvent)
INPUT_ITEM_PARAM = TypeAdapter(ResponseInputItemParam)
TOOL_PARAM = TypeAdapter(ToolParam)
LISTED_ITEM = TypeAdapter(ResponseItem)
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# ---------------------------------------------------------------- helpers


def sse(*payloads: dict[str, Any]) -> bytes:
    return b"".join(
        b"event: " + p["type"].encode() + b"\ndata: " + orjson.dumps(p) + b"\n\n" for p in payloads
    )




def decode(chunks: list[bytes]) -> list[ir.Event]:
    decoder = fmt.StreamDecoder()
    events: list[ir.Event] = []
    for chunk in chunks:
        events.extend(decoder.feed(chunk))
    events.extend(decoder.close())
    return events


def encode(req: ir.Request, events: list[ir.Event], *, close: bool = True) -> bytes:
    encoder = fmt.StreamEncoder(req)
    out = b"".join(encoder.encode(e) for e in events)
    return out + (encoder.close() if close else b"")


def client_events(data: bytes) -> list[dict[str, Any]]:
    """What a client sees: every frame parsed, with its `event:` name checked."""
    parser = SSEParser()
    frames = parser.feed(data) + parser.close()
    payloads = []
    for frame in frames:
        payload = orjson.loads(frame.data)
        assert frame.event == payload["type"]
        payloads.append(payload)
    return payloads


def sdk_client(handler: Any) -> openai.OpenAI:
    http = httpx2.Client(transport=httpx2.MockTransport(handler))
    return openai.OpenAI(api_key="sk-test", base_url="http://gateway.test/v1", http_client=http, max_retries=0)


def sdk_stream(data: bytes) -> tuple[list[Any], Any]:
    """Feed our bytes through `client.responses.stream()`: it raises on a wrong event order."""

    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=data)

    with sdk_client(handler).responses.stream(model="m", input="hi") as stream:
        events = list(stream)
        return events, stream.get_final_response()


def request(**kwargs: Any) -> ir.Request:
    base: dict[str, Any] = {"model": "gpt-x", "source_format": "openai-responses"}
    return ir.Request(**{**base, **kwargs})


# ---------------------------------------------------------------- parse_request

CODEX_BODY: dict[str, Any] = {
    "model": "gpt-5.5",
    "input": [
        {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "You are Codex."}]},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "fix the bug"}]},
        {
            "type": "reasoning",
            "id": "rs_1",
            "summary": [{"type": "summary_text", "text": "Look"}, {"type": "summary_text", "text": "Then fix"}],
            "encrypted_content": "ENC1",
        },
        {"type": "message", "role": "assistant", "id": "msg_1",
         "content": [{"type": "output_text", "text": "Reading.", "annotations": []}]},
        {"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "shell",
         "arguments": "{\"cmd\":\"ls\"}", "status": "completed"},
        {"type": "custom_tool_call", "id": "ctc_1", "call_id": "call_2", "name": "apply_patch",
         "input": "*** Begin Patch"},
        {"type": "function_call", "call_id": "call_3", "name": "spawn_agent", "namespace": "multi_agent_v1",
         "arguments": "{}"},
        {"type": "function_call_output", "call_id": "call_1", "output": "a.py"},
        {"type": "custom_tool_call_output", "call_id": "call_2", "output": "Done"},
        {"type": "function_call_output", "call_id": "call_3",
         "output": [{"type": "input_text", "text": "spawned"},
                    {"type": "input_image", "image_url": "data:image/png;base64,AAAA", "detail": "low"}]},
        {"type": "item_reference", "id": "msg_0"},
        {"type": "web_search_call", "id": "ws_1", "status": "completed"},
        {"type": "message", "role": "user", "content": "thanks"},
    ],
    "tools": [
        {"type": "function", "name": "shell", "description": "Run", "strict": False,
         "parameters": {"type": "object", "properties": {"cmd": {"type": "string"}}}},
        {"type": "custom", "name": "apply_patch", "description": "Patch",
         "format": {"type": "grammar", "syntax": "lark", "definition": "start: /.+/"}},
        {"type": "namespace", "name": "multi_agent_v1", "description": "Agents",
         "tools": [{"type": "function", "name": "spawn_agent", "parameters": {"type": "object"}, "strict": False,
                    "defer_loading": True}]},
        {"type": "tool_search", "execution": "client"},
        {"type": "web_search", "external_web_access": False},
    ],
    "tool_choice": "auto",
    "parallel_tool_calls": True,
    "reasoning": {"effort": "high", "summary": "auto"},
    "store": False,
    "stream": True,
    "include": ["reasoning.encrypted_content"],
    "prompt_cache_key": "thread-1",
    "text": {"verbosity": "low"},
    "client_metadata": {"session": "s"},
}


def codex_messages() -> list[ir.Message]:
    return [
        ir.Message("user", [ir.Text("fix the bug")]),
        ir.Message("assistant", [
            ir.Reasoning("Look\n\nThen fix", "ENC1", "openai", id="rs_1"),
            ir.Text("Reading."),
            ir.ToolCall("call_1", "shell", "{\"cmd\":\"ls\"}"),
            ir.ToolCall("call_2", "apply_patch", "*** Begin Patch", "custom"),
            ir.ToolCall("call_3", "spawn_agent", "{}"),
        ]),
        ir.Message("tool", [
            ir.ToolResult("call_1", [ir.Text("a.py")], name="shell"),
            ir.ToolResult("call_2", [ir.Text("Done")], name="apply_patch"),
            ir.ToolResult("call_3", [ir.Text("spawned"), ir.Image(url="data:image/png;base64,AAAA", detail="low")],
                          name="spawn_agent"),
        ]),
        ir.Message("user", [ir.Text("thanks")]),
    ]


def test_parse_codex_request() -> None:
    req = fmt.parse_request(CODEX_BODY)
    assert req.model == "gpt-5.5"
    assert req.source_format == "openai-responses"
    assert req.system == [ir.Text("You are Codex.")]
    assert req.messages == codex_messages()
    assert [(t.name, t.kind) for t in req.tools] == [
        ("shell", "function"), ("apply_patch", "custom"), ("spawn_agent", "function"),
    ]
    assert req.tools[0].strict is False and req.tools[0].parameters == CODEX_BODY["tools"][0]["parameters"]
    assert req.tools[1].custom_format == CODEX_BODY["tools"][1]["format"]
    assert req.tool_choice == ir.ToolChoice("auto")
    assert req.parallel_tool_calls is True
    assert req.reasoning == ir.ReasoningConfig(effort="high", summary=True)
    assert req.stream is True
    assert req.response_format is None
    assert req.extras["hosted_tools"] == CODEX_BODY["tools"][3:]
    assert req.extras["tool_namespaces"] == [CODEX_BODY["tools"][2]]
    for key in ("store", "include", "prompt_cache_key", "client_metadata"):
        assert req.extras[key] == CODEX_BODY[key]
    assert req.extras["text"] == {"verbosity": "low"}
    assert "input" not in req.extras and "model" not in req.extras


def test_parse_instructions_string_input_and_scalars() -> None:
    req = fmt.parse_request({
        "model": "m", "instructions": "Be brief.", "input": "hello", "max_output_tokens": 300,
        "temperature": 0.2, "top_p": 1, "user": "u1", "previous_response_id": "resp_9", "metadata": {"a": "b"},
        "text": {"format": {"type": "json_schema", "name": "out", "schema": {"type": "object"}, "strict": True}},
    })
    assert req.system == [ir.Text("Be brief.")]
    assert req.messages == [ir.Message("user", [ir.Text("hello")])]
    assert (req.max_tokens, req.temperature, req.top_p, req.user) == (300, 0.2, 1.0, "u1")
    assert req.response_format == ir.ResponseFormat("json_schema", {"type": "object"}, "out", True)
    assert req.extras == {"previous_response_id": "resp_9", "metadata": {"a": "b"}}
    assert req.stream is False


def test_leading_system_items_hoisted_later_ones_kept_in_place() -> None:
    req = fmt.parse_request({"model": "m", "input": [
        {"role": "system", "content": "S1"},
        {"role": "developer", "content": [{"type": "input_text", "text": "S2"}]},
        {"role": "user", "content": "q"},
        {"role": "developer", "content": "late"},
    ]})
    assert req.system == [ir.Text("S1"), ir.Text("S2")]
    assert req.messages == [ir.Message("user", [ir.Text("q")]), ir.Message("system", [ir.Text("late")])]


def test_reasoning_without_following_text_starts_assistant_turn_after_tool_output() -> None:
    req = fmt.parse_request({"model": "m", "input": [
        {"role": "user", "content": "q"},
        {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "output": "r"},
        {"type": "reasoning", "id": "rs_2", "summary": [], "encrypted_content": "E2"},
        {"type": "function_call", "call_id": "c2", "name": "f", "arguments": "{\"x\":1}"},
    ]})
    assert [m.role for m in req.messages] == ["user", "assistant", "tool", "assistant"]
    assert req.messages[3].parts == [ir.Reasoning("", "E2", "openai", id="rs_2"), ir.ToolCall("c2", "f", "{\"x\":1}")]


def test_replayed_foreign_signatures_keep_their_origin() -> None:
    anthropic_sig = ir.signature_for_client("SIG", "anthropic", "openai")
    redacted = ir.signature_for_client("DATA", "anthropic", "openai")
    req = fmt.parse_request({"model": "m", "input": [
        {"role": "user", "content": "q"},
        {"type": "reasoning", "id": "rs_a", "summary": [{"type": "summary_text", "text": "hm"}],
         "encrypted_content": anthropic_sig},
        {"type": "reasoning", "id": "rs_redacted_x", "summary": [], "encrypted_content": redacted},
        {"type": "reasoning", "id": "rs_raw", "summary": [], "content": [{"type": "reasoning_text", "text": "raw"}]},
    ]})
    assert req.messages[1].parts == [
        ir.Reasoning("hm", "SIG", "anthropic", id="rs_a"),
        ir.Reasoning("", "DATA", "anthropic", redacted=True, id="rs_redacted_x"),
        ir.Reasoning("raw", None, None, id="rs_raw"),
    ]


def test_input_file_and_image_parts() -> None:
    req = fmt.parse_request({"model": "m", "input": [{"role": "user", "content": [
        {"type": "input_image", "image_url": "https://x/y.png", "detail": "high"},
        {"type": "input_file", "filename": "a.pdf", "file_data": "JVBERi0="},
        {"type": "input_file", "file_data": "data:application/pdf;base64,JVBERi0="},
    ]}]})
    assert req.messages[0].parts == [
        ir.Image(url="https://x/y.png", detail="high"),
        ir.Image(data="JVBERi0=", media_type="application/pdf"),
        ir.Image(url="data:application/pdf;base64,JVBERi0="),
    ]


@pytest.mark.parametrize(
    ("choice", "expected", "kept"),
    [
        ("none", ir.ToolChoice("none"), False),
        ("required", ir.ToolChoice("required"), False),
        ({"type": "function", "name": "f"}, ir.ToolChoice("tool", "f"), False),
        ({"type": "custom", "name": "apply_patch"}, ir.ToolChoice("tool", "apply_patch"), False),
        ({"type": "allowed_tools", "mode": "required", "tools": [{"type": "function", "name": "f"}]},
         ir.ToolChoice("tool", "f"), True),
        ({"type": "allowed_tools", "mode": "auto", "tools": [{"type": "function", "name": "f"}]},
         ir.ToolChoice("auto"), True),
        ({"type": "web_search"}, ir.ToolChoice("auto"), True),
    ],
)
def test_tool_choice(choice: Any, expected: ir.ToolChoice, kept: bool) -> None:
    req = fmt.parse_request({"model": "m", "input": "q", "tool_choice": choice})
    assert req.tool_choice == expected
    assert ("tool_choice" in req.extras) is kept


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"input": "q"}, "model"),
        ({"model": 5, "input": "q"}, "model"),
        ({"model": "m", "input": 3}, "input"),
        ({"model": "m", "input": ["x"]}, "input[0]"),
        ({"model": "m", "input": [{"role": "robot", "content": "x"}]}, "input[0].role"),
        ({"model": "m", "input": [{"role": "user", "content": [{"type": "input_audio"}]}]}, "input[0].content[0].type"),
        ({"model": "m", "input": [{"role": "user", "content": [{"type": "input_text"}]}]}, "input[0].content[0].text"),
        ({"model": "m", "input": [{"role": "user", "content": [{"type": "input_image", "file_id": "f"}]}]},
         "input[0].content[0].image_url"),
        ({"model": "m", "input": [{"type": "function_call", "name": "f"}]}, "input[0].call_id"),
        ({"model": "m", "input": [{"type": "function_call", "call_id": "c", "name": "f", "arguments": 3}]},
         "input[0].arguments"),
        ({"model": "m", "input": [{"type": "function_call_output", "output": "x"}]}, "input[0].call_id"),
        ({"model": "m", "input": [{"type": "function_call_output", "call_id": "c", "output": 7}]}, "input[0].output"),
        ({"model": "m", "input": [{"type": "reasoning", "encrypted_content": 1}]}, "input[0].encrypted_content"),
        ({"model": "m", "input": [{"content": "no role or type"}]}, "input[0].type"),
        ({"model": "m", "tools": {}}, "tools"),
        ({"model": "m", "tools": [{"type": "function"}]}, "tools[0].name"),
        ({"model": "m", "tools": [{"type": "function", "name": "f", "parameters": "x"}]}, "tools[0].parameters"),
        ({"model": "m", "tools": [{"name": "f"}]}, "tools[0].type"),
        ({"model": "m", "tool_choice": "sometimes"}, "tool_choice"),
        ({"model": "m", "tool_choice": {"type": "function"}}, "tool_choice.name"),
        ({"model": "m", "reasoning": {"effort": "extreme"}}, "reasoning.effort"),
        ({"model": "m", "reasoning": "high"}, "reasoning"),
        ({"model": "m", "max_output_tokens": "10"}, "max_output_tokens"),
        ({"model": "m", "max_output_tokens": True}, "max_output_tokens"),
        ({"model": "m", "temperature": "hot"}, "temperature"),
        ({"model": "m", "stream": "yes"}, "stream"),
        ({"model": "m", "text": {"format": {"type": "xml"}}}, "text.format.type"),
        ({"model": "m", "instructions": ["a"]}, "instructions"),
    ],
)
def test_bad_requests_are_400_with_param(body: dict[str, Any], param: str) -> None:
    with pytest.raises(ir.GatewayError) as caught:
        fmt.parse_request(body)
    assert caught.value.status == 400
    assert caught.value.param == param


def test_body_must_be_an_object() -> None:
    with pytest.raises(ir.GatewayError) as caught:
        fmt.parse_request(["not", "a", "dict"])
    assert caught.value.status == 400


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)
ITEM_KEYS = ["type", "role", "content", "call_id", "name", "arguments", "input", "output", "summary",
             "encrypted_content", "id", "text", "image_url", "file_data"]
ITEM_TYPES = ["message", "function_call", "custom_tool_call", "function_call_output", "reasoning",
              "custom_tool_call_output", "input_text", "input_image", None]


@st.composite
def junk_items(draw: st.DrawFn) -> dict[str, Any]:
    item = draw(st.dictionaries(st.sampled_from(ITEM_KEYS), JSON, max_size=5))
    kind = draw(st.sampled_from(ITEM_TYPES))
    if kind is not None:
        item["type"] = kind
    if draw(st.booleans()):
        item["content"] = [draw(st.dictionaries(st.sampled_from(ITEM_KEYS), JSON | st.sampled_from(ITEM_TYPES)))]
    return item


@SETTINGS
@given(
    fields=st.dictionaries(
        st.sampled_from(["input", "tools", "tool_choice", "reasoning", "text", "max_output_tokens", "temperature",
                         "top_p", "instructions", "stream", "parallel_tool_calls", "user", "store"]),
        JSON,
        max_size=4,
    ),
    items=st.lists(junk_items(), max_size=4),
)
def test_untrusted_input_only_ever_raises_400(fields: dict[str, Any], items: list[dict[str, Any]]) -> None:
    for body in ({"model": "m", **fields}, {"model": "m", "input": items}):
        try:
            req = fmt.parse_request(body)
        except ir.GatewayError as err:
            assert err.status == 400 and err.message
        else:
            fmt.render_request(req, "up")  # whatever parsed can be rendered
            fmt.render_input_items(req.messages)
            fmt.render_response(ir.Response("r", "m", [ir.Text("x")]), req)


# ---------------------------------------------------------------- render_request


def test_render_request_same_format_restores_everything() -> None:
    req = fmt.parse_request(CODEX_BODY)
    body = fmt.render_request(req, "gpt-up")
    assert body["model"] == "gpt-up"
    assert "instructions" in body and body["instructions"] == "You are Codex."
    assert body["store"] is False and body["stream"] is True
    assert body["include"] == ["reasoning.encrypted_content"]
    assert body["prompt_cache_key"] == "thread-1" and body["client_metadata"] == {"session": "s"}
    assert body["text"] == {"verbosity": "low"}
    assert body["reasoning"] == {"effort": "high", "summary": "auto"}
    assert body["tool_choice"] == "auto" and body["parallel_tool_calls"] is True
    assert body["tools"] == [
        {"type": "function", "name": "shell", "description": "Run",
         "parameters": CODEX_BODY["tools"][0]["parameters"], "strict": False},
        {"type": "custom", "name": "apply_patch", "description": "Patch", "format": CODEX_BODY["tools"][1]["format"]},
        CODEX_BODY["tools"][2], CODEX_BODY["tools"][3], CODEX_BODY["tools"][4],
    ]
    kinds = [(i["type"], i.get("role")) for i in body["input"]]
    assert kinds == [
        ("message", "user"), ("reasoning", None), ("message", "assistant"), ("function_call", None),
        ("custom_tool_call", None), ("function_call", None), ("function_call_output", None),
        ("custom_tool_call_output", None), ("function_call_output", None), ("message", "user"),
    ]
    assert body["input"][1] == {"id": "rs_1", "type": "reasoning", "encrypted_content": "ENC1",
                                "summary": [{"type": "summary_text", "text": "Look\n\nThen fix"}]}
    assert body["input"][2] == {"type": "message", "role": "assistant", "content": "Reading."}
    assert body["input"][5]["namespace"] == "multi_agent_v1"
    assert body["input"][7] == {"type": "custom_tool_call_output", "call_id": "call_2", "output": "Done"}
    assert body["input"][8]["output"] == [
        {"type": "input_text", "text": "spawned"},
        {"type": "input_image", "image_url": "data:image/png;base64,AAAA", "detail": "low"},
    ]
    for item in body["input"]:
        INPUT_ITEM_PARAM.validate_python(item)
    for tool in body["tools"]:
        TOOL_PARAM.validate_python(tool)


def test_render_request_never_forwards_gateway_state() -> None:
    req = fmt.parse_request({**CODEX_BODY, "store": True, "previous_response_id": "resp_ours"})
    body = fmt.render_request(req, "gpt-up")
    assert body["store"] is False and "previous_response_id" not in body


def test_render_request_round_trips_through_parse() -> None:
    req = fmt.parse_request(CODEX_BODY)
    again = fmt.parse_request(fmt.render_request(req, "gpt-5.5"))
    assert again.messages == req.messages
    assert again.system == req.system
    assert again.tools == req.tools
    assert again.reasoning == req.reasoning


def test_render_request_from_another_format() -> None:
    req = ir.Request(
        model="claude",
        source_format="anthropic",
        system=[ir.Text("A"), ir.Text("B")],
        messages=[
            ir.Message("user", [ir.Text("look"), ir.Image(data="iVBO", media_type="image/png")]),
            ir.Message("assistant", [
                ir.Reasoning("anthropic thoughts", "ASIG", "anthropic"),
                ir.Reasoning("", "GSIG", "gemini"),
                ir.Reasoning("openai thoughts", "OSIG", "openai", id="rs_keep"),
                ir.Reasoning("unsigned chat reasoning"),
                ir.Text("calling"),
                ir.ToolCall("toolu_1", "apply_patch", "patch text", "custom"),
                ir.ToolCall("toolu_2", "read", "{\"p\":1}"),
            ]),
            ir.Message("tool", [
                ir.ToolResult("toolu_1", [ir.Text("ok")]),
                ir.ToolResult("toolu_2", [ir.Text("err")], is_error=True),
            ]),
            ir.Message("system", [ir.Text("mid")]),
        ],
        tools=[ir.Tool("read", None, None), ir.Tool("apply_patch", "p", kind="custom")],
        tool_choice=ir.ToolChoice("tool", "apply_patch"),
        reasoning=ir.ReasoningConfig(budget=3000, summary=True),
        stop=["END"],
        top_k=5,
        max_tokens=1000,
        response_format=ir.ResponseFormat("json_object"),
        user="someone",
        extras={"metadata": {"user_id": "x"}, "store": True},
    )
    body = fmt.render_request(req, "gpt-up")
    assert body["instructions"] == "A\n\nB"
    assert body["store"] is False
    assert "metadata" not in body and "user" not in body and "stop" not in body and "top_k" not in body
    assert body["include"] == ["reasoning.encrypted_content"]
    assert body["reasoning"] == {"effort": "medium", "summary": "auto"}
    assert body["tool_choice"] == {"type": "custom", "name": "apply_patch"}
    assert body["tools"][0] == {"type": "function", "name": "read", "parameters": {"type": "object", "properties": {}},
                                "strict": False}
    assert body["text"] == {"format": {"type": "json_object"}}
    assert body["max_output_tokens"] == 1000
    reasoning_items = [i for i in body["input"] if i["type"] == "reasoning"]
    assert reasoning_items == [{"id": "rs_keep", "type": "reasoning", "encrypted_content": "OSIG",
                                "summary": [{"type": "summary_text", "text": "openai thoughts"}]}]
    assert not any("thoughts" in orjson.dumps(i).decode() for i in body["input"] if i["type"] != "reasoning")
    assert body["input"][0]["content"][1] == {"type": "input_image", "image_url": "data:image/png;base64,iVBO",
                                              "detail": "auto"}
    outputs = [i for i in body["input"] if i["type"].endswith("_output")]
    assert [o["type"] for o in outputs] == ["custom_tool_call_output", "function_call_output"]
    assert body["input"][-1] == {"type": "message", "role": "developer",
                                 "content": [{"type": "input_text", "text": "mid"}]}
    for item in body["input"]:
        INPUT_ITEM_PARAM.validate_python(item)


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        (ir.ReasoningConfig(effort="low"), {"effort": "low", "summary": "auto"}),
        (ir.ReasoningConfig(budget=0), {"effort": "none"}),
        (ir.ReasoningConfig(budget=24000), {"effort": "high", "summary": "auto"}),
        (ir.ReasoningConfig(budget=-1), {"summary": "auto"}),
        (ir.ReasoningConfig(effort="low", summary=False), {"effort": "low"}),
        (ir.ReasoningConfig(effort="auto", summary=True), {"summary": "auto"}),
    ],
)
def test_render_request_reasoning_effort(config: ir.ReasoningConfig, expected: dict[str, Any] | None) -> None:
    body = fmt.render_request(ir.Request("m", [ir.Message("user", [ir.Text("q")])], reasoning=config), "up")
    assert body.get("reasoning") == expected
    assert body["include"] == ["reasoning.encrypted_content"]


def test_render_request_without_reasoning_has_no_include() -> None:
    body = fmt.render_request(ir.Request("m", [ir.Message("user", [ir.Text("q")])], stream=True), "up")
    assert "include" not in body and "reasoning" not in body and "tools" not in body
    assert body["stream"] is True


# ---------------------------------------------------------------- parse_response / render_response

UPSTREAM_BODY: dict[str, Any] = {
    "id": "resp_up1",
    "object": "response",
    "created_at": 1700000000,
    "status": "completed",
    "model": "gpt-5",
    "output": [
        {"id": "rs_9", "type": "reasoning", "summary": [{"type": "summary_text", "text": "plan"}],
         "encrypted_content": "ENC9"},
        {"id": "msg_9", "type": "message", "role": "assistant", "status": "completed",
         "content": [{"type": "output_text", "text": "Hi ", "annotations": []},
                     {"type": "refusal", "refusal": "no."}]},
        {"id": "fc_9", "type": "function_call", "call_id": "call_9", "name": "f", "arguments": "{\"a\":1}",
         "status": "completed"},
        {"id": "ctc_9", "type": "custom_tool_call", "call_id": "call_10", "name": "apply_patch", "input": "P"},
        {"id": "ws_1", "type": "web_search_call", "status": "completed"},
    ],
    "usage": {"input_tokens": 100, "input_tokens_details": {"cached_tokens": 40, "cache_write_tokens": 5},
              "output_tokens": 30, "output_tokens_details": {"reasoning_tokens": 12}, "total_tokens": 130},
}


def test_parse_response() -> None:
    resp = fmt.parse_response(UPSTREAM_BODY)
    assert (resp.id, resp.model, resp.created) == ("resp_up1", "gpt-5", 1700000000)
    assert resp.parts == [
        ir.Reasoning("plan", "ENC9", "openai", id="rs_9"),
        ir.Text("Hi no."),
        ir.ToolCall("call_9", "f", "{\"a\":1}"),
        ir.ToolCall("call_10", "apply_patch", "P", "custom"),
    ]
    assert resp.stop_reason == "tool_use"
    assert resp.usage == ir.Usage(100, 30, 40, 5, 12)


@pytest.mark.parametrize(
    ("status", "reason", "stop"),
    [("completed", None, "end_turn"), ("incomplete", "max_output_tokens", "max_tokens"),
     ("incomplete", "content_filter", "content_filter")],
)
def test_parse_response_stop_reasons(status: str, reason: str | None, stop: str) -> None:
    body: dict[str, Any] = {"id": "resp_1", "model": "m", "status": status, "output": [],
            "incomplete_details": {"reason": reason} if reason else None}
    assert fmt.parse_response(body).stop_reason == stop


def test_parse_response_failed_and_invalid() -> None:
    with pytest.raises(ir.GatewayError) as caught:
        fmt.parse_response({"status": "failed", "output": [],
                            "error": {"code": "rate_limit_exceeded", "message": "slow down"}})
    assert (caught.value.status, caught.value.code, caught.value.message) == (429, "rate_limit_exceeded", "slow down")
    bad: Any
    for bad in (None, [], {"output": "x"}):
        with pytest.raises(ir.GatewayError) as caught:
            fmt.parse_response(bad)
        assert caught.value.status == 502


def test_parse_response_invents_missing_call_ids() -> None:
    resp = fmt.parse_response({"output": [{"type": "function_call", "name": "f", "arguments": "{}"}]})
    call = resp.tool_calls()[0]
    assert call.id.startswith("call_") and len(call.id) > len("call_")
    assert resp.usage is None


def test_render_response_is_a_valid_sdk_response() -> None:
    req = fmt.parse_request({**CODEX_BODY, "previous_response_id": "resp_prev", "store": True,
                             "instructions": "inst", "temperature": 0.5})
    resp = ir.Response(
        id="msg_from_anthropic",
        model="claude-x",
        parts=[
            ir.Reasoning("thinking", "ASIG", "anthropic"),
            ir.Reasoning("", "DATA", "anthropic", redacted=True),
            ir.Reasoning("", "GSIG", "gemini"),
            ir.Text("Hello "),
            ir.Text("world"),
            ir.ToolCall("toolu_1", "spawn_agent", "{}"),
            ir.ToolCall("toolu_2", "apply_patch", "*** Begin", "custom"),
            ir.Image(url="https://ignored"),
        ],
        stop_reason="tool_use",
        usage=ir.Usage(10, 5, 2, 1, 3),
        created=1234,
    )
    body = fmt.render_response(resp, req)
    sdk = SDKResponse.model_validate(body)
    assert sdk.id == "resp_msg_from_anthropic"
    assert sdk.status == "completed" and sdk.created_at == 1234 and sdk.model == "claude-x"
    assert [o.type for o in sdk.output] == ["reasoning", "reasoning", "reasoning", "message", "function_call",
                                           "custom_tool_call"]
    first, redacted, gemini = body["output"][:3]
    assert first["encrypted_content"] == "anthropic#crx#ASIG" and first["id"].startswith("rs_")
    assert first["summary"] == [{"type": "summary_text", "text": "thinking"}]
    assert redacted["id"].startswith("rs_redacted_") and redacted["summary"] == []
    assert gemini["encrypted_content"] == "gemini#crx#GSIG"
    assert sdk.output_text == "Hello world"
    assert body["output"][3]["id"].startswith("msg_")
    assert body["output"][4]["id"].startswith("fc_") and body["output"][4]["call_id"] == "toolu_1"
    assert body["output"][4]["namespace"] == "multi_agent_v1"
    assert body["output"][5]["id"].startswith("ctc_") and body["output"][5]["input"] == "*** Begin"
    assert sdk.usage is not None
    assert (sdk.usage.input_tokens, sdk.usage.output_tokens, sdk.usage.total_tokens) == (10, 5, 15)
    assert sdk.usage.input_tokens_details.cached_tokens == 2
    assert sdk.usage.input_tokens_details.cache_write_tokens == 1
    assert sdk.usage.output_tokens_details.reasoning_tokens == 3
    assert sdk.instructions == "inst\n\nYou are Codex."
    assert (sdk.previous_response_id, body["store"], sdk.temperature) == ("resp_prev", True, 0.5)
    assert sdk.text is not None and sdk.text.verbosity == "low"
    assert sdk.reasoning is not None and sdk.reasoning.effort == "high"
    assert [t.type for t in sdk.tools] == ["function", "custom", "function", "tool_search", "web_search"]
    assert sdk.tool_choice == "auto" and sdk.parallel_tool_calls is True


def test_render_response_replayed_by_the_client_keeps_signatures() -> None:
    req = fmt.parse_request({"model": "m", "input": "q"})
    resp = ir.Response("r1", "m", [ir.Reasoning("t", "ASIG", "anthropic"), ir.Reasoning("", "D", "anthropic",
                                                                                        redacted=True),
                                   ir.Text("a"), ir.ToolCall("c1", "f", "{}")], "tool_use")
    body = fmt.render_response(resp, req)
    replay = fmt.parse_request({"model": "m", "input": [{"role": "user", "content": "q"}, *body["output"]]})
    parts = replay.messages[1].parts
    assert [type(p).__name__ for p in parts] == ["Reasoning", "Reasoning", "Text", "ToolCall"]
    assert isinstance(parts[0], ir.Reasoning) and (parts[0].signature, parts[0].origin) == ("ASIG", "anthropic")
    assert isinstance(parts[1], ir.Reasoning) and parts[1].redacted and parts[1].signature == "D"


@pytest.mark.parametrize(
    ("stop", "status", "reason"),
    [("max_tokens", "incomplete", "max_output_tokens"), ("content_filter", "incomplete", "content_filter"),
     ("end_turn", "completed", None), ("stop_sequence", "completed", None), ("error", "failed", None)],
)
def test_render_response_status(stop: ir.StopReason, status: str, reason: str | None) -> None:
    body = fmt.render_response(ir.Response("resp_1", "m", [ir.Text("x")], stop), ir.Request("m"))
    sdk = SDKResponse.model_validate(body)
    assert sdk.status == status
    assert (sdk.incomplete_details.reason if sdk.incomplete_details else None) == reason
    assert (sdk.error is not None) is (status == "failed")
    assert sdk.id == "resp_1" and body["usage"] is None


def test_render_then_parse_response_round_trip() -> None:
    resp = ir.Response("resp_x", "m", [
        ir.Reasoning("r", "S", "openai", id="rs_1"), ir.Text("hello"), ir.ToolCall("c", "f", "{\"q\":2}"),
    ], "tool_use", ir.Usage(3, 4, 1, 0, 2), created=99)
    again = fmt.parse_response(fmt.render_response(resp, ir.Request("m")))
    assert again == resp


# ---------------------------------------------------------------- render_input_items


def test_render_input_items_lists_valid_items_that_replay_identically() -> None:
    messages = [*codex_messages(), ir.Message("system", [ir.Text("later")]),
                ir.Message("assistant", [ir.Reasoning("x", "GS", "gemini", id="rs_g"), ir.Text("y")])]
    items = fmt.render_input_items(messages)
    for item in items:
        assert item["id"]
        if item["type"] != "reasoning":
            assert item["status"] == "completed"
        LISTED_ITEM.validate_python(item)
    assert {i["type"] for i in items} == {
        "message", "reasoning", "function_call", "custom_tool_call", "function_call_output", "custom_tool_call_output",
    }
    assert items[-2]["encrypted_content"] == "gemini#crx#GS"
    assert fmt.parse_request({"model": "m", "input": items}).messages == messages


# ---------------------------------------------------------------- StreamDecoder

USAGE = {"input_tokens": 50, "input_tokens_details": {"cached_tokens": 10, "cache_write_tokens": 0},
         "output_tokens": 20, "output_tokens_details": {"reasoning_tokens": 8}, "total_tokens": 70}
CREATED = {"id": "resp_up", "object": "response", "model": "gpt-x", "status": "in_progress", "output": []}


def upstream_transcript() -> bytes:
    """What OpenAI streams for reasoning + text + a function call + a custom call
    (the terminal response has an empty output, as Codex's backend sends it)."""
    ev: list[dict[str, Any]] = [
        {"type": "response.created", "response": CREATED},
        {"type": "response.in_progress", "response": CREATED},
        {"type": "response.output_item.added", "output_index": 0,
         "item": {"id": "rs_a", "type": "reasoning", "summary": []}},
        {"type": "response.reasoning_summary_part.added", "item_id": "rs_a", "output_index": 0, "summary_index": 0,
         "part": {"type": "summary_text", "text": ""}},
        {"type": "response.reasoning_summary_text.delta", "item_id": "rs_a", "output_index": 0, "summary_index": 0,
         "delta": "Think"},
        {"type": "response.reasoning_summary_text.delta", "item_id": "rs_a", "output_index": 0, "summary_index": 0,
         "delta": "ing é"},
        {"type": "response.reasoning_summary_text.done", "item_id": "rs_a", "output_index": 0, "summary_index": 0,
         "text": "Thinking é"},
        {"type": "response.reasoning_summary_text.delta", "item_id": "rs_a", "output_index": 0, "summary_index": 1,
         "delta": "More"},
        {"type": "response.output_item.done", "output_index": 0,
         "item": {"id": "rs_a", "type": "reasoning", "encrypted_content": "ENC",
                  "summary": [{"type": "summary_text", "text": "Thinking é"}, {"type": "summary_text", "text": "More"}]}},
        {"type": "response.output_item.added", "output_index": 1,
         "item": {"id": "msg_a", "type": "message", "role": "assistant", "status": "in_progress", "content": []}},
        {"type": "response.content_part.added", "item_id": "msg_a", "output_index": 1, "content_index": 0,
         "part": {"type": "output_text", "text": "", "annotations": []}},
        {"type": "response.output_text.delta", "item_id": "msg_a", "output_index": 1, "content_index": 0,
         "delta": "Hel", "logprobs": []},
        {"type": "response.output_text.delta", "item_id": "msg_a", "output_index": 1, "content_index": 0,
         "delta": "lo", "logprobs": []},
        {"type": "response.output_text.done", "item_id": "msg_a", "output_index": 1, "content_index": 0,
         "text": "Hello", "logprobs": []},
        {"type": "response.output_item.done", "output_index": 1,
         "item": {"id": "msg_a", "type": "message", "role": "assistant", "status": "completed",
                  "content": [{"type": "output_text", "text": "Hello", "annotations": []}]}},
        {"type": "response.output_item.added", "output_index": 2,
         "item": {"id": "fc_a", "type": "function_call", "call_id": "call_9", "name": "shell", "arguments": ""}},
        {"type": "response.function_call_arguments.delta", "item_id": "fc_a", "output_index": 2, "delta": "{\"a\":"},
        {"type": "response.function_call_arguments.delta", "item_id": "fc_a", "output_index": 2, "delta": "1}"},
        {"type": "response.function_call_arguments.done", "item_id": "fc_a", "output_index": 2, "arguments": "{\"a\":1}"},
        {"type": "response.output_item.done", "output_index": 2,
         "item": {"id": "fc_a", "type": "function_call", "call_id": "call_9", "name": "shell",
                  "arguments": "{\"a\":1}", "status": "completed"}},
        {"type": "response.output_item.added", "output_index": 3,
         "item": {"id": "ctc_a", "type": "custom_tool_call", "call_id": "call_c", "name": "apply_patch", "input": ""}},
        {"type": "response.custom_tool_call_input.delta", "item_id": "ctc_a", "output_index": 3, "delta": "*** Begin"},
        {"type": "response.custom_tool_call_input.done", "item_id": "ctc_a", "output_index": 3, "input": "*** Begin"},
        {"type": "response.output_item.done", "output_index": 3,
         "item": {"id": "ctc_a", "type": "custom_tool_call", "call_id": "call_c", "name": "apply_patch",
                  "input": "*** Begin"}},
        {"type": "response.completed", "response": {**CREATED, "status": "completed", "usage": USAGE}},
    ]
    return sse(*[{**e, "sequence_number": n} for n, e in enumerate(ev)])


EXPECTED_EVENTS: list[ir.Event] = [
    ir.StreamStart("resp_up", "gpt-x"),
    ir.ReasoningDelta("Think", origin="openai", id="rs_a"),
    ir.ReasoningDelta("ing é", origin="openai", id="rs_a"),
    ir.ReasoningDelta("\n\nMore", origin="openai", id="rs_a"),
    ir.ReasoningDelta(signature="ENC", origin="openai", id="rs_a"),
    ir.TextDelta("Hel"),
    ir.TextDelta("lo"),
    ir.ToolCallStart(0, "call_9", "shell"),
    ir.ToolCallDelta(0, "{\"a\":"),
    ir.ToolCallDelta(0, "1}"),
    ir.ToolCallStart(1, "call_c", "apply_patch", "custom"),
    ir.ToolCallDelta(1, "*** Begin"),
    ir.Finish("tool_use", ir.Usage(50, 20, 10, 0, 8)),
]


def test_decoder_transcript() -> None:
    assert decode([upstream_transcript()]) == EXPECTED_EVENTS


@SETTINGS
@given(cuts=st.lists(st.integers(min_value=0), max_size=30), crlf=st.booleans())
def test_decoder_same_events_whatever_the_chunking(cuts: list[int], crlf: bool) -> None:
    data = upstream_transcript()
    if crlf:
        data = data.replace(b"\n", b"\r\n")
    assert decode(split_at(data, cuts)) == EXPECTED_EVENTS


def test_decoder_byte_by_byte() -> None:
    data = upstream_transcript()
    assert decode([data[i : i + 1] for i in range(len(data))]) == EXPECTED_EVENTS


async def test_decoded_stream_collects_like_the_parsed_body() -> None:
    async def events() -> Any:
        for event in EXPECTED_EVENTS:
            yield event

    collected = await ir.collect(events())
    assert collected.parts == [
        ir.Reasoning("Thinking é\n\nMore", "ENC", "openai", id="rs_a"),
        ir.Text("Hello"),
        ir.ToolCall("call_9", "shell", "{\"a\":1}"),
        ir.ToolCall("call_c", "apply_patch", "*** Begin", "custom"),
    ]
    body = {"id": "resp_up", "model": "gpt-x", "status": "completed", "usage": USAGE, "output": [
        {"id": "rs_a", "type": "reasoning", "encrypted_content": "ENC",
         "summary": [{"type": "summary_text", "text": "Thinking é"}, {"type": "summary_text", "text": "More"}]},
        {"type": "message", "content": [{"type": "output_text", "text": "Hello"}]},
        {"type": "function_call", "call_id": "call_9", "name": "shell", "arguments": "{\"a\":1}"},
        {"type": "custom_tool_call", "call_id": "call_c", "name": "apply_patch", "input": "*** Begin"},
    ]}
    parsed = fmt.parse_response(body)
    assert parsed.parts == collected.parts
    assert (parsed.stop_reason, parsed.usage) == (collected.stop_reason, collected.usage)


def test_decoder_uses_done_values_only_without_deltas() -> None:
    data = sse(
        {"type": "response.created", "response": CREATED},
        {"type": "response.output_item.added", "output_index": 0,
         "item": {"id": "fc_1", "type": "function_call", "name": "f", "arguments": ""}},
        {"type": "response.function_call_arguments.done", "item_id": "fc_1", "output_index": 0, "arguments": "{\"x\":2}"},
        {"type": "response.output_item.done", "output_index": 0,
         "item": {"id": "fc_1", "type": "function_call", "name": "f", "arguments": "{\"x\":2}"}},
        {"type": "response.output_item.added", "output_index": 1,
         "item": {"id": "msg_1", "type": "message", "role": "assistant", "content": []}},
        {"type": "response.output_item.done", "output_index": 1,
         "item": {"id": "msg_1", "type": "message", "content": [{"type": "output_text", "text": "whole"}]}},
        {"type": "response.output_item.done", "output_index": 2,
         "item": {"id": "rs_z", "type": "reasoning", "summary": [{"type": "summary_text", "text": "late"}]}},
        {"type": "response.completed", "response": {**CREATED, "status": "completed"}},
    )
    events = decode([data])
    start = events[1]
    assert isinstance(start, ir.ToolCallStart) and start.id.startswith("call_") and start.index == 0
    assert events[2:] == [
        ir.ToolCallDelta(0, "{\"x\":2}"),
        ir.TextDelta("whole"),
        ir.ReasoningDelta("late", origin="openai", id="rs_z"),
        ir.Finish("tool_use", None),
    ]


def test_decoder_falls_back_to_terminal_output_when_no_item_streamed() -> None:
    data = sse(
        {"type": "response.created", "response": CREATED},
        {"type": "response.incomplete", "response": {
            **CREATED, "status": "incomplete", "incomplete_details": {"reason": "max_output_tokens"},
            "output": [{"type": "message", "content": [{"type": "output_text", "text": "cut"}]}]}},
    )
    assert decode([data]) == [ir.StreamStart("resp_up", "gpt-x"), ir.TextDelta("cut"), ir.Finish("max_tokens", None)]


@pytest.mark.parametrize(
    ("terminal", "status", "code", "message"),
    [
        ({"type": "response.failed", "response": {**CREATED, "status": "failed",
                                                   "error": {"code": "rate_limit_exceeded", "message": "slow"}}},
         429, "rate_limit_exceeded", "slow"),
        ({"type": "response.failed", "response": {**CREATED, "status": "failed",
                                                   "error": {"code": "server_error", "message": "boom"}}},
         500, "server_error", "boom"),
        ({"type": "error", "code": "invalid_prompt", "message": "bad", "param": None}, 400, "invalid_prompt", "bad"),
        ({"type": "error", "message": "odd"}, 500, None, "odd"),
    ],
)
def test_decoder_errors(terminal: dict[str, Any], status: int, code: str | None, message: str) -> None:
    data = sse({"type": "response.created", "response": CREATED},
               {"type": "response.output_text.delta", "item_id": "x", "output_index": 0, "delta": "a"}, terminal)
    events = decode([data, sse({"type": "response.completed", "response": CREATED})])
    assert isinstance(events[-1], ir.StreamError)
    assert (events[-1].error.status, events[-1].error.code, events[-1].error.message) == (status, code, message)
    assert sum(isinstance(e, ir.StreamError | ir.Finish) for e in events) == 1


def test_decoder_eof_without_terminal_is_502() -> None:
    data = sse({"type": "response.created", "response": CREATED})
    events = decode([data[:-1]])  # also cut the last blank line
    assert events[0] == ir.StreamStart("resp_up", "gpt-x")
    assert isinstance(events[-1], ir.StreamError) and events[-1].error.status == 502
    empty = decode([b""])
    assert len(empty) == 1 and isinstance(empty[0], ir.StreamError)


def test_decoder_ignores_noise_and_unknown_events() -> None:
    data = (b": keep-alive\n\n" + b"data: not json\n\n" + sse(
        {"type": "response.created", "response": CREATED},
        {"type": "response.web_search_call.searching", "item_id": "ws", "output_index": 0},
        {"type": "response.output_text.delta", "item_id": "nope", "output_index": 9, "delta": "x"},
        {"type": "response.completed", "response": {**CREATED, "status": "completed"}},
    ))
    assert decode([data]) == [ir.StreamStart("resp_up", "gpt-x"), ir.TextDelta("x"), ir.Finish("end_turn", None)]


# ---------------------------------------------------------------- StreamEncoder


def test_encoder_text_event_order_and_sdk_final_response() -> None:
    req = request()
    data = encode(req, [ir.StreamStart("resp_1", "gpt-x"), ir.TextDelta("Hel"), ir.TextDelta(""),
                        ir.TextDelta("lo"), ir.Finish("end_turn", ir.Usage(5, 2))])
    payloads = client_events(data)
    assert [p["type"] for p in payloads] == [
        "response.created", "response.in_progress", "response.output_item.added", "response.content_part.added",
        "response.output_text.delta", "response.output_text.delta", "response.output_text.done",
        "response.content_part.done", "response.output_item.done", "response.completed",
    ]
    assert [p["sequence_number"] for p in payloads] == list(range(len(payloads)))
    for payload in payloads:
        STREAM_EVENT.validate_python(payload)
    assert payloads[2]["item"]["status"] == "in_progress" and payloads[8]["item"]["status"] == "completed"
    _, final = sdk_stream(data)
    assert final.id == "resp_1" and final.status == "completed" and final.output_text == "Hello"
    assert final.usage is not None and final.usage.total_tokens == 7


def test_encoder_reasoning_calls_and_signatures_through_the_sdk() -> None:
    req = fmt.parse_request({**CODEX_BODY, "stream": True})
    events: list[ir.Event] = [
        ir.StreamStart("msg_01", "claude-x"),
        ir.ReasoningDelta("let me "),
        ir.ReasoningDelta("think"),
        ir.ReasoningDelta(signature="ASIG", origin="anthropic"),
        ir.ReasoningDelta(signature="RDATA", origin="anthropic", redacted=True),
        ir.ReasoningDelta(signature="GSIG", origin="gemini"),
        ir.TextDelta("Running."),
        ir.ToolCallStart(0, "toolu_1", "spawn_agent"),
        ir.ToolCallStart(1, "toolu_2", "shell"),
        ir.ToolCallDelta(0, "{\"n\":"),
        ir.ToolCallDelta(1, "{}"),
        ir.ToolCallDelta(0, "1}"),
        ir.ToolCallStart(2, "toolu_3", "apply_patch", "custom"),
        ir.ToolCallDelta(2, "*** Begin Patch"),
        ir.Finish("tool_use", ir.Usage(100, 40, 0, 0, 10)),
    ]
    data = encode(req, events)
    payloads = client_events(data)
    for payload in payloads:
        STREAM_EVENT.validate_python(payload)
    added = [p["item"]["type"] for p in payloads if p["type"] == "response.output_item.added"]
    done = [p["item"] for p in payloads if p["type"] == "response.output_item.done"]
    assert added == ["reasoning", "reasoning", "reasoning", "message", "function_call", "function_call",
                     "custom_tool_call"]
    assert [d["type"] for d in done] == added
    assert done[0]["summary"] == [{"type": "summary_text", "text": "let me think"}]
    assert done[0]["encrypted_content"] == "anthropic#crx#ASIG"
    assert done[1]["id"].startswith("rs_redacted_") and done[1]["summary"] == []
    assert done[2]["encrypted_content"] == "gemini#crx#GSIG" and done[2]["summary"] == []
    assert done[4] | {"id": None} == {"id": None, "type": "function_call", "call_id": "toolu_1", "name": "spawn_agent",
                                      "arguments": "{\"n\":1}", "status": "completed", "namespace": "multi_agent_v1"}
    assert done[6]["input"] == "*** Begin Patch"
    arg_deltas = [(p["output_index"], p["delta"]) for p in payloads
                  if p["type"] == "response.function_call_arguments.delta"]
    assert arg_deltas == [(4, "{\"n\":"), (5, "{}"), (4, "1}")]

    sdk_events, final = sdk_stream(data)
    assert final.id == "resp_msg_01" and final.model == "claude-x"
    assert [o.type for o in final.output] == added
    assert final.output_text == "Running."
    assert sdk_events[-1].type == "response.completed"

    # a Responses client replaying this turn hands every signature back to its family
    replay = fmt.parse_request({"model": "m", "input": [{"role": "user", "content": "q"}, *done]})
    reasoning = [p for p in replay.messages[1].parts if isinstance(p, ir.Reasoning)]
    assert [(r.signature, r.origin, r.redacted) for r in reasoning] == [
        ("ASIG", "anthropic", False), ("RDATA", "anthropic", True), ("GSIG", "gemini", False),
    ]


def test_encoder_keeps_openai_reasoning_ids_and_splits_items_by_id() -> None:
    data = encode(request(), [
        ir.StreamStart("resp_2", "m"),
        ir.ReasoningDelta("a", id="rs_1", origin="openai"),
        ir.ReasoningDelta("b", id="rs_2", origin="openai"),
        ir.ReasoningDelta(signature="S2", id="rs_2", origin="openai"),
        ir.Finish("end_turn"),
    ])
    done = [p["item"] for p in client_events(data) if p["type"] == "response.output_item.done"]
    assert [(d["id"], d["summary"][0]["text"], d.get("encrypted_content")) for d in done] == [
        ("rs_1", "a", None), ("rs_2", "b", "S2"),
    ]


@pytest.mark.parametrize(
    ("stop", "terminal", "reason"),
    [("max_tokens", "response.incomplete", "max_output_tokens"),
     ("content_filter", "response.incomplete", "content_filter"),
     ("end_turn", "response.completed", None)],
)
def test_encoder_terminal_events(stop: ir.StopReason, terminal: str, reason: str | None) -> None:
    data = encode(request(), [ir.StreamStart("resp_3", "m"), ir.TextDelta("partial"), ir.Finish(stop)])
    payloads = client_events(data)
    last = payloads[-1]
    assert last["type"] == terminal
    STREAM_EVENT.validate_python(last)
    assert (last["response"]["incomplete_details"] or {}).get("reason") == reason
    assert last["response"]["output"][0]["content"][0]["text"] == "partial"
    sdk_events, _ = sdk_stream(data) if terminal == "response.completed" else (list(_sdk_events(data)), None)
    assert sdk_events[-1].type == terminal


def _sdk_events(data: bytes) -> list[Any]:
    """Iterate the SDK's stream helper without asking for a final response."""

    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=data)

    with sdk_client(handler).responses.stream(model="m", input="hi") as stream:
        return list(stream)


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (ir.GatewayError(429, "slow down"), "rate_limit_exceeded"),
        (ir.GatewayError(500, "boom"), "server_error"),
        (ir.GatewayError(400, "too long", code="context_length_exceeded"), "invalid_prompt"),
        (ir.GatewayError(400, "bad pic", code="invalid_image"), "invalid_image"),
    ],
)
def test_encoder_stream_error_ends_with_response_failed(error: ir.GatewayError, code: str) -> None:
    encoder = fmt.StreamEncoder(request())
    data = encoder.encode(ir.StreamStart("resp_4", "m")) + encoder.encode(ir.TextDelta("half"))
    data += encoder.encode(ir.StreamError(error))
    assert encoder.encode(ir.TextDelta("late")) == b"" and encoder.close() == b""
    payloads = client_events(data)
    last = payloads[-1]
    assert last["type"] == "response.failed" and not any(p["type"] == "response.completed" for p in payloads)
    STREAM_EVENT.validate_python(last)
    assert last["response"]["error"] == {"code": code, "message": error.message}
    assert last["response"]["status"] == "failed" and last["response"]["output"] == []
    assert _sdk_events(data)[-1].type == "response.failed"


def test_encoder_close_without_finish_fails_the_response() -> None:
    encoder = fmt.StreamEncoder(request())
    data = encoder.encode(ir.ToolCallStart(0, "c1", "f")) + encoder.encode(ir.ToolCallDelta(0, "{"))
    data += encoder.close()
    payloads = client_events(data)
    assert payloads[0]["type"] == "response.created"  # started lazily, without a StreamStart
    assert payloads[-1]["type"] == "response.failed"
    assert payloads[-1]["response"]["error"]["code"] == "server_error"
    assert encoder.response_id is not None and encoder.response_id.startswith("resp_")
    assert payloads[-1]["response"]["id"] == encoder.response_id


def test_encoder_close_after_finish_adds_nothing_and_ids_are_prefixed() -> None:
    encoder = fmt.StreamEncoder(request())
    assert encoder.response_id is None
    encoder.encode(ir.StreamStart("chatcmpl-9", "m"))
    assert encoder.response_id == "resp_chatcmpl-9"
    encoder.encode(ir.Finish("end_turn"))
    assert encoder.close() == b""


def test_encoder_error_before_anything_still_starts_the_response() -> None:
    encoder = fmt.StreamEncoder(request())
    payloads = client_events(encoder.encode(ir.StreamError(ir.GatewayError(503, "down"))))
    assert [p["type"] for p in payloads] == ["response.created", "response.in_progress", "response.failed"]
    assert _sdk_events(b"".join(sse(p) for p in payloads))[-1].type == "response.failed"


# ---------------------------------------------------------------- encoder -> decoder round trip

ARGUMENTS = st.dictionaries(st.text(max_size=4), st.integers(-(2**53), 2**53) | st.text(max_size=6), max_size=3).map(
    lambda d: orjson.dumps(d).decode()
)


@st.composite
def responses(draw: st.DrawFn) -> ir.Response:
    parts: list[ir.Part] = []
    for n in range(draw(st.integers(0, 6))):
        kind = draw(st.sampled_from(["text", "reasoning", "call", "custom"]))
        if kind == "text":
            parts.append(ir.Text(draw(st.text(min_size=1, max_size=20))))
        elif kind == "reasoning":
            # always signed: ir.Collector joins an unsigned block with whatever reasoning follows
            text, signature = draw(st.text(max_size=20)), draw(st.text(min_size=1, max_size=10))
            parts.append(ir.Reasoning(text, signature, "openai", id=f"rs_{n}"))
        else:
            arguments = draw(ARGUMENTS) if kind == "call" else draw(st.text(max_size=30))
            parts.append(ir.ToolCall(f"call_{n}", f"tool_{n}", arguments, "custom" if kind == "custom" else "function"))
    stop: ir.StopReason = draw(st.sampled_from(["end_turn", "max_tokens", "content_filter"]))
    usage = draw(st.none() | st.builds(ir.Usage, *[st.integers(0, 10_000)] * 5))
    return ir.Response("resp_rt", "m", parts, stop, usage)


def normalized(parts: list[ir.Part]) -> list[tuple[Any, ...]]:
    out: list[tuple[Any, ...]] = []
    for part in parts:
        if isinstance(part, ir.Text):
            if out and out[-1][0] == "text":
                out[-1] = ("text", out[-1][1] + part.text)
            else:
                out.append(("text", part.text))
        elif isinstance(part, ir.Reasoning):
            out.append(("reasoning", part.text, part.signature, part.id))
        elif isinstance(part, ir.ToolCall):
            arguments = part.arguments or ("{}" if part.kind == "function" else "")
            out.append(("call", part.id, part.name, arguments, part.kind))
    return out


@SETTINGS
@given(resp=responses(), cuts=st.lists(st.integers(min_value=0), max_size=10))
async def test_encoder_output_decodes_back_to_the_same_response(resp: ir.Response, cuts: list[int]) -> None:
    data = encode(request(), list(ir.response_events(resp)))
    for payload in client_events(data):
        STREAM_EVENT.validate_python(payload)
    events = decode(split_at(data, cuts))

    async def aiter() -> Any:
        for event in events:
            yield event

    got = await ir.collect(aiter())
    assert normalized(got.parts) == normalized(resp.parts)
    has_calls = any(isinstance(p, ir.ToolCall) for p in resp.parts)
    assert got.stop_reason == ("tool_use" if has_calls else resp.stop_reason)
    assert got.usage == resp.usage and got.id == "resp_rt"


@settings(max_examples=25, deadline=None)
@given(resp=responses())
def test_sdk_accepts_any_encoded_response(resp: ir.Response) -> None:
    resp.stop_reason = "end_turn"
    data = encode(request(), list(ir.response_events(resp)))
    _, final = sdk_stream(data)
    assert final.output_text == "".join(p.text for p in resp.parts if isinstance(p, ir.Text))
    assert [o.type for o in final.output] == [
        item["type"] for item in fmt.render_response(resp, request())["output"]
    ]


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("error", "exc", "code"),
    [
        (ir.GatewayError(400, "bad field", param="input"), openai.BadRequestError, None),
        (ir.GatewayError(401, "no key"), openai.AuthenticationError, "invalid_api_key"),
        (ir.GatewayError(404, "Previous response with id 'resp_x' not found.", code="previous_response_not_found",
                         param="previous_response_id"), openai.NotFoundError, "previous_response_not_found"),
        (ir.GatewayError(429, "slow down"), openai.RateLimitError, "rate_limit_exceeded"),
        (ir.GatewayError(503, "down"), openai.InternalServerError, None),
    ],
)
def test_render_error_is_what_the_sdk_raises(error: ir.GatewayError, exc: type[Exception], code: str | None) -> None:
    body = orjson.dumps(fmt.render_error(error))

    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(error.status, headers={"content-type": "application/json"}, content=body)

    with pytest.raises(exc) as caught:
        sdk_client(handler).responses.create(model="m", input="q")
    raised: Any = caught.value
    assert raised.code == code and raised.param == error.param
    assert error.message in raised.message
    assert raised.type == {400: "invalid_request_error", 401: "authentication_error", 404: "invalid_request_error",
                           429: "rate_limit_error", 503: "server_error"}[error.status]


def test_parse_error_openai_body() -> None:
    body = orjson.dumps({"error": {"message": "Rate limit reached. Please try again in 1.5s.", "type": "requests",
                                   "param": None, "code": "rate_limit_exceeded"}})
    err = fmt.parse_error(429, body)
    assert (err.status, err.kind, err.code, err.retry_after) == (429, "rate_limit", "rate_limit_exceeded", 1.5)
    assert err.message.startswith("Rate limit reached")


def test_parse_error_variants() -> None:
    quota = fmt.parse_error(429, orjson.dumps({"error": {"message": "quota", "type": "insufficient_quota",
                                                         "code": "insufficient_quota"}}))
    assert quota.kind == "billing"
    ms = fmt.parse_error(429, orjson.dumps({"error": {"message": "try again in 20ms", "code": None}}))
    assert ms.retry_after == pytest.approx(0.02) and ms.code is None
    assert fmt.parse_error(502, b"<html>Bad Gateway</html>").message == "<html>Bad Gateway</html>"
    assert fmt.parse_error(500, b"").message == "upstream returned HTTP 500"
    assert fmt.parse_error(400, orjson.dumps({"error": "plain string"})).message == "plain string"
    assert fmt.parse_error(400, orjson.dumps({"message": "top level", "code": 1234})).code == "1234"
    assert fmt.parse_error(400, orjson.dumps([1, 2])).message == "[1,2]"
    assert fmt.parse_error(404, orjson.dumps({"error": {"message": "m", "param": "model"}})).param == "model"
    assert fmt.parse_error(503, b"{}").kind == "unavailable"

"""Gemini generateContent, both directions, checked against the google-genai SDK where it can parse offline."""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any

import httpx2
import orjson
import pytest
from google import genai
from google.genai import errors as genai_errors
from google.genai import types
from hypothesis import given, settings
from hypothesis import strategies as st

from crossroute import ir
from crossroute.formats import gemini
from tests.chunking import split_at

SIG_A = base64.b64encode(b"gemini-signature-A").decode()
SIG_B = base64.b64encode(b"gemini-signature-B").decode()


def collected(events: Iterable[ir.Event]) -> ir.Response:
    collector = ir.Collector()
    for event in events:
        collector.feed(event)
    assert collector.error is None, collector.error
    assert collector.finished
    return collector.result()




def decode(pieces: Iterable[bytes]) -> list[ir.Event]:
    decoder = gemini.StreamDecoder()
    events: list[ir.Event] = []
    for piece in pieces:
        events += decoder.feed(piece)
    return events + decoder.close()


def encode(events: Iterable[ir.Event], req: ir.Request | None = None, *, sse: bool = True) -> bytes:
    encoder = gemini.StreamEncoder(req or ir.Request(model="gemini-test"), sse=sse)
    out = b"".join(encoder.encode(event) for event in events)
    return out + encoder.close()


def sse_chunks(data: bytes) -> list[dict[str, Any]]:
    """SSE data frames, plus a final bare-JSON error object (how Gemini reports a mid-stream error)."""
    frames = [f for f in data.split(b"\r\n\r\n") if f]
    assert all(f.startswith(b"data: ") for f in frames[:-1])
    assert frames[-1].startswith(b"data: ") or frames[-1].startswith(b'{"error":')
    return [orjson.loads(f.removeprefix(b"data: ")) for f in frames]


def sdk_client(handler: Callable[[httpx2.Request], httpx2.Response]) -> genai.Client:
    transport = httpx2.MockTransport(handler)
    options = types.HttpOptions(
        base_url="http://gateway.test", httpx_client=httpx2.Client(transport=transport)
    )
    return genai.Client(api_key="test-key", http_options=options)


# ====================================================================== parse_request

GEMINI_CLI_FOLLOW_UP = {
    "contents": [
        {"role": "user", "parts": [{"text": "<session context>"}]},
        {"role": "user", "parts": [{"text": "list the files"}]},
        {
            "role": "model",
            "parts": [
                {"text": "Planning the listing", "thought": True},
                {
                    "functionCall": {
                        "id": "list_directory_1700000000000_0",
                        "name": "list_directory",
                        "args": {"path": "."},
                    },
                    "thoughtSignature": SIG_A,
                },
            ],
        },
        {
            "role": "user",
            "parts": [
                {
                    "functionResponse": {
                        "id": "list_directory_1700000000000_0",
                        "name": "list_directory",
                        "response": {"output": "a.txt\nb.txt"},
                    }
                }
            ],
        },
    ],
    "systemInstruction": {"role": "user", "parts": [{"text": "You are Gemini CLI."}]},
    "tools": [
        {
            "functionDeclarations": [
                {
                    "name": "list_directory",
                    "description": "Lists a directory",
                    "parametersJsonSchema": {
                        "$schema": "http://json-schema.org/draft-07/schema#",
                        "type": "object",
                        "properties": {"path": {"type": "string"}},
                        "required": ["path"],
                        "additionalProperties": False,
                    },
                }
            ]
        }
    ],
    "generationConfig": {
        "temperature": 1,
        "topP": 0.95,
        "topK": 64,
        "thinkingConfig": {"includeThoughts": True, "thinkingLevel": "HIGH"},
    },
}


def test_parse_gemini_cli_follow_up() -> None:
    req = gemini.parse_request(GEMINI_CLI_FOLLOW_UP, model="gemini-3-pro-preview", stream=True)
    assert req.model == "gemini-3-pro-preview" and req.stream and req.source_format == "gemini"
    assert req.system == [ir.Text("You are Gemini CLI.")]
    assert [m.role for m in req.messages] == ["user", "user", "assistant", "tool"]
    assert req.messages[2].parts == [
        ir.Reasoning("Planning the listing", None, origin="gemini"),
        ir.Reasoning("", SIG_A, origin="gemini"),
        ir.ToolCall("list_directory_1700000000000_0", "list_directory", '{"path":"."}'),
    ]
    assert req.messages[3].parts == [
        ir.ToolResult("list_directory_1700000000000_0", [ir.Text("a.txt\nb.txt")], name="list_directory")
    ]
    assert req.tools == [
        ir.Tool(
            "list_directory",
            "Lists a directory",
            GEMINI_CLI_FOLLOW_UP["tools"][0]["functionDeclarations"][0]["parametersJsonSchema"],  # type: ignore[index]
        )
    ]
    assert (req.temperature, req.top_p, req.top_k) == (1.0, 0.95, 64)
    assert req.reasoning == ir.ReasoningConfig(effort="high", budget=None, summary=True)
    assert req.extras == {}


def test_parse_snake_case_keys() -> None:
    body = {
        "contents": [
            {
                "role": "model",
                "parts": [{"function_call": {"name": "f", "args": {"x": 1}}, "thought_signature": SIG_B}],
            },
            {"parts": [{"function_response": {"name": "f", "response": {"output": {"ok": True}}}}]},
        ],
        "system_instruction": {"parts": [{"text": "sys"}]},
        "generation_config": {
            "max_output_tokens": 512,
            "stop_sequences": ["END"],
            "thinking_config": {"thinking_budget": 1024},
        },
        "tool_config": {"function_calling_config": {"mode": "ANY", "allowed_function_names": ["f"]}},
        "safety_settings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}],
    }
    req = gemini.parse_request(body, model="m")
    assert req.system == [ir.Text("sys")]
    assert req.messages[0].parts == [
        ir.Reasoning("", SIG_B, origin="gemini"),
        ir.ToolCall("call_0", "f", '{"x":1}'),
    ]
    assert req.messages[1].parts == [ir.ToolResult("call_0", [ir.Text('{"ok":true}')], name="f")]
    assert req.max_tokens == 512 and req.stop == ["END"]
    assert req.reasoning == ir.ReasoningConfig(budget=1024)
    assert req.tool_choice == ir.ToolChoice("tool", "f")
    assert req.extras == {"safetySettings": body["safety_settings"]}


def test_calls_without_ids_are_numbered_across_the_conversation_and_matched_by_name() -> None:
    body = {
        "contents": [
            {"role": "user", "parts": [{"text": "go"}]},
            {"role": "model", "parts": [{"functionCall": {"name": "read", "args": {"p": "a"}}}]},
            {"role": "user", "parts": [{"functionResponse": {"name": "read", "response": {"output": "A"}}}]},
            {
                "role": "model",
                "parts": [
                    {"functionCall": {"name": "read", "args": {"p": "b"}}},
                    {"functionCall": {"name": "read", "args": {"p": "c"}}},
                    {"functionCall": {"name": "ls"}},
                ],
            },
            {
                "role": "user",
                "parts": [
                    {"functionResponse": {"name": "ls", "response": {"error": "denied"}}},
                    {"functionResponse": {"name": "read", "response": {"output": "B"}}},
                    {"functionResponse": {"name": "read", "response": {"name": "read", "content": "C"}}},
                    {"text": "and now?"},
                ],
            },
        ]
    }
    req = gemini.parse_request(body, model="m")
    calls = [p for m in req.messages for p in m.parts if isinstance(p, ir.ToolCall)]
    assert [c.id for c in calls] == ["call_0", "call_1", "call_2", "call_3"]
    assert calls[3].arguments == "{}"
    results = [p for m in req.messages for p in m.parts if isinstance(p, ir.ToolResult)]
    assert [(r.call_id, r.text(), r.is_error) for r in results] == [
        ("call_0", "A", False),
        ("call_3", "denied", True),
        ("call_1", "B", False),
        ("call_2", '{"name":"read","content":"C"}', False),
    ]
    assert [m.role for m in req.messages] == ["user", "assistant", "tool", "assistant", "tool", "user"]
    assert req.messages[-1].parts == [ir.Text("and now?")]


def test_signature_sentinels_are_dropped_and_foreign_signatures_unwrapped() -> None:
    wrapped = base64.b64encode(b"anthropic#crx#EqQBCkgIARAB").decode()
    body = {
        "contents": [
            {
                "role": "model",
                "parts": [
                    {
                        "functionCall": {"name": "a", "args": {}},
                        "thoughtSignature": "skip_thought_signature_validator",
                    },
                    {"text": "deep thought", "thought": True},
                    {"text": "", "thought": True, "thoughtSignature": wrapped},
                    {"text": "answer", "thoughtSignature": "context_engineering_is_the_way_to_go"},
                    {
                        "text": "",
                        "thought": True,
                        "thoughtSignature": base64.b64encode(b"anthropic#crx#REDACTED").decode(),
                    },
                ],
            }
        ]
    }
    parts = gemini.parse_request(body, model="m").messages[0].parts
    assert parts == [
        ir.ToolCall("call_0", "a", "{}"),
        ir.Reasoning("deep thought", "EqQBCkgIARAB", origin="anthropic"),
        ir.Text("answer"),
        ir.Reasoning("", "REDACTED", origin="anthropic", redacted=True),
    ]


def test_media_parts() -> None:
    body = {
        "contents": [
            {
                "parts": [
                    {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}},
                    {"inlineData": {"mimeType": "application/pdf", "data": "JVBERi0="}},
                    {"fileData": {"fileUri": "https://example.com/cat.jpg"}},
                    {"fileData": {"mimeType": "video/mp4", "fileUri": "https://example.com/v.mp4"}},
                ]
            }
        ]
    }
    parts = gemini.parse_request(body, model="m").messages[0].parts
    assert parts[0] == ir.Image(data="iVBORw0KGgo=", media_type="image/png")
    assert isinstance(parts[1], ir.Text) and "application/pdf" in parts[1].text
    assert parts[2] == ir.Image(url="https://example.com/cat.jpg", media_type="image/jpeg")
    assert isinstance(parts[3], ir.Text) and "https://example.com/v.mp4" in parts[3].text


def test_tools_tool_config_and_generation_config() -> None:
    body = {
        "contents": [{"parts": [{"text": "x"}]}],
        "tools": [
            {
                "functionDeclarations": [
                    {
                        "name": "get",
                        "parameters": {
                            "type": "OBJECT",
                            "properties": {"id": {"type": "INTEGER", "nullable": True}},
                        },
                    },
                    {"name": "ping"},
                ]
            },
            {"googleSearch": {}},
        ],
        "toolConfig": {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get", "ping"]}},
        "generationConfig": {
            "responseMimeType": "application/json",
            "responseJsonSchema": {"type": "OBJECT", "properties": {"a": {"type": "STRING"}}},
            "seed": 7,
            "candidateCount": 1,
            "thinkingConfig": {"thinkingBudget": -1},
        },
        "cachedContent": "cachedContents/abc",
    }
    req = gemini.parse_request(body, model="m")
    assert req.tools[0].parameters == {"type": "object", "properties": {"id": {"type": ["integer", "null"]}}}
    assert req.tools[1] == ir.Tool("ping")
    assert req.tool_choice == ir.ToolChoice("required")
    assert req.response_format == ir.ResponseFormat(
        "json_schema", schema={"type": "object", "properties": {"a": {"type": "string"}}}
    )
    assert req.reasoning == ir.ReasoningConfig(budget=-1)
    assert req.extras == {
        "tools": [{"googleSearch": {}}],
        "toolConfig": {"functionCallingConfig": body["toolConfig"]["functionCallingConfig"]},  # type: ignore[index]
        "generationConfig": {"seed": 7, "candidateCount": 1},
        "cachedContent": "cachedContents/abc",
    }


@pytest.mark.parametrize(
    ("mode", "names", "expected"),
    [
        ("AUTO", None, ir.ToolChoice("auto")),
        ("auto", None, ir.ToolChoice("auto")),
        ("NONE", None, ir.ToolChoice("none")),
        ("ANY", None, ir.ToolChoice("required")),
        ("ANY", ["only"], ir.ToolChoice("tool", "only")),
        ("VALIDATED", None, ir.ToolChoice("auto")),
    ],
)
def test_function_calling_modes(mode: str, names: list[str] | None, expected: ir.ToolChoice) -> None:
    config: dict[str, Any] = {"mode": mode}
    if names:
        config["allowedFunctionNames"] = names
    body = {"contents": [{"parts": [{"text": "x"}]}], "toolConfig": {"functionCallingConfig": config}}
    assert gemini.parse_request(body, model="m").tool_choice == expected


def test_json_mode_without_schema() -> None:
    body = {
        "contents": [{"parts": [{"text": "x"}]}],
        "generationConfig": {"responseMimeType": "application/json"},
    }
    assert gemini.parse_request(body, model="m").response_format == ir.ResponseFormat("json_object")


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({}, "contents"),
        ({"contents": None}, "contents"),
        ({"contents": []}, "contents"),
        ({"contents": "hello"}, "contents"),
        ({"contents": [5]}, "contents[0]"),
        ({"contents": [{"role": "system", "parts": []}]}, "contents[0].role"),
        ({"contents": [{"role": 3, "parts": []}]}, "contents[0].role"),
        ({"contents": [{"parts": {"text": "x"}}]}, "contents[0].parts"),
        ({"contents": [{"parts": ["x"]}]}, "contents[0].parts[0]"),
        ({"contents": [{"parts": [{"text": 5}]}]}, "contents[0].parts[0].text"),
        (
            {"contents": [{"role": "model", "parts": [{"functionCall": {"args": {}}}]}]},
            "contents[0].parts[0].functionCall.name",
        ),
        (
            {"contents": [{"role": "model", "parts": [{"functionCall": {"name": "f", "args": [1]}}]}]},
            "contents[0].parts[0].functionCall.args",
        ),
        ({"contents": [{"parts": [{"functionResponse": "x"}]}]}, "contents[0].parts[0].functionResponse"),
        (
            {"contents": [{"parts": [{"inlineData": {"mimeType": "image/png"}}]}]},
            "contents[0].parts[0].inlineData.data",
        ),
        ({"contents": [{"parts": [{"fileData": {}}]}]}, "contents[0].parts[0].fileData.fileUri"),
        ({"contents": [{"parts": []}], "systemInstruction": 4}, "systemInstruction"),
        ({"contents": [{"parts": []}], "tools": {}}, "tools"),
        (
            {"contents": [{"parts": []}], "tools": [{"functionDeclarations": [{}]}]},
            "tools[0].functionDeclarations[0].name",
        ),
        (
            {
                "contents": [{"parts": []}],
                "tools": [{"functionDeclarations": [{"name": "f", "parameters": "x"}]}],
            },
            "tools[0].functionDeclarations[0].parameters",
        ),
        (
            {"contents": [{"parts": []}], "toolConfig": {"functionCallingConfig": {"mode": "SOMETIMES"}}},
            "toolConfig.functionCallingConfig.mode",
        ),
        ({"contents": [{"parts": []}], "generationConfig": []}, "generationConfig"),
        (
            {"contents": [{"parts": []}], "generationConfig": {"maxOutputTokens": "lots"}},
            "generationConfig.maxOutputTokens",
        ),
        (
            {"contents": [{"parts": []}], "generationConfig": {"temperature": True}},
            "generationConfig.temperature",
        ),
        (
            {"contents": [{"parts": []}], "generationConfig": {"stopSequences": [1]}},
            "generationConfig.stopSequences",
        ),
        (
            {
                "contents": [{"parts": []}],
                "generationConfig": {"thinkingConfig": {"thinkingLevel": "EXTREME"}},
            },
            "generationConfig.thinkingConfig.thinkingLevel",
        ),
        (
            {"contents": [{"parts": []}], "generationConfig": {"thinkingConfig": {"includeThoughts": "yes"}}},
            "generationConfig.thinkingConfig.includeThoughts",
        ),
    ],
)
def test_bad_input_is_a_400_naming_the_field(body: dict[str, Any], param: str) -> None:
    with pytest.raises(ir.GatewayError) as caught:
        gemini.parse_request(body, model="m")
    assert caught.value.status == 400
    assert caught.value.param == param


def test_non_object_body_is_a_400() -> None:
    with pytest.raises(ir.GatewayError) as caught:
        gemini.parse_request([1, 2], model="m")
    assert caught.value.status == 400


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=8)),
    lambda children: st.one_of(
        st.lists(children, max_size=3),
        st.dictionaries(
            st.sampled_from(
                [
                    "contents",
                    "role",
                    "parts",
                    "text",
                    "thought",
                    "thoughtSignature",
                    "functionCall",
                    "functionResponse",
                    "name",
                    "args",
                    "id",
                    "response",
                    "output",
                    "error",
                    "inlineData",
                    "fileData",
                    "mimeType",
                    "data",
                    "fileUri",
                    "tools",
                    "functionDeclarations",
                    "parameters",
                    "toolConfig",
                    "generationConfig",
                    "thinkingConfig",
                    "thinkingBudget",
                    "thinkingLevel",
                    "systemInstruction",
                    "model",
                    "user",
                ]
            ),
            children,
            max_size=5,
        ),
    ),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_untrusted_bodies_raise_only_gateway_errors(body: Any) -> None:
    try:
        gemini.parse_request(body, model="m")
    except ir.GatewayError as err:
        assert err.status == 400


# ====================================================================== render_request


def _roles(body: dict[str, Any]) -> list[str]:
    return [c["role"] for c in body["contents"]]


def validate_request_with_sdk(body: dict[str, Any]) -> None:
    for content in body["contents"]:
        types.Content.model_validate(content)
    for tool in body.get("tools", []):
        types.Tool.model_validate(tool)
    if "toolConfig" in body:
        types.ToolConfig.model_validate(body["toolConfig"])
    if "generationConfig" in body:
        types.GenerationConfig.model_validate(body["generationConfig"])
    if "systemInstruction" in body:
        types.Content.model_validate(body["systemInstruction"])


def test_same_format_hop_round_trips_a_gemini_cli_body() -> None:
    req = gemini.parse_request(GEMINI_CLI_FOLLOW_UP, model="gemini-3-pro-preview")
    body = gemini.render_request(req, "gemini-3-pro-preview")
    validate_request_with_sdk(body)
    assert "model" not in body
    assert body["systemInstruction"] == {"parts": [{"text": "You are Gemini CLI."}]}
    # the two user contents merge; everything else comes back as the client sent it
    assert _roles(body) == ["user", "model", "user"]
    assert body["contents"][0]["parts"] == [{"text": "<session context>"}, {"text": "list the files"}]
    assert body["contents"][1:] == GEMINI_CLI_FOLLOW_UP["contents"][2:]
    declaration = body["tools"][0]["functionDeclarations"][0]
    assert declaration["parameters"] == {
        "type": "OBJECT",
        "properties": {"path": {"type": "STRING"}},
        "required": ["path"],
    }
    assert body["generationConfig"] == {
        "temperature": 1.0,
        "topP": 0.95,
        "topK": 64,
        "thinkingConfig": {"thinkingLevel": "HIGH", "includeThoughts": True},
    }


def test_extras_merge_only_on_a_same_format_hop() -> None:
    body = {
        "contents": [{"parts": [{"text": "x"}]}],
        "tools": [{"functionDeclarations": [{"name": "f"}]}, {"codeExecution": {}}],
        "toolConfig": {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["f", "g"]}},
        "generationConfig": {"seed": 3, "maxOutputTokens": 10},
        "safetySettings": [{"category": "HARM_CATEGORY_HATE_SPEECH", "threshold": "OFF"}],
    }
    req = gemini.parse_request(body, model="m")
    same = gemini.render_request(req, "gemini-2.5-pro")
    assert same["tools"] == [{"functionDeclarations": [{"name": "f"}]}, {"codeExecution": {}}]
    assert same["toolConfig"] == body["toolConfig"]
    assert same["generationConfig"] == {"maxOutputTokens": 10, "seed": 3}
    assert same["safetySettings"] == body["safetySettings"]
    other = gemini.render_request(replace(req, source_format="anthropic"), "gemini-2.5-pro")
    assert other["tools"] == [{"functionDeclarations": [{"name": "f"}]}]
    assert other["toolConfig"] == {"functionCallingConfig": {"mode": "ANY"}}
    assert other["generationConfig"] == {"maxOutputTokens": 10}
    assert "safetySettings" not in other


def cross_format_request() -> ir.Request:
    """What an Anthropic or Chat client's turn looks like in the IR."""
    return ir.Request(
        model="claude-ish",
        system=[ir.Text("be brief")],
        messages=[
            ir.Message(
                "user",
                [
                    ir.Text("look"),
                    ir.Image(url="https://x.test/a.png"),
                    ir.Image(data="AAAA", media_type="image/gif"),
                ],
            ),
            ir.Message("system", [ir.Text("mid-conversation rule")]),
            ir.Message(
                "assistant",
                [
                    ir.Reasoning("claude thinking", "claude-sig", origin="anthropic"),
                    ir.Text("calling"),
                    ir.ToolCall("toolu_1", "read", '{"path":"a"}'),
                    ir.ToolCall("toolu_2", "grep", '{"q":"b"}'),
                ],
            ),
            ir.Message("tool", [ir.ToolResult("toolu_1", [ir.Text("A")])]),
            ir.Message(
                "tool",
                [
                    ir.ToolResult(
                        "toolu_2",
                        [ir.Text("boom"), ir.Image(data="BBBB", media_type="image/png")],
                        is_error=True,
                    )
                ],
            ),
            ir.Message("user", [ir.Text("thanks")]),
        ],
        tools=[
            ir.Tool(
                "read",
                "Read a file",
                {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]},
            ),
            ir.Tool("noargs", parameters={"type": "object", "properties": {}, "additionalProperties": False}),
            ir.Tool("apply_patch", "patch", kind="custom"),
        ],
        tool_choice=ir.ToolChoice("tool", "read"),
        max_tokens=100,
        stop=["###"],
        response_format=ir.ResponseFormat("json_schema", schema={"type": "object"}),
        reasoning=ir.ReasoningConfig(effort="medium"),
        source_format="anthropic",
        extras={"metadata": {"user_id": "u"}},
    )


def test_render_cross_format_request() -> None:
    body = gemini.render_request(cross_format_request(), "gemini-2.5-flash")
    validate_request_with_sdk(body)
    assert body["systemInstruction"] == {"parts": [{"text": "be brief"}, {"text": "mid-conversation rule"}]}
    assert _roles(body) == ["user", "model", "user"]
    assert body["contents"][0]["parts"] == [
        {"text": "look"},
        {"fileData": {"mimeType": "image/png", "fileUri": "https://x.test/a.png"}},
        {"inlineData": {"mimeType": "image/gif", "data": "AAAA"}},
    ]
    assert body["contents"][1]["parts"] == [
        {"text": "calling"},
        {
            "functionCall": {"id": "toolu_1", "name": "read", "args": {"path": "a"}},
            "thoughtSignature": "skip_thought_signature_validator",
        },
        {"functionCall": {"id": "toolu_2", "name": "grep", "args": {"q": "b"}}},
    ]
    assert body["contents"][2]["parts"] == [
        {"functionResponse": {"id": "toolu_1", "name": "read", "response": {"output": "A"}}},
        {"functionResponse": {"id": "toolu_2", "name": "grep", "response": {"error": "boom"}}},
        {"inlineData": {"mimeType": "image/png", "data": "BBBB"}},
        {"text": "thanks"},
    ]
    assert body["tools"] == [
        {
            "functionDeclarations": [
                {
                    "name": "read",
                    "description": "Read a file",
                    "parameters": {
                        "type": "OBJECT",
                        "properties": {"path": {"type": "STRING"}},
                        "required": ["path"],
                    },
                },
                {"name": "noargs"},
                {
                    "name": "apply_patch",
                    "description": "patch",
                    "parameters": {
                        "type": "OBJECT",
                        "properties": {"input": {"type": "STRING"}},
                        "required": ["input"],
                    },
                },
            ]
        }
    ]
    assert body["toolConfig"] == {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["read"]}}
    assert body["generationConfig"] == {
        "maxOutputTokens": 100,
        "stopSequences": ["###"],
        "responseMimeType": "application/json",
        "responseJsonSchema": {"type": "object"},
        "thinkingConfig": {"thinkingBudget": 8192, "includeThoughts": True},
    }
    assert "metadata" not in body


def test_gemini_signatures_go_back_on_the_parts_they_came_with() -> None:
    req = ir.Request(
        model="m",
        messages=[
            ir.Message("user", [ir.Text("q")]),
            ir.Message(
                "assistant",
                [
                    ir.Reasoning("thinking", None, origin="gemini"),
                    ir.Reasoning("", SIG_A, origin="gemini"),
                    ir.ToolCall("c1", "f", "{}"),
                    ir.ToolCall("c2", "f", "{}"),
                ],
            ),
            ir.Message("tool", [ir.ToolResult("c1", [ir.Text("1")]), ir.ToolResult("c2", [ir.Text("2")])]),
            ir.Message(
                "assistant",
                [
                    ir.Reasoning(
                        "collected", SIG_B, origin="gemini"
                    ),  # a folded stream: signature belongs to the call
                    ir.ToolCall("c3", "g", "{}"),
                ],
            ),
            ir.Message("tool", [ir.ToolResult("c3", [ir.Text("3")])]),
            ir.Message("assistant", [ir.Text("done"), ir.Reasoning("", SIG_A, origin="gemini")]),
            ir.Message("assistant", [ir.Reasoning("", "openai-enc", origin="openai"), ir.Text("more")]),
        ],
    )
    contents = gemini.render_request(req, "gemini-3-flash")["contents"]
    assert contents[1]["parts"] == [
        {"text": "thinking", "thought": True},
        {"functionCall": {"id": "c1", "name": "f", "args": {}}, "thoughtSignature": SIG_A},
        {"functionCall": {"id": "c2", "name": "f", "args": {}}},
    ]
    assert contents[3]["parts"] == [
        {"text": "collected", "thought": True},
        {"functionCall": {"id": "c3", "name": "g", "args": {}}, "thoughtSignature": SIG_B},
    ]
    # consecutive model turns merge; a trailing signature rides on the last part; foreign reasoning is dropped
    assert contents[5]["parts"] == [{"text": "done", "thoughtSignature": SIG_A}, {"text": "more"}]


@pytest.mark.parametrize(
    ("model", "reasoning", "expected"),
    [
        ("gemini-2.5-pro", None, None),
        ("gemini-2.5-pro", ir.ReasoningConfig(effort="none"), {"thinkingBudget": 0}),
        ("gemini-3-pro", ir.ReasoningConfig(budget=0), {"thinkingBudget": 0}),
        (
            "gemini-2.5-pro",
            ir.ReasoningConfig(effort="high"),
            {"thinkingBudget": 24576, "includeThoughts": True},
        ),
        (
            "gemini-2.5-pro",
            ir.ReasoningConfig(effort="minimal"),
            {"thinkingBudget": 512, "includeThoughts": True},
        ),
        (
            "gemini-2.5-pro",
            ir.ReasoningConfig(budget=3000, effort="low"),
            {"thinkingBudget": 3000, "includeThoughts": True},
        ),
        (
            "gemini-3-pro-preview",
            ir.ReasoningConfig(effort="high"),
            {"thinkingLevel": "HIGH", "includeThoughts": True},
        ),
        (
            "gemini-3-pro-preview",
            ir.ReasoningConfig(effort="max"),
            {"thinkingLevel": "XHIGH", "includeThoughts": True},
        ),
        (
            "gemini-3-flash",
            ir.ReasoningConfig(effort="minimal"),
            {"thinkingLevel": "MINIMAL", "includeThoughts": True},
        ),
        (
            "gemini-3-flash",
            ir.ReasoningConfig(effort="auto"),
            {"thinkingBudget": -1, "includeThoughts": True},
        ),
        (
            "gemini-3-flash",
            ir.ReasoningConfig(budget=2048),
            {"thinkingBudget": 2048, "includeThoughts": True},
        ),
        (
            "gemini-2.5-pro",
            ir.ReasoningConfig(effort="low", summary=False),
            {"thinkingBudget": 1024, "includeThoughts": False},
        ),
        ("gemini-2.5-pro", ir.ReasoningConfig(summary=True), {"includeThoughts": True}),
    ],
)
def test_thinking_config(
    model: str, reasoning: ir.ReasoningConfig | None, expected: dict[str, Any] | None
) -> None:
    req = ir.Request(model="x", messages=[ir.Message("user", [ir.Text("q")])], reasoning=reasoning)
    body = gemini.render_request(req, model)
    assert body.get("generationConfig", {}).get("thinkingConfig") == expected
    if expected:
        types.ThinkingConfig.model_validate(expected)


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        (ir.ToolChoice("auto"), {"mode": "AUTO"}),
        (ir.ToolChoice("none"), {"mode": "NONE"}),
        (ir.ToolChoice("required"), {"mode": "ANY"}),
        (ir.ToolChoice("tool", "f"), {"mode": "ANY", "allowedFunctionNames": ["f"]}),
    ],
)
def test_tool_choice_rendering(choice: ir.ToolChoice, expected: dict[str, Any]) -> None:
    req = ir.Request(model="x", messages=[ir.Message("user", [ir.Text("q")])], tool_choice=choice)
    assert gemini.render_request(req, "g")["toolConfig"] == {"functionCallingConfig": expected}


def test_tool_result_name_comes_from_the_call_and_invalid_arguments_become_empty_args() -> None:
    req = ir.Request(
        model="x",
        messages=[
            ir.Message("assistant", [ir.ToolCall("id-1", "real_name", "not json")]),
            ir.Message("tool", [ir.ToolResult("id-1", [ir.Text("r")], name="stale_name")]),
            ir.Message("tool", [ir.ToolResult("orphan", [ir.Text("r")])]),
        ],
    )
    contents = gemini.render_request(req, "g")["contents"]
    assert contents[0]["parts"][0]["functionCall"]["args"] == {}
    responses = [p["functionResponse"] for p in contents[1]["parts"]]
    assert [r["name"] for r in responses] == ["real_name", "unknown_function"]


# ====================================================================== parse_response

UPSTREAM_RESPONSE = {
    "candidates": [
        {
            "content": {
                "role": "model",
                "parts": [
                    {"text": "I should list files", "thought": True},
                    {"text": "Listing now."},
                    {"functionCall": {"name": "ls", "args": {"dir": "."}}, "thoughtSignature": SIG_A},
                    {"functionCall": {"id": "given-id", "name": "cat", "args": {"f": "x"}}},
                ],
            },
            "finishReason": "STOP",
            "index": 0,
        }
    ],
    "usageMetadata": {
        "promptTokenCount": 100,
        "candidatesTokenCount": 20,
        "thoughtsTokenCount": 30,
        "cachedContentTokenCount": 40,
        "totalTokenCount": 150,
    },
    "modelVersion": "gemini-2.5-pro",
    "responseId": "resp-abc",
}


def test_parse_response() -> None:
    resp = gemini.parse_response(UPSTREAM_RESPONSE)
    assert resp.id == "resp-abc" and resp.model == "gemini-2.5-pro"
    assert resp.parts[:3] == [
        ir.Reasoning("I should list files", None, origin="gemini"),
        ir.Text("Listing now."),
        ir.Reasoning("", SIG_A, origin="gemini"),
    ]
    first_call, second_call = resp.tool_calls()
    assert first_call.id.startswith("call_") and len(first_call.id) > 10
    assert (first_call.name, first_call.arguments) == ("ls", '{"dir":"."}')
    assert second_call == ir.ToolCall("given-id", "cat", '{"f":"x"}')
    assert resp.stop_reason == "tool_use"
    assert resp.usage == ir.Usage(input_tokens=100, output_tokens=50, cached_tokens=40, reasoning_tokens=30)


@pytest.mark.parametrize(
    ("finish", "expected"),
    [
        ("STOP", "end_turn"),
        ("MAX_TOKENS", "max_tokens"),
        ("SAFETY", "content_filter"),
        ("PROHIBITED_CONTENT", "content_filter"),
        ("BLOCKLIST", "content_filter"),
        ("SPII", "content_filter"),
        ("RECITATION", "content_filter"),
        ("IMAGE_SAFETY", "content_filter"),
        ("MALFORMED_FUNCTION_CALL", "end_turn"),
        (None, "end_turn"),
    ],
)
def test_finish_reasons(finish: str | None, expected: str) -> None:
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": [{"text": "x"}]}}
    if finish:
        candidate["finishReason"] = finish
    assert gemini.parse_response({"candidates": [candidate]}).stop_reason == expected


def test_blocked_prompt_is_content_filter() -> None:
    body = {"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"}, "usageMetadata": {"promptTokenCount": 5}}
    resp = gemini.parse_response(body)
    assert resp.stop_reason == "content_filter" and resp.parts == []
    assert resp.usage == ir.Usage(input_tokens=5)


def test_parse_response_of_an_error_body_or_junk_raises() -> None:
    with pytest.raises(ir.GatewayError) as caught:
        gemini.parse_response({"error": {"code": 429, "message": "quota", "status": "RESOURCE_EXHAUSTED"}})
    assert caught.value.status == 502 and caught.value.message == "quota"
    with pytest.raises(ir.GatewayError):
        gemini.parse_response("nonsense")


# ====================================================================== render_response


def client_request() -> ir.Request:
    return ir.Request(
        model="gemini-2.5-pro", messages=[ir.Message("user", [ir.Text("q")])], source_format="gemini"
    )


def test_render_response_is_what_the_sdk_reads() -> None:
    resp = ir.Response(
        id="resp-1",
        model="claude-sonnet",
        parts=[
            ir.Reasoning("hmm", "claude-sig", origin="anthropic"),
            ir.Text("Here "),
            ir.Text("you go"),
            ir.ToolCall("toolu_9", "read", '{"path":"a"}'),
        ],
        stop_reason="tool_use",
        usage=ir.Usage(input_tokens=10, output_tokens=7, cached_tokens=4, reasoning_tokens=3),
    )
    body = gemini.render_response(resp, client_request())
    parsed = types.GenerateContentResponse.model_validate(body)
    assert parsed.text == "Here you go"
    assert parsed.function_calls is not None
    assert [(c.id, c.name, c.args) for c in parsed.function_calls] == [("toolu_9", "read", {"path": "a"})]
    assert parsed.candidates is not None and parsed.candidates[0].finish_reason == types.FinishReason.STOP
    assert parsed.usage_metadata is not None
    assert parsed.usage_metadata.prompt_token_count == 10
    assert parsed.usage_metadata.candidates_token_count == 4
    assert parsed.usage_metadata.thoughts_token_count == 3
    assert parsed.usage_metadata.cached_content_token_count == 4
    assert parsed.usage_metadata.total_token_count == 17
    assert parsed.response_id == "resp-1" and parsed.model_version == "claude-sonnet"
    signature = parsed.candidates[0].content.parts[1].thought_signature  # type: ignore[union-attr,index]
    assert signature == b"anthropic#crx#claude-sig"


def test_a_signature_that_is_not_base64_is_wrapped_for_the_sdk_and_unwrapped_on_replay() -> None:
    resp = ir.Response(
        id="r",
        model="m",
        parts=[
            ir.Reasoning("", "sig-abc123", origin="gemini"),
            ir.ToolCall("c1", "get_weather", '{"city":"Rome"}'),
        ],
    )
    body = gemini.render_response(resp, client_request())
    part = types.GenerateContentResponse.model_validate(body).candidates[0].content.parts[0]  # type: ignore[index,union-attr]
    assert part.thought_signature == b"gemini#crx#sig-abc123"
    replay = {"contents": [{"role": "user", "parts": [{"text": "q"}]}, body["candidates"][0]["content"]]}
    parts = gemini.parse_request(replay, model="m").messages[1].parts
    assert parts[0] == ir.Reasoning("", "sig-abc123", origin="gemini")
    upstream = gemini.render_request(gemini.parse_request(replay, model="m"), "gemini-3-pro")
    assert upstream["contents"][1]["parts"][0]["thoughtSignature"] == "sig-abc123"


@pytest.mark.parametrize(
    ("stop", "finish"),
    [
        ("end_turn", "STOP"),
        ("stop_sequence", "STOP"),
        ("max_tokens", "MAX_TOKENS"),
        ("content_filter", "SAFETY"),
    ],
)
def test_render_finish_reasons(stop: ir.StopReason, finish: str) -> None:
    body = gemini.render_response(
        ir.Response(id="r", model="m", parts=[ir.Text("x")], stop_reason=stop), client_request()
    )
    assert body["candidates"][0]["finishReason"] == finish


# Real Gemini signatures are base64 (the Python SDK decodes them); others are any text.
reasoning_signatures = st.binary(min_size=1, max_size=9).map(lambda b: base64.b64encode(b).decode())
foreign_signatures = st.text(min_size=1, max_size=12)
any_gemini_signatures = st.one_of(reasoning_signatures, foreign_signatures)
response_parts = st.lists(
    st.one_of(
        st.builds(ir.Text, st.text(min_size=1, max_size=6)),
        st.builds(lambda t: ir.Reasoning(t, None, origin="gemini"), st.text(min_size=1, max_size=6)),
        st.builds(lambda s: ir.Reasoning("", s, origin="gemini"), any_gemini_signatures),
        st.builds(
            lambda t, s: ir.Reasoning(t, s, origin="gemini"),
            st.text(min_size=1, max_size=6),
            any_gemini_signatures,
        ),
        st.builds(
            lambda t, s, o: ir.Reasoning(t, s, origin=o),
            st.text(max_size=6),
            foreign_signatures,
            st.sampled_from(["anthropic", "openai"]),
        ),
        st.builds(lambda s: ir.Reasoning("", s, origin="anthropic", redacted=True), foreign_signatures),
        st.builds(
            lambda i, n, a: ir.ToolCall(f"call_{i}", n, orjson.dumps(a).decode()),
            st.integers(0, 999),
            st.sampled_from(["read", "write"]),
            st.dictionaries(st.text(max_size=3), st.integers(-(2**63), 2**63 - 1), max_size=2),
        ),
    ),
    max_size=8,
)


def _normal_form(parts: list[ir.Part]) -> list[ir.Part]:
    """What survives a Gemini client's replay: a Gemini signature stands on its
    own (it rides on the next part), unsigned reasoning has no origin, text joins."""
    out: list[ir.Part] = []
    for part in parts:
        if isinstance(part, ir.Reasoning):
            if part.origin == "gemini" and part.text and part.signature:
                out += [ir.Reasoning(part.text), ir.Reasoning("", part.signature, origin="gemini")]
            else:
                origin = part.origin if part.signature else None
                out.append(ir.Reasoning(part.text, part.signature, origin=origin, redacted=part.redacted))
        elif isinstance(part, ir.Text) and out and isinstance(out[-1], ir.Text):
            out[-1] = ir.Text(out[-1].text + part.text)
        else:
            out.append(part)
    return out


def _plausible(parts: list[ir.Part]) -> bool:
    """A redacted block never follows unsigned thinking (it is Anthropic-only, and Anthropic signs all thinking)."""
    for before, after in zip(parts, parts[1:], strict=False):
        if (
            isinstance(after, ir.Reasoning)
            and after.redacted
            and isinstance(before, ir.Reasoning)
            and before.signature is None
        ):
            return False
    return True


@settings(max_examples=200, deadline=None)
@given(response_parts)
def test_a_rendered_turn_replayed_by_the_client_parses_back_to_the_same_parts(parts: list[ir.Part]) -> None:
    resp = collected(ir.response_events(ir.Response(id="r", model="m", parts=parts)))
    if not _plausible(resp.parts):
        return
    body = gemini.render_response(resp, client_request())
    types.GenerateContentResponse.model_validate(body)  # the Python SDK accepts every signature
    replay = {"contents": [{"role": "user", "parts": [{"text": "q"}]}, body["candidates"][0]["content"]]}
    req = gemini.parse_request(replay, model="m")
    model_parts = req.messages[1].parts if len(req.messages) > 1 else []
    assert _normal_form(model_parts) == _normal_form(resp.parts)


# ====================================================================== StreamDecoder

UPSTREAM_STREAM = (
    b'data: {"candidates":[{"content":{"parts":[{"text":"Weighing options","thought":true}],"role":"model"},"index":0}],'
    b'"usageMetadata":{"promptTokenCount":12,"totalTokenCount":12},"modelVersion":"gemini-3-pro","responseId":"r-77"}\r\n\r\n'
    b'data: {"candidates":[{"content":{"parts":[{"text":"Sure \xe2\x80\x94 "}],"role":"model"},"index":0}],'
    b'"modelVersion":"gemini-3-pro","responseId":"r-77"}\r\n\r\n'
    b'data: {"candidates":[{"content":{"parts":[{"text":"reading."},{"functionCall":{"id":"fc-1","name":"read","args":{"p":"a"}},'
    b'"thoughtSignature":"'
    + SIG_A.encode()
    + b'"},{"functionCall":{"id":"fc-2","name":"read","args":{"p":"b"}}}],"role":"model"},'
    b'"finishReason":"STOP","index":0}],"usageMetadata":{"promptTokenCount":12,"candidatesTokenCount":8,"thoughtsTokenCount":4,'
    b'"totalTokenCount":24},"modelVersion":"gemini-3-pro","responseId":"r-77"}\r\n\r\n'
)
EXPECTED_EVENTS: list[ir.Event] = [
    ir.StreamStart("r-77", "gemini-3-pro"),
    ir.ReasoningDelta(text="Weighing options", origin="gemini"),
    ir.TextDelta("Sure \u2014 "),
    ir.TextDelta("reading."),
    ir.ReasoningDelta(signature=SIG_A, origin="gemini"),
    ir.ToolCallStart(0, "fc-1", "read"),
    ir.ToolCallDelta(0, '{"p":"a"}'),
    ir.ToolCallStart(1, "fc-2", "read"),
    ir.ToolCallDelta(1, '{"p":"b"}'),
    ir.Finish("tool_use", ir.Usage(input_tokens=12, output_tokens=12, reasoning_tokens=4)),
]


def test_decoder_turns_a_gemini_stream_into_events() -> None:
    assert decode([UPSTREAM_STREAM]) == EXPECTED_EVENTS


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=len(UPSTREAM_STREAM)), max_size=12))
def test_decoder_events_do_not_depend_on_chunking(cuts: list[int]) -> None:
    assert decode(split_at(UPSTREAM_STREAM, cuts)) == EXPECTED_EVENTS


def test_decoder_and_parse_response_agree() -> None:
    streamed = collected(decode([b"data: " + orjson.dumps(UPSTREAM_RESPONSE) + b"\n\n"]))
    whole = gemini.parse_response(UPSTREAM_RESPONSE)
    ids = [c.id for c in streamed.tool_calls()]
    assert ids[1] == "given-id"
    for call, whole_call in zip(streamed.tool_calls(), whole.tool_calls(), strict=True):
        whole_call.id = call.id if call.id != "given-id" else whole_call.id
    # the Collector tags a reasoning block with an origin only when a signature arrives
    assert isinstance(whole.parts[0], ir.Reasoning)
    whole.parts[0].origin = None
    assert streamed.parts == whole.parts
    assert (streamed.stop_reason, streamed.usage) == (whole.stop_reason, whole.usage)


def test_decoder_invents_ids_once() -> None:
    events = decode(
        [
            b'data: {"candidates":[{"content":{"parts":[{"functionCall":{"name":"f"}}]},"finishReason":"STOP"}]}\n\n'
        ]
    )
    start = events[0]
    assert isinstance(start, ir.StreamStart) and start.id
    call = events[1]
    assert isinstance(call, ir.ToolCallStart) and call.id.startswith("call_")
    assert events[2] == ir.ToolCallDelta(0, "{}")
    assert collected(events).tool_calls()[0].id == call.id


def test_decoder_without_finish_reason_is_an_error() -> None:
    events = decode([b'data: {"candidates":[{"content":{"parts":[{"text":"par"}]}}]}\n\n'])
    assert isinstance(events[-1], ir.StreamError)
    assert events[-1].error.status == 502


def test_decoder_empty_stream_is_an_error() -> None:
    events = decode([b""])
    assert len(events) == 1 and isinstance(events[0], ir.StreamError)


def test_decoder_error_chunk() -> None:
    error = {
        "error": {
            "code": 429,
            "message": "Resource has been exhausted",
            "status": "RESOURCE_EXHAUSTED",
            "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "17s"}],
        }
    }
    data = (
        b'data: {"candidates":[{"content":{"parts":[{"text":"a"}]}}]}\n\n'
        + b"data: "
        + orjson.dumps(error)
        + b"\n\n"
    )
    events = decode([data, b'data: {"candidates":[{"content":{"parts":[{"text":"late"}]}}]}\n\n'])
    assert [type(e) for e in events] == [ir.StreamStart, ir.TextDelta, ir.StreamError]
    err = events[-1].error  # type: ignore[union-attr]
    assert (err.status, err.kind, err.message, err.retry_after) == (
        429,
        "rate_limit",
        "Resource has been exhausted",
        17.0,
    )


def test_decoder_reads_a_json_array_body_and_done_marker() -> None:
    array = orjson.dumps(
        [
            UPSTREAM_RESPONSE,
            {"candidates": [{"content": {"parts": [{"text": "!"}]}, "finishReason": "MAX_TOKENS"}]},
        ]
    )
    response = collected(decode(split_at(array, [7, 100, 300])))
    assert response.text() == "Listing now.!" and response.stop_reason == "tool_use"
    done = decode([b'data: {"candidates":[{"content":{"parts":[{"text":"x"}]}}]}\n\ndata: [DONE]\n\n'])
    assert isinstance(done[-1], ir.Finish) and done[-1].stop_reason == "end_turn"


def test_decoder_blocked_prompt_and_malformed_chunk() -> None:
    blocked = decode([b'data: {"promptFeedback":{"blockReason":"SAFETY"}}\n\n'])
    assert isinstance(blocked[-1], ir.Finish) and blocked[-1].stop_reason == "content_filter"
    broken = decode([b'data: {"candidates": [\n\n'])
    assert isinstance(broken[-1], ir.StreamError) and broken[-1].error.status == 502


# ====================================================================== StreamEncoder

STREAM_EVENTS: list[ir.Event] = [
    ir.StreamStart("resp-9", "some-upstream-model"),
    ir.ReasoningDelta(text="Let me "),
    ir.ReasoningDelta(text="think"),
    ir.ReasoningDelta(signature="claude-sig", origin="anthropic"),
    ir.TextDelta("Hello"),
    ir.TextDelta(" world"),
    ir.ToolCallStart(0, "toolu_1", "read"),
    ir.ToolCallDelta(0, '{"pa'),
    ir.ToolCallDelta(0, 'th":"a"}'),
    ir.ToolCallStart(1, "toolu_2", "ls", "function"),
    ir.Finish("tool_use", ir.Usage(input_tokens=9, output_tokens=5, reasoning_tokens=2)),
]


def test_encoder_chunks() -> None:
    chunks = sse_chunks(encode(STREAM_EVENTS))
    parts = [c["candidates"][0].get("content", {}).get("parts") for c in chunks]
    wrapped = base64.b64encode(b"anthropic#crx#claude-sig").decode()
    assert parts == [
        [{"text": "Let me ", "thought": True}],
        [{"text": "think", "thought": True}],
        [{"text": "", "thought": True, "thoughtSignature": wrapped}],
        [{"text": "Hello"}],
        [{"text": " world"}],
        [
            {"functionCall": {"id": "toolu_1", "name": "read", "args": {"path": "a"}}},
            {"functionCall": {"id": "toolu_2", "name": "ls", "args": {}}},
        ],
    ]
    assert all(c["responseId"] == "resp-9" and c["modelVersion"] == "some-upstream-model" for c in chunks)
    assert chunks[-1]["candidates"][0]["finishReason"] == "STOP"
    assert chunks[-1]["usageMetadata"] == {
        "promptTokenCount": 9,
        "candidatesTokenCount": 3,
        "totalTokenCount": 14,
        "thoughtsTokenCount": 2,
    }
    assert all("finishReason" not in c["candidates"][0] for c in chunks[:-1])
    for chunk in chunks:
        types.GenerateContentResponse.model_validate(chunk)


def test_encoder_gemini_signature_rides_on_the_next_part() -> None:
    events: list[ir.Event] = [
        ir.StreamStart("r", "m"),
        ir.ReasoningDelta(text="t"),
        ir.ReasoningDelta(signature=SIG_A, origin="gemini"),
        ir.ToolCallStart(0, "c", "f"),
        ir.ToolCallDelta(0, "{}"),
        ir.ReasoningDelta(signature=SIG_B, origin="gemini"),
        ir.Finish("tool_use"),
    ]
    chunks = sse_chunks(encode(events))
    assert [c["candidates"][0].get("content", {}).get("parts") for c in chunks] == [
        [{"text": "t", "thought": True}],
        [{"functionCall": {"id": "c", "name": "f", "args": {}}, "thoughtSignature": SIG_A}],
        [{"text": "", "thoughtSignature": SIG_B}],
    ]


def test_encoder_stream_error_and_unfinished_close() -> None:
    error = ir.GatewayError(503, "upstream overloaded", retry_after=2)
    chunks = sse_chunks(
        encode([ir.StreamStart("r", "m"), ir.TextDelta("a"), ir.StreamError(error), ir.TextDelta("ignored")])
    )
    assert chunks[-1] == {
        "error": {
            "code": 503,
            "message": "upstream overloaded",
            "status": "UNAVAILABLE",
            "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "2s"}],
        }
    }
    assert len(chunks) == 2
    cut = sse_chunks(
        encode([ir.StreamStart("r", "m"), ir.ToolCallStart(0, "c", "f"), ir.ToolCallDelta(0, '{"a"')])
    )
    assert cut == [
        {
            "error": {
                "code": 502,
                "message": "upstream stream ended before it finished",
                "status": "UNAVAILABLE",
            }
        }
    ]


def test_encoder_json_array_mode() -> None:
    data = encode(STREAM_EVENTS, sse=False)
    assert data.startswith(b"[{") and data.endswith(b"}]") and b",\r\n{" in data
    array = orjson.loads(data)
    assert [c["candidates"][0].get("finishReason") for c in array][-1] == "STOP"
    assert orjson.loads(encode([], sse=False)) == [
        {
            "error": {
                "code": 502,
                "message": "upstream stream ended before it finished",
                "status": "UNAVAILABLE",
            }
        }
    ]
    errored = orjson.loads(
        encode([ir.StreamStart("r", "m"), ir.StreamError(ir.GatewayError(500, "x"))], sse=False)
    )
    assert errored == [{"error": {"code": 500, "message": "x", "status": "INTERNAL"}}]


def test_encoder_close_is_idempotent_and_finish_ends_the_stream() -> None:
    encoder = gemini.StreamEncoder(ir.Request(model="m"))
    assert encoder.encode(ir.Finish("end_turn")) != b""
    assert encoder.encode(ir.TextDelta("after")) == b""
    assert encoder.close() == b"" and encoder.close() == b""


gemini_response_parts = st.lists(
    st.one_of(
        st.builds(ir.Text, st.text(min_size=1, max_size=8)),
        st.builds(lambda t: ir.Reasoning(t, None, origin="gemini"), st.text(min_size=1, max_size=8)),
        st.builds(lambda s: ir.Reasoning("", s, origin="gemini"), reasoning_signatures),
        st.builds(
            lambda i, a: ir.ToolCall(f"call_{i}", "tool", orjson.dumps(a).decode()),
            st.integers(0, 99),
            st.dictionaries(
                st.text(max_size=3),
                st.one_of(st.integers(-(2**63), 2**63 - 1), st.text(max_size=3)),
                max_size=2,
            ),
        ),
    ),
    max_size=8,
)


def without_signatures_inside_text(parts: list[ir.Part]) -> list[ir.Part]:
    """The decoder drops a signature that would cut a streamed answer in two."""
    out: list[ir.Part] = []
    for position, part in enumerate(parts):
        following = parts[position + 1] if position + 1 < len(parts) else None
        previous = out[-1] if out else None
        signature_only = isinstance(part, ir.Reasoning) and not part.text and part.signature is not None
        if signature_only and isinstance(previous, ir.Text) and isinstance(following, ir.Text):
            continue
        if isinstance(part, ir.Text) and isinstance(previous, ir.Text):
            out[-1] = ir.Text(previous.text + part.text)
            continue
        out.append(part)
    return out


def test_a_signature_inside_streamed_text_does_not_split_the_answer() -> None:
    body = (b'data: {"candidates":[{"content":{"role":"model","parts":[{"text":"Hello "}]}}]}\r\n\r\n'
            b'data: {"candidates":[{"content":{"role":"model","parts":[{"text":"world","thoughtSignature":"AA=="}]},'
            b'"finishReason":"STOP"}]}\r\n\r\n')
    decoded = collected(decode([body]))
    assert decoded.parts == [ir.Text("Hello world")]


@settings(max_examples=150, deadline=None)
@given(
    gemini_response_parts,
    st.sampled_from(["end_turn", "max_tokens", "content_filter"]),
    st.lists(st.integers(min_value=0, max_value=4000), max_size=8),
)
def test_encoder_output_decodes_to_the_same_response_at_any_chunking(
    parts: list[ir.Part], stop: ir.StopReason, cuts: list[int]
) -> None:
    usage = ir.Usage(input_tokens=3, output_tokens=9, cached_tokens=1, reasoning_tokens=4)
    original = collected(
        ir.response_events(ir.Response(id="r-1", model="m", parts=parts, stop_reason=stop, usage=usage))
    )
    data = encode(ir.response_events(original))
    decoded = collected(decode(split_at(data, cuts)))
    assert decoded.parts == without_signatures_inside_text(original.parts)
    assert decoded.id == "r-1" and decoded.model == "m" and decoded.usage == usage
    assert decoded.stop_reason == ("tool_use" if original.tool_calls() else stop)


# ====================================================================== errors


def test_render_error_shapes() -> None:
    err = ir.GatewayError(400, "contents is required", param="contents", code="missing_field")
    assert gemini.render_error(err) == {
        "error": {
            "code": 400,
            "message": "contents is required",
            "status": "INVALID_ARGUMENT",
            "details": [
                {
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": "missing_field",
                    "domain": "crossroute",
                },
                {
                    "@type": "type.googleapis.com/google.rpc.BadRequest",
                    "fieldViolations": [{"field": "contents", "description": "contents is required"}],
                },
            ],
        }
    }
    statuses = {
        s: gemini.render_error(ir.GatewayError(s, "x"))["error"]["status"]
        for s in (401, 403, 404, 429, 500, 503, 504, 529, 418)
    }
    assert statuses == {
        401: "UNAUTHENTICATED",
        403: "PERMISSION_DENIED",
        404: "NOT_FOUND",
        429: "RESOURCE_EXHAUSTED",
        500: "INTERNAL",
        503: "UNAVAILABLE",
        504: "DEADLINE_EXCEEDED",
        529: "UNAVAILABLE",
        418: "INVALID_ARGUMENT",
    }
    assert gemini.render_error(ir.GatewayError(429, "slow", retry_after=1.5))["error"]["details"] == [
        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "1.500s"}
    ]


@pytest.mark.parametrize("status", [400, 401, 403, 404, 429, 500, 503])
def test_error_round_trip(status: int) -> None:
    err = ir.GatewayError(status, "message here", retry_after=12, param="p", code="REASON")
    back = gemini.parse_error(status, orjson.dumps(gemini.render_error(err)))
    assert (back.status, back.kind, back.message, back.retry_after, back.param, back.code) == (
        status,
        err.kind,
        "message here",
        12.0,
        "p",
        "REASON",
    )


def test_parse_error_variants() -> None:
    api_key = {
        "error": {
            "code": 400,
            "message": "API key not valid. Please pass a valid API key.",
            "status": "INVALID_ARGUMENT",
            "details": [
                {
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": "API_KEY_INVALID",
                    "domain": "googleapis.com",
                }
            ],
        }
    }
    err = gemini.parse_error(400, orjson.dumps([api_key]))
    assert (err.status, err.kind, err.code) == (400, "authentication", "API_KEY_INVALID")
    html = gemini.parse_error(502, b"<html>Bad Gateway</html>")
    assert (html.status, html.kind, html.message) == (502, "server", "<html>Bad Gateway</html>")
    empty = gemini.parse_error(503, b"")
    assert empty.status == 503 and empty.message
    odd = gemini.parse_error(500, b'{"error": "just a string", "details": 5}')
    assert odd.status == 500 and odd.message == "upstream returned HTTP 500"
    weird_delay = gemini.parse_error(
        429,
        orjson.dumps(
            {
                "error": {
                    "message": "m",
                    "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "soon"}],
                }
            }
        ),
    )
    assert weird_delay.retry_after is None and weird_delay.kind == "rate_limit"


# ====================================================================== the real google-genai client


def test_sdk_request_body_parses() -> None:
    """What google-genai itself puts on the wire for a tool-calling follow-up."""
    seen: list[dict[str, Any]] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(orjson.loads(request.content))
        response = ir.Response(id="r", model="gemini-2.5-pro", parts=[ir.Text("ok")])
        return httpx2.Response(200, json=gemini.render_response(response, client_request()))

    client = sdk_client(handler)
    history = [
        types.Content(role="user", parts=[types.Part(text="what is in a.txt?")]),
        types.Content(
            role="model",
            parts=[
                types.Part(
                    function_call=types.FunctionCall(name="read_file", args={"path": "a.txt"}),
                    thought_signature=b"raw-signature-bytes",
                )
            ],
        ),
        types.Content(
            role="user",
            parts=[types.Part.from_function_response(name="read_file", response={"output": "hello"})],
        ),
    ]
    config = types.GenerateContentConfig(
        system_instruction="be terse",
        max_output_tokens=256,
        temperature=0.2,
        stop_sequences=["STOP!"],
        tools=[
            types.Tool(
                function_declarations=[
                    types.FunctionDeclaration(
                        name="read_file",
                        description="read",
                        parameters=types.Schema(
                            type=types.Type.OBJECT, properties={"path": types.Schema(type=types.Type.STRING)}
                        ),
                    )
                ]
            )
        ],
        tool_config=types.ToolConfig(
            function_calling_config=types.FunctionCallingConfig(mode=types.FunctionCallingConfigMode.AUTO)
        ),
        thinking_config=types.ThinkingConfig(thinking_budget=2048, include_thoughts=True),
        response_mime_type="application/json",
        automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
    )
    result = client.models.generate_content(model="gemini-2.5-pro", contents=history, config=config)
    assert result.text == "ok"
    req = gemini.parse_request(seen[0], model="gemini-2.5-pro")
    assert req.system == [ir.Text("be terse")]
    assert req.messages[1].parts == [
        ir.Reasoning("", base64.b64encode(b"raw-signature-bytes").decode(), origin="gemini"),
        ir.ToolCall("call_0", "read_file", '{"path":"a.txt"}'),
    ]
    assert req.messages[2].parts == [ir.ToolResult("call_0", [ir.Text("hello")], name="read_file")]
    assert req.tools[0].parameters == {"type": "object", "properties": {"path": {"type": "string"}}}
    assert req.tool_choice == ir.ToolChoice("auto")
    assert (req.max_tokens, req.temperature, req.stop) == (256, 0.2, ["STOP!"])
    assert req.reasoning == ir.ReasoningConfig(budget=2048, summary=True)
    assert req.response_format == ir.ResponseFormat("json_object")
    # and the same body rendered for a Gemini upstream is accepted by the SDK's types
    validate_request_with_sdk(gemini.render_request(req, "gemini-2.5-pro"))


def test_sdk_generate_content_stream_reads_our_stream() -> None:
    data = encode(STREAM_EVENTS)

    def handler(request: httpx2.Request) -> httpx2.Response:
        assert request.url.params.get("alt") == "sse"
        return httpx2.Response(200, content=data, headers={"content-type": "text/event-stream"})

    chunks = list(sdk_client(handler).models.generate_content_stream(model="m", contents="hi"))
    text = "".join(c.text or "" for c in chunks if c.candidates and c.candidates[0].content)
    assert text == "Hello world"
    calls = [call for c in chunks for call in (c.function_calls or [])]
    assert [(c.id, c.name, c.args) for c in calls] == [
        ("toolu_1", "read", {"path": "a"}),
        ("toolu_2", "ls", {}),
    ]
    last = chunks[-1]
    assert last.candidates is not None and last.candidates[0].finish_reason == types.FinishReason.STOP
    assert last.usage_metadata is not None and last.usage_metadata.total_token_count == 14


@pytest.mark.parametrize(
    ("error", "exception"),
    [
        (ir.GatewayError(429, "slow down", retry_after=3), genai_errors.ClientError),
        (ir.GatewayError(503, "overloaded"), genai_errors.ServerError),
    ],
)
def test_sdk_raises_on_our_mid_stream_error(error: ir.GatewayError, exception: type[Exception]) -> None:
    data = encode([ir.StreamStart("r", "m"), ir.TextDelta("partial"), ir.StreamError(error)])

    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, content=data, headers={"content-type": "text/event-stream"})

    received: list[str] = []
    with pytest.raises(exception) as caught:
        for chunk in sdk_client(handler).models.generate_content_stream(model="m", contents="hi"):
            received.append(chunk.text or "")
    assert received == ["partial"]
    assert caught.value.code == error.status  # type: ignore[attr-defined]
    assert caught.value.message == error.message  # type: ignore[attr-defined]


def test_sdk_raises_when_our_stream_is_cut() -> None:
    data = encode([ir.StreamStart("r", "m"), ir.TextDelta("partial")])

    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, content=data, headers={"content-type": "text/event-stream"})

    with pytest.raises(genai_errors.ServerError) as caught:
        list(sdk_client(handler).models.generate_content_stream(model="m", contents="hi"))
    assert caught.value.code == 502


@pytest.mark.parametrize(
    ("status", "exception"),
    [(400, genai_errors.ClientError), (429, genai_errors.ClientError), (500, genai_errors.ServerError)],
)
def test_sdk_raises_on_our_http_errors(status: int, exception: type[Exception]) -> None:
    body = gemini.render_error(ir.GatewayError(status, "nope", retry_after=12))

    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(status, json=body)

    with pytest.raises(exception) as caught:
        sdk_client(handler).models.generate_content(model="m", contents="hi")
    assert caught.value.code == status  # type: ignore[attr-defined]
    assert caught.value.status == body["error"]["status"]  # type: ignore[attr-defined]
    assert caught.value.details["error"]["details"][0]["retryDelay"] == "12s"  # type: ignore[attr-defined]


def test_decoder_reads_a_bare_json_error_inside_an_sse_stream() -> None:
    body = (b'data: {"candidates":[{"content":{"role":"model","parts":[{"text":"hi"}]}}]}\r\n\r\n'
            b'{\n  "error": {"code": 503, "message": "overloaded", "status": "UNAVAILABLE"}\n}\r\n')
    events = decode([body])
    assert events[-1] == ir.StreamError(ir.GatewayError(503, "overloaded", kind="unavailable"))


@pytest.mark.parametrize("value", ["--5", "²", "1e3", ""])
def test_odd_integer_strings_are_a_400(value: str) -> None:
    body = {"contents": [{"parts": [{"text": "x"}]}], "generationConfig": {"maxOutputTokens": value}}
    with pytest.raises(ir.GatewayError) as caught:
        gemini.parse_request(body, model="m", stream=False)
    assert caught.value.status == 400 and caught.value.param == "generationConfig.maxOutputTokens"

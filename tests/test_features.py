"""Feature tests across formats: each drives a real gateway with an official SDK
(raw httpx2 only where an SDK cannot express the request) and checks both ends,
what the client got and what the fake upstream received.

Covered: structured output, images, tool_choice / parallel_tool_calls, system
messages in mid-conversation, stop reasons, usage accounting, Gemini's JSON-array
stream, same-format passthrough, key failover and unreachable providers, and
upstream error statuses."""

from __future__ import annotations

import base64
import functools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import anthropic
import httpx2 as httpx
import openai
import pytest
from google import genai
from google.genai import errors as genai_errors
from google.genai import types as gtypes

from tests.conftest import CLIENT_KEY, MODELS
from tests.fakes import FakeUpstream, Recorded, ToolCallSpec, Turn
from tests.fakes.script import StopKind
from tests.gateway_runner import RunningGateway, free_port
from tests.upstream_view import VIEWS

CLIENT_NAMES = ("chat", "responses", "anthropic", "gemini")
UPSTREAMS = tuple(MODELS)  # openai, openai-responses, anthropic, gemini
PAIRS = [(c, u) for c in CLIENT_NAMES for u in UPSTREAMS]
GENERATE_PATHS = ("/chat/completions", "/responses", "/messages")


def pair_ids(pairs: list[tuple[str, str]], feature: str) -> list[str]:
    return [f"{c}->{u}-{feature}" for c, u in pairs]


# ---------------------------------------------------------------- SDK clients (cached: building them is the slow part)


# Typed Any: the SDKs' overloads and TypedDicts add nothing to a test that sends raw-ish dicts.
@functools.cache
def openai_sdk(url: str) -> Any:
    return openai.OpenAI(base_url=f"{url}/v1", api_key=CLIENT_KEY, max_retries=0, timeout=20)


@functools.cache
def anthropic_sdk(url: str) -> Any:
    return anthropic.Anthropic(base_url=url, api_key=CLIENT_KEY, max_retries=0, timeout=20)


@functools.cache
def gemini_sdk(url: str) -> Any:
    return genai.Client(api_key=CLIENT_KEY, http_options=gtypes.HttpOptions(base_url=url, timeout=20_000))


def generations(fake: FakeUpstream) -> list[Recorded]:
    return [r for r in fake.requests if r.path.endswith(GENERATE_PATHS) or "enerateContent" in r.path]


def last_generation(fake: FakeUpstream) -> Recorded:
    records = generations(fake)
    assert records, "the upstream received no generation request"
    return records[-1]


def upstream_streamed(record: Recorded) -> bool:
    if record.protocol == "gemini":
        return "streamGenerateContent" in record.path
    return record.body.get("stream") is True


def key_of(record: Recorded) -> str:
    headers = record.headers
    if record.protocol == "gemini":
        return headers.get("x-goog-api-key") or record.query.get("key", "")
    if record.protocol == "anthropic" and "x-api-key" in headers:
        return headers["x-api-key"]
    return headers.get("authorization", "").removeprefix("Bearer ")


def gemini_text(response: gtypes.GenerateContentResponse) -> str:
    candidate = response.candidates[0] if response.candidates else None
    if candidate is None or candidate.content is None:
        return ""
    return "".join(p.text or "" for p in candidate.content.parts or [] if not p.thought)


class Capture:
    """An httpx2 client that remembers the JSON body of every request an SDK sends."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.urls: list[str] = []
        self.client = httpx.Client(timeout=20, event_hooks={"request": [self._hook]})

    def _hook(self, request: httpx.Request) -> None:
        request.read()
        self.urls.append(str(request.url))
        self.bodies.append(json.loads(request.content))


@pytest.fixture
def capture() -> Iterator[Capture]:
    captured = Capture()
    yield captured
    captured.client.close()


# ================================================================ 1. structured output

PERSON_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
    "required": ["name", "age"],
    "additionalProperties": False,
}
PERSON_JSON = '{"name": "Ada", "age": 36}'


def ask_structured(client: str, url: str, model: str) -> str:
    question = "Who wrote the first program? Answer as JSON."
    if client == "chat":
        fmt = {"type": "json_schema", "json_schema": {"name": "person", "schema": PERSON_SCHEMA, "strict": True}}
        resp = openai_sdk(url).chat.completions.create(
            model=model, messages=[{"role": "user", "content": question}], response_format=fmt)
        return resp.choices[0].message.content or ""
    if client == "responses":
        text = {"format": {"type": "json_schema", "name": "person", "schema": PERSON_SCHEMA, "strict": True}}
        return openai_sdk(url).responses.create(model=model, input=question, text=text).output_text
    if client == "anthropic":
        message = anthropic_sdk(url).messages.create(
            model=model, max_tokens=200, messages=[{"role": "user", "content": question}],
            output_config={"format": {"type": "json_schema", "schema": PERSON_SCHEMA}})
        return "".join(b.text for b in message.content if b.type == "text")
    config = gtypes.GenerateContentConfig(response_mime_type="application/json", response_json_schema=PERSON_SCHEMA)
    return gemini_text(gemini_sdk(url).models.generate_content(model=model, contents=question, config=config))


@pytest.mark.parametrize("pair", PAIRS, ids=pair_ids(PAIRS, "structured-output"))
def test_structured_output(pair: tuple[str, str], gateway: RunningGateway, clean_fake: FakeUpstream) -> None:
    client, upstream = pair
    clean_fake.script(Turn(text=PERSON_JSON))
    assert json.loads(ask_structured(client, gateway.url, MODELS[upstream])) == {"name": "Ada", "age": 36}

    body = last_generation(clean_fake).body
    # Anthropic and Gemini have no schema name; OpenAI requires one, so some name must be made up.
    named = client in ("chat", "responses")
    if upstream == "openai":
        fmt = body["response_format"]
        assert fmt["type"] == "json_schema"
        assert fmt["json_schema"]["schema"] == PERSON_SCHEMA
        assert fmt["json_schema"]["name"] == "person" or not named and fmt["json_schema"]["name"]
        if named:
            assert fmt["json_schema"]["strict"] is True
    elif upstream == "openai-responses":
        fmt = body["text"]["format"]
        assert fmt["type"] == "json_schema"
        assert fmt["schema"] == PERSON_SCHEMA
        assert fmt["name"] == "person" or not named and fmt["name"]
    elif upstream == "anthropic":
        assert body["output_config"]["format"] == {"type": "json_schema", "schema": PERSON_SCHEMA}
    else:
        config = body["generationConfig"]
        assert config["responseMimeType"] == "application/json"
        if "responseJsonSchema" in config:
            assert config["responseJsonSchema"] == PERSON_SCHEMA
        else:
            schema = config["responseSchema"]
            assert schema["type"].upper() == "OBJECT" and set(schema["properties"]) == {"name", "age"}


# An OpenAPI-style responseSchema (what older Gemini clients send) becomes plain JSON Schema elsewhere.
GEMINI_OPENAPI_SCHEMA = {"type": "OBJECT", "properties": {"name": {"type": "STRING"}, "age": {"type": "INTEGER",
                         "nullable": True}}, "required": ["name"]}


@pytest.mark.parametrize("upstream", ["openai", "openai-responses", "anthropic"],
                         ids=[f"gemini->{u}-response-schema" for u in ["openai", "openai-responses", "anthropic"]])
def test_gemini_response_schema_becomes_json_schema(upstream: str, gateway: RunningGateway,
                                                    clean_fake: FakeUpstream) -> None:
    clean_fake.script(Turn(text=PERSON_JSON))
    config = gtypes.GenerateContentConfig(response_mime_type="application/json",
                                          response_schema=GEMINI_OPENAPI_SCHEMA)
    answer = gemini_sdk(gateway.url).models.generate_content(model=MODELS[upstream], contents="who?", config=config)
    assert json.loads(gemini_text(answer)) == {"name": "Ada", "age": 36}
    body = last_generation(clean_fake).body
    schema = {"openai": lambda: body["response_format"]["json_schema"]["schema"],
              "openai-responses": lambda: body["text"]["format"]["schema"],
              "anthropic": lambda: body["output_config"]["format"]["schema"]}[upstream]()
    assert schema["type"] == "object"
    assert schema["properties"]["name"]["type"] == "string"
    assert set(schema["properties"]["age"]["type"]) == {"integer", "null"}
    assert schema["required"] == ["name"]


# ================================================================ 2. images in

IMAGE_BYTES = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 2  # every byte value: '+' and '/' in base64
IMAGE_B64 = base64.b64encode(IMAGE_BYTES).decode()
DATA_URL = f"data:image/png;base64,{IMAGE_B64}"
HTTP_URL = "http://images.example.com/cat.png"
PROMPT = "Describe this image."

# (client, how it sends the image, whether the bytes travel inline)
IMAGE_SOURCES = [("chat", "data-url", True), ("chat", "http-url", False), ("anthropic", "base64", True),
                 ("gemini", "inline-data", True), ("responses", "input-image", True)]
IMAGE_CASES = [(c, how, inline, u) for c, how, inline in IMAGE_SOURCES for u in UPSTREAMS]


def send_image(client: str, how: str, url: str, model: str) -> str:
    if client == "chat":
        image = DATA_URL if how == "data-url" else HTTP_URL
        content = [{"type": "text", "text": PROMPT}, {"type": "image_url", "image_url": {"url": image}}]
        resp = openai_sdk(url).chat.completions.create(model=model, messages=[{"role": "user", "content": content}])
        return resp.choices[0].message.content or ""
    if client == "responses":
        parts = [{"type": "input_text", "text": PROMPT}, {"type": "input_image", "image_url": DATA_URL, "detail": "auto"}]
        return openai_sdk(url).responses.create(model=model, input=[{"role": "user", "content": parts}]).output_text
    if client == "anthropic":
        source = {"type": "base64", "media_type": "image/png", "data": IMAGE_B64}
        message = anthropic_sdk(url).messages.create(model=model, max_tokens=100, messages=[
            {"role": "user", "content": [{"type": "text", "text": PROMPT}, {"type": "image", "source": source}]}])
        return "".join(b.text for b in message.content if b.type == "text")
    gemini_parts = [gtypes.Part(text=PROMPT), gtypes.Part.from_bytes(data=IMAGE_BYTES, mime_type="image/png")]
    contents = [gtypes.Content(role="user", parts=gemini_parts)]
    return gemini_text(gemini_sdk(url).models.generate_content(model=model, contents=contents))


def _same_bytes(data: str, same_format_gemini: bool) -> None:
    """The base64 an upstream got: the client's exact bytes, in standard base64 (what
    OpenAI and Anthropic decode) unless it is Gemini's own request passed through."""
    if same_format_gemini:  # google-genai writes url-safe base64; forwarded as sent
        assert base64.urlsafe_b64decode(data) == IMAGE_BYTES
    else:
        assert data == IMAGE_B64


@pytest.mark.parametrize("case", IMAGE_CASES, ids=[f"{c}->{u}-image-{how}" for c, how, _, u in IMAGE_CASES])
def test_image_input(case: tuple[str, str, bool, str], gateway: RunningGateway, clean_fake: FakeUpstream) -> None:
    client, how, inline, upstream = case
    clean_fake.script(Turn(text="A small test pattern."))
    assert send_image(client, how, gateway.url, MODELS[upstream]) == "A small test pattern."

    body = last_generation(clean_fake).body
    passthrough_gemini = client == "gemini" and upstream == "gemini"
    if upstream == "openai":
        (user,) = [m for m in body["messages"] if m["role"] == "user"]
        images = [p["image_url"]["url"] for p in user["content"] if p["type"] == "image_url"]
        texts = [p["text"] for p in user["content"] if p["type"] == "text"]
        assert images == [DATA_URL if inline else HTTP_URL]
    elif upstream == "openai-responses":
        (user,) = [i for i in body["input"] if i.get("role") == "user"]
        images = [p["image_url"] for p in user["content"] if p["type"] == "input_image"]
        texts = [p["text"] for p in user["content"] if p["type"] == "input_text"]
        assert images == [DATA_URL if inline else HTTP_URL]
    elif upstream == "anthropic":
        (user,) = body["messages"]
        sources = [b["source"] for b in user["content"] if b["type"] == "image"]
        texts = [b["text"] for b in user["content"] if b["type"] == "text"]
        assert len(sources) == 1
        if inline:
            assert sources[0]["type"] == "base64" and sources[0]["media_type"] == "image/png"
            _same_bytes(sources[0]["data"], False)
        else:
            assert sources[0] == {"type": "url", "url": HTTP_URL}
    else:
        (user,) = body["contents"]
        texts = [p["text"] for p in user["parts"] if "text" in p]
        media = [p for p in user["parts"] if "inlineData" in p or "fileData" in p]
        assert len(media) == 1
        if inline:
            blob = media[0]["inlineData"]
            assert blob.get("mimeType", blob.get("mime_type")) == "image/png"  # google-genai writes mime_type
            _same_bytes(blob["data"], passthrough_gemini)
        else:
            assert media[0]["fileData"] == {"mimeType": "image/png", "fileUri": HTTP_URL}
    assert texts == [PROMPT]


# ================================================================ 3. tool_choice and parallel_tool_calls

CITY = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
CHOICE_TOOLS = [("get_weather", "Weather for a city"), ("get_time", "Local time in a city")]
CHOICES = ("auto", "none", "required", "named", "serial")
TOOL_CASES = [(c, u, choice) for c, u in PAIRS for choice in CHOICES
              if not (choice == "serial" and c == "gemini")]  # Gemini has no parallel-call switch


def send_tool_choice(client: str, choice: str, url: str, model: str) -> tuple[str, list[str]]:
    """(text, names of called tools) of one request with tools and this choice."""
    question = [{"role": "user", "content": "What time is it in Oslo?"}]
    if client in ("chat", "responses"):
        kwargs: dict[str, Any] = {"model": model}
        wire_choice: Any = {"auto": "auto", "none": "none", "required": "required", "serial": None}.get(choice)
        if client == "chat":
            kwargs["tools"] = [{"type": "function", "function": {"name": n, "description": d, "parameters": CITY}}
                               for n, d in CHOICE_TOOLS]
            if choice == "named":
                wire_choice = {"type": "function", "function": {"name": "get_time"}}
        else:
            kwargs["tools"] = [{"type": "function", "name": n, "description": d, "parameters": CITY, "strict": False}
                               for n, d in CHOICE_TOOLS]
            if choice == "named":
                wire_choice = {"type": "function", "name": "get_time"}
        if wire_choice is not None:
            kwargs["tool_choice"] = wire_choice
        if choice == "serial":
            kwargs["parallel_tool_calls"] = False
        if client == "chat":
            message = openai_sdk(url).chat.completions.create(messages=question, **kwargs).choices[0].message
            return message.content or "", [c.function.name for c in message.tool_calls or []]
        resp = openai_sdk(url).responses.create(input=question, **kwargs)
        return resp.output_text, [i.name for i in resp.output if i.type == "function_call"]
    if client == "anthropic":
        tools = [{"name": n, "description": d, "input_schema": CITY} for n, d in CHOICE_TOOLS]
        anthropic_choice = {"auto": {"type": "auto"}, "none": {"type": "none"}, "required": {"type": "any"},
                            "named": {"type": "tool", "name": "get_time"},
                            "serial": {"type": "auto", "disable_parallel_tool_use": True}}[choice]
        message = anthropic_sdk(url).messages.create(model=model, max_tokens=100, messages=question, tools=tools,
                                                     tool_choice=anthropic_choice)
        return ("".join(b.text for b in message.content if b.type == "text"),
                [b.name for b in message.content if b.type == "tool_use"])
    mode = {"auto": gtypes.FunctionCallingConfigMode.AUTO, "none": gtypes.FunctionCallingConfigMode.NONE,
            "required": gtypes.FunctionCallingConfigMode.ANY, "named": gtypes.FunctionCallingConfigMode.ANY}[choice]
    calling = gtypes.FunctionCallingConfig(mode=mode, allowed_function_names=["get_time"] if choice == "named" else None)
    config = gtypes.GenerateContentConfig(
        tools=[gtypes.Tool(function_declarations=[gtypes.FunctionDeclaration(name=n, description=d, parameters_json_schema=CITY)
                                                  for n, d in CHOICE_TOOLS])],
        tool_config=gtypes.ToolConfig(function_calling_config=calling),
        automatic_function_calling=gtypes.AutomaticFunctionCallingConfig(disable=True))
    answer = gemini_sdk(url).models.generate_content(model=model, contents="What time is it in Oslo?", config=config)
    return gemini_text(answer), [c.name or "" for c in answer.function_calls or []]


EXPECTED_CHOICE: dict[str, dict[str, Any]] = {
    "openai": {"auto": "auto", "none": "none", "required": "required",
               "named": {"type": "function", "function": {"name": "get_time"}}},
    "openai-responses": {"auto": "auto", "none": "none", "required": "required",
                         "named": {"type": "function", "name": "get_time"}},
    "anthropic": {"auto": {"type": "auto"}, "none": {"type": "none"}, "required": {"type": "any"},
                  "named": {"type": "tool", "name": "get_time"}},
    "gemini": {"auto": {"mode": "AUTO"}, "none": {"mode": "NONE"}, "required": {"mode": "ANY"},
               "named": {"mode": "ANY", "allowedFunctionNames": ["get_time"]}},
}


@pytest.mark.parametrize("case", TOOL_CASES, ids=[f"{c}->{u}-tool-choice-{ch}" for c, u, ch in TOOL_CASES])
def test_tool_choice(case: tuple[str, str, str], gateway: RunningGateway, clean_fake: FakeUpstream) -> None:
    client, upstream, choice = case
    forced = choice in ("required", "named")
    clean_fake.script(Turn(tool_calls=[ToolCallSpec("get_time", {"city": "Oslo"})]) if forced
                      else Turn(text="It is noon."))
    text, called = send_tool_choice(client, choice, gateway.url, MODELS[upstream])
    assert (text, called) == (("", ["get_time"]) if forced else ("It is noon.", []))

    body = last_generation(clean_fake).body
    if upstream == "gemini":
        calling = (body.get("toolConfig") or {}).get("functionCallingConfig")
        if choice == "serial":  # nothing to map it to; no forced mode may appear either
            assert calling in (None, {"mode": "AUTO"})
        else:
            assert calling == EXPECTED_CHOICE["gemini"][choice]
        return
    if choice != "serial":
        assert body["tool_choice"] == EXPECTED_CHOICE[upstream][choice]
        assert body.get("parallel_tool_calls") is None
        assert "disable_parallel_tool_use" not in body["tool_choice"]
    elif upstream == "anthropic":
        assert body["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}
    else:
        assert body["parallel_tool_calls"] is False
        assert body.get("tool_choice") in (None, "auto")


# ================================================================ 4. system messages in the middle

MID_SYSTEM = "MID-SYSTEM: the user prefers metric units."
TOP_SYSTEM = "You are Claude Code, a coding agent."
OTHER_KINDS = {"anthropic": ["openai", "openai-responses", "gemini"],
               "responses": ["openai", "anthropic", "gemini"]}
CLAUDE_CASES = [(prefix, u, stream) for prefix in ("", "/anthropic") for u in OTHER_KINDS["anthropic"]
                for stream in (False, True)]


@pytest.mark.parametrize("case", CLAUDE_CASES, ids=[
    f"anthropic{'-prefixed' if p else ''}->{u}-{'stream' if s else 'json'}-mid-system" for p, u, s in CLAUDE_CASES])
def test_claude_code_mid_conversation_system(case: tuple[str, str, bool], gateway: RunningGateway,
                                             clean_fake: FakeUpstream, capture: Capture) -> None:
    prefix, upstream, stream = case
    clean_fake.script(Turn(text="Use metres."))
    # What Claude Code sends: the beta endpoint (?beta=true), a `system` message after the first user turn.
    sdk = anthropic.Anthropic(base_url=gateway.url + prefix, api_key=CLIENT_KEY, max_retries=0,
                              http_client=capture.client)
    request: dict[str, Any] = dict(
        model=MODELS[upstream], max_tokens=300, betas=["claude-code-20250219", "context-management-2025-06-27"],
        system=[{"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1"},
                {"type": "text", "text": TOP_SYSTEM, "cache_control": {"type": "ephemeral"}}],
        metadata={"user_id": json.dumps({"device_id": "d1", "session_id": "s1"})},
        thinking={"type": "adaptive", "display": "omitted"}, output_config={"effort": "medium"},
        context_management={"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
        extra_headers={"x-app": "cli"}, extra_query={"beta": "true"},
        messages=[
            {"role": "user", "content": [{"type": "text", "text": "first question"}]},
            {"role": "system", "content": MID_SYSTEM},
            {"role": "assistant", "content": [{"type": "text", "text": "first answer"}]},
            {"role": "user", "content": [{"type": "text", "text": "second question"}]},
        ])
    if stream:
        with sdk.beta.messages.stream(**request) as events:
            message = events.get_final_message()
    else:
        message = sdk.beta.messages.create(**request)
    assert "".join(b.text for b in message.content if b.type == "text") == "Use metres."
    assert capture.urls == [f"{gateway.url}{prefix}/v1/messages?beta=true"]
    assert [m["role"] for m in capture.bodies[0]["messages"]] == ["user", "system", "assistant", "user"]

    seen = VIEWS[upstream](last_generation(clean_fake).body)
    assert MID_SYSTEM in seen.system and TOP_SYSTEM in seen.system
    assert seen.user_texts == ["first question", "second question"]
    assert not any(MID_SYSTEM in t for t in seen.user_texts)


@pytest.mark.parametrize("upstream", OTHER_KINDS["responses"],
                         ids=[f"responses->{u}-developer-item" for u in OTHER_KINDS["responses"]])
def test_responses_developer_items(upstream: str, gateway: RunningGateway, clean_fake: FakeUpstream) -> None:
    clean_fake.script(Turn(text="Use metres."))
    items = [{"role": "developer", "content": "You are Codex."},  # Codex: the system prompt is a developer item
             {"role": "user", "content": "first question"},
             {"role": "developer", "content": MID_SYSTEM},
             {"role": "assistant", "content": "first answer"},
             {"role": "user", "content": "second question"}]
    answer = openai_sdk(gateway.url).responses.create(model=MODELS[upstream], input=items, store=False)
    assert answer.output_text == "Use metres."
    seen = VIEWS[upstream](last_generation(clean_fake).body)
    assert "You are Codex." in seen.system and MID_SYSTEM in seen.system
    assert seen.user_texts == ["first question", "second question"]


# ================================================================ 5. stop reasons

NATIVE_STOP: dict[str, dict[str, Any]] = {
    "chat": {"length": "length", "content_filter": "content_filter"},
    "responses": {"length": ("incomplete", "max_output_tokens"), "content_filter": ("incomplete", "content_filter")},
    "anthropic": {"length": "max_tokens", "content_filter": "refusal"},
    "gemini": {"length": "MAX_TOKENS", "content_filter": "SAFETY"},
}
STOP_KINDS: tuple[StopKind, ...] = ("length", "content_filter")
STOP_CASES = [(c, u, stop, s) for c, u in PAIRS for stop in STOP_KINDS for s in (False, True)]


def native_stop(client: str, url: str, model: str, stream: bool) -> tuple[str, Any]:
    """(text, the stop reason in the client's own terms)."""
    messages = [{"role": "user", "content": "Tell me a long story."}]
    if client == "chat":
        sdk = openai_sdk(url)
        if not stream:
            choice = sdk.chat.completions.create(model=model, messages=messages, max_tokens=50).choices[0]
            return choice.message.content or "", choice.finish_reason
        text, reason = "", None
        for chunk in sdk.chat.completions.create(model=model, messages=messages, max_tokens=50, stream=True):
            for ch in chunk.choices:
                text += ch.delta.content or ""
                reason = ch.finish_reason or reason
        return text, reason
    if client == "responses":
        sdk = openai_sdk(url)
        if not stream:
            resp = sdk.responses.create(model=model, input="Tell me a long story.", max_output_tokens=50)
        else:
            events = list(sdk.responses.create(model=model, input="Tell me a long story.", max_output_tokens=50, stream=True))
            terminal = events[-1]
            assert terminal.type == "response.incomplete"
            resp = terminal.response
        reason = resp.incomplete_details.reason if resp.incomplete_details else None
        return resp.output_text, (resp.status, reason)
    if client == "anthropic":
        asdk = anthropic_sdk(url)
        if stream:
            with asdk.messages.stream(model=model, max_tokens=50, messages=messages) as events:
                message = events.get_final_message()
        else:
            message = asdk.messages.create(model=model, max_tokens=50, messages=messages)
        return "".join(b.text for b in message.content if b.type == "text"), message.stop_reason
    gsdk = gemini_sdk(url)
    config = gtypes.GenerateContentConfig(max_output_tokens=50)
    if stream:
        chunks = list(gsdk.models.generate_content_stream(model=model, contents="Tell me a long story.", config=config))
    else:
        chunks = [gsdk.models.generate_content(model=model, contents="Tell me a long story.", config=config)]
    reasons = [c.candidates[0].finish_reason for c in chunks if c.candidates and c.candidates[0].finish_reason]
    assert len(reasons) == 1 and chunks[-1].candidates and chunks[-1].candidates[0].finish_reason  # once, at the end
    return "".join(gemini_text(c) for c in chunks), reasons[0].value


@pytest.mark.parametrize("case", STOP_CASES, ids=[
    f"{c}->{u}-{'stream' if s else 'json'}-stop-{stop}" for c, u, stop, s in STOP_CASES])
def test_stop_reasons(case: tuple[str, str, StopKind, bool], gateway: RunningGateway, clean_fake: FakeUpstream) -> None:
    client, upstream, stop, stream = case
    clean_fake.script(Turn(text="Once upon a ti", stop=stop))
    text, reason = native_stop(client, gateway.url, MODELS[upstream], stream)
    assert reason == NATIVE_STOP[client][stop]
    assert text == "Once upon a ti"
    record = last_generation(clean_fake)
    assert upstream_streamed(record) is stream
    assert VIEWS[upstream](record.body).max_tokens == 50


# ================================================================ 6. usage with cached and reasoning tokens

USAGE = (100, 40, 30, 12)  # input (cached included), output (reasoning included), cached, reasoning
USAGE_CASES = [(c, u, s) for c, u in PAIRS for s in (False, True)]


def client_usage(client: str, url: str, model: str, stream: bool) -> dict[str, Any]:
    """The usage fields the client's SDK parsed, in its own names."""
    messages = [{"role": "user", "content": "Count my tokens."}]
    if client == "chat":
        sdk = openai_sdk(url)
        if stream:
            chunks = list(sdk.chat.completions.create(model=model, messages=messages, stream=True,
                                                       stream_options={"include_usage": True}))
            usage = chunks[-1].usage
            assert chunks[-1].choices == []
        else:
            usage = sdk.chat.completions.create(model=model, messages=messages).usage
        assert usage is not None
        return {"prompt_tokens": usage.prompt_tokens, "completion_tokens": usage.completion_tokens,
                "total_tokens": usage.total_tokens,
                "cached_tokens": usage.prompt_tokens_details.cached_tokens if usage.prompt_tokens_details else None,
                "reasoning_tokens": usage.completion_tokens_details.reasoning_tokens
                if usage.completion_tokens_details else None}
    if client == "responses":
        sdk = openai_sdk(url)
        if stream:
            with sdk.responses.stream(model=model, input="Count my tokens.") as events:
                resp = events.get_final_response()
        else:
            resp = sdk.responses.create(model=model, input="Count my tokens.")
        assert resp.usage is not None
        u = resp.usage
        return {"input_tokens": u.input_tokens, "cached_tokens": u.input_tokens_details.cached_tokens,
                "output_tokens": u.output_tokens, "reasoning_tokens": u.output_tokens_details.reasoning_tokens,
                "total_tokens": u.total_tokens}
    if client == "anthropic":
        asdk = anthropic_sdk(url)
        if stream:
            with asdk.messages.stream(model=model, max_tokens=100, messages=messages) as events:
                message = events.get_final_message()
        else:
            message = asdk.messages.create(model=model, max_tokens=100, messages=messages)
        a = message.usage
        details = a.output_tokens_details
        return {"input_tokens": a.input_tokens, "cache_read_input_tokens": a.cache_read_input_tokens,
                "output_tokens": a.output_tokens,
                "thinking_tokens": getattr(details, "thinking_tokens", None) if details else None}
    gsdk = gemini_sdk(url)
    if stream:
        chunks = list(gsdk.models.generate_content_stream(model=model, contents="Count my tokens."))
    else:
        chunks = [gsdk.models.generate_content(model=model, contents="Count my tokens.")]
    meta = [c.usage_metadata for c in chunks if c.usage_metadata][-1]  # last one wins
    return {"promptTokenCount": meta.prompt_token_count, "cachedContentTokenCount": meta.cached_content_token_count,
            "candidatesTokenCount": meta.candidates_token_count, "thoughtsTokenCount": meta.thoughts_token_count,
            "totalTokenCount": meta.total_token_count}


def expected_usage(client: str, reasoning: int) -> dict[str, Any]:
    total_in, total_out, cached, _ = USAGE
    if client == "chat":
        return {"prompt_tokens": total_in, "completion_tokens": total_out, "total_tokens": total_in + total_out,
                "cached_tokens": cached, "reasoning_tokens": reasoning}
    if client == "responses":
        return {"input_tokens": total_in, "cached_tokens": cached, "output_tokens": total_out,
                "reasoning_tokens": reasoning, "total_tokens": total_in + total_out}
    if client == "anthropic":  # cache reads are outside input_tokens
        return {"input_tokens": total_in - cached, "cache_read_input_tokens": cached, "output_tokens": total_out,
                "thinking_tokens": reasoning or None}
    return {"promptTokenCount": total_in, "cachedContentTokenCount": cached,  # thoughts are outside candidates
            "candidatesTokenCount": total_out - reasoning, "thoughtsTokenCount": reasoning or None,
            "totalTokenCount": total_in + total_out}


@pytest.mark.parametrize("case", USAGE_CASES, ids=[f"{c}->{u}-{'stream' if s else 'json'}-usage" for c, u, s in USAGE_CASES])
def test_usage_cached_and_reasoning(case: tuple[str, str, bool], gateway: RunningGateway, clean_fake: FakeUpstream) -> None:
    client, upstream, stream = case
    clean_fake.script(Turn(text="Counted.", usage=USAGE))
    got = client_usage(client, gateway.url, MODELS[upstream], stream)
    # An Anthropic upstream does not say how many output tokens were thinking.
    reasoning = 0 if upstream == "anthropic" else USAGE[3]
    assert got == expected_usage(client, reasoning)
    record = last_generation(clean_fake)
    assert upstream_streamed(record) is stream
    if upstream == "openai" and stream:  # usage only comes in a Chat stream when asked for
        assert record.body["stream_options"]["include_usage"] is True


# ================================================================ 7. Gemini stream as a JSON array (no ?alt=sse)


@pytest.mark.parametrize("upstream", UPSTREAMS, ids=[f"gemini->{u}-stream-json-array" for u in UPSTREAMS])
def test_gemini_stream_without_alt_sse_is_a_json_array(upstream: str, gateway: RunningGateway,
                                                      clean_fake: FakeUpstream) -> None:
    clean_fake.script(Turn(text="An array of chunks, as Gemini writes it.", chunk_text=4, usage=(20, 10, 0, 0)))
    response = httpx.post(f"{gateway.url}/v1beta/models/{MODELS[upstream]}:streamGenerateContent",
                          json={"contents": [{"role": "user", "parts": [{"text": "hi"}]}]},
                          headers={"x-goog-api-key": CLIENT_KEY}, timeout=20)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    chunks = json.loads(response.text)
    assert isinstance(chunks, list) and len(chunks) >= 2
    texts = [p.get("text", "") for c in chunks for p in c["candidates"][0].get("content", {}).get("parts", [])]
    assert "".join(texts) == "An array of chunks, as Gemini writes it."
    assert chunks[-1]["candidates"][0]["finishReason"] == "STOP"
    assert [c for c in chunks if c["candidates"][0].get("finishReason")] == [chunks[-1]]
    assert chunks[-1]["usageMetadata"]["promptTokenCount"] == 20
    assert upstream_streamed(last_generation(clean_fake))


@pytest.mark.parametrize("upstream", UPSTREAMS, ids=[f"gemini->{u}-stream-json-array-error" for u in UPSTREAMS])
def test_gemini_json_array_stream_error_stays_an_array(upstream: str, gateway: RunningGateway,
                                                      clean_fake: FakeUpstream) -> None:
    clean_fake.script(Turn(text="half an answer and then", stream_error=(503, "backend went away")))
    response = httpx.post(f"{gateway.url}/v1beta/models/{MODELS[upstream]}:streamGenerateContent",
                          json={"contents": [{"role": "user", "parts": [{"text": "hi"}]}]},
                          headers={"x-goog-api-key": CLIENT_KEY}, timeout=20)
    chunks = json.loads(response.text)
    assert isinstance(chunks, list)
    assert "backend went away" in chunks[-1]["error"]["message"]
    assert not any(c.get("candidates", [{}])[0].get("finishReason") for c in chunks[:-1])


# ================================================================ 8. same-format passthrough


@pytest.mark.parametrize("stream", [False, True], ids=["chat->openai-json-passthrough", "chat->openai-stream-passthrough"])
def test_chat_passthrough_keeps_unmodelled_fields(stream: bool, gateway: RunningGateway, clean_fake: FakeUpstream,
                                                  capture: Capture) -> None:
    clean_fake.script(Turn(text="Same format, same bytes."))
    sdk = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=CLIENT_KEY, max_retries=0, http_client=capture.client)
    kwargs: dict[str, Any] = dict(
        model=MODELS["openai"], messages=[{"role": "developer", "content": "Be terse."}, {"role": "user", "content": "hi"}],
        seed=42, logit_bias={"50256": -100}, metadata={"team": "qa", "run": "7"}, store=False, n=1,
        presence_penalty=0.25, frequency_penalty=0.5, logprobs=True, top_logprobs=2, prompt_cache_key="cache-key-1",
        service_tier="default", user="user-9", temperature=0.3, max_completion_tokens=77,
        extra_body={"top_k": 5, "x_vendor_flag": {"nested": [1, 2]}})
    if stream:
        chunks = list(sdk.chat.completions.create(**kwargs, stream=True, stream_options={"include_usage": True}))
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        fingerprints = {c.system_fingerprint for c in chunks}
    else:
        resp = sdk.chat.completions.create(**kwargs)
        text, fingerprints = resp.choices[0].message.content or "", {resp.system_fingerprint}
    assert text == "Same format, same bytes."
    assert fingerprints == {"fp_fake"}  # the upstream's own bytes came back
    (sent,) = capture.bodies
    assert sent["seed"] == 42 and sent["x_vendor_flag"] == {"nested": [1, 2]}
    assert last_generation(clean_fake).body == {**sent, "model": "chat-up-real"}


def test_anthropic_passthrough_keeps_unmodelled_fields(gateway: RunningGateway, clean_fake: FakeUpstream,
                                                       capture: Capture) -> None:
    clean_fake.script(Turn(text="Same format, same bytes."))
    sdk = anthropic.Anthropic(base_url=gateway.url, api_key=CLIENT_KEY, max_retries=0, http_client=capture.client)
    message = sdk.messages.create(
        model=MODELS["anthropic"], max_tokens=2048,
        system=[{"type": "text", "text": "Be terse.", "cache_control": {"type": "ephemeral", "ttl": "1h"}}],
        messages=[{"role": "user", "content": [{"type": "text", "text": "hi", "cache_control": {"type": "ephemeral"}}]}],
        metadata={"user_id": json.dumps({"device_id": "abc", "session_id": "s-1"})},
        thinking={"type": "adaptive", "display": "omitted"},
        output_config={"effort": "high"},
        extra_body={"context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]}},
        extra_headers={"anthropic-beta": "context-management-2025-06-27,effort-2025-11-24"})
    assert "".join(b.text for b in message.content if b.type == "text") == "Same format, same bytes."
    assert message.usage.service_tier == "standard"  # the upstream's own bytes came back
    (sent,) = capture.bodies
    assert sent["context_management"]["edits"][0]["type"] == "clear_thinking_20251015"
    record = last_generation(clean_fake)
    assert record.body == {**sent, "model": "claude-up-real"}
    assert record.headers["anthropic-beta"] == "context-management-2025-06-27,effort-2025-11-24"
    assert record.headers["x-api-key"] == "up-key"


def test_responses_passthrough_keeps_unmodelled_fields(gateway: RunningGateway, clean_fake: FakeUpstream,
                                                       capture: Capture) -> None:
    clean_fake.script(Turn(text="Same format, same bytes."))
    sdk = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=CLIENT_KEY, max_retries=0, http_client=capture.client)
    resp = sdk.responses.create(
        model=MODELS["openai-responses"], input=[{"role": "developer", "content": "Be terse."},
                                                 {"role": "user", "content": "hi"}],
        store=False, include=["reasoning.encrypted_content"], prompt_cache_key="thread-1",
        metadata={"origin": "codex"}, text={"verbosity": "low"}, truncation="auto", service_tier="auto",
        reasoning={"effort": "low", "summary": "auto"}, extra_body={"client_metadata": {"x-codex-turn": "3"}})
    assert resp.output_text == "Same format, same bytes."
    (sent,) = capture.bodies
    assert sent["client_metadata"] == {"x-codex-turn": "3"}
    assert last_generation(clean_fake).body == {**sent, "model": "responses-up-real"}


def test_gemini_passthrough_keeps_unmodelled_fields(gateway: RunningGateway, clean_fake: FakeUpstream,
                                                    capture: Capture) -> None:
    clean_fake.script(Turn(text="Same format, same bytes."))
    sdk = genai.Client(api_key=CLIENT_KEY, http_options=gtypes.HttpOptions(base_url=gateway.url,
                                                                            httpx_client=capture.client))
    config = gtypes.GenerateContentConfig(
        system_instruction="Be terse.", seed=7, temperature=0.5, candidate_count=1, response_logprobs=False,
        safety_settings=[gtypes.SafetySetting(category=gtypes.HarmCategory.HARM_CATEGORY_HARASSMENT,
                                              threshold=gtypes.HarmBlockThreshold.BLOCK_ONLY_HIGH)],
        tools=[gtypes.Tool(google_search=gtypes.GoogleSearch())])
    answer = sdk.models.generate_content(model=MODELS["gemini"], contents="hi", config=config)
    assert gemini_text(answer) == "Same format, same bytes."
    (sent,) = capture.bodies
    assert sent["safetySettings"] == [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_ONLY_HIGH"}]
    record = last_generation(clean_fake)
    assert record.body == sent
    assert record.path.endswith("/models/gemini-up-real:generateContent")


# ================================================================ 9. failover and unreachable providers

# Each upstream kind from its own format and from another; the failing first request streams in half of them.
FAILOVER_CASES = [("chat", "openai", False), ("anthropic", "openai", True), ("responses", "openai-responses", False),
                  ("gemini", "openai-responses", True), ("anthropic", "anthropic", True), ("chat", "anthropic", False),
                  ("gemini", "gemini", True), ("responses", "gemini", False)]


def pool_config(kind: str, base_url: str, keys: list[str], model: str = "pooled") -> dict[str, Any]:
    return {"server": {"api_keys": [CLIENT_KEY]},
            "providers": [{"name": f"pool-{kind}", "kind": kind, "base_url": base_url, "api_keys": keys,
                           "models": [{"name": model, "upstream": f"{model}-real"}]}]}


def kind_base(kind: str, url: str) -> str:
    return f"{url}/v1" if kind.startswith("openai") else url


def say(client: str, url: str, model: str, stream: bool = False) -> str:
    """One plain question; the answer text."""
    if client == "chat":
        sdk = openai_sdk(url)
        messages = [{"role": "user", "content": "hi"}]
        if stream:
            return "".join(c.choices[0].delta.content or "" for c in sdk.chat.completions.create(
                model=model, messages=messages, stream=True) if c.choices)
        return sdk.chat.completions.create(model=model, messages=messages).choices[0].message.content or ""
    if client == "responses":
        sdk = openai_sdk(url)
        if stream:
            with sdk.responses.stream(model=model, input="hi", store=False) as events:
                return events.get_final_response().output_text
        return sdk.responses.create(model=model, input="hi", store=False).output_text
    if client == "anthropic":
        asdk = anthropic_sdk(url)
        if stream:
            with asdk.messages.stream(model=model, max_tokens=50, messages=[{"role": "user", "content": "hi"}]) as ev:
                message = ev.get_final_message()
        else:
            message = asdk.messages.create(model=model, max_tokens=50, messages=[{"role": "user", "content": "hi"}])
        return "".join(b.text for b in message.content if b.type == "text")
    gsdk = gemini_sdk(url)
    if stream:
        return "".join(gemini_text(c) for c in gsdk.models.generate_content_stream(model=model, contents="hi"))
    return gemini_text(gsdk.models.generate_content(model=model, contents="hi"))


@pytest.mark.parametrize("case", FAILOVER_CASES, ids=[
    f"{c}->{u}-{'stream' if s else 'json'}-failover-429" for c, u, s in FAILOVER_CASES])
def test_429_fails_over_to_the_next_key_and_cools_down(case: tuple[str, str, bool], tmp_path: Path) -> None:
    client, kind, stream = case
    with FakeUpstream(api_key=None) as fake, \
            RunningGateway(pool_config(kind, kind_base(kind, fake.url), ["key-one", "key-two"]), tmp_path / "s.db") as gw:
        fake.script(Turn(error=(429, "rate limited on this key"), retry_after=60),
                    Turn(text="from the other key"), Turn(text="still the other key"), Turn(text="and again"))
        assert say(client, gw.url, "pooled", stream) == "from the other key"
        first, second = (key_of(r) for r in generations(fake))
        assert {first, second} == {"key-one", "key-two"}
        assert say(client, gw.url, "pooled") == "still the other key"
        assert say(client, gw.url, "pooled", stream=True) == "and again"
        records = generations(fake)
        assert len(records) == 4  # no request went to the cooling key again
        assert [key_of(r) for r in records[2:]] == [second, second]
        for record in records:
            assert ("pooled-real:" in record.path) if kind == "gemini" else record.body["model"] == "pooled-real"
        assert upstream_streamed(records[0]) is stream


SECRET = "sk-upstream-SECRET-7f3a9c"


@pytest.fixture(scope="module")
def dead_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningGateway]:
    closed = f"http://127.0.0.1:{free_port()}"
    config: dict[str, Any] = {"server": {"api_keys": [CLIENT_KEY]}, "providers": [
        {"name": f"dead-{kind}", "kind": kind, "base_url": kind_base(kind, closed), "api_keys": [SECRET],
         "models": [{"name": f"dead-{kind}", "upstream": "whatever"}]} for kind in UPSTREAMS]}
    with RunningGateway(config, tmp_path_factory.mktemp("dead") / "s.db") as running:
        yield running


DEAD_CASES = [(c, u, s) for c, u in PAIRS for s in (False, True)]


@pytest.mark.parametrize("case", DEAD_CASES, ids=[
    f"{c}->{u}-{'stream' if s else 'json'}-unreachable-502" for c, u, s in DEAD_CASES])
def test_unreachable_provider_is_502_without_the_key(case: tuple[str, str, bool], dead_gateway: RunningGateway) -> None:
    client, upstream, stream = case
    model = f"dead-{upstream}"
    if client == "gemini":
        with pytest.raises(genai_errors.ServerError) as gcaught:
            say(client, dead_gateway.url, model, stream)
        assert gcaught.value.code == 502
        body = gcaught.value.details
        assert body["error"]["code"] == 502 and body["error"]["message"]
        raw = json.dumps(body) + str(gcaught.value)
    else:
        expected = anthropic.InternalServerError if client == "anthropic" else openai.InternalServerError
        with pytest.raises(expected) as caught:
            say(client, dead_gateway.url, model, stream)
        error = cast(Any, caught.value)
        assert type(error) is expected and error.status_code == 502
        body = error.response.json()
        if client == "anthropic":
            assert body["type"] == "error" and body["error"]["type"] == "api_error"
        else:
            assert body["error"]["message"] and body["error"]["type"]
        raw = error.response.text + str(dict(error.response.headers))
    assert SECRET not in raw and SECRET[-6:] not in raw


# ================================================================ 10. upstream error statuses

STATUSES = (400, 401, 403, 404, 500, 503, 529)
ERROR_CASES = [(c, u, status, stream) for c, u in PAIRS for status in STATUSES for stream in (False, True)]
GEMINI_STATUS = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
                 500: "INTERNAL", 503: "UNAVAILABLE", 529: "UNAVAILABLE"}
ANTHROPIC_TYPE = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
                  404: "not_found_error", 500: "api_error", 503: "api_error", 529: "overloaded_error"}
OPENAI_CLASSES: dict[int, type[Exception]] = {
    400: openai.BadRequestError, 401: openai.AuthenticationError, 403: openai.PermissionDeniedError,
    404: openai.NotFoundError, 500: openai.InternalServerError, 503: openai.InternalServerError,
    529: openai.InternalServerError}
ANTHROPIC_CLASSES: dict[int, type[Exception]] = {
    400: anthropic.BadRequestError, 401: anthropic.AuthenticationError, 403: anthropic.PermissionDeniedError,
    404: anthropic.NotFoundError, 500: anthropic.InternalServerError, 503: anthropic.ServiceUnavailableError,
    529: anthropic.OverloadedError}


@pytest.mark.parametrize("case", ERROR_CASES, ids=[
    f"{c}->{u}-{'stream' if st else 'json'}-error-{s}" for c, u, s, st in ERROR_CASES])
def test_upstream_error_status_and_sdk_class(case: tuple[str, str, int, bool], gateway: RunningGateway,
                                             clean_fake: FakeUpstream) -> None:
    client, upstream, status, stream = case
    clean_fake.script(Turn(error=(status, f"the upstream says no ({status})")))
    if client == "gemini":
        expected_gemini = genai_errors.ClientError if status < 500 else genai_errors.ServerError
        with pytest.raises(expected_gemini) as gcaught:
            say(client, gateway.url, MODELS[upstream], stream)
        got_status, message = gcaught.value.code, gcaught.value.message or ""
        assert gcaught.value.status == GEMINI_STATUS[status]
    else:
        expected = (ANTHROPIC_CLASSES if client == "anthropic" else OPENAI_CLASSES)[status]
        with pytest.raises(expected) as caught:
            say(client, gateway.url, MODELS[upstream], stream)
        assert type(caught.value) is expected
        raised = cast(Any, caught.value)
        got_status, message = raised.status_code, str(raised)
        if client == "anthropic":
            assert raised.body["error"]["type"] == ANTHROPIC_TYPE[status]
        else:
            assert raised.body["message"] == f"the upstream says no ({status})"  # the SDK unwraps body.error
    # 529 is Anthropic's own overloaded status; elsewhere it may also read as 503.
    assert got_status == status or (status == 529 and client != "anthropic" and got_status == 503)
    assert f"the upstream says no ({status})" in message
    record = last_generation(clean_fake)
    assert len(generations(clean_fake)) == 1  # one key, one try: the error went straight back
    assert upstream_streamed(record) is stream

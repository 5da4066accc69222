"""Every endpoint fuzzed with bodies shaped like its format's requests and
hostile values in the real field names, against the real gateway and a fake
upstream: the answer is never the gateway's own 5xx, an error is JSON in the
route's format, and a stream always ends cleanly.

Bounded and reproducible: derandomized, a fixed number of examples each."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import httpx2 as httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import CLIENT_KEY, MODELS
from tests.fakes import FakeUpstream
from tests.gateway_runner import RunningGateway

FUZZ = settings(max_examples=300, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                       HealthCheck.data_too_large])
HEADERS = {"authorization": f"Bearer {CLIENT_KEY}", "anthropic-version": "2023-06-01", "content-type": "application/json"}
KINDS = tuple(MODELS)

# ---------------------------------------------------------------- hostile values


def mostly(common: st.SearchStrategy[Any], rare: st.SearchStrategy[Any], odds: int = 7) -> st.SearchStrategy[Any]:
    """`common` `odds` times as often as `rare` (one_of would draw each about as often)."""
    return st.integers(0, odds).flatmap(lambda pick: rare if pick == odds else common)


ODD_NUMBERS = st.sampled_from([0, -1, 1, 1e30, -1e30, 1e308, -1e308, 2 ** 63, 2 ** 64 - 1, -(2 ** 63) - 1, 0.5,
                               -0.0, 5e-324, 1.0, 4096.0])
ODD_TEXT = mostly(
    st.one_of(st.text(max_size=12),
              st.sampled_from(["", " ", "\x00", "\u202e", "\ufeff", "a" * 5000, "null", "{}", "../..", "%00", "💥"])),
    st.text(st.characters(exclude_categories=()), max_size=6),  # lone surrogates, written as \\udXXX escapes
)
# NaN and Infinity are not JSON: the stdlib writes them anyway, for the rare body that carries one.
FLOATS = mostly(st.floats(allow_nan=False, allow_infinity=False), st.floats())
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), ODD_NUMBERS, FLOATS, ODD_TEXT)


def nest(value: Any, depth: int, as_object: bool) -> Any:
    for _ in range(depth):
        value = {"a": value} if as_object else [value]
    return value


DEEP = st.builds(nest, SCALARS, st.sampled_from([253, 254, 255, 256, 300, 600, 1020, 1100]), st.booleans())
JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(ODD_TEXT, inner, max_size=3),
                    max_leaves=8)
HOSTILE = st.one_of(SCALARS, JSON, DEEP)


def shaped(plausible: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly the field's plausible shape, so parsing goes deep; sometimes anything."""
    return mostly(plausible, HOSTILE)


def obj(required: dict[str, st.SearchStrategy[Any]] | None = None,
        **fields: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    """An object with its required fields and any subset of the others, each plausible or hostile."""
    return st.fixed_dictionaries({name: shaped(value) for name, value in (required or {}).items()},
                                 optional={name: shaped(value) for name, value in fields.items()})


def some(item: st.SearchStrategy[Any], min_size: int = 0) -> st.SearchStrategy[list[Any]]:
    return st.lists(item, min_size=min_size, max_size=3)


TEXT = mostly(st.just("hi"), ODD_TEXT, 2)
NAME = st.one_of(st.sampled_from(["get_weather", "read", ""]), ODD_TEXT)
INT = st.one_of(st.integers(-5, 5000), ODD_NUMBERS)
NUMBER = st.one_of(st.floats(-3, 3), ODD_NUMBERS)
SCHEMA = st.one_of(st.just({"type": "object", "properties": {"x": {"type": "string"}}}), JSON, DEEP,
                   st.builds(nest, st.just({"type": "string"}), st.integers(100, 1100), st.just(True)))
ARGS = st.one_of(st.just('{"x": 1}'), ODD_TEXT, JSON)

# ---------------------------------------------------------------- request shapes, by format

CHAT_PART = obj(type=st.sampled_from(["text", "image_url", "input_audio", "file"]), text=TEXT,
                image_url=obj(url=st.sampled_from(["data:image/png;base64,AAAA", "https://x/y.png", "data:"])))
CHAT_CALL = obj(id=TEXT, type=st.just("function"), function=obj(name=NAME, arguments=ARGS))
CHAT_MESSAGE = obj({"role": st.sampled_from(["system", "developer", "user", "assistant", "tool"]),
                    "content": st.one_of(TEXT, some(CHAT_PART))}, tool_calls=some(CHAT_CALL), tool_call_id=TEXT,
                   name=NAME, reasoning_content=TEXT)
CHAT_TOOL = obj(type=st.just("function"), function=obj(name=NAME, description=TEXT, parameters=SCHEMA))
CHAT = obj({"messages": some(CHAT_MESSAGE, 1)}, tools=some(CHAT_TOOL), max_tokens=INT, max_completion_tokens=INT,
           temperature=NUMBER, top_p=NUMBER, n=INT, seed=INT, stop=st.one_of(TEXT, some(TEXT)),
           tool_choice=st.one_of(st.sampled_from(["auto", "none", "required"]), obj(type=TEXT, function=obj(name=NAME))),
           response_format=obj(type=st.sampled_from(["text", "json_object", "json_schema"]),
                               json_schema=obj(name=NAME, schema=SCHEMA, strict=st.booleans())),
           reasoning_effort=st.sampled_from(["low", "medium", "high", "minimal", "none"]),
           stream_options=obj(include_usage=st.booleans()), parallel_tool_calls=st.booleans(), user=TEXT)

RESPONSES_CONTENT = obj(type=st.sampled_from(["input_text", "output_text", "input_image", "input_file"]), text=TEXT,
                        image_url=TEXT)
RESPONSES_ITEM = obj(type=st.sampled_from(["message", "function_call", "function_call_output", "reasoning",
                                           "custom_tool_call", "custom_tool_call_output", "item_reference"]),
                     role=st.sampled_from(["user", "assistant", "system", "developer"]),
                     content=st.one_of(TEXT, some(RESPONSES_CONTENT)), call_id=TEXT, name=NAME, arguments=ARGS,
                     output=st.one_of(TEXT, some(RESPONSES_CONTENT)), id=TEXT, input=TEXT,
                     summary=some(obj(type=st.just("summary_text"), text=TEXT)), encrypted_content=TEXT)
RESPONSES_TOOL = obj(type=st.sampled_from(["function", "custom", "web_search", "namespace"]), name=NAME,
                     description=TEXT, parameters=SCHEMA, strict=st.booleans(), tools=some(JSON))
RESPONSES = obj({"input": st.one_of(TEXT, some(RESPONSES_ITEM, 1))}, instructions=TEXT, tools=some(RESPONSES_TOOL),
                tool_choice=st.one_of(st.sampled_from(["auto", "none", "required"]), obj(type=TEXT, name=NAME)),
                max_output_tokens=INT, temperature=NUMBER, top_p=NUMBER,
                reasoning=obj(effort=st.sampled_from(["low", "high", "none", "xhigh"]), summary=TEXT),
                text=obj(format=obj(type=st.sampled_from(["text", "json_schema", "json_object"]), name=NAME,
                                    schema=SCHEMA), verbosity=TEXT),
                include=some(st.one_of(st.just("reasoning.encrypted_content"), JSON)), store=st.booleans(),
                previous_response_id=TEXT, parallel_tool_calls=st.booleans(), metadata=JSON, user=TEXT)

ANTHROPIC_BLOCK = obj(type=st.sampled_from(["text", "image", "tool_use", "tool_result", "thinking",
                                            "redacted_thinking", "document"]),
                      text=TEXT, id=TEXT, name=NAME, input=st.one_of(JSON, DEEP), tool_use_id=TEXT,
                      content=st.one_of(TEXT, some(obj(type=st.just("text"), text=TEXT))), is_error=st.booleans(),
                      thinking=TEXT, signature=TEXT, data=TEXT,
                      source=obj(type=st.sampled_from(["base64", "url"]), media_type=TEXT, data=TEXT, url=TEXT),
                      cache_control=obj(type=st.just("ephemeral")))
ANTHROPIC = obj({"max_tokens": INT, "messages": some(obj({"role": st.sampled_from(["user", "assistant"]),
                                                           "content": st.one_of(TEXT, some(ANTHROPIC_BLOCK))}), 1)},
                system=st.one_of(TEXT, some(ANTHROPIC_BLOCK)),
                tools=some(obj(name=NAME, description=TEXT, input_schema=SCHEMA, type=TEXT)),
                tool_choice=obj(type=st.sampled_from(["auto", "any", "tool", "none"]), name=NAME,
                                disable_parallel_tool_use=st.booleans()),
                temperature=NUMBER, top_p=NUMBER, top_k=INT, stop_sequences=some(TEXT),
                thinking=obj(type=st.sampled_from(["enabled", "disabled", "adaptive"]), budget_tokens=INT),
                metadata=obj(user_id=TEXT))

GEMINI_PART = obj(text=TEXT, thought=st.booleans(), thoughtSignature=TEXT,
                  inlineData=obj(mimeType=TEXT, data=TEXT),
                  functionCall=obj(name=NAME, args=st.one_of(JSON, DEEP), id=TEXT),
                  functionResponse=obj(name=NAME, response=JSON, id=TEXT))
GEMINI_CONTENT = obj({"parts": some(GEMINI_PART, 1)}, role=st.sampled_from(["user", "model", "function"]))
GEMINI = obj({"contents": some(GEMINI_CONTENT, 1)}, systemInstruction=GEMINI_CONTENT,
             tools=some(obj(functionDeclarations=some(obj(name=NAME, description=TEXT, parameters=SCHEMA,
                                                          parametersJsonSchema=SCHEMA)))),
             toolConfig=obj(functionCallingConfig=obj(mode=st.sampled_from(["AUTO", "ANY", "NONE"]),
                                                      allowedFunctionNames=some(NAME))),
             generationConfig=obj(maxOutputTokens=INT, temperature=NUMBER, topP=NUMBER, topK=NUMBER,
                                  stopSequences=some(TEXT), candidateCount=INT,
                                  responseMimeType=st.sampled_from(["application/json", "text/plain", "text/x.enum"]),
                                  responseSchema=SCHEMA, responseJsonSchema=SCHEMA,
                                  thinkingConfig=obj(thinkingBudget=INT, includeThoughts=st.booleans())),
             safetySettings=some(JSON))
STREAM = mostly(st.booleans(), HOSTILE, 3)

# ---------------------------------------------------------------- the oracle


class _GatewayBugs(logging.Handler):
    """The gateway logs every exception it did not expect ("unexpected ...")."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.seen: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if "unexpected" in record.getMessage():
            self.seen.append(record.getMessage())


@pytest.fixture(scope="module")
def bugs() -> Iterator[_GatewayBugs]:
    handler = _GatewayBugs()
    logger = logging.getLogger("crossroute")
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    with httpx.Client(headers=HEADERS, timeout=30) as http:
        yield http


def encode(body: Any) -> bytes:
    """The stdlib encoder writes what orjson cannot: lone surrogates as escapes, NaN, any depth."""
    return json.dumps(body).encode()


def check_answer(client: httpx.Client, fake: FakeUpstream, bugs: _GatewayBugs, client_format: str, url: str,
                 body: Any) -> None:
    bugs.seen.clear()
    upstream_calls = len(fake.requests)
    response = client.post(url, content=encode(body))  # a stream must end cleanly: read() raises if it is cut
    called_upstream = len(fake.requests) > upstream_calls
    assert bugs.seen == [], (bugs.seen, response.text[:300])
    assert response.status_code < 500 or called_upstream, response.text[:300]
    if response.status_code >= 400:
        assert_error_shape(client_format, response)


def assert_error_shape(client_format: str, response: httpx.Response) -> None:
    payload = response.json()
    error = payload["error"]
    assert isinstance(error["message"], str) and error["message"]
    if client_format == "anthropic":
        assert payload["type"] == "error" and isinstance(error["type"], str)
    elif client_format == "gemini":
        assert error["code"] == response.status_code and isinstance(error["status"], str)
    else:
        assert isinstance(error["type"], str)


def with_model(body: dict[str, Any], kind: str, model: Any) -> dict[str, Any]:
    """The target model, sometimes replaced by a hostile value."""
    return {**body, "model": MODELS[kind] if model is None else model}


MODEL = mostly(st.none(), HOSTILE)

# ---------------------------------------------------------------- one test per endpoint


@FUZZ
@given(body=CHAT, kind=st.sampled_from(KINDS), model=MODEL, stream=STREAM)
def test_fuzz_chat_completions(body: dict[str, Any], kind: str, model: Any, stream: Any, gateway: RunningGateway,
                               fake: FakeUpstream, client: httpx.Client, bugs: _GatewayBugs) -> None:
    check_answer(client, fake, bugs, "openai-chat", gateway.url + "/v1/chat/completions",
                 {**with_model(body, kind, model), "stream": stream})


@FUZZ
@given(body=RESPONSES, kind=st.sampled_from(KINDS), model=MODEL, stream=STREAM)
def test_fuzz_responses(body: dict[str, Any], kind: str, model: Any, stream: Any, gateway: RunningGateway,
                        fake: FakeUpstream, client: httpx.Client, bugs: _GatewayBugs) -> None:
    check_answer(client, fake, bugs, "openai-responses", gateway.url + "/v1/responses",
                 {**with_model(body, kind, model), "stream": stream})


@FUZZ
@given(body=ANTHROPIC, kind=st.sampled_from(KINDS), model=MODEL, stream=STREAM)
def test_fuzz_messages(body: dict[str, Any], kind: str, model: Any, stream: Any, gateway: RunningGateway,
                       fake: FakeUpstream, client: httpx.Client, bugs: _GatewayBugs) -> None:
    check_answer(client, fake, bugs, "anthropic", gateway.url + "/v1/messages",
                 {**with_model(body, kind, model), "stream": stream})


@FUZZ
@given(body=ANTHROPIC, kind=st.sampled_from(KINDS), model=MODEL)
def test_fuzz_messages_count_tokens(body: dict[str, Any], kind: str, model: Any, gateway: RunningGateway,
                                    fake: FakeUpstream, client: httpx.Client, bugs: _GatewayBugs) -> None:
    check_answer(client, fake, bugs, "anthropic", gateway.url + "/v1/messages/count_tokens",
                 with_model(body, kind, model))


def gemini_url(gateway: RunningGateway, kind: str, action: str) -> str:
    return f"{gateway.url}/v1beta/models/{MODELS[kind]}:{action}"


@FUZZ
@given(body=GEMINI, kind=st.sampled_from(KINDS))
def test_fuzz_generate_content(body: dict[str, Any], kind: str, gateway: RunningGateway, fake: FakeUpstream,
                               client: httpx.Client, bugs: _GatewayBugs) -> None:
    check_answer(client, fake, bugs, "gemini", gemini_url(gateway, kind, "generateContent"), body)


@FUZZ
@given(body=GEMINI, kind=st.sampled_from(KINDS), sse=st.booleans())
def test_fuzz_stream_generate_content(body: dict[str, Any], kind: str, sse: bool, gateway: RunningGateway,
                                      fake: FakeUpstream, client: httpx.Client, bugs: _GatewayBugs) -> None:
    url = gemini_url(gateway, kind, "streamGenerateContent") + ("?alt=sse" if sse else "")
    check_answer(client, fake, bugs, "gemini", url, body)


@FUZZ
@given(body=st.one_of(GEMINI, st.fixed_dictionaries({"generateContentRequest": GEMINI})), kind=st.sampled_from(KINDS))
def test_fuzz_count_tokens(body: dict[str, Any], kind: str, gateway: RunningGateway, fake: FakeUpstream,
                           client: httpx.Client, bugs: _GatewayBugs) -> None:
    check_answer(client, fake, bugs, "gemini", gemini_url(gateway, kind, "countTokens"), body)

"""Inputs that once made the gateway answer with its own 500 (found by probing
and by tests/test_fuzz.py): each is now a 400 in the client's format that names
the problem, and nothing went upstream."""

from __future__ import annotations

from typing import Any

import httpx2 as httpx
import pytest

from tests.conftest import CLIENT_KEY, MODELS
from tests.fakes import FakeUpstream
from tests.gateway_runner import RunningGateway

HEADERS = {"authorization": f"Bearer {CLIENT_KEY}", "anthropic-version": "2023-06-01", "content-type": "application/json"}
HI_CHAT = [{"role": "user", "content": "hi"}]
HI_GEMINI = [{"role": "user", "parts": [{"text": "hi"}]}]
GEMINI_TO_CLAUDE = f"/v1beta/models/{MODELS['anthropic']}:generateContent"


def deeply_nested(levels: int) -> bytes:
    """A JSON array nested `levels` deep: orjson reads up to 1024 levels but writes only 254."""
    return b"[" * levels + b"]" * levels


def post(gateway: RunningGateway, path: str, body: bytes) -> httpx.Response:
    return httpx.post(gateway.url + path, content=body, headers=HEADERS, timeout=20)


def message_of(response: httpx.Response) -> str:
    return str(response.json()["error"]["message"])


DEEP_PASSTHROUGH = [
    ("/v1/chat/completions", b'{"model": "%s", "messages": [{"role": "user", "content": "hi"}], "x": %s}', "openai"),
    ("/v1/responses", b'{"model": "%s", "input": "hi", "store": false, "x": %s}', "openai-responses"),
    ("/v1/messages", b'{"model": "%s", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}], "x": %s}',
     "anthropic"),
    ("/v1beta/models/%s:generateContent", b'{"contents": [{"role": "user", "parts": [{"text": "hi"}]}], "x": %s}',
     "gemini"),
]


@pytest.mark.parametrize("path,template,kind", DEEP_PASSTHROUGH, ids=[k for _, _, k in DEEP_PASSTHROUGH])
def test_nesting_past_254_levels_on_passthrough_is_a_400(path: str, template: bytes, kind: str,
                                                         gateway: RunningGateway, clean_fake: FakeUpstream) -> None:
    model = MODELS[kind].encode()
    if kind == "gemini":
        path, body = path % MODELS[kind], template % deeply_nested(300)
    else:
        body = template % (model, deeply_nested(300))
    response = post(gateway, path, body)
    assert response.status_code == 400, response.text
    assert "nests too deeply" in message_of(response)
    assert clean_fake.requests == []


def test_nesting_just_within_the_limit_still_goes_through(gateway: RunningGateway, clean_fake: FakeUpstream) -> None:
    body = b'{"model": "%s", "messages": [{"role": "user", "content": "hi"}], "x": %s}' % (
        MODELS["openai"].encode(), deeply_nested(250))
    assert post(gateway, "/v1/chat/completions", body).status_code == 200
    assert len(clean_fake.requests) == 1


HUGE_INTEGERS: list[tuple[str, dict[str, Any], str]] = [
    ("/v1/chat/completions", {"model": MODELS["anthropic"], "messages": HI_CHAT, "max_tokens": 1e30}, "max_tokens"),
    ("/v1/chat/completions", {"model": MODELS["gemini"], "messages": HI_CHAT, "max_completion_tokens": 1e30},
     "max_completion_tokens"),
    (GEMINI_TO_CLAUDE, {"contents": HI_GEMINI, "generationConfig": {"maxOutputTokens": 1e30}}, "generationConfig.maxOutputTokens"),
    (GEMINI_TO_CLAUDE, {"contents": HI_GEMINI, "generationConfig": {"topK": 1e30}}, "generationConfig.topK"),
    ("/v1/messages", {"model": MODELS["openai"], "max_tokens": 2 ** 64 - 1, "messages": HI_CHAT}, "max_tokens"),
]


@pytest.mark.parametrize("path,body,field", HUGE_INTEGERS, ids=[f for _, _, f in HUGE_INTEGERS])
def test_integer_past_64_bits_on_a_translated_route_is_a_400_naming_the_field(
        path: str, body: dict[str, Any], field: str, gateway: RunningGateway, clean_fake: FakeUpstream) -> None:
    response = httpx.post(gateway.url + path, json=body, headers=HEADERS, timeout=20)
    assert response.status_code == 400, response.text
    assert f"'{field}' is out of range" in message_of(response)
    assert clean_fake.requests == []


@pytest.mark.parametrize("kind", ["openai-responses", "anthropic"])
def test_include_with_a_non_string_entry_is_a_400(kind: str, gateway: RunningGateway,
                                                  clean_fake: FakeUpstream) -> None:
    response = httpx.post(gateway.url + "/v1/responses", json={"model": MODELS[kind], "input": "hi", "include": [[]]},
                          headers=HEADERS, timeout=20)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == "include[0]"
    assert clean_fake.requests == []


@pytest.mark.parametrize("model", ["responses-up", "messages-x"])
def test_errors_on_the_gemini_route_are_gemini_shaped_whatever_the_model_is_called(
        model: str, gateway: RunningGateway) -> None:
    response = post(gateway, f"/v1beta/models/{model}:generateContent", b"{not json")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == 400 and error["status"] == "INVALID_ARGUMENT"

"""Client text never steers an upstream URL: hostile model names are a 400 in
the client's format before anything goes upstream, and legal names reach a
Gemini upstream as one escaped path segment."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx2 as httpx
import orjson
import pytest

from tests.conftest import CLIENT_KEY
from tests.fakes import FakeUpstream
from tests.gateway_runner import RunningGateway
from tests.test_http_server import _SharedFile, connect, read_response, request

HEADERS = {"authorization": f"Bearer {CLIENT_KEY}", "anthropic-version": "2023-06-01"}
KINDS = ("openai", "openai-responses", "anthropic", "gemini")

HOSTILE = [
    "x/../../../../v1beta/cachedContents?pageSize=1&",  # the probe
    "x#",
    "x/..",
    "..",
    "./x",
    "x//y",
    "x/",
    "x\\..\\y",
    "x?alt=json",
    "x%2F..%2F..%2Fv1beta%2FcachedContents",
    "x/%252e%252e/y",
    "x%3Fkey=1",
    "x%23",
    "x y",
    "x\ty",
    "x\r\nHost: evil",
    "x\x00",
    "x\u2028y",
]


def ask(gateway: RunningGateway, client: str, model: str) -> httpx.Response:
    """One generation request naming `model`, sent the way a client of that format would."""
    text = "hi"
    if client == "gemini":
        path = f"/v1beta/models/{quote(model, safe='')}:generateContent"  # '/' too: no dot-segment folding
        body: dict[str, Any] = {"contents": [{"role": "user", "parts": [{"text": text}]}]}
    elif client == "anthropic":
        path, body = "/v1/messages", {"model": model, "max_tokens": 5, "messages": [{"role": "user", "content": text}]}
    elif client == "openai-responses":
        path, body = "/v1/responses", {"model": model, "input": text, "store": False}
    else:
        path, body = "/v1/chat/completions", {"model": model, "messages": [{"role": "user", "content": text}]}
    return httpx.post(gateway.url + path, json=body, headers=HEADERS, timeout=20)


def error_message(client: str, response: httpx.Response) -> str:
    """The message of an error in the client's own format (a KeyError if the shape is wrong)."""
    payload = response.json()
    if client == "anthropic":
        assert payload["type"] == "error" and payload["error"]["type"] == "invalid_request_error"
    if client == "gemini":
        assert payload["error"]["code"] == response.status_code and payload["error"]["status"]
    return str(payload["error"]["message"])


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("name", HOSTILE, ids=[f"hostile-{i}" for i in range(len(HOSTILE))])
def test_hostile_model_name_is_refused_before_the_upstream(kind: str, name: str, gateway: RunningGateway,
                                                           clean_fake: FakeUpstream) -> None:
    """Same format (passthrough) and from a Chat client (translated, the model in the body)."""
    for client in {kind, "openai"}:
        response = ask(gateway, client, f"up-{kind}/{name}")
        assert response.status_code == 400, (client, response.text)
        assert "invalid model name" in error_message(client, response)
    assert clean_fake.requests == []


def test_hostile_gemini_path_is_refused_before_the_upstream(gateway: RunningGateway,
                                                            clean_fake: FakeUpstream) -> None:
    """Dot segments written straight into the Gemini route's path (not escaped by the client)."""
    for raw in ("/v1beta/models/up-gemini/x/../../cachedContents:generateContent",
                "/v1beta/models/up-gemini/x/%2e%2e/y:generateContent"):
        with connect(gateway) as sock:
            sock.sendall(request("POST", raw, b'{"contents": []}'))
            response, payload = read_response(_SharedFile(sock))
        assert response.status == 400, payload
        assert b"invalid model name" in payload and orjson.loads(payload)["error"]["status"] == "INVALID_ARGUMENT"
    assert clean_fake.requests == []


LEGAL_GEMINI = {
    "qwen3:30b": "/v1beta/models/qwen3%3A30b:generateContent",
    "models/gemini-2.5-pro": "/v1beta/models/gemini-2.5-pro:generateContent",
    "@cf/meta/llama": "/v1beta/models/%40cf%2Fmeta%2Fllama:generateContent",
    "deepseek-ai/DeepSeek-V3.1": "/v1beta/models/deepseek-ai%2FDeepSeek-V3.1:generateContent",
    "50%off": "/v1beta/models/50%25off:generateContent",
}


@pytest.mark.parametrize("name", LEGAL_GEMINI)
@pytest.mark.parametrize("client", ["gemini", "openai"])
def test_legal_model_name_reaches_gemini_as_one_escaped_segment(name: str, client: str, gateway: RunningGateway,
                                                                clean_fake: FakeUpstream) -> None:
    response = ask(gateway, client, f"up-gemini/{name}")
    assert response.status_code != 400, response.text
    assert [r.raw_path for r in clean_fake.requests] == [LEGAL_GEMINI[name]]


@pytest.mark.parametrize("kind", ["openai", "openai-responses", "anthropic"])
@pytest.mark.parametrize("name", ["openrouter/qwen/qwen3-coder", "qwen3:30b", "@cf/meta/llama",
                                  "deepseek-ai/DeepSeek-V3.1"])
def test_legal_model_name_reaches_a_body_upstream_unchanged(kind: str, name: str, gateway: RunningGateway,
                                                            clean_fake: FakeUpstream) -> None:
    response = ask(gateway, kind, f"up-{kind}/{name}")
    assert response.status_code == 200, response.text
    assert [r.body["model"] for r in clean_fake.requests] == [name]
    assert [r.raw_path for r in clean_fake.requests] == [{"anthropic": "/v1/messages",
                                                          "openai": "/v1/chat/completions"}.get(kind, "/v1/responses")]

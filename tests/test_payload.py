"""Payload rules (config `payload:`) and per-provider `excluded_models`: the
dotted-path operations on their own, then through the real gateway with the
fake upstream checking what it received (passthrough and translated, chat and
Gemini upstreams), and the model lists and routing without excluded models."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2 as httpx
import orjson
import pytest

from crossroute.config import PayloadMatch, PayloadRule
from crossroute.payload import PayloadRules, apply_payload_rules, cap_path, get_path, remove_path, set_path
from tests.conftest import CLIENT_KEY, gateway_config
from tests.fakes import FakeUpstream, Turn
from tests.gateway_runner import RunningGateway
from tests.test_cli import run

# ---------------------------------------------------------------- the operations


def test_get_path_reads_top_level_and_dotted_fields() -> None:
    body = {"a": 1, "b": {"c": {"d": 2}}, "e": [1]}
    assert get_path(body, "a") == 1
    assert get_path(body, "b.c.d") == 2
    assert repr(get_path(body, "b.x")) == "<missing>"
    assert repr(get_path(body, "e.x")) == "<missing>"  # through a list: not an object


def test_set_path_creates_objects_and_leaves_the_original_alone() -> None:
    original = {"generationConfig": {"temperature": 1}, "n": 1}
    body = dict(original)
    set_path(body, "generationConfig.thinkingConfig.thinkingBudget", 0)
    set_path(body, "n", 2)
    assert body == {"generationConfig": {"temperature": 1, "thinkingConfig": {"thinkingBudget": 0}}, "n": 2}
    assert original == {"generationConfig": {"temperature": 1}, "n": 1}


def test_set_path_through_a_value_that_is_not_an_object_changes_nothing() -> None:
    body: dict[str, Any] = {"reasoning": "high"}
    set_path(body, "reasoning.effort", "low")
    assert body == {"reasoning": "high"}


@pytest.mark.parametrize("value,cap,expected", [
    (5000, 100, 100), (50, 100, 50), (100, 100, 100), (2.5, 1.5, 1.5), ("5000", 100, "5000"), (True, 0, True),
])
def test_cap_lowers_only_numbers_above_it(value: Any, cap: float, expected: Any) -> None:
    body = {"thinking": {"budget_tokens": value}}
    cap_path(body, "thinking.budget_tokens", cap)
    assert body["thinking"]["budget_tokens"] == expected


def test_cap_of_an_absent_field_adds_nothing() -> None:
    body: dict[str, Any] = {}
    cap_path(body, "generationConfig.maxOutputTokens", 10)
    assert body == {}


def test_remove_deletes_a_field_or_nothing() -> None:
    original = {"reasoning": {"effort": "high", "summary": "auto"}, "user": "u"}
    body = dict(original)
    remove_path(body, "reasoning.effort")
    remove_path(body, "user")
    remove_path(body, "absent.field")
    assert body == {"reasoning": {"summary": "auto"}}
    assert original["reasoning"] == {"effort": "high", "summary": "auto"}


def rule(models: list[str] | None = None, providers: list[str] | None = None, **ops: Any) -> PayloadRule:
    return PayloadRule(match=PayloadMatch(models=models or [], providers=providers or []), **ops)


def test_rules_apply_in_order_defaults_overrides_caps_remove() -> None:
    body = {"model": "m", "max_tokens": 9000, "temperature": 0.9, "user": "u"}
    before = copy.deepcopy(body)
    rules = (rule(defaults={"temperature": 0.1, "top_p": 0.5}, overrides={"max_tokens": 20000},
                  caps={"max_tokens": 4096}, remove=["user"]),
             rule(overrides={"top_p": 0.7}, caps={"top_p": 0.6}))
    assert apply_payload_rules(body, rules) == {"model": "m", "max_tokens": 4096, "temperature": 0.9, "top_p": 0.6}
    assert body == before


def test_matching_uses_the_upstream_name_or_the_asked_name_and_providers() -> None:
    by_upstream, by_asked, by_provider = (rule(models=["gpt-5*"]), rule(models=["coder"]),
                                          rule(providers=["openrouter"]))
    rules = PayloadRules([by_upstream, by_asked, by_provider])
    assert rules.matching("openai", "gpt-5-mini", "fast") == (by_upstream,)
    assert rules.matching("openai", "qwen3-coder", "coder") == (by_asked,)
    assert rules.matching("openrouter", "qwen3-coder", "coder") == (by_asked, by_provider)
    assert rules.matching("openai", "other", "other") == ()
    assert rules.matching("openai", "gpt-5-mini", "fast") is rules.matching("openai", "gpt-5-mini", "fast")
    assert PayloadRules([]).matching("openai", "m", "m") == ()


# ---------------------------------------------------------------- through the gateway

PAYLOAD = [
    {"match": {"models": ["chat-up"], "providers": ["up-openai"]},  # the name the client asks for
     "defaults": {"temperature": 0.25, "metadata.tag": "from-rule"},
     "overrides": {"top_p": 0.5}, "caps": {"max_tokens": 100}, "remove": ["user"]},
    {"match": {"models": ["gemini-up-r*"]},  # the upstream name (gemini-up-real)
     "defaults": {"generationConfig.temperature": 0.25},
     "overrides": {"generationConfig.thinkingConfig.thinkingBudget": 0},
     "caps": {"generationConfig.maxOutputTokens": 64}, "remove": ["safetySettings"]},
    {"match": {"models": ["nothing-*"]}, "overrides": {"never": 1}},
]
HIDING = {"name": "up-hide", "kind": "openai", "api_keys": ["up-key"],
          "models": ["keep-me", "hide-me", {"name": "nice-name", "upstream": "hidden-upstream"}],
          "excluded_models": ["hide-*", "hidden-*"]}
AUTH = {"authorization": f"Bearer {CLIENT_KEY}", "x-goog-api-key": CLIENT_KEY, "anthropic-version": "2023-06-01"}


@pytest.fixture(scope="module")
def ruled(fake: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningGateway]:
    config = gateway_config(fake.url)
    config["payload"] = PAYLOAD
    config["providers"].append({**HIDING, "base_url": f"{fake.url}/v1"})
    with RunningGateway(config, tmp_path_factory.mktemp("payload") / "state.sqlite3") as running:
        yield running


@dataclass
class Via:
    """Requests through the ruled gateway, and what the fake upstream received."""

    gateway: RunningGateway
    fake: FakeUpstream

    def post(self, path: str, body: dict[str, Any]) -> httpx.Response:
        return httpx.post(f"{self.gateway.url}{path}", json=body, headers=AUTH, timeout=20)

    def sent_upstream(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        self.fake.clear()
        self.fake.script(Turn(text="ok"))
        response = self.post(path, body)
        assert response.status_code == 200, response.text
        assert len(self.fake.requests) == 1
        received: dict[str, Any] = orjson.loads(self.fake.requests[0].raw)
        return received


@pytest.fixture
def via(ruled: RunningGateway, clean_fake: FakeUpstream) -> Via:
    return Via(ruled, clean_fake)


def chat(model: str, **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": "hi"}], **extra}


def test_chat_passthrough_gets_every_operation(via: Via) -> None:
    body = via.sent_upstream("/v1/chat/completions", chat("chat-up", max_tokens=5000, temperature=0.9, top_p=0.9,
                                                           user="someone"))
    assert body["model"] == "chat-up-real"
    assert body["max_tokens"] == 100  # capped
    assert body["temperature"] == 0.9  # a default does not replace what the client set
    assert body["metadata"] == {"tag": "from-rule"}  # a default fills what is absent, on a dotted path
    assert body["top_p"] == 0.5  # overridden
    assert "user" not in body  # removed


def test_chat_passthrough_stream_gets_the_rules_too(via: Via) -> None:
    body = via.sent_upstream("/v1/chat/completions", chat("chat-up", max_tokens=5000, stream=True))
    assert (body["max_tokens"], body["top_p"], body["stream"]) == (100, 0.5, True)


def test_chat_upstream_translated_from_anthropic(via: Via) -> None:
    body = via.sent_upstream("/v1/messages", chat("chat-up", max_tokens=5000, top_p=0.9))
    assert body["max_tokens"] == 100
    assert body["temperature"] == 0.25
    assert body["top_p"] == 0.5
    assert body["metadata"] == {"tag": "from-rule"}


GEMINI_BODY = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}],
               "generationConfig": {"maxOutputTokens": 5000, "temperature": 0.7},
               "safetySettings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}]}


def test_gemini_passthrough_gets_every_operation(via: Via) -> None:
    body = via.sent_upstream("/v1beta/models/gemini-up:generateContent", GEMINI_BODY)
    assert body["generationConfig"] == {"maxOutputTokens": 64, "temperature": 0.7,
                                        "thinkingConfig": {"thinkingBudget": 0}}
    assert "safetySettings" not in body


def test_gemini_upstream_translated_from_chat(via: Via) -> None:
    body = via.sent_upstream("/v1/chat/completions", chat("gemini-up", max_tokens=5000))
    config = body["generationConfig"]
    assert (config["maxOutputTokens"], config["temperature"], config["thinkingConfig"]["thinkingBudget"]) == (64, 0.25, 0)


def test_a_request_no_rule_matches_goes_up_as_sent(via: Via) -> None:
    sent = {"model": "claude-up", "max_tokens": 5000, "messages": [{"role": "user", "content": "hi"}], "top_p": 0.9}
    body = via.sent_upstream("/v1/messages", sent)
    assert body == {**sent, "model": "claude-up-real"}


# ---------------------------------------------------------------- excluded models

HIDDEN = ("hide-me", "up-hide/hide-me", "nice-name", "up-hide/nice-name")


@pytest.mark.parametrize("path,headers,key", [
    ("/v1/models", {"authorization": f"Bearer {CLIENT_KEY}"}, "id"),
    ("/v1/models", {"x-api-key": CLIENT_KEY, "anthropic-version": "2023-06-01"}, "id"),
    ("/v1beta/models", {"x-goog-api-key": CLIENT_KEY}, "name"),
], ids=["openai", "anthropic", "gemini"])
def test_excluded_models_are_not_listed(ruled: RunningGateway, path: str, headers: dict[str, str], key: str) -> None:
    answer = httpx.get(ruled.url + path, headers=headers, timeout=20).json()
    names = {entry[key].removeprefix("models/") for entry in answer.get("data") or answer["models"]}
    assert {"keep-me", "up-hide/keep-me", "chat-up"} <= names
    assert not names & set(HIDDEN)
    single = httpx.get(f"{ruled.url}{path}/hide-me", headers=headers, timeout=20)
    assert single.status_code == 404


@pytest.mark.parametrize("model", [*HIDDEN, "up-hide/hide-anything", "up-hide/hidden-upstream"])
def test_an_excluded_model_is_not_routed(via: Via, model: str) -> None:
    response = via.post("/v1/chat/completions", chat(model))
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "model_not_found"
    assert via.fake.requests == []


def test_an_excluded_model_is_a_gemini_404_for_a_gemini_client(via: Via) -> None:
    response = via.post("/v1beta/models/hide-me:generateContent", GEMINI_BODY)
    assert response.status_code == 404
    assert response.json()["error"]["status"] == "NOT_FOUND"
    assert via.fake.requests == []


def test_models_of_the_same_provider_that_are_not_excluded_still_route(via: Via) -> None:
    body = via.sent_upstream("/v1/chat/completions", chat("up-hide/keep-me"))
    assert body["model"] == "keep-me"


def test_the_models_command_leaves_excluded_models_out(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("providers:\n  - name: p\n    kind: openai\n    api_keys: [k]\n"
                      "    models: [keep-me, hide-me]\n    excluded_models: ['hide-*']\n")
    assert run("models", "--config", str(config)).stdout.strip() == "p/keep-me  [openai]"

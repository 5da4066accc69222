"""`crossroute launch crush`: the crush.json and environment Crush is given, checked against
what Crush's configuration schema and docs say, and a stand-in `crush` run through launch."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from crossroute import launch
from crossroute.launch import crush
from tests.conftest import CLIENT_KEY, MODELS
from tests.e2e.agents import assert_result_paired_with_call
from tests.fakes import FakeUpstream, Turn
from tests.gateway_runner import RunningGateway
from tests.test_launch import GATEWAY, _crossroute, recording_client
from tests.upstream_view import VIEWS

# From Crush's published config schema (charm.land/crush.json): the properties each object
# may have (the schema forbids any other) and their JSON types; a model entry needs all of its own.
CONFIG_FIELDS = {"$schema": str, "models": dict, "providers": dict, "mcp": dict, "lsp": dict, "options": dict,
                 "permissions": dict, "tools": dict, "hooks": dict, "env": dict}
PROVIDER_FIELDS = {"id": str, "name": str, "base_url": str, "type": str, "api_key": str, "disable": bool,
                   "system_prompt_prefix": str, "extra_headers": dict, "extra_body": dict,
                   "provider_options": dict, "discover_models": bool, "models": list}
PROVIDER_TYPES = {"openai", "openai-compat", "openrouter", "vercel", "anthropic", "google", "azure", "bedrock",
                  "google-vertex", "hyper", "litellm", "llamacpp", "lmstudio", "ollama", "omlx"}
MODEL_REQUIRED = {"id": str, "name": str, "cost_per_1m_in": (int, float), "cost_per_1m_out": (int, float),
                  "cost_per_1m_in_cached": (int, float), "cost_per_1m_out_cached": (int, float),
                  "context_window": int, "default_max_tokens": int, "can_reason": bool,
                  "supports_attachments": bool}
SELECTED_MODEL_FIELDS = {"model": str, "provider": str, "max_tokens": int, "reasoning_effort": str, "think": bool}
OPTION_FIELDS = {"disable_provider_auto_update": bool, "disable_default_providers": bool, "disable_metrics": bool,
                 "data_directory": str, "debug": bool, "auto_lsp": bool, "disabled_tools": list}


def assert_fields(obj: dict[str, Any], allowed: dict[str, Any], where: str) -> None:
    unknown = set(obj) - set(allowed)
    assert not unknown, f"{where}: fields Crush's schema does not allow: {unknown}"
    for name, value in obj.items():
        assert isinstance(value, allowed[name]) and not (allowed[name] is int and isinstance(value, bool)), \
            f"{where}.{name} has the wrong type: {value!r}"


def assert_valid_crush_config(config: dict[str, Any]) -> None:
    assert_fields(config, CONFIG_FIELDS, "config")
    for provider_id, provider in config["providers"].items():
        assert_fields(provider, PROVIDER_FIELDS, f"providers.{provider_id}")
        assert provider["type"] in PROVIDER_TYPES
        for model in provider["models"]:
            assert set(MODEL_REQUIRED) <= set(model), f"a model entry misses {set(MODEL_REQUIRED) - set(model)}"
            assert_fields(model, MODEL_REQUIRED, f"providers.{provider_id}.models")
    for tier, selected in config["models"].items():
        assert tier in {"large", "small"}
        assert_fields(selected, SELECTED_MODEL_FIELDS, f"models.{tier}")
        offered = [m["id"] for m in config["providers"][selected["provider"]]["models"]]
        assert selected["model"] in offered, f"models.{tier} names a model its provider does not list"
    assert_fields(config["options"], OPTION_FIELDS, "options")


def written_config(prepared: launch.Launch, home: Path) -> dict[str, Any]:
    """The crush.json Crush reads: the global one, in the directory CRUSH_GLOBAL_CONFIG names."""
    path = Path(prepared.env["CRUSH_GLOBAL_CONFIG"]) / "crush.json"
    assert path.is_relative_to(home)
    config: dict[str, Any] = json.loads(path.read_text())
    return config


@pytest.mark.parametrize(("fmt", "provider_type", "base_url"), [
    ("openai-chat", "openai-compat", "http://127.0.0.1:8317/v1"),
    ("anthropic", "anthropic", "http://127.0.0.1:8317"),  # the Anthropic SDK adds /v1/messages itself
    ("gemini", "google", "http://127.0.0.1:8317"),  # the Gemini SDK adds /v1beta/models/... itself
])
def test_crush_gets_a_valid_provider_for_each_format(fmt: str, provider_type: str, base_url: str,
                                                      tmp_path: Path) -> None:
    prepared = launch.prepare("crush", GATEWAY, "deepseek-chat", tmp_path, "crush", fmt)
    config = written_config(prepared, tmp_path)
    assert_valid_crush_config(config)
    provider = config["providers"]["crossroute"]
    assert (provider["type"], provider["base_url"]) == (provider_type, base_url)
    assert config["models"]["large"] == config["models"]["small"] == {"model": "deepseek-chat",
                                                                      "provider": "crossroute"}


def test_crush_defaults_to_chat_completions_and_refuses_responses(tmp_path: Path) -> None:
    assert launch.client_format("crush", None) == "openai-chat"
    with pytest.raises(ValueError, match="crush cannot speak openai-responses"):
        launch.prepare("crush", GATEWAY, "m", tmp_path, "crush", "openai-responses")


def test_the_key_reaches_crush_through_the_environment_not_the_file(tmp_path: Path) -> None:
    """crush.json values are expanded like shell words, so the key goes in a variable the file names."""
    prepared = launch.prepare("crush", GATEWAY, "m", tmp_path, "crush")
    api_key = written_config(prepared, tmp_path)["providers"]["crossroute"]["api_key"]
    assert api_key.startswith("$") and prepared.env[api_key[1:]] == "sk-local"
    assert "sk-local" not in (tmp_path / crush.CONFIG_FILE).read_text()


def test_crush_keeps_everything_in_the_temp_home_and_stays_quiet(tmp_path: Path) -> None:
    prepared = launch.prepare("crush", GATEWAY, "m", tmp_path, "crush")
    for variable in ("HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME", "CRUSH_GLOBAL_CONFIG",
                     "CRUSH_GLOBAL_DATA", "CRUSH_CACHE_DIR", "CRUSH_SKILLS_DIR"):
        assert Path(prepared.env[variable]).is_relative_to(tmp_path), variable
        assert variable in prepared.command_line_only()  # --print keeps them off the pasting shell
    options = written_config(prepared, tmp_path)["options"]
    assert Path(options["data_directory"]).is_relative_to(tmp_path)  # not ./.crush in the user's project
    assert options["disable_provider_auto_update"] and options["disable_default_providers"]
    assert options["disable_metrics"]
    for variable in ("CRUSH_DISABLE_PROVIDER_AUTO_UPDATE", "CRUSH_DISABLE_DEFAULT_PROVIDERS",
                     "CRUSH_DISABLE_METRICS", "DO_NOT_TRACK"):
        assert prepared.env[variable] == "1", variable
    assert prepared.env["CRUSH_CLIENT_SERVER"] == "0"
    assert any("checks for a newer release" in note for note in prepared.notes)


def test_launching_crush_leaves_the_users_home_and_crush_settings_alone(tmp_path: Path) -> None:
    """A stand-in `crush` records what it was started with: its arguments pass through, every
    Crush location is the temp home (whatever the user exported), and the user's HOME is untouched."""
    program, record = recording_client(tmp_path, "crush")
    user_home = tmp_path / "user-home"
    (user_home / ".config/crush").mkdir(parents=True)
    user_config = user_home / ".config/crush/crush.json"
    user_config.write_text('{"options": {"disable_metrics": false}}')
    env = {**os.environ, "HOME": str(user_home), "CRUSH_GLOBAL_CONFIG": str(user_home / ".config/crush"),
           "CRUSH_DISABLE_METRICS": "0", "CRUSH_CLIENT_SERVER": "1"}
    result = _crossroute("launch", "crush", "--url", "http://127.0.0.1:5", "--key", "sk-c", "--model", "glm",
                         "--bin", str(program), "--", "run", "--quiet", "read notes.txt", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    seen = json.loads(record.read_text())
    assert seen["argv"] == ["run", "--quiet", "read notes.txt"]
    temp_home = Path(seen["env"]["HOME"])
    assert temp_home != user_home and not temp_home.exists()
    assert Path(seen["env"]["CRUSH_GLOBAL_CONFIG"]).is_relative_to(temp_home)
    assert (seen["env"]["CRUSH_DISABLE_METRICS"], seen["env"]["CRUSH_CLIENT_SERVER"]) == ("1", "0")
    assert seen["env"][crush.KEY_VARIABLE] == "sk-c"
    assert sorted(p.name for p in user_home.rglob("*")) == [".config", "crush", "crush.json"]
    assert user_config.read_text() == '{"options": {"disable_metrics": false}}'


# What Crush 0.9x sent an openai-compat provider on the last turn of a "read a file" task (its own
# recorded test traffic, trimmed): streaming with usage, tool_choice auto, its default_max_tokens,
# reasoning_content replayed on its assistant turn, "\n\n" beside the tool calls.
CRUSH_TOOLS = [
    {"type": "function", "function": {"name": "glob", "strict": False, "description": "Find files by name/pattern",
                                      "parameters": {"type": "object", "required": ["pattern"], "properties": {
                                          "path": {"type": "string"}, "pattern": {"type": "string"}}}}},
    {"type": "function", "function": {"name": "view", "strict": False, "description": "Read a file by path",
                                      "parameters": {"type": "object", "required": ["file_path"], "properties": {
                                          "file_path": {"type": "string"}, "limit": {"type": "integer"},
                                          "offset": {"type": "integer"}}}}},
]
GO_MOD = "<file>\n     1|module example.com/testproject\n     2|\n     3|go 1.23\n     4|\n</file>\n"


def crush_last_turn(model: str) -> dict[str, Any]:
    return {
        "model": model, "max_tokens": 10000, "stream": True, "stream_options": {"include_usage": True},
        "tool_choice": "auto", "tools": CRUSH_TOOLS,
        "messages": [
            {"role": "system", "content": "You are Crush, a powerful AI Assistant that runs in the CLI."},
            {"role": "user", "content": "<system_reminder>Your todo list is currently empty.</system_reminder>"},
            {"role": "user", "content": "Read the go mod"},
            {"role": "assistant", "content": "\n\n", "reasoning_content": "The user wants me to read go.mod.",
             "tool_calls": [{"id": "call_58a6", "type": "function",
                             "function": {"name": "glob", "arguments": "{\"pattern\":\"go.mod\"}"}}]},
            {"role": "tool", "tool_call_id": "call_58a6", "content": "/tmp/project/go.mod"},
            {"role": "assistant", "content": "\n\n",
             "tool_calls": [{"id": "call_87ef", "type": "function",
                             "function": {"name": "view", "arguments": "{\"file_path\":\"/tmp/project/go.mod\"}"}}]},
            {"role": "tool", "tool_call_id": "call_87ef", "content": GO_MOD},
        ],
    }


@pytest.mark.parametrize("upstream", list(MODELS))
def test_what_crush_sends_reaches_every_upstream_kind_with_its_calls_paired(
        upstream: str, gateway: RunningGateway, clean_fake: FakeUpstream) -> None:
    clean_fake.script(Turn(text="Module example.com/testproject, go 1.23."))
    response = httpx.post(f"{gateway.url}/v1/chat/completions", json=crush_last_turn(MODELS[upstream]),
                          headers={"Authorization": f"Bearer {CLIENT_KEY}",
                                   "User-Agent": "Charm-Crush/0.96.1 (https://charm.land/crush)"}, timeout=30)
    assert response.status_code == 200, response.text
    streamed = "".join(json.loads(line[6:])["choices"][0]["delta"].get("content") or ""
                       for line in response.text.splitlines()
                       if line.startswith("data: {") and json.loads(line[6:])["choices"])
    assert streamed == "Module example.com/testproject, go 1.23."
    assert '"prompt_tokens"' in response.text  # the usage chunk Crush asked for with include_usage
    seen = VIEWS[upstream](clean_fake.requests[-1].body)
    assert seen.tool_names == ["glob", "view"]
    assert [text for _, text in seen.results] == ["/tmp/project/go.mod", GO_MOD]
    assert_result_paired_with_call(seen, "example.com/testproject")

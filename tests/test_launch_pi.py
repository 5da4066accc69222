"""`crossroute launch pi`: the custom provider pi is given for each format (no real pi here;
tests/e2e runs it)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from crossroute import launch
from tests.test_launch import _crossroute, recording_client

GATEWAY = launch.Gateway("http://127.0.0.1:8317", "!echo not-a-command")


def models_json(tmp_path: Path) -> dict:
    return json.loads((tmp_path / ".pi/agent/models.json").read_text())


@pytest.mark.parametrize(("fmt", "api", "base_url"), [
    ("openai-chat", "openai-completions", "http://127.0.0.1:8317/v1"),
    ("openai-responses", "openai-responses", "http://127.0.0.1:8317/v1"),
    ("anthropic", "anthropic-messages", "http://127.0.0.1:8317"),
    ("gemini", "google-generative-ai", "http://127.0.0.1:8317/v1beta"),
])
def test_each_format_is_a_custom_provider_of_pis_matching_api(fmt: str, api: str, base_url: str,
                                                              tmp_path: Path) -> None:
    launch.prepare("pi", GATEWAY, "deepseek/deepseek-chat", tmp_path, "pi", fmt)
    provider = models_json(tmp_path)["providers"]["crossroute"]
    assert (provider["api"], provider["baseUrl"]) == (api, base_url)
    assert [m["id"] for m in provider["models"]] == ["deepseek/deepseek-chat"]


def test_chat_completions_is_the_default_and_the_model_is_pis_default(tmp_path: Path) -> None:
    launch.prepare("pi", GATEWAY, "coder", tmp_path, "pi")
    assert models_json(tmp_path)["providers"]["crossroute"]["api"] == "openai-completions"
    settings = json.loads((tmp_path / ".pi/agent/settings.json").read_text())
    assert (settings["defaultProvider"], settings["defaultModel"]) == ("crossroute", "coder")
    assert settings["enableInstallTelemetry"] is False


def test_the_key_goes_through_a_variable_so_pi_never_runs_it_as_a_command(tmp_path: Path) -> None:
    prepared = launch.prepare("pi", GATEWAY, "m", tmp_path, "pi")
    variable = models_json(tmp_path)["providers"]["crossroute"]["apiKey"]
    assert prepared.env[variable] == "!echo not-a-command"
    assert "not-a-command" not in (tmp_path / ".pi/agent/models.json").read_text()


def test_startup_network_traffic_is_off(tmp_path: Path) -> None:
    env = launch.prepare("pi", GATEWAY, "m", tmp_path, "pi").env
    assert env["PI_OFFLINE"] == "1" and env["PI_SKIP_VERSION_CHECK"] == "1" and env["PI_TELEMETRY"] == "0"


def test_the_callers_own_pi_dirs_are_not_used(tmp_path: Path) -> None:
    """A PI_CODING_AGENT_DIR / session dir in the caller's environment would point pi at the user's config."""
    program, record = recording_client(tmp_path, "pi")
    user_dir = tmp_path / "user-pi"
    user_dir.mkdir()
    env = {**os.environ, "PI_CODING_AGENT_DIR": str(user_dir), "PI_CODING_AGENT_SESSION_DIR": str(user_dir)}
    result = _crossroute("launch", "pi", "--url", "http://127.0.0.1:5", "--model", "m", "--bin", str(program),
                         "--", "-p", "task", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    seen = json.loads(record.read_text())
    assert seen["argv"] == ["-p", "task"]
    agent_dir = Path(seen["env"]["PI_CODING_AGENT_DIR"])
    assert agent_dir.is_relative_to(seen["env"]["HOME"]) and not agent_dir.exists()
    assert Path(seen["env"]["PI_CODING_AGENT_SESSION_DIR"]).is_relative_to(agent_dir)
    assert list(user_dir.iterdir()) == []


def test_print_keeps_pis_dirs_off_the_shell(tmp_path: Path) -> None:
    """Exported, they would move the pasting shell's own later pi runs into the temp home."""
    printed = _crossroute("launch", "pi", "--url", "http://127.0.0.1:5", "--model", "m", "--bin", "pi", "--print",
                          cwd=tmp_path, env=dict(os.environ))
    assert printed.returncode == 0, printed.stderr
    assert "export PI_CODING_AGENT" not in printed.stdout
    command = printed.stdout.rstrip().splitlines()[-1]
    assert "PI_CODING_AGENT_DIR=" in command and command.endswith(" pi")
    assert "export PI_OFFLINE=1" in printed.stdout

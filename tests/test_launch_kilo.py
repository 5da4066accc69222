"""`crossroute launch kilo`: the provider Kilo CLI is given for each format and the traffic it is
kept from (no real kilo here; tests/e2e runs it)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from crossroute import launch
from tests.test_launch import _crossroute, recording_client

GATEWAY = launch.Gateway("http://127.0.0.1:8317", "sk-local")


def kilo_config(tmp_path: Path, fmt: str | None = None, model: str = "deepseek/deepseek-chat") -> dict:
    prepared = launch.prepare("kilo", GATEWAY, model, tmp_path, "kilo", fmt)
    path = Path(prepared.env["KILO_CONFIG"])
    assert path.is_relative_to(tmp_path) and oct(path.stat().st_mode & 0o777) == "0o600"
    config: dict = json.loads(path.read_text())
    return config


@pytest.mark.parametrize(("fmt", "package", "base_url"), [
    ("openai-chat", "@ai-sdk/openai-compatible", "http://127.0.0.1:8317/v1"),
    ("anthropic", "@ai-sdk/anthropic", "http://127.0.0.1:8317/v1"),
    ("openai-responses", "@ai-sdk/openai", "http://127.0.0.1:8317/v1"),
    ("gemini", "@ai-sdk/google", "http://127.0.0.1:8317/v1beta"),
])
def test_each_format_is_a_provider_on_the_matching_bundled_ai_sdk_package(fmt: str, package: str, base_url: str,
                                                                          tmp_path: Path) -> None:
    provider = kilo_config(tmp_path, fmt)["provider"]["crossroute"]
    assert provider["npm"] == package
    assert provider["options"] == {"baseURL": base_url, "apiKey": "sk-local"}
    assert provider["models"]["deepseek/deepseek-chat"]["tool_call"] is True


def test_chat_completions_is_the_default_and_only_our_provider_is_enabled(tmp_path: Path) -> None:
    config = kilo_config(tmp_path, model="coder")
    assert config["provider"]["crossroute"]["npm"] == "@ai-sdk/openai-compatible"
    assert config["model"] == config["small_model"] == "crossroute/coder"
    # the built-in Kilo Gateway provider would fetch its model list from api.kilo.ai
    assert config["enabled_providers"] == ["crossroute"]


def test_telemetry_updates_sharing_and_catalogs_are_off(tmp_path: Path) -> None:
    prepared = launch.prepare("kilo", GATEWAY, "m", tmp_path, "kilo")
    config = json.loads(Path(prepared.env["KILO_CONFIG"]).read_text())
    assert config["autoupdate"] is False and config["share"] == "disabled"
    assert config["experimental"]["openTelemetry"] is False
    env = prepared.env
    assert env["KILO_TELEMETRY_LEVEL"] != "all"  # Kilo sends PostHog events only at "all" once it is set
    for flag in ("KILO_DISABLE_AUTOUPDATE", "KILO_DISABLE_MODELS_FETCH", "KILO_DISABLE_SHARE",
                 "KILO_DISABLE_SESSION_INGEST"):
        assert env[flag] == "1", flag


def test_the_callers_own_kilo_config_and_database_are_not_used(tmp_path: Path) -> None:
    program, record = recording_client(tmp_path, "kilo")
    user_dir = tmp_path / "user-kilo"
    user_dir.mkdir()
    env = {**os.environ, "KILO_CONFIG_DIR": str(user_dir), "KILO_DB": str(user_dir / "kilo.db"),
           "KILO_CONFIG_CONTENT": '{"model": "vendor/model"}'}
    result = _crossroute("launch", "kilo", "--url", "http://127.0.0.1:5", "--model", "m", "--bin", str(program),
                         "--", "run", "task", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    seen = json.loads(record.read_text())
    assert seen["argv"] == ["run", "task"]
    home = Path(seen["env"]["HOME"])
    assert Path(seen["env"]["KILO_CONFIG_DIR"]).is_relative_to(home)
    assert not Path(seen["env"]["KILO_DB"]).is_absolute()  # Kilo puts a relative name in its data dir
    assert json.loads(seen["env"]["KILO_CONFIG_CONTENT"]) == {}
    assert list(user_dir.iterdir()) == []


def test_print_keeps_kilos_config_paths_off_the_shell(tmp_path: Path) -> None:
    """Exported, they would point the pasting shell's later kilo runs at a removed temp home."""
    printed = _crossroute("launch", "kilo", "--url", "http://127.0.0.1:5", "--model", "m", "--bin", "kilo",
                          "--print", cwd=tmp_path, env=dict(os.environ))
    assert printed.returncode == 0, printed.stderr
    assert "export KILO_CONFIG=" not in printed.stdout and "export KILO_CONFIG_DIR=" not in printed.stdout
    command = printed.stdout.rstrip().splitlines()[-1]
    assert "KILO_CONFIG=" in command and command.endswith(" kilo")

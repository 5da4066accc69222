"""`crossroute launch`: what each client is given, without running the clients
(the end-to-end grid in tests/e2e runs them for real)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from crossroute import launch

GATEWAY = launch.Gateway("http://127.0.0.1:8317", "sk-local")


def fake_codex(tmp_path: Path) -> str:
    """A stand-in `codex` that prints a catalog like `codex debug models` does."""
    (tmp_path / "bin").mkdir()
    script = tmp_path / "bin" / "codex"
    catalog = {"models": [{"slug": "gpt-5.5", "display_name": "GPT-5.5", "shell_type": "shell_command"}]}
    script.write_text(f"#!/bin/sh\necho '{json.dumps(catalog)}'\n")
    script.chmod(0o755)
    return str(script)


def test_codex_gets_a_provider_and_a_catalog_entry_for_the_model(tmp_path: Path) -> None:
    prepared = launch.prepare("codex", GATEWAY, "coder", tmp_path, fake_codex(tmp_path))
    config = tomllib.loads((tmp_path / "codex/config.toml").read_text())
    assert config["model"] == "coder"
    assert config["model_provider"] == "crossroute"
    provider = config["model_providers"]["crossroute"]
    assert provider["base_url"] == "http://127.0.0.1:8317/v1" and provider["wire_api"] == "responses"
    assert prepared.env["CROSSROUTE_API_KEY"] == "sk-local"
    assert config["analytics"]["enabled"] is False and config["features"]["plugins"] is False
    catalog = json.loads((tmp_path / "codex/model-catalog.json").read_text())
    entry = next(m for m in catalog["models"] if m["slug"] == "coder")
    assert entry["shell_type"] == "shell_command"  # a copy of the known model's entry


def test_claude_points_every_model_tier_at_the_gateway_and_stays_quiet(tmp_path: Path) -> None:
    env = launch.prepare("claude", GATEWAY, "gemini-2.5-pro", tmp_path, "claude").env
    assert env["ANTHROPIC_BASE_URL"] == "http://127.0.0.1:8317"
    assert env["ANTHROPIC_API_KEY"] == "sk-local"
    assert env["ANTHROPIC_SMALL_FAST_MODEL"] == env["ANTHROPIC_DEFAULT_HAIKU_MODEL"] == "gemini-2.5-pro"
    assert env["CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC"] == "1"
    assert env["CLAUDE_CONFIG_DIR"].startswith(str(tmp_path))


@pytest.mark.parametrize("client,settings_file", [("gemini", ".gemini/settings.json"), ("qwen", ".qwen/settings.json")])
def test_gemini_family_settings_turn_off_statistics(client: str, settings_file: str, tmp_path: Path) -> None:
    prepared = launch.prepare(client, GATEWAY, "m", tmp_path, client)
    settings = json.loads((tmp_path / settings_file).read_text())
    assert settings["privacy"]["usageStatisticsEnabled"] is False
    assert prepared.env["HOME"] == str(tmp_path)
    assert oct((tmp_path / settings_file).stat().st_mode & 0o777) == "0o600"


def test_opencode_gets_a_provider_for_the_model(tmp_path: Path) -> None:
    prepared = launch.prepare("opencode", GATEWAY, "deepseek/deepseek-chat", tmp_path, "opencode")
    config = json.loads(Path(prepared.env["OPENCODE_CONFIG"]).read_text())
    provider = config["provider"]["crossroute"]
    assert provider["options"] == {"baseURL": "http://127.0.0.1:8317/v1", "apiKey": "sk-local"}
    assert "deepseek/deepseek-chat" in provider["models"]
    assert config["model"] == "crossroute/deepseek/deepseek-chat"
    assert prepared.env["OPENCODE_DISABLE_AUTOUPDATE"] == "1"


def test_no_gateway_key_still_gives_clients_a_key_to_send(tmp_path: Path) -> None:
    env = launch.prepare("qwen", launch.Gateway("http://127.0.0.1:1", None), "m", tmp_path, "qwen").env
    assert env["OPENAI_API_KEY"] == launch.PLACEHOLDER_KEY


def _crossroute(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "crossroute.cli", *args], capture_output=True, text=True,
                          timeout=30, cwd=cwd, env=env)


def test_print_shows_environment_and_command_with_client_args(tmp_path: Path) -> None:
    config = tmp_path / "gw.yaml"
    config.write_text("server: {port: 9999, api_keys: [sk-abc]}\nproviders:\n"
                      "  - {name: deepseek, kind: openai, api_keys: [k], models: [deepseek-chat]}\n")
    result = _crossroute("launch", "claude", "--config", str(config), "--print", "--", "-p", "hello there",
                         cwd=tmp_path, env=dict(os.environ))
    assert result.returncode == 0, result.stderr
    assert "export ANTHROPIC_BASE_URL=http://127.0.0.1:9999" in result.stdout
    assert "export ANTHROPIC_API_KEY=sk-abc" in result.stdout
    assert result.stdout.rstrip().endswith("--model deepseek-chat -p 'hello there'")


def test_run_uses_a_temporary_home_and_cleans_it_up(tmp_path: Path) -> None:
    """A stand-in client records its environment: the user's HOME is untouched and
    the temporary one is gone afterwards."""
    record = tmp_path / "seen.json"
    client = tmp_path / "gemini"
    client.write_text(f"#!{sys.executable}\nimport json, os, sys\n"
                      f"json.dump({{'env': dict(os.environ), 'argv': sys.argv[1:]}}, open({str(record)!r}, 'w'))\n")
    client.chmod(0o755)
    user_home = tmp_path / "user-home"
    user_home.mkdir()
    env = {**os.environ, "HOME": str(user_home)}
    result = _crossroute("launch", "gemini", "--url", "http://127.0.0.1:5", "--model", "gemini-up",
                         "--bin", str(client), "--", "-p", "task", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    seen = json.loads(record.read_text())
    assert seen["argv"] == ["-m", "gemini-up", "-p", "task"]
    assert seen["env"]["GOOGLE_GEMINI_BASE_URL"] == "http://127.0.0.1:5"
    temp_home = Path(seen["env"]["HOME"])
    assert temp_home != user_home and not temp_home.exists()
    assert list(user_home.iterdir()) == []


def test_missing_client_is_a_clear_error(tmp_path: Path) -> None:
    env = {**os.environ, "PATH": str(tmp_path)}
    result = _crossroute("launch", "codex", "--model", "m", cwd=tmp_path, env=env)
    assert result.returncode == 127
    assert "codex is not on PATH" in result.stderr


def recording_client(tmp_path: Path, name: str) -> tuple[Path, Path]:
    """A stand-in client that writes its environment and arguments to a JSON file."""
    record = tmp_path / f"{name}-seen.json"
    client = tmp_path / name
    client.write_text(f"#!{sys.executable}\nimport json, os, sys\n"
                      f"json.dump({{'env': dict(os.environ), 'argv': sys.argv[1:]}}, open({str(record)!r}, 'w'))\n")
    client.chmod(0o755)
    return client, record


@pytest.mark.parametrize("client", launch.CLIENTS)
def test_pasting_print_output_starts_the_client_without_moving_the_shells_home(client: str, tmp_path: Path) -> None:
    """What --print shows runs as a shell script: the client gets its temporary home,
    and the shell it was pasted into keeps its own HOME."""
    program, record = recording_client(tmp_path, client)
    user_home = tmp_path / "user-home"
    user_home.mkdir()
    env = {**os.environ, "HOME": str(user_home)}
    printed = _crossroute("launch", client, "--url", "http://127.0.0.1:5", "--key", "sk-p", "--model", "m",
                          "--bin", str(program), "--print", cwd=tmp_path, env=env)
    assert printed.returncode == 0, printed.stderr
    pasted = subprocess.run(["bash", "-c", printed.stdout + '\necho "shell home: $HOME"'], capture_output=True,
                            text=True, timeout=30, env=env, cwd=tmp_path)
    assert pasted.returncode == 0, pasted.stderr
    assert pasted.stdout.strip().endswith(f"shell home: {user_home}")
    seen = json.loads(record.read_text())
    client_home = Path(printed.stdout.split("config files written under ", 1)[1].split(")", 1)[0])
    written = " ".join(p.read_text() for p in client_home.rglob("*") if p.is_file())
    assert "sk-p" in [*seen["env"].values(), *seen["argv"]] or "sk-p" in written  # the key reaches the client
    assert "http://127.0.0.1:5" in " ".join([*seen["env"].values(), *seen["argv"], written])
    assert list(user_home.iterdir()) == []


def test_a_format_the_client_cannot_speak_is_refused_before_anything_runs(tmp_path: Path) -> None:
    program, record = recording_client(tmp_path, "claude")
    result = _crossroute("launch", "claude", "--url", "http://127.0.0.1:5", "--model", "m", "--format", "gemini",
                         "--bin", str(program), cwd=tmp_path, env=dict(os.environ))
    assert result.returncode == 2
    assert "claude cannot speak gemini; it speaks anthropic" in result.stderr
    assert not record.exists()


def test_a_client_that_cannot_be_started_is_a_clear_error(tmp_path: Path) -> None:
    not_a_program = tmp_path / "claude"
    not_a_program.write_text("just text\n")  # no execute bit
    result = _crossroute("launch", "claude", "--url", "http://127.0.0.1:5", "--model", "m",
                         "--bin", str(not_a_program), cwd=tmp_path, env=dict(os.environ))
    assert result.returncode == 126
    assert result.stderr.strip() == f"crossroute: cannot start {not_a_program}: Permission denied"

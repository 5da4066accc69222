"""`crossroute launch aider`: what Aider is given, without running it (tests/e2e/test_agent_aider.py runs it)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from crossroute import launch

GATEWAY = launch.Gateway("http://127.0.0.1:8317", "sk-local")


def option_values(args: list[str], option: str) -> list[str]:
    return [args[i + 1] for i, arg in enumerate(args[:-1]) if arg == option]


@pytest.fixture
def user_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "user-home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    monkeypatch.delenv("GIT_CONFIG_GLOBAL", raising=False)
    return home


@pytest.mark.parametrize(("fmt", "model", "base_urls", "key_variable", "key"), [
    ("openai-chat", "openai/coder", {"OPENAI_API_BASE": "http://127.0.0.1:8317/v1",
                                     "OPENAI_BASE_URL": "http://127.0.0.1:8317/v1"}, "AIDER_OPENAI_API_KEY", "sk-local"),
    ("openai-responses", "openai/responses/coder", {"OPENAI_API_BASE": "http://127.0.0.1:8317/v1",
                                                    "OPENAI_BASE_URL": "http://127.0.0.1:8317/v1"},
     "AIDER_OPENAI_API_KEY", "sk-local"),
    ("anthropic", "anthropic/coder", {"ANTHROPIC_API_BASE": "http://127.0.0.1:8317"}, "AIDER_ANTHROPIC_API_KEY",
     "sk-local"),
    ("gemini", "gemini/coder", {"GEMINI_API_BASE": "http://127.0.0.1:8317/v1beta"}, "AIDER_API_KEY",
     "gemini=sk-local"),
])
def test_each_format_is_a_litellm_prefix_with_its_base_url_and_key(fmt: str, model: str, base_urls: dict[str, str],
                                                                   key_variable: str, key: str, tmp_path: Path,
                                                                   user_home: Path) -> None:
    prepared = launch.prepare("aider", GATEWAY, "coder", tmp_path, "aider", fmt)
    assert option_values(prepared.args, "--model") == [model]
    assert option_values(prepared.args, "--weak-model") == option_values(prepared.args, "--editor-model") == [model]
    set_env = dict(setting.split("=", 1) for setting in option_values(prepared.args, "--set-env"))
    assert set_env == base_urls
    assert prepared.env[key_variable] == key
    assert "sk-local" not in " ".join(prepared.args)  # keys stay out of the process list
    metadata = json.loads((tmp_path / ".aider.model.metadata.json").read_text())
    assert list(metadata) == [model]
    # litellm sends a model of mode "responses" to /v1/responses, any other to the format's chat endpoint
    assert (metadata[model]["mode"] == "responses") == (fmt == "openai-responses")


def test_aider_defaults_to_openai_chat_and_stays_quiet(tmp_path: Path, user_home: Path) -> None:
    prepared = launch.prepare("aider", GATEWAY, "coder", tmp_path, "aider")
    assert option_values(prepared.args, "--model") == ["openai/coder"]
    for switch in ("--no-analytics", "--no-check-update", "--no-show-release-notes", "--no-show-model-warnings",
                   "--no-gitignore"):
        assert switch in prepared.args
    assert prepared.env["LITELLM_LOCAL_MODEL_COST_MAP"] == "True"
    assert prepared.env["HOME"] == str(tmp_path)
    assert option_values(prepared.args, "--model-metadata-file") == [str(tmp_path / ".aider.model.metadata.json")]
    histories = option_values(prepared.args, "--input-history-file") + option_values(prepared.args,
                                                                                      "--chat-history-file")
    assert len(histories) == 2 and all(Path(h).parent == tmp_path for h in histories)


def test_git_keeps_the_users_own_identity_while_home_moves(tmp_path: Path, user_home: Path) -> None:
    (user_home / ".gitconfig").write_text("[user]\n\tname = Someone\n")
    prepared = launch.prepare("aider", GATEWAY, "coder", tmp_path / "temp-home", "aider")
    assert prepared.env["GIT_CONFIG_GLOBAL"] == str(user_home / ".gitconfig")


def test_git_config_under_xdg_is_found_and_an_explicit_one_is_left_alone(tmp_path: Path, user_home: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    xdg_config = user_home / ".config" / "git" / "config"
    xdg_config.parent.mkdir(parents=True)
    xdg_config.write_text("[user]\n\tname = Someone\n")
    assert launch.prepare("aider", GATEWAY, "m", tmp_path / "a", "aider").env["GIT_CONFIG_GLOBAL"] == str(xdg_config)
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(tmp_path / "chosen"))
    assert "GIT_CONFIG_GLOBAL" not in launch.prepare("aider", GATEWAY, "m", tmp_path / "b", "aider").env


def test_print_puts_the_git_config_on_the_command_line_only(tmp_path: Path, user_home: Path) -> None:
    (user_home / ".gitconfig").write_text("[user]\n\tname = Someone\n")
    prepared = launch.prepare("aider", GATEWAY, "coder", tmp_path, "aider")
    printed = launch.describe("aider", prepared, tmp_path, ["--message", "hi"])
    assert "export GIT_CONFIG_GLOBAL" not in printed
    assert printed.splitlines()[-1].startswith(f"HOME={tmp_path} GIT_CONFIG_GLOBAL={user_home / '.gitconfig'} aider")
    assert "export AIDER_OPENAI_API_KEY=sk-local" in printed

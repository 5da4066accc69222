"""`crossroute launch cline`: what Cline CLI is given, without running it
(tests/e2e/test_agent_cline.py and the shared grid run it for real)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from crossroute import launch

GATEWAY = launch.Gateway("http://127.0.0.1:8317", "sk-local")
SETTINGS = Path(".cline/data/settings")


def prepared(tmp_path: Path, fmt: str | None = None) -> tuple[launch.Launch, dict, dict]:
    """The launch, and the provider and global settings files it wrote."""
    started = launch.prepare("cline", GATEWAY, "m-1", tmp_path, "cline", fmt)
    providers = json.loads((tmp_path / SETTINGS / "providers.json").read_text())
    global_settings = json.loads((tmp_path / SETTINGS / "global-settings.json").read_text())
    return started, providers, global_settings


def test_default_is_the_openai_compatible_provider_at_the_gateway(tmp_path: Path) -> None:
    _, providers, _ = prepared(tmp_path)
    assert providers["lastUsedProvider"] == "openai-compatible"
    entry = providers["providers"]["openai-compatible"]
    assert entry["settings"] == {"provider": "openai-compatible", "apiKey": "sk-local", "model": "m-1",
                                 "baseUrl": "http://127.0.0.1:8317/v1"}
    assert entry["updatedAt"]  # without it Cline discards the entry and falls back to its own provider


@pytest.mark.parametrize(("fmt", "provider", "base_url"), [
    ("anthropic", "anthropic", "http://127.0.0.1:8317/v1"),
    ("openai-responses", "openai-native", "http://127.0.0.1:8317/v1"),
    ("gemini", "gemini", "http://127.0.0.1:8317"),
])
def test_each_format_picks_the_provider_that_speaks_it(fmt: str, provider: str, base_url: str,
                                                        tmp_path: Path) -> None:
    _, providers, _ = prepared(tmp_path, fmt)
    assert providers["lastUsedProvider"] == provider
    assert list(providers["providers"]) == [provider]
    assert providers["providers"][provider]["settings"]["baseUrl"] == base_url


def test_runs_sandboxed_in_the_temp_home_with_vendor_traffic_off(tmp_path: Path) -> None:
    started, _, global_settings = prepared(tmp_path)
    assert started.args == ["--data-dir", str(tmp_path / ".cline/data")]  # in-process, no hub daemon
    assert started.env["HOME"] == str(tmp_path)
    assert started.env["E2E_TEST"] == "true"  # feature flags from a no-op provider
    assert started.env["CLINE_NO_AUTO_UPDATE"] == "1"
    assert global_settings == {"telemetryOptOut": True, "autoUpdateEnabled": False}


def test_print_keeps_the_feature_flag_switch_out_of_the_shell(tmp_path: Path) -> None:
    started, _, _ = prepared(tmp_path)
    printed = launch.describe("cline", started, tmp_path, ["do it"])
    assert "export E2E_TEST" not in printed
    assert printed.splitlines()[-1].startswith(f"HOME={tmp_path} ")
    assert "E2E_TEST=true " in printed.splitlines()[-1]


def test_gemini_format_turns_off_the_hosted_search_that_would_drop_the_function_tools(tmp_path: Path) -> None:
    _, _, gemini_settings = prepared(tmp_path / "gemini", "gemini")
    _, _, anthropic_settings = prepared(tmp_path / "anthropic", "anthropic")
    assert gemini_settings["tools"] == {"web_search": {"enabled": False}}
    assert "tools" not in anthropic_settings

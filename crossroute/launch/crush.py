"""Crush (Charm): a custom provider in its global crush.json; OpenAI Chat Completions by default."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from crossroute.launch.base import Gateway, Launch, temp_home_env

# The wire formats it can speak, the default first. Crush's `openai` provider type is left out:
# it speaks the Responses API only for model ids it knows (gpt-4*, gpt-5*, o-series) and Chat
# Completions for any other name, so it cannot promise openai-responses for a gateway model.
FORMATS = ("openai-chat", "anthropic", "gemini")

PROVIDER = "crossroute"
KEY_VARIABLE = "CROSSROUTE_API_KEY"  # crush.json resolves "$VAR" (and runs "$(...)"), so the key stays out of it
# Crush's provider type per format, and the base URL its SDK appends its own path to
PROVIDER_TYPES = {"openai-chat": "openai-compat", "anthropic": "anthropic", "gemini": "google"}
BASE_PATHS = {"openai-chat": "/v1", "anthropic": "", "gemini": ""}
CONFIG_FILE = ".config/crush/crush.json"
DATA_DIR = ".local/share/crush"


def model_entry(model: str) -> dict[str, Any]:
    """A catalog entry for the gateway's model; Crush requires every one of these fields."""
    return {
        "id": model, "name": model,
        "cost_per_1m_in": 0, "cost_per_1m_out": 0, "cost_per_1m_in_cached": 0, "cost_per_1m_out_cached": 0,
        "context_window": 200000, "default_max_tokens": 32000,
        "can_reason": True, "supports_attachments": True,
    }


def config(gateway: Gateway, model: str, home: Path, fmt: str) -> dict[str, Any]:
    selected = {"model": model, "provider": PROVIDER}
    return {
        "$schema": "https://charm.land/crush.json",
        "providers": {PROVIDER: {
            "name": "crossroute", "type": PROVIDER_TYPES[fmt], "base_url": gateway.url + BASE_PATHS[fmt],
            "api_key": "$" + KEY_VARIABLE, "models": [model_entry(model)],
        }},
        "models": {"large": selected, "small": dict(selected)},
        "options": {
            "disable_provider_auto_update": True,  # no Catwalk / Hyper catalog refresh
            "disable_default_providers": True,  # only the gateway: no embedded catalog, no providers from env keys
            "disable_metrics": True,
            # sessions, logs and workspace config in the temp home instead of ./.crush in the project
            "data_directory": str(home / DATA_DIR / "project"),
        },
    }


def build(gateway: Gateway, model: str, home: Path, program: str, fmt: str) -> Launch:
    env = {
        KEY_VARIABLE: gateway.client_key,
        # the environment overrides crush.json for these, so a user's own settings cannot undo them
        "CRUSH_DISABLE_PROVIDER_AUTO_UPDATE": "1",
        "CRUSH_DISABLE_DEFAULT_PROVIDERS": "1",
        "CRUSH_DISABLE_METRICS": "1",
        "DO_NOT_TRACK": "1",
        "CRUSH_CLIENT_SERVER": "0",  # in-process: no detached `crush server` outliving the temp home
        **temp_home_env(home),
        "CRUSH_GLOBAL_CONFIG": str(home / ".config/crush"),
        "CRUSH_GLOBAL_DATA": str(home / DATA_DIR),
        "CRUSH_CACHE_DIR": str(home / ".cache/crush"),
        "CRUSH_SKILLS_DIR": str(home / ".config/crush/skills"),
    }
    notes = ["Crush checks for a newer release on every start (one GET to GitHub's releases API, no key sent);"
             " it has no switch for that, so launch cannot turn it off"]
    return Launch(program, [], env=env, files={CONFIG_FILE: json.dumps(config(gateway, model, home, fmt), indent=2)},
                  notes=notes,
                  scoped=("CRUSH_GLOBAL_CONFIG", "CRUSH_GLOBAL_DATA", "CRUSH_CACHE_DIR", "CRUSH_SKILLS_DIR"))

"""Kilo CLI (an OpenCode fork): a custom provider on one of the AI SDK packages bundled in its
binary, OpenAI Chat Completions (@ai-sdk/openai-compatible, as its own Kilo Gateway) by default."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from crossroute.launch.base import Gateway, Launch, temp_home_env

FORMATS = ("openai-chat", "anthropic", "openai-responses", "gemini")  # the wire formats it can speak, the default first

# the AI SDK provider package (bundled in the kilo binary, so nothing is installed) and the base URL
# it is given, per wire format
PROVIDERS = {
    "openai-chat": ("@ai-sdk/openai-compatible", "/v1"),
    "anthropic": ("@ai-sdk/anthropic", "/v1"),
    "openai-responses": ("@ai-sdk/openai", "/v1"),
    "gemini": ("@ai-sdk/google", "/v1beta"),
}

# Everything Kilo would reach on its own: off by variable (the config file repeats what it can)
QUIET = {
    "KILO_TELEMETRY_LEVEL": "off",  # PostHog; anything but "all" turns it off
    "KILO_DISABLE_AUTOUPDATE": "1",
    "KILO_DISABLE_MODELS_FETCH": "1",  # the models.dev catalog
    "KILO_DISABLE_SHARE": "1",
    "KILO_DISABLE_SESSION_INGEST": "1",  # session upload to the vendor's cloud
    "KILO_DISABLE_LSP_DOWNLOAD": "1",
    "KILO_DISABLE_DEFAULT_PLUGINS": "1",
    "KILO_DISABLE_EXTERNAL_SKILLS": "1",
    "KILO_DISABLE_CLAUDE_CODE": "1",  # no reading of the user's ~/.claude prompts and skills
    "KILO_DISABLE_CODEBASE_INDEXING": "1",
}


def provider(gateway: Gateway, model: str, fmt: str) -> dict[str, Any]:
    package, path = PROVIDERS[fmt]
    return {
        "npm": package,
        "name": "crossroute",
        "options": {"baseURL": gateway.url + path, "apiKey": gateway.client_key},
        "models": {model: {"name": model, "tool_call": True, "reasoning": True,
                           "limit": {"context": 200000, "output": 32000}}},
    }


def build(gateway: Gateway, model: str, home: Path, program: str, fmt: str) -> Launch:
    config = {
        "provider": {"crossroute": provider(gateway, model, fmt)},
        # only ours: the built-in Kilo Gateway provider would fetch its model list from the vendor
        "enabled_providers": ["crossroute"],
        "model": f"crossroute/{model}",
        "small_model": f"crossroute/{model}",
        "autoupdate": False,
        "share": "disabled",
        "experimental": {"openTelemetry": False},
    }
    env = {
        "KILO_CONFIG": str(home / "kilo.json"),
        # the caller's own, were they set, would bring in their config dir, inline config and session store
        "KILO_CONFIG_DIR": str(home / ".config/kilo"),
        "KILO_CONFIG_CONTENT": "{}",
        "KILO_DB": "kilo.db",  # a bare name lands in the data dir, under the temp home
        **QUIET,
        **temp_home_env(home),
    }
    # exported by --print, these would point the pasting shell's later kilo runs at a removed temp home
    scoped = ("KILO_CONFIG", "KILO_CONFIG_DIR", "KILO_DB", "KILO_CONFIG_CONTENT")
    return Launch(program, [], env=env, files={"kilo.json": json.dumps(config, indent=2)}, scoped=scoped)

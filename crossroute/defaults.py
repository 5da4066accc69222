"""The zero-config start: providers found in the usual environment variables."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import platformdirs

from crossroute.config import Config, ProviderConfig
from crossroute.providers.presets import PRESETS

# Variables that hold a host rather than a key.
_NOT_KEYS = frozenset({"OLLAMA_HOST"})


def data_dir() -> Path:
    return Path(os.environ.get("CROSSROUTE_HOME") or platformdirs.user_data_dir("crossroute"))


def discover_providers(env: Mapping[str, str] = os.environ) -> list[ProviderConfig]:
    found = []
    for name, preset in PRESETS.items():
        keys = [env[var] for var in preset.env if env.get(var) and var not in _NOT_KEYS]
        if not keys:
            continue
        base_url = env.get("OPENAI_BASE_URL") if name == "openai" else None
        found.append(ProviderConfig(name=name, kind=preset.kind, preset=name, base_url=base_url, api_keys=keys[:1]))
    return found


def default_config(env: Mapping[str, str] = os.environ) -> Config:
    return Config(providers=discover_providers(env))


def describe(config: Config) -> str:
    if not config.providers:
        return ("No providers found. Set an API key variable (OPENAI_API_KEY, ANTHROPIC_API_KEY, GEMINI_API_KEY, "
                "OPENROUTER_API_KEY, DEEPSEEK_API_KEY, ...) or write a config file and pass --config FILE "
                "(see the README).")
    lines = ["Providers:"]
    for provider in config.providers:
        models = ", ".join(m.alias or m.name for m in provider.models) or "(any model as provider/model)"
        lines.append(f"  {provider.name} ({provider.kind}, {len(provider.api_keys)} key(s)) at {provider.base_url}: {models}")
    lines.append("Address any model as name, alias or provider/model. More providers: --config FILE (see the README).")
    return "\n".join(lines)

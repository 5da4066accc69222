"""The zero-config start: providers found in the usual environment variables, and a
provider for each login kind the auth dir holds accounts of (`crossroute login` made them)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import orjson
import platformdirs

from crossroute.config import Config, ProviderConfig
from crossroute.kinds import LOGIN_KINDS
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


def logged_in_kinds(auth_dir: Path) -> list[str]:
    """The login kinds that accounts in the auth dir name as their provider (only that field is read)."""
    kinds: set[str] = set()
    for path in sorted(auth_dir.glob("*.json")) if auth_dir.is_dir() else ():
        try:
            provider = orjson.loads(path.read_bytes()).get("provider")
        except (OSError, orjson.JSONDecodeError, AttributeError):
            continue  # the account store reports it when it loads the dir
        if provider in LOGIN_KINDS:
            kinds.add(provider)
    return sorted(kinds)


def default_config(env: Mapping[str, str] = os.environ) -> Config:
    config = Config(providers=discover_providers(env))
    taken = {provider.name for provider in config.providers}
    config.providers += [ProviderConfig(name=kind, kind=kind) for kind in logged_in_kinds(Path(config.state.auth_dir))
                         if kind not in taken]
    return config


def describe(config: Config) -> str:
    if not config.providers:
        return ("No providers found. Set an API key variable (OPENAI_API_KEY, ANTHROPIC_API_KEY, GEMINI_API_KEY, "
                "OPENROUTER_API_KEY, DEEPSEEK_API_KEY, ...) or write a config file and pass --config FILE "
                "(see the README).")
    lines = ["Providers:"]
    for provider in config.providers:
        models = ", ".join(m.alias or m.name for m in provider.models) or "(any model as provider/model)"
        accounts = "logins from the auth dir" if provider.is_login else f"{len(provider.api_keys)} key(s)"
        lines.append(f"  {provider.name} ({provider.kind}, {accounts}) at {provider.base_url}: {models}")
    lines.append("Address any model as name, alias or provider/model. More providers: --config FILE (see the README).")
    return "\n".join(lines)

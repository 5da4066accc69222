"""Qwen Code: OpenAI Chat Completions, configured by environment and ~/.qwen/settings.json."""

from __future__ import annotations

import json
from pathlib import Path

from crossroute.launch.base import Gateway, Launch

FORMATS = ("openai-chat",)  # the wire formats it can speak, the default first


def build(gateway: Gateway, model: str, home: Path, program: str, fmt: str) -> Launch:
    settings = {
        "privacy": {"usageStatisticsEnabled": False},
        "memory": {"enableManagedAutoMemory": False},
        "general": {"disableAutoUpdate": True},
        "telemetry": {"enabled": False},
        "security": {"auth": {"selectedType": "openai"}},
    }
    env = {
        "HOME": str(home),
        "OPENAI_API_KEY": gateway.client_key,
        "OPENAI_BASE_URL": gateway.url + "/v1",
        "OPENAI_MODEL": model,
    }
    return Launch(program, ["-m", model], env=env, files={".qwen/settings.json": json.dumps(settings, indent=2)})

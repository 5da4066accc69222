"""Gemini CLI: the Gemini API, configured by environment and ~/.gemini/settings.json."""

from __future__ import annotations

import json
from pathlib import Path

from crossroute.launch.base import Gateway, Launch

FORMATS = ("gemini",)  # the wire formats it can speak, the default first


def build(gateway: Gateway, model: str, home: Path, program: str, fmt: str) -> Launch:
    settings = {
        "security": {"auth": {"selectedType": "gemini-api-key"}},
        "privacy": {"usageStatisticsEnabled": False},
        "general": {"disableAutoUpdate": True, "disableUpdateNag": True},
        "telemetry": {"enabled": False},
    }
    env = {
        "HOME": str(home),
        "GEMINI_API_KEY": gateway.client_key,
        "GOOGLE_GEMINI_BASE_URL": gateway.url,
        "GEMINI_CLI_TRUST_WORKSPACE": "true",
        "GEMINI_MODEL": model,
    }
    return Launch(program, ["-m", model], env=env, files={".gemini/settings.json": json.dumps(settings, indent=2)})

"""OpenCode: OpenAI Chat Completions through its @ai-sdk/openai-compatible provider."""

from __future__ import annotations

import json
from pathlib import Path

from crossroute.launch.base import Gateway, Launch, temp_home_env

FORMATS = ("openai-chat",)  # the wire formats it can speak, the default first


def build(gateway: Gateway, model: str, home: Path, program: str, fmt: str) -> Launch:
    config = {
        "$schema": "https://opencode.ai/config.json",
        "provider": {
            "crossroute": {
                "npm": "@ai-sdk/openai-compatible",
                "name": "crossroute",
                "options": {"baseURL": gateway.url + "/v1", "apiKey": gateway.client_key},
                "models": {model: {"name": model, "tool_call": True, "reasoning": True,
                                   "limit": {"context": 200000, "output": 32000}}},
            }
        },
        "model": f"crossroute/{model}",
        "small_model": f"crossroute/{model}",
        "autoupdate": False,
        "share": "disabled",
    }
    env = {
        "OPENCODE_CONFIG": str(home / "opencode.json"),
        "OPENCODE_DISABLE_MODELS_FETCH": "1",
        "OPENCODE_DISABLE_AUTOUPDATE": "1",
        "OPENCODE_DISABLE_LSP_DOWNLOAD": "1",
        "OPENCODE_DISABLE_SHARE": "1",
        "OPENCODE_DISABLE_DEFAULT_PLUGINS": "1",
        **temp_home_env(home),
    }
    return Launch(program, [], env=env, files={"opencode.json": json.dumps(config, indent=2)})

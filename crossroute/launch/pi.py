"""pi (@mariozechner/pi-coding-agent): a custom provider in its agent dir's models.json,
speaking any of the four formats through pi's own API kinds."""

from __future__ import annotations

import json
from pathlib import Path

from crossroute.launch.base import Gateway, Launch

# Chat Completions first: pi's models.json docs lead with it for every self-hosted endpoint and proxy
# (Ollama, vLLM, LM Studio, OpenRouter), calling it the most compatible of its API kinds.
FORMATS = ("openai-chat", "openai-responses", "anthropic", "gemini")

PROVIDER = "crossroute"
KEY_VARIABLE = "CROSSROUTE_API_KEY"
# our format -> (pi's API kind, the path on the gateway its SDK appends its own routes to)
PI_APIS = {
    "openai-chat": ("openai-completions", "/v1"),
    "openai-responses": ("openai-responses", "/v1"),
    "anthropic": ("anthropic-messages", ""),  # the Anthropic SDK adds /v1/messages itself
    "gemini": ("google-generative-ai", "/v1beta"),  # pi tells the Google SDK the base URL has the version
}


def build(gateway: Gateway, model: str, home: Path, program: str, fmt: str) -> Launch:
    api, path = PI_APIS[fmt]
    models = {"providers": {PROVIDER: {
        "baseUrl": gateway.url + path,
        "api": api,
        # pi reads a literal key as a variable's name first, and as a shell command when it starts with "!":
        # naming a variable we set is the only form that always means the key itself
        "apiKey": KEY_VARIABLE,
        "models": [{"id": model, "name": model, "reasoning": True, "input": ["text", "image"],
                    "contextWindow": 200000, "maxTokens": 32000}],
    }}}
    settings = {
        "defaultProvider": PROVIDER,
        "defaultModel": model,
        "enableInstallTelemetry": False,
        "quietStartup": True,
        "collapseChangelog": True,
    }
    agent_dir = home / ".pi" / "agent"
    env = {
        KEY_VARIABLE: gateway.client_key,
        "HOME": str(home),
        # set even though HOME moves it: a PI_CODING_AGENT_DIR in the caller's environment would win
        "PI_CODING_AGENT_DIR": str(agent_dir),
        "PI_CODING_AGENT_SESSION_DIR": str(agent_dir / "sessions"),
        # no version check, package update check, install ping or ripgrep/fd download from GitHub
        "PI_OFFLINE": "1",
        "PI_SKIP_VERSION_CHECK": "1",
        "PI_TELEMETRY": "0",
    }
    files = {".pi/agent/models.json": json.dumps(models, indent=2),
             ".pi/agent/settings.json": json.dumps(settings, indent=2)}
    return Launch(program, [], env=env, files=files,
                  notes=[f"pi speaks {fmt} to the gateway (its {api!r} API); the model is {PROVIDER}/{model}."],
                  scoped=("PI_CODING_AGENT_DIR", "PI_CODING_AGENT_SESSION_DIR"))

"""Cline CLI: any of the four formats through one of its API-key providers, set in its
provider settings file; kept in-process (no hub daemon) by its sandbox mode."""

from __future__ import annotations

import json
from pathlib import Path

from crossroute.launch.base import Gateway, Launch, temp_home_env

# Chat Completions first: Cline's own provider and OpenRouter, the ones its users pick most, both speak it,
# and "openai-compatible" is the provider Cline documents for a custom endpoint.
FORMATS = ("openai-chat", "anthropic", "openai-responses", "gemini")

# format -> (Cline's provider id, the path after the gateway's address its base URL needs)
PROVIDERS = {
    "openai-chat": ("openai-compatible", "/v1"),
    "openai-responses": ("openai-native", "/v1"),
    "anthropic": ("anthropic", "/v1"),
    "gemini": ("gemini", ""),  # Cline appends /v1beta itself
}
DATA_DIR = ".cline/data"  # where its settings, sessions and caches live


def provider_settings(gateway: Gateway, model: str, fmt: str) -> dict[str, object]:
    provider, path = PROVIDERS[fmt]
    settings = {"provider": provider, "apiKey": gateway.client_key, "model": model, "baseUrl": gateway.url + path}
    # Cline drops an entry without updatedAt and falls back to its own (vendor-hosted) provider
    entry = {"settings": settings, "updatedAt": "2026-01-01T00:00:00.000Z", "tokenSource": "manual"}
    return {"version": 1, "lastUsedProvider": provider, "modes": {}, "providers": {provider: entry}}


def global_settings(fmt: str) -> dict[str, object]:
    # telemetryOptOut stops its OpenTelemetry export to otel.cline.bot
    settings: dict[str, object] = {"telemetryOptOut": True, "autoUpdateEnabled": False}
    if fmt == "gemini":
        # Cline hands its web_search tool to Gemini as the hosted googleSearch, and next to a hosted tool the
        # AI SDK drops every function tool unless the model's name reads as Gemini 3 ("gemini-3...")
        settings["tools"] = {"web_search": {"enabled": False}}
    return settings


def build(gateway: Gateway, model: str, home: Path, program: str, fmt: str) -> Launch:
    env = {
        **temp_home_env(home),
        # its only effect: feature flags from a no-op provider instead of PostHog at data.cline.bot
        "E2E_TEST": "true",
        "CLINE_NO_AUTO_UPDATE": "1",
    }
    files = {
        f"{DATA_DIR}/settings/providers.json": json.dumps(provider_settings(gateway, model, fmt), indent=2),
        f"{DATA_DIR}/settings/global-settings.json": json.dumps(global_settings(fmt), indent=2),
    }
    # --data-dir turns on its sandbox mode: the session runs in the CLI's own process instead of a
    # detached hub daemon that would outlive it (a flag, so --print leaves the caller's shell alone)
    args = ["--data-dir", str(home / DATA_DIR)]
    notes = ["runs in sandbox mode (--data-dir): no background hub daemon is started"]
    # E2E_TEST (its feature-flag switch) is too generic a name to leave exported in a shell
    return Launch(program, args, env=env, files=files, notes=notes, scoped=("E2E_TEST",))

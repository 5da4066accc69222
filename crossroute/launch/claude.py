"""Claude Code: Anthropic Messages, configured by environment variables."""

from __future__ import annotations

from pathlib import Path

from crossroute.launch.base import Gateway, Launch

FORMATS = ("anthropic",)  # the wire formats it can speak, the default first


def build(gateway: Gateway, model: str, home: Path, program: str, fmt: str) -> Launch:
    env = {
        "ANTHROPIC_BASE_URL": gateway.url,
        "ANTHROPIC_API_KEY": gateway.client_key,
        "ANTHROPIC_MODEL": model,
        # background work (titles, summaries) goes to the same model rather than a Haiku the gateway may not serve
        "ANTHROPIC_SMALL_FAST_MODEL": model,
        "ANTHROPIC_DEFAULT_HAIKU_MODEL": model,
        "ANTHROPIC_DEFAULT_SONNET_MODEL": model,
        "ANTHROPIC_DEFAULT_OPUS_MODEL": model,
        "CLAUDE_CONFIG_DIR": str(home / "claude"),
        # without it Claude Code sends the key to its vendor for feature flags even with another base URL
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_AUTOUPDATER": "1",
        "DISABLE_TELEMETRY": "1",
        "DISABLE_ERROR_REPORTING": "1",
    }
    return Launch(program, ["--model", model], env=env)

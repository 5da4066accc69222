"""Aider: every format through litellm, chosen by the model name's prefix and set on its command line.

Settings go on the command line because aider's precedence puts it above everything a project
may carry (.aider.conf.yml, and a .env that aider loads over the environment); base URLs go
through --set-env, which runs after that .env. Keys travel in AIDER_* variables, kept out of `ps`."""

from __future__ import annotations

import json
import os
from pathlib import Path

from crossroute.launch.base import Gateway, Launch

# OpenAI-compatible first: aider's documented way to use any other endpoint (`openai/<model>`
# with OPENAI_API_BASE), and what proxies in front of many providers offer.
FORMATS = ("openai-chat", "openai-responses", "anthropic", "gemini")

# litellm's provider prefix for each format, and the variables holding the base URL it reads
# (litellm prefers OPENAI_BASE_URL to OPENAI_API_BASE, so both are set).
MODEL_PREFIX = {"openai-chat": "openai/", "openai-responses": "openai/responses/", "anthropic": "anthropic/",
                "gemini": "gemini/"}
METADATA_FILE = ".aider.model.metadata.json"


def base_urls(gateway: Gateway, fmt: str) -> dict[str, str]:
    if fmt == "anthropic":
        return {"ANTHROPIC_API_BASE": gateway.url}  # litellm appends /v1/messages
    if fmt == "gemini":
        return {"GEMINI_API_BASE": gateway.url + "/v1beta"}  # litellm appends /models/<model>:<method>
    return {"OPENAI_API_BASE": gateway.url + "/v1", "OPENAI_BASE_URL": gateway.url + "/v1"}


def key_variables(gateway: Gateway, fmt: str) -> dict[str, str]:
    if fmt == "anthropic":
        return {"AIDER_ANTHROPIC_API_KEY": gateway.client_key}
    if fmt == "gemini":
        return {"AIDER_API_KEY": f"gemini={gateway.client_key}"}
    return {"AIDER_OPENAI_API_KEY": gateway.client_key}


def model_metadata(name: str, fmt: str) -> dict[str, dict[str, object]]:
    """What aider would otherwise look up in litellm's price list, fetched from the vendor's repository
    for an unknown model; the sizes set how much of the repository map and history aider sends."""
    provider = "openai" if fmt.startswith("openai") else fmt
    mode = "responses" if fmt == "openai-responses" else "chat"  # litellm's switch to the Responses API
    return {name: {"max_input_tokens": 200000, "max_output_tokens": 32000, "input_cost_per_token": 0.0,
                   "output_cost_per_token": 0.0, "litellm_provider": provider, "mode": mode}}


def user_git_config() -> dict[str, str]:
    """With HOME moved, git would miss the user's identity and aider would write a placeholder one
    ("Your Name") into the project's .git/config: git keeps reading the user's own global config."""
    if "GIT_CONFIG_GLOBAL" in os.environ:
        return {}
    config_home = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    for path in (Path.home() / ".gitconfig", config_home / "git" / "config"):
        if path.is_file():
            return {"GIT_CONFIG_GLOBAL": str(path)}
    return {}


def build(gateway: Gateway, model: str, home: Path, program: str, fmt: str) -> Launch:
    name = MODEL_PREFIX[fmt] + model
    args = ["--model", name, "--weak-model", name, "--editor-model", name,
            *(arg for k, v in base_urls(gateway, fmt).items() for arg in ("--set-env", f"{k}={v}")),
            "--model-metadata-file", str(home / METADATA_FILE),
            # nonessential traffic and the prompts that would open a browser under --yes-always
            "--no-analytics", "--no-check-update", "--no-show-release-notes", "--no-show-model-warnings",
            # history files in the temp home rather than the project's root
            "--input-history-file", str(home / ".aider.input.history"),
            "--chat-history-file", str(home / ".aider.chat.history.md"),
            "--no-gitignore"]  # else it offers to add .aider* to the project's .gitignore
    env = {
        "HOME": str(home),  # ~/.aider: analytics id, install marker, model-price cache, OAuth keys
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",  # litellm fetches its price list at import otherwise
        **key_variables(gateway, fmt),
        **user_git_config(),
    }
    files = {METADATA_FILE: json.dumps(model_metadata(name, fmt), indent=2)}
    notes = ["aider still reads the project's own .aider.conf.yml, .env and .aider.model.settings.yml "
             "(the command line above wins over them) and keeps its repo-map cache (.aider.tags.cache.v4) "
             "in the project"]
    # git keeps the user's own identity while HOME moves; exported, it would pin every later git to it
    return Launch(program, args, env=env, files=files, notes=notes, scoped=("GIT_CONFIG_GLOBAL",))

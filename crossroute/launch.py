"""`crossroute launch <client>`: start an agent CLI pointed at the gateway.

Each client gets a throwaway home / config dir (the user's own configuration
is never read or written), the gateway's address and key, the model the user
named, and its nonessential outbound traffic switched off (telemetry, update
checks, feature flags that would send the key to the client's vendor)."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

CLIENTS = ("codex", "claude", "gemini", "opencode", "qwen")
# Codex only gives its ordinary tool set and prompt to models in its catalog:
# the gateway's model is added to the catalog as a copy of this entry.
CODEX_TEMPLATE_MODEL = "gpt-5.5"
PLACEHOLDER_KEY = "crossroute-no-key"


@dataclass(slots=True)
class Gateway:
    url: str  # http://host:port
    key: str | None


@dataclass(slots=True)
class Launch:
    """Everything needed to start one client: the program, its arguments,
    environment additions and files to write (relative to the temp home)."""

    program: str
    args: list[str]
    env: dict[str, str] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _key(gateway: Gateway) -> str:
    return gateway.key or PLACEHOLDER_KEY


def codex(gateway: Gateway, model: str, home: Path, program: str) -> Launch:
    catalog = home / "codex" / "model-catalog.json"
    config = "\n".join([
        f"model = {json.dumps(model)}",
        'model_provider = "crossroute"',
        f"model_catalog_json = {json.dumps(str(catalog))}",
        "",
        "[model_providers.crossroute]",
        'name = "crossroute"',
        f"base_url = {json.dumps(gateway.url + '/v1')}",
        'env_key = "CROSSROUTE_API_KEY"',
        'wire_api = "responses"',
        "",
        "[features]",
        "plugins = false",
        "remote_plugin = false",
        "apps = false",
        "",
        "[analytics]",
        "enabled = false",
        "",
    ])
    return Launch(
        program, [],
        env={"CODEX_HOME": str(home / "codex"), "CROSSROUTE_API_KEY": _key(gateway)},
        files={"codex/config.toml": config, "codex/model-catalog.json": _codex_catalog(program, model, home)},
        notes=[f"Codex sees {model!r} as a copy of its {CODEX_TEMPLATE_MODEL} catalog entry (tools, prompt)."],
    )


def _codex_catalog(program: str, model: str, home: Path) -> str:
    """Codex's own catalog with the gateway model added as a copy of a known one."""
    scratch = home / "codex-catalog-probe"
    scratch.mkdir(parents=True, exist_ok=True)
    try:
        listed = subprocess.run([program, "debug", "models"], capture_output=True, text=True, timeout=60,
                                env={**os.environ, "CODEX_HOME": str(scratch)}, stdin=subprocess.DEVNULL)
        catalog = json.loads(listed.stdout)
        models = catalog["models"]
        template = next(m for m in models if m.get("slug") == CODEX_TEMPLATE_MODEL)
    except (OSError, subprocess.SubprocessError, ValueError, KeyError, StopIteration):
        return json.dumps({"models": []})
    if not any(m.get("slug") == model for m in models):
        models.append({**template, "slug": model, "display_name": model})
    return json.dumps(catalog)


def claude(gateway: Gateway, model: str, home: Path, program: str) -> Launch:
    env = {
        "ANTHROPIC_BASE_URL": gateway.url,
        "ANTHROPIC_API_KEY": _key(gateway),
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


def gemini(gateway: Gateway, model: str, home: Path, program: str) -> Launch:
    settings = {
        "security": {"auth": {"selectedType": "gemini-api-key"}},
        "privacy": {"usageStatisticsEnabled": False},
        "general": {"disableAutoUpdate": True, "disableUpdateNag": True},
        "telemetry": {"enabled": False},
    }
    env = {
        "HOME": str(home),
        "GEMINI_API_KEY": _key(gateway),
        "GOOGLE_GEMINI_BASE_URL": gateway.url,
        "GEMINI_CLI_TRUST_WORKSPACE": "true",
        "GEMINI_MODEL": model,
    }
    return Launch(program, ["-m", model], env=env, files={".gemini/settings.json": json.dumps(settings, indent=2)})


def opencode(gateway: Gateway, model: str, home: Path, program: str) -> Launch:
    config = {
        "$schema": "https://opencode.ai/config.json",
        "provider": {
            "crossroute": {
                "npm": "@ai-sdk/openai-compatible",
                "name": "crossroute",
                "options": {"baseURL": gateway.url + "/v1", "apiKey": _key(gateway)},
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
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_DATA_HOME": str(home / ".local/share"),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "XDG_STATE_HOME": str(home / ".local/state"),
    }
    return Launch(program, [], env=env, files={"opencode.json": json.dumps(config, indent=2)})


def qwen(gateway: Gateway, model: str, home: Path, program: str) -> Launch:
    settings = {
        "privacy": {"usageStatisticsEnabled": False},
        "memory": {"enableManagedAutoMemory": False},
        "general": {"disableAutoUpdate": True},
        "telemetry": {"enabled": False},
        "security": {"auth": {"selectedType": "openai"}},
    }
    env = {
        "HOME": str(home),
        "OPENAI_API_KEY": _key(gateway),
        "OPENAI_BASE_URL": gateway.url + "/v1",
        "OPENAI_MODEL": model,
    }
    return Launch(program, ["-m", model], env=env, files={".qwen/settings.json": json.dumps(settings, indent=2)})


BUILDERS: dict[str, Callable[[Gateway, str, Path, str], Launch]] = {
    "codex": codex, "claude": claude, "gemini": gemini, "opencode": opencode, "qwen": qwen,
}


def prepare(client: str, gateway: Gateway, model: str, home: Path, program: str | None = None) -> Launch:
    launch = BUILDERS[client](gateway, model, home, program or client)
    for relative, content in launch.files.items():
        path = home / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")
        path.chmod(0o600)
    return launch


def describe(client: str, launch: Launch, home: Path, extra_args: list[str]) -> str:
    """The --print form: environment and config for people who start the client themselves."""
    lines = [f"# {client} through crossroute"]
    lines += [f"export {k}={shlex.quote(v)}" for k, v in launch.env.items()]
    for relative, content in launch.files.items():
        if relative.endswith("model-catalog.json"):
            lines.append(f"# {home / relative}: Codex's model catalog plus the gateway model ({len(content)} bytes)")
            continue
        lines += [f"# {home / relative}:", *content.rstrip().splitlines()]
    lines += [f"# {note}" for note in launch.notes]
    lines.append(shlex.join([launch.program, *launch.args, *extra_args]))
    return "\n".join(lines)


def run(client: str, gateway: Gateway, model: str, extra_args: list[str], *, program: str | None = None,
        print_only: bool = False) -> int:
    if client not in BUILDERS:
        raise ValueError(f"unknown client {client!r}; choose one of {', '.join(CLIENTS)}")
    binary = program or shutil.which(client)
    if binary is None and not print_only:
        raise FileNotFoundError(f"{client} is not on PATH; install it or pass --bin")
    if print_only:
        home = Path(tempfile.mkdtemp(prefix=f"crossroute-{client}-"))
        launch = prepare(client, gateway, model, home, binary or client)
        print(describe(client, launch, home, extra_args))
        return 0
    with tempfile.TemporaryDirectory(prefix=f"crossroute-{client}-") as tmp:
        home = Path(tmp)
        assert binary is not None
        launch = prepare(client, gateway, model, home, binary)
        # PWD as well: OpenCode takes its project directory from it, and a caller may not have set it
        env = {**os.environ, "PWD": os.getcwd(), **launch.env}
        return subprocess.call([launch.program, *launch.args, *extra_args], env=env)

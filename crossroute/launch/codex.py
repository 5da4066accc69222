"""Codex CLI: OpenAI Responses only, configured by a config.toml in CODEX_HOME."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from crossroute.launch.base import Gateway, Launch

# Codex only gives its ordinary tool set and prompt to models in its catalog:
# the gateway's model is added to the catalog as a copy of this entry.
CODEX_TEMPLATE_MODEL = "gpt-5.5"
FORMATS = ("openai-responses",)  # the wire formats it can speak, the default first


def build(gateway: Gateway, model: str, home: Path, program: str, fmt: str) -> Launch:
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
        env={"CODEX_HOME": str(home / "codex"), "CROSSROUTE_API_KEY": gateway.client_key},
        files={"codex/config.toml": config, "codex/model-catalog.json": _codex_catalog(program, model, home)},
        summarised=("codex/model-catalog.json",),
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

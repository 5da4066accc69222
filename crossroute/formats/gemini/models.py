"""GET /v1beta/models as Gemini lists models."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def render_models(models: Sequence[tuple[str, str]], created: int) -> dict[str, Any]:
    return {"models": [render_model(name, owner, created) for name, owner in models]}


def render_model(name: str, owner: str, created: int) -> dict[str, Any]:
    return {"name": f"models/{name}", "displayName": name, "version": "crossroute",
            "supportedGenerationMethods": ["generateContent", "streamGenerateContent", "countTokens"]}

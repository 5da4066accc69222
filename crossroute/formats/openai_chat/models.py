"""GET /v1/models as the OpenAI APIs list models (Chat and Responses clients alike)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def render_models(models: Sequence[tuple[str, str]], created: int) -> dict[str, Any]:
    return {"object": "list", "data": [render_model(name, owner, created) for name, owner in models]}


def render_model(name: str, owner: str, created: int) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": created, "owned_by": owner}

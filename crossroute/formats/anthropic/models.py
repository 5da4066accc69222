"""GET /v1/models as Anthropic lists models (asked with an `anthropic-version` header)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def render_models(models: Sequence[tuple[str, str]], created: int) -> dict[str, Any]:
    data = [render_model(name, owner, created) for name, owner in models]
    return {"data": data, "has_more": False,
            "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None}


def render_model(name: str, owner: str, created: int) -> dict[str, Any]:
    return {"id": name, "type": "model", "display_name": name, "created_at": "2025-01-01T00:00:00Z"}

"""OpenAI Chat Completions and every host that speaks it (presets in presets.py)."""

from __future__ import annotations

from typing import Any, ClassVar

from crossroute import ir
from crossroute.formats import OPENAI_CHAT
from crossroute.providers.base import Provider


class OpenAICompatProvider(Provider):
    kind = "openai"
    format = OPENAI_CHAT
    forwarded_headers: ClassVar[tuple[str, ...]] = ("openai-organization", "openai-project")

    def url(self, model: str, stream: bool) -> str:
        return f"{self.base_url}/chat/completions"

    def adapt_body(self, body: dict[str, Any], req: ir.Request) -> dict[str, Any]:
        # Most OpenAI-compatible hosts know only the older `max_tokens`; OpenAI itself wants the newer name.
        if "max_completion_tokens" in body and "api.openai.com" not in self.base_url:
            body["max_tokens"] = body.pop("max_completion_tokens")
        return body

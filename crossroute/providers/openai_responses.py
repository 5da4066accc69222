"""OpenAI Responses API upstreams."""

from __future__ import annotations

from typing import ClassVar

from crossroute.formats import OPENAI_RESPONSES
from crossroute.providers.base import Provider


class OpenAIResponsesProvider(Provider):
    kind: ClassVar[str] = OPENAI_RESPONSES.name  # named after the format it speaks
    format = OPENAI_RESPONSES
    forwarded_headers: ClassVar[tuple[str, ...]] = ("openai-organization", "openai-project", "openai-beta")

    def url(self, model: str, stream: bool) -> str:
        return f"{self.base_url}/responses"

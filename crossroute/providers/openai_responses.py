"""OpenAI Responses API upstreams."""

from __future__ import annotations

from crossroute.formats import OPENAI_RESPONSES
from crossroute.providers.base import Provider


class OpenAIResponsesProvider(Provider):
    kind = OPENAI_RESPONSES.name  # named after the format it speaks
    format = OPENAI_RESPONSES
    forwarded_headers = ("openai-organization", "openai-project", "openai-beta")

    def url(self, model: str, stream: bool) -> str:
        return f"{self.base_url}/responses"

"""OpenAI Responses API upstreams."""

from __future__ import annotations

from crossroute.providers.base import Provider


class OpenAIResponsesProvider(Provider):
    kind = "openai-responses"
    format = "openai-responses"
    forwarded_headers = ("openai-organization", "openai-project", "openai-beta")

    def url(self, model: str, stream: bool) -> str:
        return f"{self.base_url}/responses"

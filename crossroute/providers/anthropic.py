"""Anthropic Messages API upstreams."""

from __future__ import annotations

from typing import Any

from crossroute.formats import ANTHROPIC
from crossroute.providers.base import Provider

ANTHROPIC_VERSION = "2023-06-01"


class AnthropicProvider(Provider):
    kind = ANTHROPIC.name  # named after the format it speaks
    format = ANTHROPIC
    forwarded_headers = ("anthropic-beta", "anthropic-version")

    def _api_root(self) -> str:
        return self.base_url if self.base_url.endswith("/v1") else f"{self.base_url}/v1"

    def url(self, model: str, stream: bool) -> str:
        return f"{self._api_root()}/messages"

    def auth_headers(self, key: str) -> dict[str, str]:
        headers = {"anthropic-version": ANTHROPIC_VERSION}
        if key:
            headers["x-api-key"] = key
        return headers

    def count_tokens_url(self, model: str) -> str | None:
        return f"{self._api_root()}/messages/count_tokens"

    def count_tokens_body(self, body: dict[str, Any], model: str) -> dict[str, Any]:
        return {k: v for k, v in body.items() if k not in ("max_tokens", "stream", "stop_sequences", "temperature",
                                                            "top_p", "top_k", "metadata")}

    def read_token_count(self, answer: Any) -> int | None:
        count = answer.get("input_tokens") if isinstance(answer, dict) else None
        return count if isinstance(count, int) else None

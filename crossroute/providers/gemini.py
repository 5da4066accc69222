"""Gemini Developer API upstreams (API key)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any
from urllib.parse import quote

from crossroute.formats import GEMINI
from crossroute.providers.base import Provider


@lru_cache(maxsize=1024)
def model_id(model: str) -> str:
    """The id in `models/{id}:action`: one path segment, everything but the
    unreserved characters escaped (the API has no slash inside an id)."""
    return quote(model.removeprefix("models/"), safe="")


class GeminiProvider(Provider):
    kind = GEMINI.name  # named after the format it speaks
    format = GEMINI

    def _api_root(self) -> str:
        if self.base_url.endswith(("/v1beta", "/v1")):
            return self.base_url
        return f"{self.base_url}/v1beta"

    def url(self, model: str, stream: bool) -> str:
        action = "streamGenerateContent?alt=sse" if stream else "generateContent"
        return f"{self._api_root()}/models/{model_id(model)}:{action}"

    def auth_headers(self, key: str) -> dict[str, str]:
        return {"x-goog-api-key": key} if key else {}

    def count_tokens_url(self, model: str) -> str | None:
        return f"{self._api_root()}/models/{model_id(model)}:countTokens"

    def count_tokens_body(self, body: dict[str, Any], model: str) -> dict[str, Any]:
        request = {k: v for k, v in body.items() if k in ("contents", "systemInstruction", "tools", "toolConfig")}
        return {"generateContentRequest": {"model": f"models/{model.removeprefix('models/')}", **request}}

    def read_token_count(self, answer: Any) -> int | None:
        count = answer.get("totalTokens") if isinstance(answer, dict) else None
        return count if isinstance(count, int) else None

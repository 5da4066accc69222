"""One module per upstream kind; KINDS is the registry (its kinds are those of crossroute/kinds.py)."""

from __future__ import annotations

from crossroute.providers.anthropic import AnthropicProvider
from crossroute.providers.base import Provider, UpstreamRequest
from crossroute.providers.codex import CodexProvider
from crossroute.providers.gemini import GeminiProvider
from crossroute.providers.kimi import KimiProvider
from crossroute.providers.openai_compat import OpenAICompatProvider
from crossroute.providers.openai_responses import OpenAIResponsesProvider

KINDS: dict[str, type[Provider]] = {
    cls.kind: cls for cls in (OpenAICompatProvider, OpenAIResponsesProvider, AnthropicProvider, GeminiProvider,
                               KimiProvider, CodexProvider)
}

__all__ = ["KINDS", "Provider", "UpstreamRequest"]

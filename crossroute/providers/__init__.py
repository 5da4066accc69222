"""One module per upstream kind; KINDS is the registry (its kinds are those of crossroute/kinds.py).
A preset may name an adaptation (a subclass of its kind's class that a host needs): ADAPTATIONS."""

from __future__ import annotations

from crossroute.config import ProviderConfig
from crossroute.providers.anthropic import AnthropicProvider
from crossroute.providers.base import Provider, UpstreamRequest
from crossroute.providers.codebuddy import CodeBuddyProvider
from crossroute.providers.codex import CodexProvider
from crossroute.providers.gemini import GeminiProvider
from crossroute.providers.kimi import KimiProvider
from crossroute.providers.openai_compat import OpenAICompatProvider
from crossroute.providers.openai_responses import OpenAIResponsesProvider
from crossroute.providers.qoder import QoderProvider
from crossroute.providers.qwen import DashScopeProvider, QwenProvider

KINDS: dict[str, type[Provider]] = {
    cls.kind: cls for cls in (OpenAICompatProvider, OpenAIResponsesProvider, AnthropicProvider, GeminiProvider,
                               KimiProvider, QwenProvider, CodexProvider, QoderProvider, CodeBuddyProvider)
}
ADAPTATIONS: dict[str, type[Provider]] = {"dashscope": DashScopeProvider}


def provider_class(config: ProviderConfig) -> type[Provider]:
    """The class for a configured provider: its preset's adaptation, else its kind's."""
    preset = config.preset_entry
    if preset is not None and preset.adaptation is not None:
        return ADAPTATIONS[preset.adaptation]
    return KINDS[config.kind]


__all__ = ["ADAPTATIONS", "KINDS", "Provider", "UpstreamRequest", "provider_class"]

"""One module per upstream kind; KINDS is the registry (its kinds are those of crossroute/kinds.py).
A preset may name an adaptation (a subclass of its kind's class that a host needs): ADAPTATIONS.

The login kinds' classes are imported when a config first names them: they bring the
OAuth stack (httpx, authlib, PyJWT: about 13 MB per worker) that a gateway of API
keys never uses."""

from __future__ import annotations

import importlib
from collections.abc import Iterator, MutableMapping

from crossroute.config import ProviderConfig
from crossroute.providers.anthropic import AnthropicProvider
from crossroute.providers.base import Provider, UpstreamRequest
from crossroute.providers.dashscope import DashScopeProvider
from crossroute.providers.gemini import GeminiProvider
from crossroute.providers.openai_compat import OpenAICompatProvider
from crossroute.providers.openai_responses import OpenAIResponsesProvider

# login kind -> the module of its provider class and the class's name
_LOGIN_CLASSES: dict[str, tuple[str, str]] = {
    "kimi": ("crossroute.providers.kimi", "KimiProvider"),
    "qwen": ("crossroute.providers.qwen", "QwenProvider"),
    "codex": ("crossroute.providers.codex", "CodexProvider"),
    "qoder": ("crossroute.providers.qoder", "QoderProvider"),
    "codebuddy": ("crossroute.providers.codebuddy", "CodeBuddyProvider"),
}


class _Kinds(MutableMapping[str, type[Provider]]):
    """kind -> provider class, a login kind's class imported on first use (tests add kinds of their own)."""

    def __init__(self, *classes: type[Provider]) -> None:
        self._loaded: dict[str, type[Provider]] = {cls.kind: cls for cls in classes}

    def __getitem__(self, kind: str) -> type[Provider]:
        cls = self._loaded.get(kind)
        if cls is None:
            module, name = _LOGIN_CLASSES[kind]  # KeyError for an unknown kind, as a dict would
            cls = self._loaded[kind] = getattr(importlib.import_module(module), name)
        return cls

    def __setitem__(self, kind: str, cls: type[Provider]) -> None:
        self._loaded[kind] = cls

    def __delitem__(self, kind: str) -> None:
        del self._loaded[kind]

    def __iter__(self) -> Iterator[str]:
        return iter({**self._loaded, **dict.fromkeys(_LOGIN_CLASSES)})

    def __len__(self) -> int:
        return len(self._loaded.keys() | _LOGIN_CLASSES.keys())


KINDS: MutableMapping[str, type[Provider]] = _Kinds(OpenAICompatProvider, OpenAIResponsesProvider, AnthropicProvider,
                                             GeminiProvider)
ADAPTATIONS: dict[str, type[Provider]] = {"dashscope": DashScopeProvider}


def provider_class(config: ProviderConfig) -> type[Provider]:
    """The class for a configured provider: its preset's adaptation, else its kind's."""
    preset = config.preset_entry
    if preset is not None and preset.adaptation is not None:
        return ADAPTATIONS[preset.adaptation]
    return KINDS[config.kind]


__all__ = ["ADAPTATIONS", "KINDS", "Provider", "UpstreamRequest", "provider_class"]

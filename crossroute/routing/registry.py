"""Model names, aliases and `provider/model` addresses resolved to routes."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote

from crossroute import ir
from crossroute.config import ModelEntry
from crossroute.providers import Provider

MAX_MODEL_NAME = 256
_URL_SPECIALS = ("?", "#", "\\")
_DECODE_ROUNDS = 3  # a name is checked as sent and as an upstream that decodes it (again) would see it


@dataclass(frozen=True, slots=True)
class Route:
    provider: Provider
    model: str  # the upstream model name


@dataclass(frozen=True, slots=True)
class Listed:
    name: str
    provider: Provider
    alias: str | None


class ModelRegistry:
    def __init__(self, providers: list[Provider]) -> None:
        self.providers = {p.name: p for p in providers}
        self._live: dict[str, list[ModelEntry]] = {}  # a login provider's live list, in place of its config's
        self._routes: dict[str, list[Route]] = {}
        self.listed: list[Listed] = []
        self._build()

    def set_models(self, provider: str, names: list[str]) -> None:
        """Route and list `names` for `provider` from now on (its live model list)."""
        self._live[provider] = [ModelEntry(name=name) for name in names]
        self._build()

    def _build(self) -> None:
        routes: dict[str, list[Route]] = {}
        listed: list[Listed] = []
        for provider in self.providers.values():
            for entry in self._live.get(provider.name, provider.config.models):
                if provider.config.hides(entry):
                    continue
                route = Route(provider, entry.upstream or entry.name)
                for name in (entry.name, entry.alias, f"{provider.name}/{entry.name}"):
                    if name:
                        routes.setdefault(name, []).append(route)
                listed.append(Listed(entry.name, provider, entry.alias))
        self._routes, self.listed = routes, listed

    def resolve(self, name: str) -> list[Route]:
        """Every route for a name; `provider/anything` reaches that provider even
        for a model the config does not list (upstreams add models all the time).
        A configured name is the operator's; any other is client text bound for an
        upstream URL or body, so it is checked first."""
        routes = self._routes.get(name)
        if routes:
            return routes
        check_model_name(name)
        provider_name, sep, model = name.partition("/")
        if sep and model and provider_name in self.providers and not self.providers[provider_name].excludes(model):
            return [Route(self.providers[provider_name], model)]
        return []


def check_model_name(name: str) -> None:
    """A 400 for a name that could steer an upstream URL: dot or empty
    `/`-segments, `?`, `#`, a backslash, whitespace or control characters,
    also once percent-decoded. Colons (`qwen3:30b`), `@` and inner slashes are fine."""
    problem = _model_name_problem(name)
    if problem:
        raise ir.GatewayError(400, f"invalid model name {name[:MAX_MODEL_NAME]!r}: {problem}", param="model")


def _model_name_problem(name: str) -> str | None:
    if len(name) > MAX_MODEL_NAME:
        return f"longer than {MAX_MODEL_NAME} characters"
    for _ in range(_DECODE_ROUNDS):
        problem = _literal_problem(name)
        if problem:
            return problem
        decoded = unquote(name) if "%" in name else name
        if decoded == name:
            return None
        name = decoded
    return "percent-encoded more than twice"


def _literal_problem(name: str) -> str | None:
    if not name.isprintable() or " " in name:
        return "whitespace or control characters"
    if any(special in name for special in _URL_SPECIALS):
        return "'?', '#' and '\\' are not allowed"
    if any(segment in ("", ".", "..") for segment in name.split("/")):
        return "empty, '.' or '..' path segments are not allowed"
    return None

"""Model names, aliases and `provider/model` addresses resolved to routes."""

from __future__ import annotations

from dataclasses import dataclass

from crossroute.providers import Provider


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
        self._routes: dict[str, list[Route]] = {}
        self.listed: list[Listed] = []
        for provider in providers:
            for entry in provider.config.models:
                route = Route(provider, entry.upstream or entry.name)
                for name in (entry.name, entry.alias, f"{provider.name}/{entry.name}"):
                    if name:
                        self._routes.setdefault(name, []).append(route)
                self.listed.append(Listed(entry.name, provider, entry.alias))

    def resolve(self, name: str) -> list[Route]:
        """Every route for a name; `provider/anything` reaches that provider even
        for a model the config does not list (upstreams add models all the time)."""
        routes = self._routes.get(name)
        if routes:
            return routes
        provider_name, sep, model = name.partition("/")
        if sep and model and provider_name in self.providers:
            return [Route(self.providers[provider_name], model)]
        return []

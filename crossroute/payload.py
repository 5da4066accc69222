"""Payload rules (config `payload:`): edits of the body sent upstream, in the
provider's own format, for the requests a rule matches.

Which rules apply depends only on the provider, the upstream model and the
name the client asked for, so it is worked out once per such triple and
cached: a request that no rule matches pays one dict lookup. The edits copy
what they change (the top level and the objects along a dotted path), so the
client's parsed body stays as it was for the next candidate."""

from __future__ import annotations

from collections.abc import Sequence
from fnmatch import fnmatchcase
from typing import Any

from crossroute.config import PayloadRule

_CACHED = 4096  # (provider, model, asked-for name) triples remembered; clients choose `provider/anything`
_NONE: tuple[PayloadRule, ...] = ()


class PayloadRules:
    def __init__(self, rules: Sequence[PayloadRule]) -> None:
        self.rules = tuple(rules)
        self._matching: dict[tuple[str, str, str], tuple[PayloadRule, ...]] = {}

    def matching(self, provider: str, model: str, asked: str) -> tuple[PayloadRule, ...]:
        """The rules, in order, whose `match` takes this provider and either the
        upstream model name or the name the client asked for."""
        if not self.rules:
            return _NONE
        key = (provider, model, asked)
        found = self._matching.get(key)
        if found is None:
            found = tuple(rule for rule in self.rules if _matches(rule, provider, model, asked))
            if len(self._matching) >= _CACHED:
                self._matching.clear()
            self._matching[key] = found
        return found


def _matches(rule: PayloadRule, provider: str, model: str, asked: str) -> bool:
    match = rule.match
    if match.providers and provider not in match.providers:
        return False
    return not match.models or any(fnmatchcase(model, glob) or fnmatchcase(asked, glob) for glob in match.models)


def apply_payload_rules(body: dict[str, Any], rules: tuple[PayloadRule, ...]) -> dict[str, Any]:
    """The body with each rule's defaults, overrides, caps and removals, in
    that order, rule after rule; `body` itself is left unchanged."""
    body = dict(body)
    for rule in rules:
        for path, value in rule.defaults.items():
            if get_path(body, path) is _MISSING:
                set_path(body, path, value)
        for path, value in rule.overrides.items():
            set_path(body, path, value)
        for path, cap in rule.caps.items():
            cap_path(body, path, cap)
        for path in rule.remove:
            remove_path(body, path)
    return body


class _Missing:
    def __repr__(self) -> str:
        return "<missing>"


_MISSING: Any = _Missing()


def get_path(body: dict[str, Any], path: str) -> Any:
    """The value at a dotted path, or _MISSING."""
    node: Any = body
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return _MISSING
        node = node[part]
    return node


def set_path(body: dict[str, Any], path: str, value: Any) -> None:
    """Sets the value, creating the objects on the way; a path through a
    value that is not an object is left alone (the upstream would refuse it)."""
    parent = _owned_parent(body, path, create=True)
    if parent is not None:
        parent[path.rpartition(".")[2]] = value


def cap_path(body: dict[str, Any], path: str, cap: float) -> None:
    """Lowers a number above the cap to it; anything else is left as it is."""
    value = get_path(body, path)
    if isinstance(value, int | float) and not isinstance(value, bool) and value > cap:
        set_path(body, path, cap)


def remove_path(body: dict[str, Any], path: str) -> None:
    if get_path(body, path) is _MISSING:
        return
    parent = _owned_parent(body, path, create=False)
    if parent is not None:
        del parent[path.rpartition(".")[2]]


def _owned_parent(body: dict[str, Any], path: str, create: bool) -> dict[str, Any] | None:
    """The object that holds the path's last part, with every object from the
    top down to it copied once into `body` (so the original stays untouched)."""
    parts = path.split(".")
    node = body
    for part in parts[:-1]:
        child = node.get(part, _MISSING)
        if child is _MISSING and create:
            child = {}
        elif not isinstance(child, dict):
            return None
        else:
            child = dict(child)
        node[part] = child
        node = child
    return node

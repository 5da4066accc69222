"""JSON Schema <-> the OpenAPI subset Gemini accepts in `parameters` / `responseSchema`.

`clean_for_gemini` turns whatever JSON Schema an agent sends (2020-12 keywords,
$ref/$defs, type arrays, oneOf/allOf, const, huge integer bounds) into the
subset Gemini validates: one upper-case `type`, `nullable`, string enums,
anyOf, and a short list of per-type constraints. It keeps an allow-list of
keys, so nothing Gemini rejects can leak through. What cannot be expressed
(a $ref cycle, a dangling $ref, an object without properties, which Gemini
rejects as OBJECT) becomes an untyped schema that accepts any value.

`json_schema_from_gemini` goes the other way for schemas a Gemini client
sends: upper-case type names and `nullable` become plain JSON Schema, which
every other provider accepts.

Both are pure and never raise, whatever they are given.
"""

from __future__ import annotations

import math
from typing import Any

_MAX_DEPTH = 48
_MAX_NODES = 20_000  # diamond-shaped $ref graphs could otherwise expand exponentially
# JS Number.MAX_SAFE_INTEGER: zod and friends write it as a "no bound" bound,
# and Gemini rejects some of those; a bound this large constrains nothing.
_SAFE_BOUND = 2**53 - 1

_TYPE_NAMES = {"string", "number", "integer", "boolean", "array", "object", "null"}
_FORMATS_BY_TYPE = {
    "STRING": {"enum", "date-time"},
    "INTEGER": {"int32", "int64"},
    "NUMBER": {"float", "double"},
}


# ------------------------------------------------------------ JSON Schema -> Gemini


def clean_for_gemini(schema: dict[str, Any] | None) -> dict[str, Any] | None:
    """The Gemini OpenAPI-subset version of a JSON Schema (None stays None)."""
    if not isinstance(schema, dict):
        return None
    return _Cleaner(schema).clean(schema, depth=0, refs=frozenset())


class _Cleaner:
    def __init__(self, root: dict[str, Any]) -> None:
        self.root = root
        self.budget = _MAX_NODES

    # -------------------------------------------------------------- entry

    def clean(self, node: Any, *, depth: int, refs: frozenset[str]) -> dict[str, Any]:
        self.budget -= 1
        if not isinstance(node, dict) or depth > _MAX_DEPTH or self.budget < 0:
            return {}
        node, refs, resolved = self._resolve_ref(node, refs)
        if not resolved:
            return _with_description({}, node)
        if isinstance(node.get("allOf"), list):
            node = self._merge_all_of(node, depth=depth, refs=refs)
        types, nullable = _type_names(node.get("type"))
        if None in _enum_values_raw(node):
            nullable = True
        if len(types) > 1:
            return self._split_types(node, types, nullable, depth=depth, refs=refs)
        gemini_type = types[0] if types else _infer_type(node)
        enum = _enum_strings(node)
        if enum:
            gemini_type = "STRING"  # Gemini: "enum: only allowed for STRING type"
        out: dict[str, Any] = {}
        _copy_annotations(node, out)
        branches = self._any_of(node, depth=depth, refs=refs)
        if branches is not None:
            nullable = self._apply_any_of(out, branches, gemini_type) or nullable
        if enum:
            out["enum"] = enum
            if not isinstance(out.get("default"), str):
                out.pop("default", None)
        if gemini_type:
            out["type"] = gemini_type
            self._type_keywords(node, gemini_type, out, depth=depth, refs=refs)
        if out.get("type") == "OBJECT" and not out.get("properties"):
            # Gemini: "properties: should be non-empty for OBJECT type". Left
            # untyped, the value may be anything, which is what such an object meant.
            for key in (
                "type",
                "properties",
                "required",
                "propertyOrdering",
                "minProperties",
                "maxProperties",
            ):
                out.pop(key, None)
        if nullable:
            out["nullable"] = True
        return out

    # -------------------------------------------------------------- $ref / allOf

    def _resolve_ref(
        self, node: dict[str, Any], refs: frozenset[str]
    ) -> tuple[dict[str, Any], frozenset[str], bool]:
        """Follow $ref chains; a cycle or a dangling ref is reported as unresolved."""
        while isinstance(node.get("$ref"), str):
            ref = node["$ref"]
            target = self._lookup(ref)
            if ref in refs or target is None:
                return node, refs, False
            refs = refs | {ref}
            siblings = {k: v for k, v in node.items() if k != "$ref"}
            node = {**target, **siblings}
        return node, refs, True

    def _lookup(self, ref: str) -> dict[str, Any] | None:
        if ref == "#":
            return self.root
        if not ref.startswith("#/"):
            return None
        current: Any = self.root
        for raw in ref[2:].split("/"):
            key = raw.replace("~1", "/").replace("~0", "~")
            if isinstance(current, dict) and key in current:
                current = current[key]
            elif isinstance(current, list) and key.isdigit() and int(key) < len(current):
                current = current[int(key)]
            else:
                return None
        return current if isinstance(current, dict) else None

    def _merge_all_of(self, node: dict[str, Any], *, depth: int, refs: frozenset[str]) -> dict[str, Any]:
        merged = {k: v for k, v in node.items() if k != "allOf"}
        for branch in node["allOf"]:
            if not isinstance(branch, dict) or depth > _MAX_DEPTH:
                continue
            branch, branch_refs, resolved = self._resolve_ref(branch, refs)
            if not resolved:
                continue
            if isinstance(branch.get("allOf"), list):
                branch = self._merge_all_of(branch, depth=depth + 1, refs=branch_refs)
            _merge_into(merged, branch)
        return merged

    # -------------------------------------------------------------- type arrays / anyOf

    def _split_types(
        self, node: dict[str, Any], types: list[str], nullable: bool, *, depth: int, refs: frozenset[str]
    ) -> dict[str, Any]:
        """["string","number"] -> anyOf of one branch per type."""
        rest = {k: v for k, v in node.items() if k not in ("type", "description", "title")}
        out: dict[str, Any] = {}
        _copy_annotations(node, out)
        out["anyOf"] = [self.clean({**rest, "type": t}, depth=depth + 1, refs=refs) for t in types]
        if nullable:
            out["nullable"] = True
        return out

    def _any_of(
        self, node: dict[str, Any], *, depth: int, refs: frozenset[str]
    ) -> list[dict[str, Any]] | None:
        raw = node.get("anyOf")
        if not isinstance(raw, list):
            raw = node.get("oneOf")
        if not isinstance(raw, list):
            return None
        return [self.clean(branch, depth=depth + 1, refs=refs) for branch in raw if isinstance(branch, dict)]

    def _apply_any_of(
        self, out: dict[str, Any], branches: list[dict[str, Any]], own_type: str | None
    ) -> bool:
        """Put cleaned anyOf branches into `out` (a single branch is folded in
        when its type agrees); True when one of them was just null."""
        nullable = False
        kept: list[dict[str, Any]] = []
        for branch in branches:
            if branch.get("type") == "NULL" and len(branch) == 1:
                nullable = True
            else:
                kept.append(branch)
        if kept and all(_is_plain_enum(b) for b in kept):
            kept = [_union_enums(kept)]
        if len(kept) == 1 and (own_type is None or kept[0].get("type") in (None, own_type)):
            for key, value in kept[0].items():
                out.setdefault(key, value)
        elif kept:
            out["anyOf"] = kept
        return nullable

    # -------------------------------------------------------------- per-type keywords

    def _type_keywords(
        self, node: dict[str, Any], gemini_type: str, out: dict[str, Any], *, depth: int, refs: frozenset[str]
    ) -> None:
        fmt = node.get("format")
        if isinstance(fmt, str) and fmt in _FORMATS_BY_TYPE.get(gemini_type, ()):
            out["format"] = fmt
        if gemini_type == "STRING":
            _copy_counts(node, out, ("minLength", "maxLength"))
            if isinstance(node.get("pattern"), str):
                out["pattern"] = node["pattern"]
        elif gemini_type in ("NUMBER", "INTEGER"):
            _copy_bounds(node, out, integer=gemini_type == "INTEGER")
        elif gemini_type == "ARRAY":
            out["items"] = self._items(node, depth=depth, refs=refs)
            _copy_counts(node, out, ("minItems", "maxItems"))
        elif gemini_type == "OBJECT":
            self._object_keywords(node, out, depth=depth, refs=refs)

    def _items(self, node: dict[str, Any], *, depth: int, refs: frozenset[str]) -> dict[str, Any]:
        items = node.get("items")
        if isinstance(items, list):  # draft-4 tuple form
            items = next((i for i in items if isinstance(i, dict)), None)
        if not isinstance(items, dict):
            prefix = node.get("prefixItems")
            items = prefix[0] if isinstance(prefix, list) and prefix and isinstance(prefix[0], dict) else None
        if not isinstance(items, dict) or not items:
            # Gemini rejects an ARRAY without items ("items: missing field").
            return {"type": "STRING"}
        return self.clean(items, depth=depth + 1, refs=refs)

    def _object_keywords(
        self, node: dict[str, Any], out: dict[str, Any], *, depth: int, refs: frozenset[str]
    ) -> None:
        raw = node.get("properties")
        if isinstance(raw, dict) and raw:
            properties = {
                str(name): self.clean(sub, depth=depth + 1, refs=refs)
                for name, sub in raw.items()
                if isinstance(sub, dict | bool)
            }
            if properties:
                out["properties"] = properties
        names = out.get("properties", {})
        required = _unique_strings(node.get("required"), allowed=names)
        if required:
            out["required"] = required
        ordering = _unique_strings(node.get("propertyOrdering"), allowed=names)
        if ordering:
            out["propertyOrdering"] = ordering
        _copy_counts(node, out, ("minProperties", "maxProperties"))


# ------------------------------------------------------------ small pure helpers


def _type_names(raw: Any) -> tuple[list[str], bool]:
    """(non-null Gemini type names, nullable) from a type string or array, any case."""
    values = raw if isinstance(raw, list) else [raw]
    names: list[str] = []
    nullable = False
    for value in values:
        if not isinstance(value, str) or value.lower() not in _TYPE_NAMES:
            continue
        name = value.upper()
        if name == "NULL":
            nullable = True
        elif name not in names:
            names.append(name)
    if nullable and not names:
        return ["NULL"], False
    return names, nullable


def _infer_type(node: dict[str, Any]) -> str | None:
    if isinstance(node.get("properties"), dict):
        return "OBJECT"
    if "items" in node or "prefixItems" in node:
        return "ARRAY"
    if _enum_values_raw(node):
        return "STRING"
    return None


def _enum_values_raw(node: dict[str, Any]) -> list[Any]:
    if "const" in node:
        return [node["const"]]
    enum = node.get("enum")
    return enum if isinstance(enum, list) else []


def _enum_strings(node: dict[str, Any]) -> list[str]:
    out: list[str] = []
    for value in _enum_values_raw(node):
        if value is None:
            continue
        text = _as_enum_string(value)
        if text is not None and text not in out:
            out.append(text)
    return out


def _as_enum_string(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else None
    return None


def _is_plain_enum(branch: dict[str, Any]) -> bool:
    return (
        branch.get("type") == "STRING" and "enum" in branch and set(branch) <= {"type", "enum", "description"}
    )


def _union_enums(branches: list[dict[str, Any]]) -> dict[str, Any]:
    values: list[str] = []
    for branch in branches:
        values.extend(v for v in branch["enum"] if v not in values)
    return {"type": "STRING", "enum": values}


def _copy_annotations(node: dict[str, Any], out: dict[str, Any]) -> None:
    for key in ("title", "description"):
        if isinstance(node.get(key), str):
            out[key] = node[key]
    if node.get("nullable") is True:
        out["nullable"] = True
    for key in ("default", "example"):
        if key in node and node[key] is not None and _is_plain_json(node[key]):
            out[key] = node[key]


def _with_description(out: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    if isinstance(node.get("description"), str):
        out["description"] = node["description"]
    return out


def _copy_counts(node: dict[str, Any], out: dict[str, Any], keys: tuple[str, ...]) -> None:
    for key in keys:
        value = node.get(key)
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= _SAFE_BOUND - 1:
            out[key] = value


def _copy_bounds(node: dict[str, Any], out: dict[str, Any], *, integer: bool) -> None:
    low = _finite_bound(node.get("minimum"))
    high = _finite_bound(node.get("maximum"))
    exclusive_low = _finite_bound(node.get("exclusiveMinimum"))
    exclusive_high = _finite_bound(node.get("exclusiveMaximum"))
    if exclusive_low is not None:
        if integer and float(exclusive_low).is_integer():
            exclusive_low = int(exclusive_low) + 1
        low = exclusive_low if low is None else max(low, exclusive_low)
    if exclusive_high is not None:
        if integer and float(exclusive_high).is_integer():
            exclusive_high = int(exclusive_high) - 1
        high = exclusive_high if high is None else min(high, exclusive_high)
    if low is not None:
        out["minimum"] = low
    if high is not None:
        out["maximum"] = high


def _finite_bound(value: Any) -> int | float | None:
    """A usable numeric bound: finite, not a bool, inside the JS safe-integer range."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if abs(value) >= _SAFE_BOUND:
        return None
    return value


def _unique_strings(raw: Any, *, allowed: dict[str, Any]) -> list[str]:
    if not isinstance(raw, list):
        return []
    out: list[str] = []
    for name in raw:
        if isinstance(name, str) and name in allowed and name not in out:
            out.append(name)
    return out


def _merge_into(merged: dict[str, Any], branch: dict[str, Any]) -> None:
    """allOf merge: properties and required are unioned, everything else first-wins."""
    for key, value in branch.items():
        if key == "properties" and isinstance(value, dict):
            current = merged.get("properties")
            merged["properties"] = {**value, **current} if isinstance(current, dict) else dict(value)
        elif key == "required" and isinstance(value, list):
            current = merged.get("required")
            base = list(current) if isinstance(current, list) else []
            merged["required"] = base + [v for v in value if v not in base]
        else:
            merged.setdefault(key, value)


def _is_plain_json(value: Any, depth: int = 0) -> bool:
    if depth > _MAX_DEPTH:
        return False
    if value is None or isinstance(value, str | bool | int):
        return True
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, list):
        return all(_is_plain_json(v, depth + 1) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _is_plain_json(v, depth + 1) for k, v in value.items())
    return False


# ------------------------------------------------------------ Gemini -> JSON Schema

_SCHEMA_MAPS = ("properties", "$defs", "definitions", "patternProperties", "dependentSchemas")
_SCHEMA_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")
_SCHEMA_SINGLES = (
    "items",
    "additionalProperties",
    "not",
    "contains",
    "propertyNames",
    "if",
    "then",
    "else",
    "unevaluatedItems",
    "unevaluatedProperties",
)


def json_schema_from_gemini(schema: Any) -> Any:
    """Plain JSON Schema from a schema a Gemini client wrote: lower-case type
    names, `nullable: true` folded into the type. Anything else is kept."""
    return _to_json_schema(schema, 0)


def _to_json_schema(node: Any, depth: int) -> Any:
    if not isinstance(node, dict) or depth > _MAX_DEPTH:
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _SCHEMA_MAPS and isinstance(value, dict):
            out[key] = {name: _to_json_schema(sub, depth + 1) for name, sub in value.items()}
        elif key in _SCHEMA_LISTS and isinstance(value, list):
            out[key] = [_to_json_schema(sub, depth + 1) for sub in value]
        elif key in _SCHEMA_SINGLES:
            out[key] = (
                [_to_json_schema(sub, depth + 1) for sub in value]
                if isinstance(value, list)
                else _to_json_schema(value, depth + 1)
            )
        elif key == "type":
            out[key] = _lower_type(value)
        elif key != "nullable":
            out[key] = value
    if node.get("nullable") is True:
        _add_null_type(out)
    if out.get("format") == "enum":
        del out["format"]
    return out


def _lower_type(value: Any) -> Any:
    if isinstance(value, str) and value.lower() in _TYPE_NAMES:
        return value.lower()
    if isinstance(value, list):
        return [_lower_type(v) for v in value]
    return value


def _add_null_type(out: dict[str, Any]) -> None:
    current = out.get("type")
    if isinstance(current, str) and current != "null":
        out["type"] = [current, "null"]
    elif isinstance(current, list) and "null" not in current:
        out["type"] = [*current, "null"]
    elif "anyOf" in out and isinstance(out["anyOf"], list):
        out["anyOf"] = [*out["anyOf"], {"type": "null"}]

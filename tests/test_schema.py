"""clean_for_gemini / json_schema_from_gemini on real agent schemas and on junk."""

from __future__ import annotations

import math
from typing import Any

import orjson
from google.genai import types
from hypothesis import given, settings
from hypothesis import strategies as st

from crossroute.schema import clean_for_gemini, json_schema_from_gemini

ALLOWED_KEYS = {
    "type",
    "format",
    "title",
    "description",
    "nullable",
    "enum",
    "items",
    "minItems",
    "maxItems",
    "minLength",
    "maxLength",
    "pattern",
    "minimum",
    "maximum",
    "properties",
    "required",
    "minProperties",
    "maxProperties",
    "propertyOrdering",
    "anyOf",
    "default",
    "example",
}
GEMINI_TYPES = {"STRING", "NUMBER", "INTEGER", "BOOLEAN", "ARRAY", "OBJECT", "NULL"}


def assert_gemini_schema(node: Any, path: str = "$") -> None:
    """Every rule Gemini enforces that the cleaner promises, checked recursively."""
    assert isinstance(node, dict), path
    assert set(node) <= ALLOWED_KEYS, f"{path}: {set(node) - ALLOWED_KEYS}"
    if "type" in node:
        assert node["type"] in GEMINI_TYPES, path
    if "enum" in node:
        assert node.get("type") == "STRING", path
        assert node["enum"] and all(isinstance(v, str) for v in node["enum"]), path
    for key in ("minimum", "maximum"):
        if key in node:
            value = node[key]
            assert isinstance(value, int | float) and not isinstance(value, bool), path
            assert math.isfinite(value) and abs(value) < 2**53 - 1, path
    if node.get("type") == "ARRAY":
        assert "items" in node, path
    if node.get("type") == "OBJECT":
        assert node.get("properties"), f"{path}: Gemini rejects an OBJECT without properties"
    if "items" in node:
        assert_gemini_schema(node["items"], path + ".items")
    properties = node.get("properties", {})
    assert isinstance(properties, dict)
    for name, sub in properties.items():
        assert_gemini_schema(sub, f"{path}.properties.{name}")
    if "required" in node:
        assert set(node["required"]) <= set(properties), path
    if "properties" in node:
        assert properties, f"{path}: empty properties must be omitted"
    for index, branch in enumerate(node.get("anyOf", [])):
        assert_gemini_schema(branch, f"{path}.anyOf[{index}]")
    if "format" in node:
        allowed = {
            "STRING": {"enum", "date-time"},
            "INTEGER": {"int32", "int64"},
            "NUMBER": {"float", "double"},
        }
        assert node["format"] in allowed.get(node.get("type", ""), set()), path


# ---------------------------------------------------------------- real schemas

OPENCODE_READ = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "properties": {
        "filePath": {"type": "string", "description": "The path to the file to read"},
        "offset": {
            "description": "The line number to start reading from (0-based)",
            "type": "integer",
            "minimum": -9007199254740991,
            "maximum": 9007199254740991,
        },
        "limit": {"type": "number", "exclusiveMinimum": 0, "default": 2000},
        "count": {"type": "integer", "exclusiveMinimum": 0, "exclusiveMaximum": 100},
    },
    "required": ["filePath"],
    "additionalProperties": False,
}

QWEN_SHELL = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "type": "object",
    "properties": {
        "command": {"type": "string"},
        "timeout": {"type": ["integer", "null"], "description": "ms"},
        "mode": {"oneOf": [{"type": "string", "enum": ["fg"]}, {"type": "string", "enum": ["bg"]}]},
        "either": {"type": ["string", "number"]},
    },
    "required": ["command", "not_a_property"],
}

CLAUDE_CODE_TODO = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "properties": {
        "todos": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "content": {"type": "string", "minLength": 1},
                    "status": {"type": "string", "enum": ["pending", "in_progress", "completed"]},
                    "priority": {"type": "integer", "enum": [1, 2, 3]},
                },
                "required": ["content", "status"],
                "additionalProperties": False,
            },
        },
        "headers": {
            "type": "object",
            "propertyNames": {"type": "string"},
            "additionalProperties": {"type": "string"},
        },
        "permission": {"anyOf": [{"const": "acceptEdits"}, {"const": "plan"}]},
        "url": {"type": "string", "format": "uri"},
        "when": {"type": "string", "format": "date-time"},
        "retry": {"allOf": [{"$ref": "#/$defs/Retry"}, {"description": "retry policy"}]},
        "flag": {"const": True},
    },
    "required": ["todos"],
    "additionalProperties": False,
    "$defs": {
        "Retry": {
            "type": "object",
            "properties": {"times": {"type": "integer", "format": "int32"}, "backoff": {"type": "number"}},
            "required": ["times"],
        }
    },
}


def test_opencode_schema_2020_12_keywords_and_safe_integer_bounds() -> None:
    cleaned = clean_for_gemini(OPENCODE_READ)
    assert cleaned == {
        "type": "OBJECT",
        "properties": {
            "filePath": {"type": "STRING", "description": "The path to the file to read"},
            "offset": {"type": "INTEGER", "description": "The line number to start reading from (0-based)"},
            "limit": {"type": "NUMBER", "minimum": 0, "default": 2000},
            "count": {"type": "INTEGER", "minimum": 1, "maximum": 99},
        },
        "required": ["filePath"],
    }


def test_qwen_type_arrays_oneof_and_unknown_required() -> None:
    cleaned = clean_for_gemini(QWEN_SHELL)
    assert cleaned is not None
    props = cleaned["properties"]
    assert props["timeout"] == {"type": "INTEGER", "nullable": True, "description": "ms"}
    assert props["mode"] == {"type": "STRING", "enum": ["fg", "bg"]}
    assert props["either"] == {"anyOf": [{"type": "STRING"}, {"type": "NUMBER"}]}
    assert cleaned["required"] == ["command"]
    assert_gemini_schema(cleaned)


def test_claude_code_schema_refs_allof_const_formats() -> None:
    cleaned = clean_for_gemini(CLAUDE_CODE_TODO)
    assert cleaned is not None
    assert_gemini_schema(cleaned)
    props = cleaned["properties"]
    item = props["todos"]["items"]
    assert item["properties"]["status"] == {"type": "STRING", "enum": ["pending", "in_progress", "completed"]}
    assert item["properties"]["priority"] == {"type": "STRING", "enum": ["1", "2", "3"]}
    assert item["required"] == ["content", "status"]
    assert props["headers"] == {}  # a free-form map: untyped, since OBJECT needs properties
    assert props["permission"] == {"type": "STRING", "enum": ["acceptEdits", "plan"]}
    assert props["url"] == {"type": "STRING"}
    assert props["when"] == {"type": "STRING", "format": "date-time"}
    assert props["retry"] == {
        "type": "OBJECT",
        "description": "retry policy",
        "properties": {"times": {"type": "INTEGER", "format": "int32"}, "backoff": {"type": "NUMBER"}},
        "required": ["times"],
    }
    assert props["flag"] == {"type": "STRING", "enum": ["true"]}


def test_cleaned_schemas_are_accepted_by_the_sdk_schema_type() -> None:
    for schema in (OPENCODE_READ, QWEN_SHELL, CLAUDE_CODE_TODO):
        cleaned = clean_for_gemini(schema)
        parsed = types.Schema.model_validate(cleaned)
        assert parsed.type == types.Type.OBJECT


def test_cyclic_ref_becomes_untyped_and_terminates() -> None:
    tree = {
        "$ref": "#/definitions/Node",
        "definitions": {
            "Node": {
                "type": "object",
                "properties": {
                    "value": {"type": "string"},
                    "children": {"type": "array", "items": {"$ref": "#/definitions/Node"}},
                },
            }
        },
    }
    cleaned = clean_for_gemini(tree)
    assert cleaned is not None
    assert cleaned["properties"]["value"] == {"type": "STRING"}
    assert cleaned["properties"]["children"] == {"type": "ARRAY", "items": {}}


def test_self_reference_through_root_pointer() -> None:
    schema = {"type": "object", "properties": {"next": {"$ref": "#"}}}
    cleaned = clean_for_gemini(schema)
    assert cleaned == {
        "type": "OBJECT",
        "properties": {"next": {"type": "OBJECT", "properties": {"next": {}}}},
    }


def test_dangling_ref_keeps_description() -> None:
    cleaned = clean_for_gemini({"$ref": "https://example.com/s.json", "description": "remote"})
    assert cleaned == {"description": "remote"}


def test_gemini_cli_uppercase_types_are_accepted_and_kept_uppercase() -> None:
    schema = {
        "type": "OBJECT",
        "properties": {
            "reasoning": {"type": "STRING"},
            "model_choice": {"type": "STRING", "enum": ["flash", "pro"]},
        },
        "required": ["reasoning", "model_choice"],
    }
    assert clean_for_gemini(schema) == schema


def test_object_without_properties_and_array_without_items() -> None:
    assert clean_for_gemini({"type": "object", "properties": {}, "required": ["x"]}) == {}
    assert clean_for_gemini({"type": ["object", "null"], "description": "d", "minProperties": 1}) == {
        "description": "d",
        "nullable": True,
    }
    assert clean_for_gemini({"type": "array"}) == {"type": "ARRAY", "items": {"type": "STRING"}}
    assert clean_for_gemini({"type": "array", "prefixItems": [{"type": "integer"}]}) == {
        "type": "ARRAY",
        "items": {"type": "INTEGER"},
    }


def test_nullable_anyof_collapses_and_enum_null_sets_nullable() -> None:
    assert clean_for_gemini({"anyOf": [{"type": "string"}, {"type": "null"}], "description": "d"}) == {
        "description": "d",
        "type": "STRING",
        "nullable": True,
    }
    assert clean_for_gemini({"enum": ["a", None]}) == {"enum": ["a"], "type": "STRING", "nullable": True}


def test_non_finite_and_huge_bounds_are_dropped() -> None:
    schema = {
        "type": "number",
        "minimum": float("-inf"),
        "maximum": 1e300,
        "exclusiveMaximum": float("nan"),
    }
    assert clean_for_gemini(schema) == {"type": "NUMBER"}


def test_none_and_non_dict_inputs() -> None:
    assert clean_for_gemini(None) is None
    assert clean_for_gemini([1, 2]) is None  # type: ignore[arg-type]


def test_input_is_not_mutated() -> None:
    before = orjson.dumps(CLAUDE_CODE_TODO)
    clean_for_gemini(CLAUDE_CODE_TODO)
    assert orjson.dumps(CLAUDE_CODE_TODO) == before


# ---------------------------------------------------------------- the other direction


def test_json_schema_from_gemini_lowercases_and_unfolds_nullable() -> None:
    schema = {
        "type": "OBJECT",
        "properties": {
            "a": {"type": "STRING", "nullable": True, "format": "enum", "enum": ["x"]},
            "b": {"type": "ARRAY", "items": {"type": "INTEGER"}},
            "OBJECT": {"type": "NUMBER"},
        },
        "required": ["a"],
    }
    assert json_schema_from_gemini(schema) == {
        "type": "object",
        "properties": {
            "a": {"type": ["string", "null"], "enum": ["x"]},
            "b": {"type": "array", "items": {"type": "integer"}},
            "OBJECT": {"type": "number"},
        },
        "required": ["a"],
    }


def test_json_schema_from_gemini_leaves_plain_json_schema_alone() -> None:
    assert json_schema_from_gemini(CLAUDE_CODE_TODO) == CLAUDE_CODE_TODO


# ---------------------------------------------------------------- junk

KEYWORDS = [
    "type",
    "properties",
    "items",
    "required",
    "enum",
    "const",
    "anyOf",
    "oneOf",
    "allOf",
    "$ref",
    "$defs",
    "definitions",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "format",
    "nullable",
    "default",
    "additionalProperties",
    "propertyNames",
    "prefixItems",
    "minItems",
    "minLength",
    "description",
    "$schema",
    "if",
    "then",
    "patternProperties",
    "unevaluatedProperties",
    "dependentRequired",
    "contains",
    "examples",
    "propertyOrdering",
]
TYPE_WORDS = [
    "string",
    "STRING",
    "integer",
    "number",
    "boolean",
    "array",
    "object",
    "OBJECT",
    "null",
    "any",
    "Int",
]
REFS = ["#", "#/$defs/a", "#/$defs/b", "#/definitions/a", "#/properties/x", "#/nope", "other.json#/x"]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),  # what orjson parses out of a request body
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(TYPE_WORDS + REFS + ["date-time", "int64", "uri"]),
    st.text(max_size=5),
)
junk = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.one_of(st.sampled_from(KEYWORDS), st.text(max_size=4)), children, max_size=6),
        st.fixed_dictionaries(
            {"$defs": st.fixed_dictionaries({"a": children, "b": children}), "$ref": st.sampled_from(REFS)}
        ),
        st.fixed_dictionaries(
            {"type": st.lists(st.sampled_from(TYPE_WORDS), max_size=3), "enum": st.lists(scalars, max_size=3)}
        ),
        st.fixed_dictionaries(
            {
                "type": st.sampled_from(["object", "OBJECT"]),
                "properties": st.dictionaries(
                    st.sampled_from(["x", "y", "type", "$ref"]), children, max_size=3
                ),
                "required": st.lists(st.sampled_from(["x", "y", "z", "type"]), max_size=3),
            }
        ),
    ),
    max_leaves=40,
)


@settings(max_examples=300, deadline=None)
@given(junk)
def test_junk_never_raises_and_output_obeys_gemini_rules(schema: Any) -> None:
    cleaned = clean_for_gemini(schema)
    if not isinstance(schema, dict):
        assert cleaned is None
        return
    orjson.dumps(cleaned)  # JSON-serialisable (orjson refuses nothing we produce)
    assert_gemini_schema(cleaned)
    types.Schema.model_validate(cleaned)


@settings(max_examples=150, deadline=None)
@given(junk)
def test_json_schema_from_gemini_never_raises(schema: Any) -> None:
    converted = json_schema_from_gemini(schema)
    if isinstance(schema, dict):
        assert isinstance(converted, dict)

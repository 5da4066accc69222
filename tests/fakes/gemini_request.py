"""Request checks of the fake Gemini upstream, as strict as generativelanguage.googleapis.com.

Proto-JSON accepts lowerCamelCase and snake_case field names (never inside
maps such as schema `properties` or call `args`), and rejects unknown fields.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from .wire import Issued, Rejection, is_int, is_number, type_name

REQUEST_FIELDS = frozenset(
    {
        "contents",
        "systemInstruction",
        "tools",
        "toolConfig",
        "safetySettings",
        "generationConfig",
        "cachedContent",
    }
)
COUNT_FIELDS = frozenset({"contents", "generateContentRequest"})
PART_DATA = (
    "text",
    "inlineData",
    "fileData",
    "functionCall",
    "functionResponse",
    "executableCode",
    "codeExecutionResult",
)
PART_FIELDS = frozenset(
    {*PART_DATA, "thought", "thoughtSignature", "videoMetadata", "mediaResolution", "partMetadata"}
)
TOOL_FIELDS = frozenset(
    {
        "functionDeclarations",
        "googleSearch",
        "googleSearchRetrieval",
        "codeExecution",
        "urlContext",
        "googleMaps",
        "fileSearch",
        "computerUse",
    }
)
DECLARATION_FIELDS = frozenset(
    {
        "name",
        "description",
        "parameters",
        "parametersJsonSchema",
        "response",
        "responseJsonSchema",
        "behavior",
    }
)
GENERATION_FIELDS = frozenset(
    {
        "maxOutputTokens", "temperature", "topP", "topK", "candidateCount", "stopSequences", "presencePenalty",
        "frequencyPenalty", "seed", "responseMimeType", "responseSchema", "responseJsonSchema", "responseModalities",
        "thinkingConfig", "responseLogprobs", "logprobs", "mediaResolution", "speechConfig", "imageConfig",
        "enableEnhancedCivicAnswers",
    }
)  # fmt: skip
THINKING_FIELDS = frozenset({"includeThoughts", "thinkingBudget", "thinkingLevel"})
THINKING_LEVELS = ("THINKING_LEVEL_UNSPECIFIED", "MINIMAL", "LOW", "MEDIUM", "HIGH", "XHIGH")
CALLING_MODES = ("MODE_UNSPECIFIED", "AUTO", "ANY", "NONE", "VALIDATED")
# The OpenAPI subset Gemini's Schema message knows. Anything else (e.g. $schema, $ref, $defs,
# additionalProperties, exclusiveMinimum, exclusiveMaximum, const, oneOf, allOf, not,
# propertyNames, patternProperties, if/then/else, examples, multipleOf, uniqueItems) is rejected.
SCHEMA_FIELDS = frozenset(
    {
        "type", "format", "title", "description", "nullable", "enum", "maxItems", "minItems", "properties",
        "required", "minProperties", "maxProperties", "minLength", "maxLength", "pattern", "example", "anyOf",
        "propertyOrdering", "default", "items", "minimum", "maximum",
    }
)  # fmt: skip
SCHEMA_TYPES = ("TYPE_UNSPECIFIED", "STRING", "NUMBER", "INTEGER", "BOOLEAN", "ARRAY", "OBJECT", "NULL")
SAFE_INTEGER = 2**53
FUNCTION_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_.:-]{0,127}$")
SKIP_SIGNATURES = frozenset({"skip_thought_signature_validator", "context_engineering_is_the_way_to_go"})


def camel(key: str) -> str:
    return re.sub(r"_([a-z0-9])", lambda m: m.group(1).upper(), key)


def fields(value: Any, where: str, allowed: frozenset[str]) -> dict[str, Any]:
    """The object's own keys in camelCase; unknown names are rejected like proto-JSON does."""
    if not isinstance(value, dict):
        raise invalid(where, f"Starting an object on a scalar field ({type_name(value)})")
    out: dict[str, Any] = {}
    for key, item in value.items():
        name = camel(key)
        if name not in allowed:
            raise Rejection(
                400,
                f"Invalid JSON payload received. Unknown name \"{key}\" at '{where}': Cannot find field.",
                param=where,
            )
        out[name] = item
    return out


def invalid(where: str, problem: str) -> Rejection:
    return Rejection(400, f"Invalid JSON payload received at '{where}': {problem}.", param=where)


def violation(where: str, problem: str) -> Rejection:
    return Rejection(400, f"* GenerateContentRequest.{where}: {problem}\n", param=where)


def call_key(name: str, args: Any) -> str:
    return name + ":" + orjson.dumps(args or {}, option=orjson.OPT_SORT_KEYS).decode()


# ----------------------------------------------------------------- requests


def validate_generate(raw: dict[str, Any], issued: Issued) -> dict[str, Any]:
    """Check a generateContent body; return it with camelCase top-level keys."""
    body = fields(raw, "", REQUEST_FIELDS)
    contents = body.get("contents")
    if not contents:
        raise violation("contents", "contents is not specified")
    if not isinstance(contents, list):
        raise invalid("contents", "Proto field is repeating, cannot start an object")
    normalized = [check_content(content, f"contents[{i}]") for i, content in enumerate(contents)]
    check_call_turns(normalized)
    check_signatures(normalized, issued)
    if body.get("systemInstruction") is not None:
        check_content(body["systemInstruction"], "system_instruction", system=True)
    for index, tool in enumerate(list_of(body.get("tools"), "tools")):
        check_tool(tool, f"tools[{index}]")
    if body.get("toolConfig") is not None:
        check_tool_config(body["toolConfig"])
    if body.get("generationConfig") is not None:
        body["generationConfig"] = check_generation_config(body["generationConfig"])
    body["contents"] = normalized
    return body


def validate_count(raw: dict[str, Any], issued: Issued) -> dict[str, Any]:
    """Check a countTokens body; return the generate request it counts."""
    body = fields(raw, "", COUNT_FIELDS)
    if body.get("contents") is not None and body.get("generateContentRequest") is not None:
        raise Rejection(
            400, "contents and generate_content_request are mutually exclusive.", param="contents"
        )
    inner = body.get("generateContentRequest")
    if inner is not None:
        if not isinstance(inner, dict):
            raise invalid("generate_content_request", "Starting an object on a scalar field")
        return validate_generate({k: v for k, v in inner.items() if k != "model"}, issued)
    return validate_generate({"contents": body.get("contents")}, issued)


def list_of(value: Any, where: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise invalid(where, "Proto field is repeating, cannot start an object")
    return value


def check_content(raw: Any, where: str, *, system: bool = False) -> dict[str, Any]:
    content = fields(raw, where, frozenset({"role", "parts"}))
    role = content.get("role") or "user"
    if not system and role not in ("user", "model"):
        raise Rejection(400, "Please use a valid role: user, model.", param=f"{where}.role")
    parts = content.get("parts")
    if not parts:
        raise violation(f"{where}.parts", "contents.parts must not be empty.")
    normalized = [
        check_part(part, f"{where}.parts[{i}]") for i, part in enumerate(list_of(parts, f"{where}.parts"))
    ]
    return {"role": role, "parts": normalized}


def check_part(raw: Any, where: str) -> dict[str, Any]:
    part = fields(raw, where, PART_FIELDS)
    present = [name for name in PART_DATA if name in part]
    if not present:
        raise violation(f"{where}.data", "required oneof field 'data' must have one initialized field")
    if len(present) > 1:
        raise invalid(where, f"Oneof field 'data' is already set. Cannot set '{present[1]}'")
    if "text" in part and not isinstance(part["text"], str):
        raise invalid(f"{where}.text", f"Invalid value ({type_name(part['text'])}), expected a string")
    if "thought" in part and not isinstance(part["thought"], bool):
        raise invalid(f"{where}.thought", "Invalid value, expected a boolean")
    if "thoughtSignature" in part and not isinstance(part["thoughtSignature"], str):
        raise invalid(f"{where}.thought_signature", "Invalid value, expected base64 bytes")
    if "inlineData" in part:
        blob = fields(
            part["inlineData"], f"{where}.inline_data", frozenset({"mimeType", "data", "displayName"})
        )
        if not isinstance(blob.get("mimeType"), str) or not isinstance(blob.get("data"), str):
            raise violation(f"{where}.inline_data", "mime_type and data are required.")
    if "functionCall" in part:
        part["functionCall"] = check_function_call(part["functionCall"], f"{where}.function_call")
    if "functionResponse" in part:
        part["functionResponse"] = check_function_response(
            part["functionResponse"], f"{where}.function_response"
        )
    return part


def check_function_call(raw: Any, where: str) -> dict[str, Any]:
    call = fields(raw, where, frozenset({"id", "name", "args", "partialArgs", "willContinue"}))
    if not isinstance(call.get("name"), str) or not call["name"]:
        raise violation(f"{where}.name", "Name cannot be empty.")
    if call.get("args") is not None and not isinstance(call["args"], dict):
        raise invalid(f"{where}.args", f"Invalid value ({type_name(call['args'])}), expected an object")
    return call


def check_function_response(raw: Any, where: str) -> dict[str, Any]:
    response = fields(
        raw, where, frozenset({"id", "name", "response", "parts", "willContinue", "scheduling"})
    )
    if not isinstance(response.get("name"), str) or not response["name"]:
        raise violation(f"{where}.name", "Name cannot be empty.")
    if not isinstance(response.get("response"), dict):
        raise invalid(
            f"{where}.response",
            f"Invalid value (type.googleapis.com/google.protobuf.Struct), {type_name(response.get('response'))}",
        )
    return response


def function_calls(content: dict[str, Any]) -> list[dict[str, Any]]:
    return [part for part in content["parts"] if "functionCall" in part]


def check_call_turns(contents: list[dict[str, Any]]) -> None:
    for index, content in enumerate(contents):
        responses = [part for part in content["parts"] if "functionResponse" in part]
        if not responses:
            continue
        previous = contents[index - 1] if index > 0 else None
        calls = function_calls(previous) if previous is not None and previous["role"] == "model" else []
        if not calls:
            raise Rejection(
                400,
                "Please ensure that function response turn comes immediately after a function call turn.",
                param=f"contents[{index}]",
            )
        if len(responses) != len(calls):
            raise Rejection(
                400,
                "Please ensure that the number of function response parts is equal to the number of function call "
                "parts of the function call turn.",
                param=f"contents[{index}]",
            )


def issued_signature(calls: list[dict[str, Any]], issued: Issued) -> str | None:
    """The signature handed out with any of these calls, if one was."""
    for part in calls:
        key = call_key(part["functionCall"]["name"], part["functionCall"].get("args"))
        if key in issued.gemini_calls:
            return issued.gemini_calls[key]
    return None


def check_signatures(contents: list[dict[str, Any]], issued: Issued) -> None:
    """A replayed call turn whose call was handed out signed must carry that signature on its first call."""
    for index, content in enumerate(contents):
        calls = function_calls(content) if content["role"] == "model" else []
        expected = issued_signature(calls, issued)
        if expected is None:
            continue
        given = calls[0].get("thoughtSignature")
        if given == expected or given in SKIP_SIGNATURES:
            continue
        name = calls[0]["functionCall"]["name"]
        detail = "" if given is None else " (the thought_signature given is not the one issued)"
        raise Rejection(
            400,
            f"Function call is missing a thought_signature in functionCall parts{detail}. This is required for tools "
            f"to work correctly. Additional data, function call `default_api:{name}` , position {index + 1}. "
            "Please refer to https://ai.google.dev/gemini-api/docs/thought-signatures for more details.",
            param=f"contents[{index}]",
        )


# ----------------------------------------------------------------- tools and config


def check_tool(raw: Any, where: str) -> None:
    tool = fields(raw, where, TOOL_FIELDS)
    declarations = list_of(tool.get("functionDeclarations"), f"{where}.function_declarations")
    for index, declaration in enumerate(declarations):
        check_declaration(declaration, f"{where}.function_declarations[{index}]")


def check_declaration(raw: Any, where: str) -> None:
    declaration = fields(raw, where, DECLARATION_FIELDS)
    name = declaration.get("name")
    if not isinstance(name, str) or not FUNCTION_NAME.match(name):
        raise violation(
            f"{where}.name",
            "Invalid function name. Must start with a letter or an underscore. Must be alphameric (a-z, A-Z, 0-9), "
            "underscores (_), dots (.), colons (:), or dashes (-), with a maximum length of 128.",
        )
    if declaration.get("parameters") is not None and declaration.get("parametersJsonSchema") is not None:
        raise violation(f"{where}", "parameters and parameters_json_schema cannot be both set.")
    if declaration.get("parameters") is not None:
        check_schema(declaration["parameters"], f"{where}.parameters")
        kind = declaration["parameters"].get("type")
        if isinstance(kind, str) and kind.upper() != "OBJECT":
            raise violation(
                f"{where}.parameters", "functionDeclaration parameters schema should be of type OBJECT"
            )
    if declaration.get("parametersJsonSchema") is not None and not isinstance(
        declaration["parametersJsonSchema"], dict
    ):
        raise invalid(f"{where}.parameters_json_schema", "Invalid value, expected a JSON Schema object")
    if declaration.get("response") is not None:
        check_schema(declaration["response"], f"{where}.response")


def check_schema(raw: Any, where: str) -> None:
    schema = fields(raw, where, SCHEMA_FIELDS)
    kind = check_schema_type(schema.get("type"), where)
    properties = schema.get("properties")
    if properties is not None:
        if not isinstance(properties, dict):
            raise invalid(f"{where}.properties", "Invalid value, expected a map")
        for name, child in properties.items():
            check_schema(child, f"{where}.properties[{name}].value")
    for key in ("properties", "required"):
        if schema.get(key) is not None and kind not in (None, "OBJECT"):
            raise violation(f"{where}.{key}", "only allowed for OBJECT type")
    if kind == "ARRAY" and schema.get("items") is None:
        raise violation(f"{where}.items", "missing field.")
    if schema.get("items") is not None:
        check_schema(schema["items"], f"{where}.items")
    for index, option in enumerate(list_of(schema.get("anyOf"), f"{where}.any_of")):
        check_schema(option, f"{where}.any_of[{index}]")
    for index, name in enumerate(list_of(schema.get("required"), f"{where}.required")):
        if not isinstance(name, str) or name not in (properties or {}):
            raise violation(f"{where}.required[{index}]", "property is not defined")
    for index, value in enumerate(list_of(schema.get("enum"), f"{where}.enum")):
        if not isinstance(value, str):
            raise invalid(f"{where}.enum[{index}]", f"Invalid value ({type_name(value)}), expected a string")
    for bound in ("minimum", "maximum"):
        value = schema.get(bound)
        if value is not None and (not is_number(value) or abs(value) > SAFE_INTEGER):
            raise invalid(f"{where}.{bound}", f"Invalid value {value!r}, expected a number within +/-2^53")
    for count in ("minItems", "maxItems", "minLength", "maxLength", "minProperties", "maxProperties"):
        value = schema.get(count)
        if value is not None and not (is_int(value) or isinstance(value, str) and value.isdigit()):
            raise invalid(f"{where}.{count}", f"Invalid value ({type_name(value)}), expected an int64")


def check_schema_type(kind: Any, where: str) -> str | None:
    if kind is None:
        return None
    if isinstance(kind, list):
        raise invalid(f"{where}.type", "Proto field is not repeating, cannot start list")
    if not isinstance(kind, str) or kind.upper() not in SCHEMA_TYPES:
        raise invalid(f"{where}.type", f'Invalid value "{kind}", expected one of {", ".join(SCHEMA_TYPES)}')
    return kind.upper()


def check_tool_config(raw: Any) -> None:
    config = fields(
        raw,
        "tool_config",
        frozenset({"functionCallingConfig", "retrievalConfig", "includeServerSideToolInvocations"}),
    )
    if config.get("functionCallingConfig") is None:
        return
    calling = fields(
        config["functionCallingConfig"],
        "tool_config.function_calling_config",
        frozenset({"mode", "allowedFunctionNames"}),
    )
    if calling.get("mode") is not None and calling["mode"] not in CALLING_MODES:
        raise invalid("tool_config.function_calling_config.mode", f'Invalid value "{calling["mode"]}"')
    for index, name in enumerate(list_of(calling.get("allowedFunctionNames"), "allowed_function_names")):
        if not isinstance(name, str):
            raise invalid(
                f"tool_config.function_calling_config.allowed_function_names[{index}]", "expected a string"
            )


def check_generation_config(raw: Any) -> dict[str, Any]:
    config = fields(raw, "generation_config", GENERATION_FIELDS)
    for key, low, high in (("temperature", 0, 2), ("topP", 0, 1)):
        value = config.get(key)
        if value is not None and (not is_number(value) or not low <= value <= high):
            raise violation(f"generation_config.{key}", f"must be between {low} and {high}, got {value!r}")
    for key in ("maxOutputTokens", "topK", "candidateCount"):
        value = config.get(key)
        if value is not None and (not is_int(value) or value < 1):
            raise violation(f"generation_config.{key}", f"must be a positive integer, got {value!r}")
    if config.get("responseSchema") is not None:
        if config.get("responseMimeType") not in ("application/json", "text/x.enum"):
            raise violation(
                "generation_config.response_schema",
                "specified response_schema field requires response_mime_type to be 'application/json' or 'text/x.enum'",
            )
        check_schema(config["responseSchema"], "generation_config.response_schema")
    if config.get("thinkingConfig") is not None:
        thinking = fields(config["thinkingConfig"], "generation_config.thinking_config", THINKING_FIELDS)
        if thinking.get("thinkingLevel") is not None and thinking["thinkingLevel"] not in THINKING_LEVELS:
            raise invalid(
                "generation_config.thinking_config.thinking_level",
                f'Invalid value "{thinking["thinkingLevel"]}"',
            )
        if thinking.get("thinkingBudget") is not None and not is_int(thinking["thinkingBudget"]):
            raise invalid(
                "generation_config.thinking_config.thinking_budget", "Invalid value, expected an int32"
            )
        if thinking.get("includeThoughts") is not None and not isinstance(thinking["includeThoughts"], bool):
            raise invalid(
                "generation_config.thinking_config.include_thoughts", "Invalid value, expected a boolean"
            )
        config["thinkingConfig"] = thinking
    return config

"""A Gemini client's generateContent body -> ir.Request.

Every field is untrusted: wrong types raise GatewayError(400) naming the
field. lowerCamelCase and snake_case keys are both read.
"""

from __future__ import annotations

import mimetypes
from typing import Any

from crossroute import ir
from crossroute.formats._input import (
    bad_request,
    dict_or_empty,
    list_or_empty,
    non_empty_str,
    optional_bool,
    optional_dict,
    optional_int,
    optional_number,
    optional_str,
    required_dict,
    required_str,
)
from crossroute.formats.gemini._wire import camel, field, has_field, signature_from_client, text_of
from crossroute.reasoning import EFFORTS
from crossroute.schema import json_schema_from_gemini

_MODELED_TOP = frozenset(
    {"contents", "systemInstruction", "tools", "toolConfig", "generationConfig", "model"}
)
_MODELED_GENERATION = frozenset(
    {
        "maxOutputTokens",
        "temperature",
        "topP",
        "topK",
        "stopSequences",
        "responseMimeType",
        "responseSchema",
        "responseJsonSchema",
        "thinkingConfig",
    }
)
_JSON_MIME = "application/json"
_PLAIN_MIMES = frozenset({"text/plain", ""})


def parse_request(body: Any, *, model: str | None = None, stream: bool | None = None) -> ir.Request:
    if not isinstance(body, dict):
        raise bad_request("request body must be a JSON object")
    contents = field(body, "contents")
    if contents is None:
        raise bad_request("contents is required", param="contents")
    if not isinstance(contents, list) or not contents:
        raise bad_request("contents must be a non-empty array of Content", param="contents")
    body_model = body.get("model")
    req = ir.Request(
        model=model or (body_model if isinstance(body_model, str) else ""),
        messages=_Conversation().messages(contents),
        system=_system(field(body, "systemInstruction")),
        stream=bool(stream),
        source_format="gemini",
    )
    _read_tools(field(body, "tools"), req)
    _read_tool_config(field(body, "toolConfig"), req)
    _read_generation_config(field(body, "generationConfig"), req)
    for key, value in body.items():
        name = camel(key)
        if name not in _MODELED_TOP:
            req.extras[name] = value
    return req


# ---------------------------------------------------------------- proto-JSON integers


def _proto_int(value: Any, param: str) -> int | None:
    """Proto-JSON writes int64 as a string, and a whole float is that integer too."""
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            raise bad_request(f"'{param}' must be an integer, got {value!r}", param) from None
    return optional_int(value, param, whole_floats=True)


# ---------------------------------------------------------------- contents


class _Conversation:
    """Reads contents in order, keeping the state needed to pair function
    responses without ids with the calls they answer."""

    def __init__(self) -> None:
        self.call_count = 0
        self.unanswered: list[ir.ToolCall] = []
        self.unmatched = 0

    def messages(self, contents: list[Any]) -> list[ir.Message]:
        messages: list[ir.Message] = []
        for index, content in enumerate(contents):
            messages.extend(self._content(content, f"contents[{index}]"))
        return messages

    def _content(self, content: Any, path: str) -> list[ir.Message]:
        content = dict_or_empty(content, path)
        role = optional_str(field(content, "role"), f"{path}.role") or "user"
        parts = list_or_empty(field(content, "parts"), f"{path}.parts")
        if role in ("model", "assistant"):
            return self._model_turn(parts, path)
        if role in ("user", "function", "tool"):
            return self._user_turn(parts, path)
        raise bad_request(f"{path}.role must be 'user' or 'model', got {role!r}", f"{path}.role")

    # ------------------------------------------------------------ user side

    def _user_turn(self, parts: list[Any], path: str) -> list[ir.Message]:
        """Function responses become role "tool" messages, the rest "user"
        messages, in the order they came."""
        messages: list[ir.Message] = []
        for index, raw in enumerate(parts):
            part_path = f"{path}.parts[{index}]"
            part = dict_or_empty(raw, part_path)
            if has_field(part, "functionResponse"):
                role: ir.Role = "tool"
                items: list[ir.Part] = [self._function_response(field(part, "functionResponse"), part_path)]
            else:
                role = "user"
                items = _plain_parts(part, part_path)
                if has_field(part, "functionCall"):
                    items.append(self._function_call(field(part, "functionCall"), part_path))
            if not items:
                continue
            if messages and messages[-1].role == role:
                messages[-1].parts.extend(items)
            else:
                messages.append(ir.Message(role, items))
        return messages

    def _function_response(self, raw: Any, path: str) -> ir.ToolResult:
        path = f"{path}.functionResponse"
        response = dict_or_empty(raw, path)
        name = optional_str(field(response, "name"), f"{path}.name")
        call_id = optional_str(field(response, "id"), f"{path}.id") or self._answer_by_name(name)
        self._mark_answered(call_id)
        content, is_error = _response_content(field(response, "response"))
        extra_parts = list_or_empty(field(response, "parts"), f"{path}.parts")
        for index, part in enumerate(extra_parts):
            part_path = f"{path}.parts[{index}]"
            content.extend(
                p
                for p in _plain_parts(dict_or_empty(part, part_path), part_path)
                if isinstance(p, ir.Text | ir.Image)
            )
        return ir.ToolResult(call_id=call_id, content=content, name=name, is_error=is_error)

    def _answer_by_name(self, name: str | None) -> str:
        for call in self.unanswered:
            if call.name == name:
                return call.id
        self.unmatched += 1
        return f"call_unmatched_{self.unmatched}"

    def _mark_answered(self, call_id: str) -> None:
        self.unanswered = [call for call in self.unanswered if call.id != call_id]

    # ------------------------------------------------------------ model side

    def _model_turn(self, parts: list[Any], path: str) -> list[ir.Message]:
        items: list[ir.Part] = []
        for index, raw in enumerate(parts):
            part_path = f"{path}.parts[{index}]"
            part = dict_or_empty(raw, part_path)
            signed = signature_from_client(field(part, "thoughtSignature"))
            if field(part, "thought") is True:
                _add_thought(items, part, signed, part_path)
                continue
            body: list[ir.Part] = _plain_parts(part, part_path)
            if has_field(part, "functionCall"):
                body.append(self._function_call(field(part, "functionCall"), part_path))
            if signed is not None:
                items.append(ir.Reasoning("", signed[0], origin=signed[1]))
            items.extend(body)
        return [ir.Message("assistant", items)] if items else []

    def _function_call(self, raw: Any, path: str) -> ir.ToolCall:
        path = f"{path}.functionCall"
        call = dict_or_empty(raw, path)
        name = non_empty_str(field(call, "name"), f"{path}.name")
        args = optional_dict(field(call, "args"), f"{path}.args")
        call_id = optional_str(field(call, "id"), f"{path}.id") or f"call_{self.call_count}"
        self.call_count += 1
        tool_call = ir.ToolCall(call_id, name, text_of(args or {}))
        self.unanswered.append(tool_call)
        return tool_call


def _add_thought(
    items: list[ir.Part], part: dict[str, Any], signed: tuple[str, str] | None, path: str
) -> None:
    """A thought part. One with no text but a signature closes the thought
    just before it (how our own encoders show a foreign signature); with
    nothing open it stands alone (a redacted Anthropic block)."""
    text = optional_str(field(part, "text"), f"{path}.text") or ""
    signature, origin = signed if signed else (None, "gemini")
    last = items[-1] if items else None
    if not text and signature is not None:
        if isinstance(last, ir.Reasoning) and last.text and last.signature is None and not last.redacted:
            last.signature, last.origin = signature, origin
            return
        items.append(ir.Reasoning("", signature, origin=origin, redacted=origin == "anthropic"))
        return
    if text:
        items.append(ir.Reasoning(text, signature, origin=origin))


def _plain_parts(part: dict[str, Any], path: str) -> list[ir.Part]:
    """Text and media of one part (function calls/responses are handled by the caller)."""
    out: list[ir.Part] = []
    text = optional_str(field(part, "text"), f"{path}.text")
    if text:
        out.append(ir.Text(text))
    if has_field(part, "inlineData"):
        out.append(_inline_data(dict_or_empty(field(part, "inlineData"), f"{path}.inlineData"), f"{path}.inlineData"))
    if has_field(part, "fileData"):
        out.append(_file_data(dict_or_empty(field(part, "fileData"), f"{path}.fileData"), f"{path}.fileData"))
    code = field(part, "executableCode")
    if isinstance(code, dict) and isinstance(field(code, "code"), str):
        language = field(code, "language")
        fence = language.lower() if isinstance(language, str) and language != "LANGUAGE_UNSPECIFIED" else ""
        out.append(ir.Text(f"```{fence}\n{field(code, 'code')}\n```"))
    result = field(part, "codeExecutionResult")
    if isinstance(result, dict) and isinstance(field(result, "output"), str):
        out.append(ir.Text(field(result, "output")))
    return out


def _inline_data(blob: dict[str, Any], path: str) -> ir.Text | ir.Image:
    mime = optional_str(field(blob, "mimeType"), f"{path}.mimeType") or "application/octet-stream"
    data = required_str(field(blob, "data"), f"{path}.data")
    if mime.startswith("image/"):
        return ir.Image(data=_standard_base64(data), media_type=mime)
    # The IR carries images only; say what was left out rather than drop it silently.
    return ir.Text(f"[{mime} attachment omitted: the gateway can forward only images]")


def _standard_base64(data: str) -> str:
    """Proto-JSON bytes may be url-safe base64 (google-genai writes it so); the
    IR and every other format carry the standard alphabet, padded."""
    data = data.strip().replace("-", "+").replace("_", "/")
    return data + "=" * (-len(data) % 4)


def _file_data(ref: dict[str, Any], path: str) -> ir.Text | ir.Image:
    uri = non_empty_str(field(ref, "fileUri"), f"{path}.fileUri")
    mime = optional_str(field(ref, "mimeType"), f"{path}.mimeType") or mimetypes.guess_type(uri)[0] or ""
    if mime.startswith("image/"):
        return ir.Image(url=uri, media_type=mime)
    return ir.Text(f"[{mime or 'file'} attachment omitted: {uri}]")


def _response_content(response: Any) -> tuple[list[ir.Text | ir.Image], bool]:
    """functionResponse.response -> (content, is_error) by the output/error convention."""
    if response is None:
        return [], False
    if isinstance(response, dict):
        if "output" in response:
            return [ir.Text(text_of(response["output"]))], False
        if "error" in response:
            return [ir.Text(text_of(response["error"]))], True
    return [ir.Text(text_of(response))], False


# ---------------------------------------------------------------- system, tools


def _system(raw: Any) -> list[ir.Text]:
    if raw is None:
        return []
    if isinstance(raw, str):
        return [ir.Text(raw)] if raw else []
    if isinstance(raw, dict):
        parts = list_or_empty(field(raw, "parts"), "systemInstruction.parts")
    elif isinstance(raw, list):
        parts = raw
    else:
        raise bad_request("systemInstruction must be a Content object", "systemInstruction")
    texts: list[ir.Text] = []
    for index, part in enumerate(parts):
        path = f"systemInstruction.parts[{index}]"
        text = part if isinstance(part, str) else optional_str(field(dict_or_empty(part, path), "text"), f"{path}.text")
        if text:
            texts.append(ir.Text(text))
    return texts


def _read_tools(raw: Any, req: ir.Request) -> None:
    other_tools: list[dict[str, Any]] = []
    for index, tool in enumerate(list_or_empty(raw, "tools")):
        path = f"tools[{index}]"
        tool = dict_or_empty(tool, path)
        declarations = list_or_empty(field(tool, "functionDeclarations"), f"{path}.functionDeclarations")
        for number, declaration in enumerate(declarations):
            req.tools.append(_declaration(declaration, f"{path}.functionDeclarations[{number}]"))
        rest = {camel(k): v for k, v in tool.items() if camel(k) != "functionDeclarations"}
        if rest:
            other_tools.append(rest)  # googleSearch, codeExecution, urlContext, ...
    if other_tools:
        req.extras["tools"] = other_tools


def _declaration(raw: Any, path: str) -> ir.Tool:
    declaration = dict_or_empty(raw, path)
    name = non_empty_str(field(declaration, "name"), f"{path}.name")
    schema = field(declaration, "parametersJsonSchema")
    param = f"{path}.parametersJsonSchema"
    if schema is None:
        schema, param = field(declaration, "parameters"), f"{path}.parameters"
    schema = optional_dict(schema, param)
    return ir.Tool(
        name=name,
        description=optional_str(field(declaration, "description"), f"{path}.description"),
        parameters=json_schema_from_gemini(schema) if schema is not None else None,
    )


def _read_tool_config(raw: Any, req: ir.Request) -> None:
    config = dict_or_empty(raw, "toolConfig")
    calling = dict_or_empty(field(config, "functionCallingConfig"), "toolConfig.functionCallingConfig")
    rest = {camel(k): v for k, v in config.items() if camel(k) != "functionCallingConfig"}
    mode = optional_str(field(calling, "mode"), "toolConfig.functionCallingConfig.mode")
    names = list_or_empty(
        field(calling, "allowedFunctionNames"), "toolConfig.functionCallingConfig.allowedFunctionNames"
    )
    if mode is not None:
        req.tool_choice = _tool_choice(mode.upper(), names)
    if len(names) > 1:
        # The IR has no "one of these tools"; keep the original for a Gemini upstream.
        rest["functionCallingConfig"] = calling
    if rest:
        req.extras["toolConfig"] = rest


def _tool_choice(mode: str, names: list[Any]) -> ir.ToolChoice | None:
    if mode in ("AUTO", "VALIDATED"):
        return ir.ToolChoice("auto")
    if mode == "NONE":
        return ir.ToolChoice("none")
    if mode == "ANY":
        if len(names) == 1 and isinstance(names[0], str):
            return ir.ToolChoice("tool", names[0])
        return ir.ToolChoice("required")
    if mode == "MODE_UNSPECIFIED":
        return None
    raise bad_request(
        "toolConfig.functionCallingConfig.mode must be AUTO, ANY, NONE or VALIDATED",
        "toolConfig.functionCallingConfig.mode",
    )


# ---------------------------------------------------------------- generationConfig


def _read_generation_config(raw: Any, req: ir.Request) -> None:
    config = dict_or_empty(raw, "generationConfig")
    p = "generationConfig."
    req.max_tokens = _proto_int(field(config, "maxOutputTokens"), p + "maxOutputTokens")
    req.temperature = optional_number(field(config, "temperature"), p + "temperature")
    req.top_p = optional_number(field(config, "topP"), p + "topP")
    top_k = optional_number(field(config, "topK"), p + "topK")
    req.top_k = optional_int(int(top_k), p + "topK") if top_k is not None else None
    req.stop = _stop_sequences(field(config, "stopSequences"))
    req.reasoning = _thinking(dict_or_empty(field(config, "thinkingConfig"), p + "thinkingConfig"))
    rest = {camel(k): v for k, v in config.items() if camel(k) not in _MODELED_GENERATION}
    mime = optional_str(field(config, "responseMimeType"), p + "responseMimeType") or ""
    if mime == _JSON_MIME:
        req.response_format = _json_format(config)
    elif mime not in _PLAIN_MIMES:  # e.g. text/x.enum: only a Gemini upstream understands it
        for name in ("responseMimeType", "responseSchema", "responseJsonSchema"):
            if has_field(config, name):
                rest[name] = field(config, name)
    if rest:
        req.extras["generationConfig"] = rest


def _stop_sequences(raw: Any) -> list[str]:
    if isinstance(raw, str):
        return [raw]
    values = list_or_empty(raw, "generationConfig.stopSequences")
    if not all(isinstance(v, str) for v in values):
        raise bad_request("generationConfig.stopSequences must be strings", "generationConfig.stopSequences")
    return list(values)


def _json_format(config: dict[str, Any]) -> ir.ResponseFormat:
    schema = field(config, "responseJsonSchema")
    param = "generationConfig.responseJsonSchema"
    if schema is None:
        schema, param = field(config, "responseSchema"), "generationConfig.responseSchema"
    if schema is None:
        return ir.ResponseFormat("json_object")
    return ir.ResponseFormat("json_schema", schema=json_schema_from_gemini(required_dict(schema, param)))


def _thinking(config: dict[str, Any]) -> ir.ReasoningConfig | None:
    p = "generationConfig.thinkingConfig."
    level = optional_str(field(config, "thinkingLevel"), p + "thinkingLevel")
    budget = _proto_int(field(config, "thinkingBudget"), p + "thinkingBudget")
    include = optional_bool(field(config, "includeThoughts"), p + "includeThoughts")
    effort: Any = None
    if level and level.upper() != "THINKING_LEVEL_UNSPECIFIED":
        effort = level.lower()
        if effort not in EFFORTS:
            raise bad_request(f"unknown thinkingLevel {level!r}", p + "thinkingLevel")
    if effort is None and budget is None and include is None:
        return None
    return ir.ReasoningConfig(effort=effort, budget=budget, summary=include)

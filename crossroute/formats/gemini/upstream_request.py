"""ir.Request -> the generateContent body sent to a Gemini upstream (no model: it is in the URL)."""

from __future__ import annotations

import mimetypes
from typing import Any
from urllib.parse import urlparse

from crossroute import ir
from crossroute.custom_tools import arguments_object
from crossroute.formats.gemini._wire import OWN_FAMILY, SKIP_SIGNATURE
from crossroute.reasoning import BUDGET_BY_EFFORT
from crossroute.schema import clean_for_gemini

_CUSTOM_TOOL_PARAMETERS = {
    "type": "OBJECT",
    "properties": {"input": {"type": "STRING"}},
    "required": ["input"],
}
_DEFAULT_IMAGE_MIME = "image/jpeg"


def render_request(req: ir.Request, model: str) -> dict[str, Any]:
    contents, hoisted_system = _Contents(req.messages).build()
    body: dict[str, Any] = {"contents": contents}
    system = [t.text for t in req.system if t.text] + hoisted_system
    if system:
        body["systemInstruction"] = {"parts": [{"text": text} for text in system]}
    if req.tools:
        body["tools"] = [{"functionDeclarations": [_declaration(tool) for tool in req.tools]}]
    tool_config = _tool_config(req.tool_choice)
    if tool_config:
        body["toolConfig"] = tool_config
    generation = _generation_config(req, model)
    if generation:
        body["generationConfig"] = generation
    if req.source_format == "gemini":
        _merge_extras(body, req.extras)
    return body


# ---------------------------------------------------------------- contents


class _Contents:
    def __init__(self, messages: list[ir.Message]) -> None:
        self.messages = messages
        self.call_names = {
            part.id: part.name
            for message in messages
            for part in message.parts
            if isinstance(part, ir.ToolCall)
        }

    def build(self) -> tuple[list[dict[str, Any]], list[str]]:
        contents: list[dict[str, Any]] = []
        system: list[str] = []
        for message in self.messages:
            if message.role == "system":
                system.extend(p.text for p in message.parts if isinstance(p, ir.Text) and p.text)
                continue
            role = "model" if message.role == "assistant" else "user"
            parts = self._model_parts(message.parts) if role == "model" else self._user_parts(message.parts)
            if not parts:
                continue
            # Gemini wants all responses to one call turn in one content; merging
            # consecutive same-role contents gives that and costs nothing else.
            if contents and contents[-1]["role"] == role:
                contents[-1]["parts"].extend(parts)
            else:
                contents.append({"role": role, "parts": parts})
        for content in contents:
            if content["role"] == "model":
                _sign_first_call(content["parts"])
        return contents, system

    def _user_parts(self, parts: list[ir.Part]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        trailing_media: list[dict[str, Any]] = []
        for part in parts:
            if isinstance(part, ir.ToolResult):
                out.append(self._function_response(part))
                trailing_media.extend(_media_part(p) for p in part.content if isinstance(p, ir.Image))
            else:
                rendered = _content_part(part)
                if rendered is not None:
                    out.append(rendered)
        return out + trailing_media

    def _function_response(self, result: ir.ToolResult) -> dict[str, Any]:
        name = self.call_names.get(result.call_id) or result.name or "unknown_function"
        key = "error" if result.is_error else "output"
        response = {"id": result.call_id, "name": name, "response": {key: result.text()}}
        return {"functionResponse": response}

    def _model_parts(self, parts: list[ir.Part]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        pending: str | None = None  # a signature waiting for the part it rides on
        for index, part in enumerate(parts):
            if isinstance(part, ir.Reasoning):
                if part.origin != OWN_FAMILY or part.redacted:
                    continue  # another family's reasoning cannot be replayed here
                if not part.text:
                    pending = part.signature or pending
                    continue
                thought: dict[str, Any] = {"text": part.text, "thought": True}
                signature = part.signature or pending
                pending = None
                following = parts[index + 1] if index + 1 < len(parts) else None
                if signature and isinstance(following, ir.ToolCall):
                    # A collected stream folds "thoughts, then a signed call" into one
                    # signed thought; the call is where Gemini checks the signature.
                    pending = signature
                elif signature:
                    thought["thoughtSignature"] = signature
                out.append(thought)
                continue
            rendered = _content_part(part)
            if rendered is None:
                continue
            if pending:
                rendered["thoughtSignature"] = pending
                pending = None
            out.append(rendered)
        if pending:
            _attach_trailing_signature(out, pending)
        return out


def _content_part(part: ir.Part) -> dict[str, Any] | None:
    if isinstance(part, ir.Text):
        return {"text": part.text} if part.text else None
    if isinstance(part, ir.Image):
        return _media_part(part)
    if isinstance(part, ir.ToolCall):
        call = {"id": part.id, "name": part.name, "args": arguments_object(part.arguments, part.kind)}
        return {"functionCall": call}
    return None


def _media_part(image: ir.Image) -> dict[str, Any]:
    inline = image.inline()
    if inline is not None:
        return {"inlineData": {"mimeType": inline[0], "data": inline[1]}}
    url = image.url or ""
    mime = image.media_type or mimetypes.guess_type(urlparse(url).path)[0] or _DEFAULT_IMAGE_MIME
    return {"fileData": {"mimeType": mime, "fileUri": url}}


def _attach_trailing_signature(parts: list[dict[str, Any]], signature: str) -> None:
    """A signature with no part after it rides on the last part, or alone on an empty text part."""
    if parts and "thoughtSignature" not in parts[-1]:
        parts[-1]["thoughtSignature"] = signature
    else:
        parts.append({"text": "", "thoughtSignature": signature})


def _sign_first_call(parts: list[dict[str, Any]]) -> None:
    """Gemini 3 rejects a model turn whose first functionCall has no signature;
    history from another provider has none, so use the documented bypass."""
    for part in parts:
        if "functionCall" in part:
            part.setdefault("thoughtSignature", SKIP_SIGNATURE)
            return


# ---------------------------------------------------------------- tools


def _declaration(tool: ir.Tool) -> dict[str, Any]:
    declaration: dict[str, Any] = {"name": tool.name}
    if tool.description:
        declaration["description"] = tool.description
    if tool.kind == "custom":
        declaration["parameters"] = dict(_CUSTOM_TOOL_PARAMETERS)
    else:
        parameters = clean_for_gemini(tool.parameters)
        # Gemini rejects an OBJECT without properties: a tool without arguments has no parameters.
        if parameters and (parameters.get("properties") or parameters.get("anyOf")):
            declaration["parameters"] = parameters
    return declaration


def _tool_config(choice: ir.ToolChoice | None) -> dict[str, Any] | None:
    if choice is None:
        return None
    if choice.mode == "tool" and choice.name:
        calling: dict[str, Any] = {"mode": "ANY", "allowedFunctionNames": [choice.name]}
    else:
        calling = {"mode": {"auto": "AUTO", "none": "NONE"}.get(choice.mode, "ANY")}
    return {"functionCallingConfig": calling}


# ---------------------------------------------------------------- generationConfig


def _generation_config(req: ir.Request, model: str) -> dict[str, Any]:
    config: dict[str, Any] = {}
    if req.max_tokens is not None:
        config["maxOutputTokens"] = req.max_tokens
    if req.temperature is not None:
        config["temperature"] = req.temperature
    if req.top_p is not None:
        config["topP"] = req.top_p
    if req.top_k is not None:
        config["topK"] = req.top_k
    if req.stop:
        config["stopSequences"] = list(req.stop)
    fmt = req.response_format
    if fmt is not None and fmt.type != "text":
        config["responseMimeType"] = "application/json"
        if fmt.type == "json_schema" and fmt.schema is not None:
            config["responseJsonSchema"] = fmt.schema
    thinking = thinking_config(req.reasoning, model)
    if thinking:
        config["thinkingConfig"] = thinking
    return config


def thinking_config(reasoning: ir.ReasoningConfig | None, model: str) -> dict[str, Any] | None:
    """thinkingConfig for a model: budget 0 turns thinking off; an explicit budget
    wins; Gemini 3 gets a thinkingLevel for an effort, older models a budget."""
    if reasoning is None:
        return None
    if reasoning.effort == "none" or reasoning.budget == 0:
        return {"thinkingBudget": 0}
    config: dict[str, Any] = {}
    if reasoning.budget is not None:
        config["thinkingBudget"] = reasoning.budget
    elif reasoning.effort == "auto":
        config["thinkingBudget"] = BUDGET_BY_EFFORT["auto"]
    elif reasoning.effort is not None:
        if "gemini-3" in model.lower():
            config["thinkingLevel"] = "XHIGH" if reasoning.effort == "max" else reasoning.effort.upper()
        else:
            config["thinkingBudget"] = BUDGET_BY_EFFORT[reasoning.effort]
    # Thought parts come back only when asked for; an explicit "no" is kept.
    config["includeThoughts"] = reasoning.summary is not False
    return config


# ---------------------------------------------------------------- extras


def _merge_extras(body: dict[str, Any], extras: dict[str, Any]) -> None:
    """Same-format hop: put back what the IR does not model. Object fields are
    merged key by key (the extras hold only keys the IR could not express)."""
    for key, value in extras.items():
        current = body.get(key)
        if key == "tools" and isinstance(value, list):
            body["tools"] = (current if isinstance(current, list) else []) + value
        elif isinstance(current, dict) and isinstance(value, dict):
            body[key] = {**current, **value}
        else:
            body[key] = value

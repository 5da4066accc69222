"""Input and output items <-> IR messages and parts."""

from __future__ import annotations

from typing import Any, Literal

import orjson

from crossroute import ir
from crossroute.formats._input import bad_request, optional_str, required_dict, required_list, required_str
from crossroute.formats.openai_responses._common import (
    FAMILY,
    REDACTED_PREFIX,
    get_list,
    get_str,
    reasoning_item_id,
    summary_text,
)

TEXT_PART_TYPES = ("input_text", "output_text", "text")


# ---------------------------------------------------------------- parse input (client -> IR)


class InputParser:
    """Folds input items into `system` (leading system/developer messages) and messages."""

    def __init__(self) -> None:
        self.system: list[ir.Text] = []
        self.messages: list[ir.Message] = []
        self._call_names: dict[str, str] = {}

    def feed_all(self, items: list[Any]) -> None:
        for i, raw in enumerate(items):
            self.feed(required_dict(raw, f"input[{i}]"), f"input[{i}]")

    def feed(self, item: dict[str, Any], param: str) -> None:
        kind = optional_str(item.get("type"), f"{param}.type")
        if kind is None and "role" in item:
            kind = "message"
        if kind == "message":
            self._message(item, param)
        elif kind in ("function_call", "custom_tool_call"):
            self._assistant_part(self._tool_call(item, param))
        elif kind in ("function_call_output", "custom_tool_call_output"):
            self._tool_output(item, param)
        elif kind == "reasoning":
            self._assistant_part(parse_reasoning_item(item, param))
        elif kind is None:
            raise bad_request(f"'{param}.type' is required", f"{param}.type")
        # item_reference and hosted-tool items have no IR form: skipped.

    def _message(self, item: dict[str, Any], param: str) -> None:
        role = required_str(item.get("role"), f"{param}.role")
        if role not in ("user", "assistant", "system", "developer"):
            raise bad_request(f"unknown role '{role}'", f"{param}.role")
        parts = parse_content(item.get("content"), f"{param}.content")
        if role == "assistant":
            for part in parts:
                self._assistant_part(part)
        elif role == "user":
            self.messages.append(ir.Message("user", parts))
        elif not self.messages:
            self.system.extend(p for p in parts if isinstance(p, ir.Text))
        else:
            self.messages.append(ir.Message("system", parts))

    def _assistant_part(self, part: ir.Part) -> None:
        """Assistant text, reasoning and calls of one turn share one message."""
        if not self.messages or self.messages[-1].role != "assistant":
            self.messages.append(ir.Message("assistant"))
        self.messages[-1].parts.append(part)

    def _tool_call(self, item: dict[str, Any], param: str) -> ir.ToolCall:
        call_id = optional_str(item.get("call_id"), f"{param}.call_id") or optional_str(item.get("id"), f"{param}.id")
        if not call_id:
            raise bad_request(f"'{param}.call_id' is required", f"{param}.call_id")
        name = required_str(item.get("name"), f"{param}.name")
        self._call_names[call_id] = name
        if item.get("type") == "custom_tool_call":
            return ir.ToolCall(call_id, name, optional_str(item.get("input"), f"{param}.input") or "", "custom")
        arguments = item.get("arguments")
        if isinstance(arguments, dict):
            arguments = orjson.dumps(arguments).decode()
        elif arguments is None:
            arguments = "{}"
        elif not isinstance(arguments, str):
            raise bad_request(f"'{param}.arguments' must be a string", f"{param}.arguments")
        return ir.ToolCall(call_id, name, arguments)

    def _tool_output(self, item: dict[str, Any], param: str) -> None:
        call_id = required_str(item.get("call_id"), f"{param}.call_id")
        output = item.get("output")
        if output is None or isinstance(output, str):
            content: list[ir.Text | ir.Image] = [ir.Text(output or "")]
        else:
            content = [_output_part(p, f"{param}.output[{i}]") for i, p in enumerate(required_list(output, f"{param}.output"))]
        result = ir.ToolResult(call_id, content, name=self._call_names.get(call_id))
        if self.messages and self.messages[-1].role == "tool":
            self.messages[-1].parts.append(result)
        else:
            self.messages.append(ir.Message("tool", [result]))


def _output_part(raw: Any, param: str) -> ir.Text | ir.Image:
    part = parse_content_part(raw, param)
    if isinstance(part, ir.Text | ir.Image):
        return part
    raise bad_request(f"'{param}' must be text or an image", param)


def parse_content(value: Any, param: str) -> list[ir.Part]:
    if isinstance(value, str):
        return [ir.Text(value)]
    if value is None:
        return []
    return [parse_content_part(p, f"{param}[{i}]") for i, p in enumerate(required_list(value, param))]


def parse_content_part(raw: Any, param: str) -> ir.Part:
    part = required_dict(raw, param)
    kind = required_str(part.get("type"), f"{param}.type")
    if kind in TEXT_PART_TYPES:
        return ir.Text(required_str(part.get("text"), f"{param}.text"))
    if kind == "refusal":
        return ir.Text(required_str(part.get("refusal"), f"{param}.refusal"))
    if kind == "input_image":
        return _parse_image(part, param)
    if kind == "input_file":
        return _parse_file(part, param)
    raise bad_request(f"unsupported content part type '{kind}'", f"{param}.type")


def _parse_image(part: dict[str, Any], param: str) -> ir.Image:
    url = optional_str(part.get("image_url"), f"{param}.image_url")
    if not url:
        raise bad_request("input_image needs an image_url (file ids are not supported)", f"{param}.image_url")
    return ir.Image(url=url, detail=optional_str(part.get("detail"), f"{param}.detail"))


def _parse_file(part: dict[str, Any], param: str) -> ir.Image:
    """Files travel as an Image with the file's media type (the IR has no file part)."""
    data = optional_str(part.get("file_data"), f"{param}.file_data")
    url = optional_str(part.get("file_url"), f"{param}.file_url")
    if data:
        if data.startswith("data:"):
            return ir.Image(url=data)
        return ir.Image(data=data, media_type=_media_type_for(optional_str(part.get("filename"), f"{param}.filename")))
    if url:
        return ir.Image(url=url)
    raise bad_request("input_file needs file_data or file_url (file ids are not supported)", param)


def _media_type_for(filename: str | None) -> str:
    suffix = (filename or "").rsplit(".", 1)[-1].lower()
    return {"pdf": "application/pdf", "png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg",
            "gif": "image/gif", "webp": "image/webp", "txt": "text/plain"}.get(suffix, "application/pdf")


def parse_reasoning_item(item: dict[str, Any], param: str) -> ir.Reasoning:
    item_id = optional_str(item.get("id"), f"{param}.id")
    encrypted = optional_str(item.get("encrypted_content"), f"{param}.encrypted_content")
    signature, origin = ir.signature_from_client(encrypted, FAMILY) if encrypted else (None, None)
    redacted = bool(item_id and item_id.startswith(REDACTED_PREFIX) and origin != FAMILY)
    text = "" if redacted else summary_text(item)
    return ir.Reasoning(text, signature, origin, redacted=redacted, id=item_id)


# ---------------------------------------------------------------- render items (IR -> wire)

Audience = Literal["upstream", "client"]


class ItemRenderer:
    """Messages as input items. For an upstream: only signatures of our own
    family are replayed and ids are left out. For a client (GET input_items):
    every item has an id and status, signatures are tagged for the client."""

    def __init__(self, audience: Audience, namespaces: dict[str, str] | None = None) -> None:
        self.audience = audience
        self.namespaces = namespaces or {}
        self._call_kinds: dict[str, str] = {}

    def render(self, messages: list[ir.Message]) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        for message in messages:
            if message.role == "assistant":
                items.extend(self._assistant(message))
            elif message.role == "tool":
                items.extend(self._tool_output(p) for p in message.parts if isinstance(p, ir.ToolResult))
            else:
                items.append(self._input_message(message))
        return items

    def _input_message(self, message: ir.Message) -> dict[str, Any]:
        role = "user" if message.role == "user" else "developer"
        content = [input_part(p) for p in message.parts if isinstance(p, ir.Text | ir.Image)]
        item: dict[str, Any] = {"type": "message", "role": role, "content": content}
        return self._identify(item, "msg_")

    def _assistant(self, message: ir.Message) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        for part in message.parts:
            if isinstance(part, ir.Text):
                items.append(self._assistant_text(part.text))
            elif isinstance(part, ir.Reasoning):
                items.extend(self._reasoning(part))
            elif isinstance(part, ir.ToolCall):
                self._call_kinds[part.id] = part.kind
                items.append(self._identify(call_item(part, self.namespaces), "ctc_" if part.kind == "custom" else "fc_"))
        return items

    def _assistant_text(self, text: str) -> dict[str, Any]:
        if self.audience == "upstream":  # an "easy" message: output parts would need an id and status
            return {"type": "message", "role": "assistant", "content": text}
        item = {"type": "message", "role": "assistant", "content": [output_text_part(text)]}
        return self._identify(item, "msg_")

    def _reasoning(self, part: ir.Reasoning) -> list[dict[str, Any]]:
        if self.audience == "client":
            return [reasoning_item(part)]
        if part.origin != FAMILY or part.signature is None or part.redacted:
            return []  # another family's reasoning cannot be replayed here
        return [reasoning_item(part)]

    def _tool_output(self, result: ir.ToolResult) -> dict[str, Any]:
        custom = self._call_kinds.get(result.call_id) == "custom"
        item: dict[str, Any] = {
            "type": "custom_tool_call_output" if custom else "function_call_output",
            "call_id": result.call_id,
            "output": tool_output(result),
        }
        return self._identify(item, "ctco_" if custom else "fco_")

    def _identify(self, item: dict[str, Any], prefix: str) -> dict[str, Any]:
        if self.audience == "client":
            item = {"id": ir.new_id(prefix), **item, "status": "completed"}
        return item


def input_part(part: ir.Text | ir.Image) -> dict[str, Any]:
    if isinstance(part, ir.Text):
        return {"type": "input_text", "text": part.text}
    media = part.inline()
    if media is not None and not media[0].startswith("image/"):
        filename = "document." + (media[0].rsplit("/", 1)[-1] or "bin")
        return {"type": "input_file", "filename": filename, "file_data": f"data:{media[0]};base64,{media[1]}"}
    return {"type": "input_image", "image_url": part.as_data_url(), "detail": part.detail or "auto"}


def tool_output(result: ir.ToolResult) -> str | list[dict[str, Any]]:
    if all(isinstance(p, ir.Text) for p in result.content):
        return result.text()
    return [input_part(p) for p in result.content]


# ---------------------------------------------------------------- output items (shared with the encoder)


def output_text_part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def message_item(item_id: str, text: str, status: str = "completed") -> dict[str, Any]:
    content = [output_text_part(text)] if status == "completed" else []
    return {"id": item_id, "type": "message", "role": "assistant", "status": status, "content": content}


def call_item(call: ir.ToolCall, namespaces: dict[str, str], item_id: str | None = None) -> dict[str, Any]:
    item: dict[str, Any]
    if call.kind == "custom":
        item = {"type": "custom_tool_call", "call_id": call.id, "name": call.name, "input": call.arguments}
    else:
        item = {"type": "function_call", "call_id": call.id, "name": call.name, "arguments": call.arguments}
    if call.name in namespaces:
        item["namespace"] = namespaces[call.name]
    if item_id is not None:
        item = {"id": item_id, **item, "status": "completed"}
    return item


def reasoning_item(part: ir.Reasoning) -> dict[str, Any]:
    item: dict[str, Any] = {
        "id": reasoning_item_id(part.id, part.redacted),
        "type": "reasoning",
        "summary": [{"type": "summary_text", "text": part.text}] if part.text else [],
    }
    if part.signature is not None:
        item["encrypted_content"] = ir.signature_for_client(part.signature, part.origin, FAMILY)
    return item


def output_items(parts: list[ir.Part], namespaces: dict[str, str]) -> list[dict[str, Any]]:
    """A response's parts as output items (client side), consecutive text in one message."""
    items: list[dict[str, Any]] = []
    texts: list[str] = []
    for part in parts:
        if isinstance(part, ir.Text):
            texts.append(part.text)
            continue
        if texts:
            items.append(message_item(ir.new_id("msg_"), "".join(texts)))
            texts = []
        if isinstance(part, ir.Reasoning):
            items.append(reasoning_item(part))
        elif isinstance(part, ir.ToolCall):
            items.append(call_item(part, namespaces, ir.new_id("ctc_" if part.kind == "custom" else "fc_")))
    if texts:
        items.append(message_item(ir.new_id("msg_"), "".join(texts)))
    return items


# ---------------------------------------------------------------- parse output items (upstream -> IR)


def parse_output_items(items: list[Any]) -> list[ir.Part]:
    parts: list[ir.Part] = []
    for item in items:
        for part in output_item_parts(item):
            if isinstance(part, ir.Text) and parts and isinstance(parts[-1], ir.Text):
                parts[-1].text += part.text
            else:
                parts.append(part)
    return parts


def output_item_parts(item: Any) -> list[ir.Part]:
    kind = get_str(item, "type")
    if kind == "message":
        return [ir.Text(t) for t in message_texts(item)]
    if kind == "reasoning":
        encrypted = get_str(item, "encrypted_content")
        return [ir.Reasoning(summary_text(item), encrypted, FAMILY, id=get_str(item, "id"))]
    if kind == "function_call":
        return [ir.ToolCall(upstream_call_id(item), get_str(item, "name") or "", get_str(item, "arguments") or "{}")]
    if kind == "custom_tool_call":
        return [ir.ToolCall(upstream_call_id(item), get_str(item, "name") or "", get_str(item, "input") or "", "custom")]
    return []


def message_texts(item: Any) -> list[str]:
    texts: list[str] = []
    for part in get_list(item, "content"):
        kind = get_str(part, "type")
        if kind == "output_text":
            texts.append(get_str(part, "text") or "")
        elif kind == "refusal":
            texts.append(get_str(part, "refusal") or "")
    return texts


def upstream_call_id(item: Any) -> str:
    return get_str(item, "call_id") or ir.new_id("call_")


def is_call(item: Any) -> bool:
    return get_str(item, "type") in ("function_call", "custom_tool_call")

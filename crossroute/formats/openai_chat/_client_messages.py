"""Chat `messages` from a client, as IR system text and messages."""

from __future__ import annotations

from typing import Any

from crossroute.formats._input import (
    bad_request,
    list_or_empty,
    non_empty_str,
    optional_dict,
    optional_str,
    required_dict,
    required_str,
)
from crossroute.formats.openai_chat._common import (
    SIGNATURE_FAMILY,
    arguments_text,
    image_from_url,
    thought_signature_of,
)
from crossroute.ir import (
    Image,
    Message,
    Part,
    Reasoning,
    Request,
    Text,
    ToolCall,
    ToolResult,
    new_id,
    signature_from_client,
)


class MessageReader:
    """Reads messages in order; it remembers call ids and names so tool
    results can be named and legacy `function` results matched to a call."""

    def __init__(self, req: Request) -> None:
        self.req = req
        self._leading_system = True
        self._names_by_call_id: dict[str, str] = {}
        self._legacy_call_ids: dict[str, list[str]] = {}

    def read(self, messages: list[Any]) -> None:
        for i, raw in enumerate(messages):
            path = f"messages[{i}]"
            self._read_one(required_dict(raw, path), path)

    def _read_one(self, raw: dict[str, Any], path: str) -> None:
        role = raw.get("role")
        if role in ("system", "developer"):
            self._read_system(raw, path)
            return
        self._leading_system = False
        if role == "user":
            self.req.messages.append(
                Message("user", list(content_parts(raw.get("content"), f"{path}.content")))
            )
        elif role == "assistant":
            self.req.messages.append(Message("assistant", self._assistant_parts(raw, path)))
        elif role == "tool":
            self._add_result(self._tool_result(raw, path))
        elif role == "function":
            self._add_result(self._legacy_function_result(raw, path))
        else:
            raise bad_request(
                f"'{path}.role' must be one of system, developer, user, assistant, tool", f"{path}.role"
            )

    def _read_system(self, raw: dict[str, Any], path: str) -> None:
        texts = [p for p in content_parts(raw.get("content"), f"{path}.content") if isinstance(p, Text)]
        if self._leading_system:
            self.req.system.extend(texts)
        else:
            self.req.messages.append(Message("system", list(texts)))

    # ------------------------------------------------------------ assistant

    def _assistant_parts(self, raw: dict[str, Any], path: str) -> list[Part]:
        parts: list[Part] = []
        reasoning = _reasoning_text(raw, path)
        if reasoning:
            parts.append(Reasoning(text=reasoning))
        parts.extend(content_parts(raw.get("content"), f"{path}.content", refusal=raw.get("refusal")))
        calls = list_or_empty(raw.get("tool_calls"), f"{path}.tool_calls")
        for j, call in enumerate(calls):
            parts.extend(self._tool_call(call, f"{path}.tool_calls[{j}]"))
        legacy = optional_dict(raw.get("function_call"), f"{path}.function_call")
        if legacy is not None:
            parts.append(self._legacy_function_call(legacy, f"{path}.function_call"))
        return parts

    def _tool_call(self, raw: object, path: str) -> list[Part]:
        raw = required_dict(raw, path)
        call_id = raw.get("id")
        if not isinstance(call_id, str) or not call_id:
            call_id = new_id("call_")
        if raw.get("type") == "custom":
            custom = required_dict(raw.get("custom"), f"{path}.custom")
            name = non_empty_str(custom.get("name"), f"{path}.custom.name")
            raw_input = optional_str(custom.get("input"), f"{path}.custom.input") or ""
            call = ToolCall(call_id, name, raw_input, kind="custom")
        else:
            function = required_dict(raw.get("function"), f"{path}.function")
            name = non_empty_str(function.get("name"), f"{path}.function.name")
            call = ToolCall(call_id, name, arguments_text(function.get("arguments")) or "{}")
        self._names_by_call_id[call_id] = name
        signature = thought_signature_of(raw)
        if signature is None:
            return [call]
        value, origin = signature_from_client(signature, SIGNATURE_FAMILY)
        return [Reasoning(text="", signature=value, origin=origin), call]

    def _legacy_function_call(self, raw: dict[str, Any], path: str) -> ToolCall:
        name = non_empty_str(raw.get("name"), f"{path}.name")
        call_id = new_id("call_")
        self._legacy_call_ids.setdefault(name, []).append(call_id)
        return ToolCall(call_id, name, arguments_text(raw.get("arguments")) or "{}")

    # ------------------------------------------------------------ tool results

    def _tool_result(self, raw: dict[str, Any], path: str) -> ToolResult:
        call_id = non_empty_str(raw.get("tool_call_id"), f"{path}.tool_call_id")
        name = raw.get("name")
        if not isinstance(name, str) or not name:
            name = self._names_by_call_id.get(call_id)
        return ToolResult(call_id, _result_content(raw, path), name=name)

    def _legacy_function_result(self, raw: dict[str, Any], path: str) -> ToolResult:
        name = non_empty_str(raw.get("name"), f"{path}.name")
        pending = self._legacy_call_ids.get(name)
        call_id = pending.pop(0) if pending else new_id("call_")
        return ToolResult(call_id, _result_content(raw, path), name=name)

    def _add_result(self, result: ToolResult) -> None:
        messages = self.req.messages
        if messages and messages[-1].role == "tool":
            messages[-1].parts.append(result)
        else:
            messages.append(Message("tool", [result]))


def _reasoning_text(raw: dict[str, Any], path: str) -> str:
    """`reasoning_content` (DeepSeek/Qwen style); `reasoning` as some servers name it."""
    value = optional_str(raw.get("reasoning_content"), f"{path}.reasoning_content")
    if not value and isinstance(raw.get("reasoning"), str):
        value = raw["reasoning"]
    return value or ""


def _result_content(raw: dict[str, Any], path: str) -> list[Text | Image]:
    return content_parts(raw.get("content"), f"{path}.content")


def content_parts(content: object, path: str, refusal: object = None) -> list[Text | Image]:
    """Message content, a string or an array of parts. Audio and file parts
    become a short text note (the IR has no such part); unknown part types
    without content the IR could hold are skipped."""
    parts: list[Text | Image] = []
    if isinstance(content, str):
        if content:
            parts.append(Text(content))
    elif isinstance(content, list):
        for j, raw in enumerate(content):
            part = _content_part(raw, f"{path}[{j}]")
            if part is not None:
                parts.append(part)
    elif content is not None:
        raise bad_request(f"'{path}' must be a string or an array of content parts", path)
    if isinstance(refusal, str) and refusal:
        parts.append(Text(refusal))
    return parts


def _content_part(raw: object, path: str) -> Text | Image | None:
    if isinstance(raw, str):
        return Text(raw)
    raw = required_dict(raw, path)
    kind = raw.get("type")
    if kind == "text":
        return Text(required_str(raw.get("text"), f"{path}.text"))
    if kind == "refusal":
        refusal = raw.get("refusal")
        return Text(refusal) if isinstance(refusal, str) else None
    if kind == "image_url":
        return _image_part(raw, path)
    if kind == "input_audio":
        return Text("[audio input omitted: not supported by this gateway]")
    if kind == "file":
        return Text(f"[file omitted: {_file_name(raw)}]")
    return None


def _image_part(raw: dict[str, Any], path: str) -> Image:
    image_url = raw.get("image_url")
    detail: str | None = None
    if isinstance(image_url, dict):
        detail = optional_str(image_url.get("detail"), f"{path}.image_url.detail")
        image_url = image_url.get("url")
    if not isinstance(image_url, str) or not image_url.startswith(("data:", "http://", "https://")):
        raise bad_request(f"'{path}.image_url.url' must be an http(s) or data: URL", f"{path}.image_url.url")
    return image_from_url(image_url, detail)


def _file_name(raw: dict[str, Any]) -> str:
    file = raw.get("file")
    if isinstance(file, dict):
        for key in ("filename", "file_id"):
            if isinstance(file.get(key), str) and file[key]:
                return str(file[key])
    return "attachment"

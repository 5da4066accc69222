"""What a fake upstream received, read in its own protocol's terms, so a
translation test can check the far end of the wire."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Seen:
    system: str = ""
    user_texts: list[str] = field(default_factory=list)
    max_tokens: int | None = None
    temperature: float | None = None
    stop: list[str] = field(default_factory=list)
    tool_names: list[str] = field(default_factory=list)
    tool_schemas: list[dict[str, Any]] = field(default_factory=list)
    calls: list[tuple[str, str]] = field(default_factory=list)  # (id, name) of replayed calls
    results: list[tuple[str, str]] = field(default_factory=list)  # (id or name, output text)
    signatures: list[str] = field(default_factory=list)  # replayed reasoning signatures
    reasoning_on: bool = False
    stream: bool = False


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def view_openai(body: dict[str, Any]) -> Seen:
    seen = Seen(max_tokens=body.get("max_completion_tokens") or body.get("max_tokens"),
                temperature=body.get("temperature"), stream=bool(body.get("stream")),
                reasoning_on=bool(body.get("reasoning_effort")))
    stop = body.get("stop")
    seen.stop = [stop] if isinstance(stop, str) else list(stop or [])
    for tool in body.get("tools") or []:
        seen.tool_names.append(tool["function"]["name"])
        seen.tool_schemas.append(tool["function"].get("parameters") or {})
    for message in body["messages"]:
        role = message["role"]
        if role in ("system", "developer"):
            seen.system += _text_of(message["content"])
        elif role == "user":
            seen.user_texts.append(_text_of(message["content"]))
        elif role == "assistant":
            seen.calls += [(c["id"], c["function"]["name"]) for c in message.get("tool_calls") or []]
        elif role == "tool":
            seen.results.append((message["tool_call_id"], _text_of(message["content"])))
    return seen


def view_responses(body: dict[str, Any]) -> Seen:
    seen = Seen(max_tokens=body.get("max_output_tokens"), temperature=body.get("temperature"),
                stream=bool(body.get("stream")), system=body.get("instructions") or "",
                reasoning_on=bool(body.get("reasoning")))
    for tool in body.get("tools") or []:
        if "name" in tool:  # hosted tools (web_search, ...) have none
            seen.tool_names.append(tool["name"])
            seen.tool_schemas.append(tool.get("parameters") or {})
    items = body["input"]
    if isinstance(items, str):
        items = [{"role": "user", "content": items}]
    for item in items:
        kind = item.get("type", "message")
        if kind == "message":
            if item["role"] in ("system", "developer"):
                seen.system += _text_of(item["content"])
            elif item["role"] == "user":
                seen.user_texts.append(_text_of(item["content"]))
        elif kind == "function_call":
            seen.calls.append((item["call_id"], item["name"]))
        elif kind == "function_call_output":
            output = item["output"]
            seen.results.append((item["call_id"], output if isinstance(output, str) else _text_of(output)))
        elif kind == "reasoning" and item.get("encrypted_content"):
            seen.signatures.append(item["encrypted_content"])
    return seen


def view_anthropic(body: dict[str, Any]) -> Seen:
    system = body.get("system") or ""
    seen = Seen(system=_text_of(system), max_tokens=body.get("max_tokens"), temperature=body.get("temperature"),
                stop=list(body.get("stop_sequences") or []), stream=bool(body.get("stream")),
                reasoning_on=(body.get("thinking") or {}).get("type") in ("enabled", "adaptive"))
    for tool in body.get("tools") or []:
        seen.tool_names.append(tool["name"])
        seen.tool_schemas.append(tool.get("input_schema") or {})
    for message in body["messages"]:
        content = message["content"]
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
        texts = []
        for block in blocks:
            if block["type"] == "text":
                texts.append(block["text"])
            elif block["type"] == "tool_use":
                seen.calls.append((block["id"], block["name"]))
            elif block["type"] == "tool_result":
                seen.results.append((block["tool_use_id"], _text_of(block.get("content"))))
            elif block["type"] == "thinking":
                seen.signatures.append(block["signature"])
        if message["role"] == "user" and texts:
            seen.user_texts.append("".join(texts))
    return seen


def view_gemini(body: dict[str, Any]) -> Seen:
    config = body.get("generationConfig") or {}
    seen = Seen(system=_text_of((body.get("systemInstruction") or {}).get("parts")),
                max_tokens=config.get("maxOutputTokens"), temperature=config.get("temperature"),
                stop=list(config.get("stopSequences") or []),
                reasoning_on=bool(config.get("thinkingConfig")))
    for tool in body.get("tools") or []:
        for decl in tool.get("functionDeclarations") or []:
            seen.tool_names.append(decl["name"])
            seen.tool_schemas.append(decl.get("parameters") or decl.get("parametersJsonSchema") or {})
    for content in body["contents"]:
        texts = []
        for part in content["parts"]:
            if "text" in part and not part.get("thought"):
                texts.append(part["text"])
            if "functionCall" in part:
                seen.calls.append((part["functionCall"].get("id", ""), part["functionCall"]["name"]))
                if part.get("thoughtSignature"):
                    seen.signatures.append(part["thoughtSignature"])
            if "functionResponse" in part:
                response = part["functionResponse"]["response"]
                output = response.get("output", response.get("error", response))
                seen.results.append((part["functionResponse"]["name"],
                                     output if isinstance(output, str) else json.dumps(output)))
        if content.get("role", "user") == "user" and texts:
            seen.user_texts.append("".join(texts))
    return seen


VIEWS = {"openai": view_openai, "openai-responses": view_responses, "anthropic": view_anthropic, "gemini": view_gemini}

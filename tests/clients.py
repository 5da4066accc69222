"""The four official SDKs as clients of the gateway, behind one small interface.

Each adapter keeps its conversation in its own native shape (as a real agent
would), sends a turn, and reports what the SDK parsed in a common `Result`."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import anthropic
import openai
from google import genai
from google.genai import types as gtypes

SYSTEM = "You are a careful assistant. Answer briefly."

WEATHER_SCHEMA: dict[str, Any] = {
    # what OpenCode / Claude Code send: 2020-12 keywords Gemini rejects
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "properties": {
        "city": {"type": "string", "description": "City name"},
        "days": {"type": ["integer", "null"], "exclusiveMinimum": 0, "maximum": 9007199254740991},
        "unit": {"anyOf": [{"const": "c"}, {"const": "f"}]},
    },
    "required": ["city"],
    "additionalProperties": False,
}
TOOLS = [("get_weather", "Look up the weather for a city", WEATHER_SCHEMA),
         ("get_time", "Current time in a city", {"type": "object", "properties": {"city": {"type": "string"}}})]


@dataclass
class CallSeen:
    id: str
    name: str
    args: dict[str, Any]
    extra: dict[str, Any] = field(default_factory=dict)  # fields a client keeps and replays (extra_content)


@dataclass
class Result:
    text: str = ""
    reasoning: str = ""
    calls: list[CallSeen] = field(default_factory=list)
    finish: str = ""  # normalised: stop | tool | length | filter
    input_tokens: int | None = None
    output_tokens: int | None = None


class ChatClient:
    name = "chat"

    def __init__(self, base_url: str, key: str, model: str) -> None:
        self.sdk = openai.OpenAI(base_url=f"{base_url}/v1", api_key=key, max_retries=0, timeout=20)
        self.model = model
        self.messages: list[dict[str, Any]] = [{"role": "system", "content": SYSTEM}]

    def user(self, text: str) -> None:
        self.messages.append({"role": "user", "content": text})

    def turn(self, *, stream: bool, tools: bool = False, reasoning: bool = False, max_tokens: int = 300,
             stop: list[str] | None = None) -> Result:
        kwargs: dict[str, Any] = {"model": self.model, "messages": self.messages, "max_tokens": max_tokens,
                                  "temperature": 0.2, "top_p": 0.9}
        if stop:
            kwargs["stop"] = stop
        if tools:
            kwargs["tools"] = [{"type": "function", "function": {"name": n, "description": d, "parameters": s}}
                               for n, d, s in TOOLS]
        if reasoning:
            kwargs["reasoning_effort"] = "medium"
        result = self._stream(kwargs) if stream else self._once(kwargs)
        message: dict[str, Any] = {"role": "assistant", "content": result.text or None}
        if result.calls:
            message["tool_calls"] = [{"id": c.id, "type": "function", **c.extra,
                                      "function": {"name": c.name, "arguments": json.dumps(c.args)}}
                                     for c in result.calls]
        if result.reasoning:
            message["reasoning_content"] = result.reasoning
        self.messages.append(message)
        return result

    def tool_results(self, outputs: dict[str, str]) -> None:
        for call_id, output in outputs.items():
            self.messages.append({"role": "tool", "tool_call_id": call_id, "content": output})

    def _once(self, kwargs: dict[str, Any]) -> Result:
        resp = self.sdk.chat.completions.create(**kwargs)
        choice = resp.choices[0]
        extra = choice.message.model_extra or {}
        calls = [CallSeen(c.id, c.function.name, json.loads(c.function.arguments or "{}"), dict(c.model_extra or {}))
                 for c in choice.message.tool_calls or []]
        return Result(choice.message.content or "", extra.get("reasoning_content") or "", calls,
                      _chat_finish(choice.finish_reason), resp.usage.prompt_tokens if resp.usage else None,
                      resp.usage.completion_tokens if resp.usage else None)

    def _stream(self, kwargs: dict[str, Any]) -> Result:
        result = Result()
        calls: dict[int, dict[str, Any]] = {}
        for chunk in self.sdk.chat.completions.create(**kwargs, stream=True, stream_options={"include_usage": True}):
            if chunk.usage:
                result.input_tokens, result.output_tokens = chunk.usage.prompt_tokens, chunk.usage.completion_tokens
            for choice in chunk.choices:
                delta = choice.delta
                result.text += delta.content or ""
                result.reasoning += (delta.model_extra or {}).get("reasoning_content") or ""
                for tc in delta.tool_calls or []:
                    slot = calls.setdefault(tc.index, {"id": "", "name": "", "args": "", "extra": {}})
                    slot["id"] = tc.id or slot["id"]
                    slot["extra"].update(tc.model_extra or {})
                    if tc.function:
                        slot["name"] += tc.function.name or ""
                        slot["args"] += tc.function.arguments or ""
                if choice.finish_reason:
                    result.finish = _chat_finish(choice.finish_reason)
        result.calls = [CallSeen(c["id"], c["name"], json.loads(c["args"] or "{}"), c["extra"])
                        for _, c in sorted(calls.items())]
        return result


def _chat_finish(reason: str | None) -> str:
    return {"stop": "stop", "tool_calls": "tool", "length": "length", "content_filter": "filter"}.get(reason or "", "")


class ResponsesClient:
    name = "responses"

    def __init__(self, base_url: str, key: str, model: str) -> None:
        self.sdk = openai.OpenAI(base_url=f"{base_url}/v1", api_key=key, max_retries=0, timeout=20)
        self.model = model
        self.items: list[Any] = []

    def user(self, text: str) -> None:
        self.items.append({"role": "user", "content": [{"type": "input_text", "text": text}]})

    def turn(self, *, stream: bool, tools: bool = False, reasoning: bool = False, max_tokens: int = 300,
             stop: list[str] | None = None) -> Result:
        kwargs: dict[str, Any] = {"model": self.model, "instructions": SYSTEM, "input": self.items,
                                  "max_output_tokens": max_tokens, "temperature": 0.2, "top_p": 0.9, "store": False}
        if tools:
            kwargs["tools"] = [{"type": "function", "name": n, "description": d, "parameters": s, "strict": False}
                               for n, d, s in TOOLS]
        if reasoning:
            kwargs["reasoning"] = {"effort": "medium", "summary": "auto"}
            kwargs["include"] = ["reasoning.encrypted_content"]
        if stream:
            with self.sdk.responses.stream(**kwargs) as events:
                for _ in events:
                    pass
                resp = events.get_final_response()
        else:
            resp = self.sdk.responses.create(**kwargs)
        self.items.extend(item.model_dump(exclude_none=True) for item in resp.output)
        return responses_result(resp)

    def tool_results(self, outputs: dict[str, str]) -> None:
        for call_id, output in outputs.items():
            self.items.append({"type": "function_call_output", "call_id": call_id, "output": output})


def responses_result(resp: Any) -> Result:
    result = Result()
    for item in resp.output:
        if item.type == "message":
            result.text += "".join(getattr(p, "text", "") for p in item.content)
        elif item.type == "reasoning":
            result.reasoning += "".join(s.text for s in item.summary)
        elif item.type == "function_call":
            result.calls.append(CallSeen(item.call_id, item.name, json.loads(item.arguments or "{}")))
    if resp.status == "incomplete":
        reason = resp.incomplete_details.reason if resp.incomplete_details else ""
        result.finish = "length" if reason == "max_output_tokens" else "filter"
    else:
        result.finish = "tool" if result.calls else "stop"
    if resp.usage:
        result.input_tokens, result.output_tokens = resp.usage.input_tokens, resp.usage.output_tokens
    return result


class AnthropicClient:
    name = "anthropic"

    def __init__(self, base_url: str, key: str, model: str) -> None:
        self.sdk = anthropic.Anthropic(base_url=base_url, api_key=key, max_retries=0, timeout=20)
        self.model = model
        self.messages: list[dict[str, Any]] = []

    def user(self, text: str) -> None:
        self.messages.append({"role": "user", "content": [{"type": "text", "text": text}]})

    def turn(self, *, stream: bool, tools: bool = False, reasoning: bool = False, max_tokens: int = 300,
             stop: list[str] | None = None) -> Result:
        kwargs: dict[str, Any] = {"model": self.model, "system": [{"type": "text", "text": SYSTEM}],
                                  "messages": self.messages, "max_tokens": max_tokens}
        if stop:
            kwargs["stop_sequences"] = stop
        if tools:
            kwargs["tools"] = [{"name": n, "description": d, "input_schema": s} for n, d, s in TOOLS]
        if reasoning:
            kwargs["thinking"] = {"type": "enabled", "budget_tokens": 2048}
            kwargs["max_tokens"] = max(max_tokens, 4096)
        if stream:
            with self.sdk.messages.stream(**kwargs) as events:
                for _ in events:
                    pass
                message = events.get_final_message()
        else:
            message = self.sdk.messages.create(**kwargs)
        self.messages.append({"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in message.content]})
        result = Result(finish={"end_turn": "stop", "stop_sequence": "stop", "tool_use": "tool",
                                "max_tokens": "length", "refusal": "filter"}.get(message.stop_reason or "", ""),
                        input_tokens=message.usage.input_tokens, output_tokens=message.usage.output_tokens)
        for block in message.content:
            if block.type == "text":
                result.text += block.text
            elif block.type == "thinking":
                result.reasoning += block.thinking
            elif block.type == "tool_use":
                result.calls.append(CallSeen(block.id, block.name, dict(block.input)))  # type: ignore[arg-type]
        return result

    def tool_results(self, outputs: dict[str, str]) -> None:
        self.messages.append({"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": call_id, "content": output} for call_id, output in outputs.items()]})


class GeminiClient:
    name = "gemini"

    def __init__(self, base_url: str, key: str, model: str) -> None:
        self.sdk = genai.Client(api_key=key, http_options=gtypes.HttpOptions(base_url=base_url, timeout=20_000))
        self.model = model
        self.contents: list[gtypes.Content] = []
        self._names: dict[str, str] = {}

    def user(self, text: str) -> None:
        self.contents.append(gtypes.Content(role="user", parts=[gtypes.Part(text=text)]))

    def turn(self, *, stream: bool, tools: bool = False, reasoning: bool = False, max_tokens: int = 300,
             stop: list[str] | None = None) -> Result:
        config = gtypes.GenerateContentConfig(system_instruction=SYSTEM, max_output_tokens=max_tokens,
                                              temperature=0.2, top_p=0.9, stop_sequences=stop)
        if tools:
            config.tools = [gtypes.Tool(function_declarations=[
                gtypes.FunctionDeclaration(name=n, description=d, parameters_json_schema=s) for n, d, s in TOOLS])]
            config.automatic_function_calling = gtypes.AutomaticFunctionCallingConfig(disable=True)
        if reasoning:
            config.thinking_config = gtypes.ThinkingConfig(include_thoughts=True, thinking_budget=2048)
        if stream:
            chunks = list(self.sdk.models.generate_content_stream(model=self.model, contents=self.contents, config=config))
        else:
            chunks = [self.sdk.models.generate_content(model=self.model, contents=self.contents, config=config)]
        result = Result()
        parts: list[gtypes.Part] = []
        for chunk in chunks:
            candidate = (chunk.candidates or [None])[0]
            if candidate is not None and candidate.content and candidate.content.parts:
                parts.extend(candidate.content.parts)
            if candidate is not None and candidate.finish_reason:
                result.finish = {"STOP": "stop", "MAX_TOKENS": "length"}.get(candidate.finish_reason.value, "filter")
            if chunk.usage_metadata:
                meta = chunk.usage_metadata
                result.input_tokens = meta.prompt_token_count
                result.output_tokens = (meta.candidates_token_count or 0) + (meta.thoughts_token_count or 0)
        for part in parts:
            if part.thought:
                result.reasoning += part.text or ""
            elif part.function_call:
                call = part.function_call
                result.calls.append(CallSeen(call.id or call.name or "", call.name or "", dict(call.args or {})))
                self._names[call.id or call.name or ""] = call.name or ""
            elif part.text:
                result.text += part.text
        if result.calls and result.finish == "stop":
            result.finish = "tool"
        self.contents.append(gtypes.Content(role="model", parts=parts))
        return result

    def tool_results(self, outputs: dict[str, str]) -> None:
        self.contents.append(gtypes.Content(role="user", parts=[
            gtypes.Part(function_response=gtypes.FunctionResponse(id=call_id, name=self._names[call_id],
                                                                  response={"output": output}))
            for call_id, output in outputs.items()]))


CLIENTS = {"chat": ChatClient, "responses": ResponsesClient, "anthropic": AnthropicClient, "gemini": GeminiClient}

"""ir.Request -> an Anthropic Messages body for an upstream.

Choices where the API or the brief left room:
- `max_tokens` defaults to 8192 (DEFAULT_MAX_TOKENS) when the client set none.
- Thinking from an effort or budget is `{type: "enabled", budget_tokens}`:
  "auto" (-1) uses the "medium" budget; the budget is at least 1024 and below
  max_tokens. A client cap (max_tokens) is kept and the budget shrinks to fit
  it; with no cap and a budget over the default, max_tokens becomes budget +
  8192, at most 64000. A same-format hop whose reasoning was not changed sends
  the client's own `thinking` object (adaptive, display) unchanged.
- Effort "none" sends `{type: "disabled"}`. A forced tool choice (any/tool)
  sends no thinking at all, since the API rejects the two together.
- With thinking on, temperature / top_p / top_k are dropped; otherwise
  temperature is clamped to Anthropic's 0..1.
- Every system part and Message(role="system") goes to `system`; a
  json_object response format adds a short system instruction.
- A conversation that would start with an assistant turn (or is empty) gets
  a first user turn "(continue)".
- Reasoning is sent only when it came from Anthropic and carries a signature;
  anything else is dropped, never turned into answer text.
"""

from __future__ import annotations

from typing import Any

from crossroute import ir
from crossroute.custom_tools import arguments_object
from crossroute.formats.anthropic._common import OWN_FAMILY, upstream_tool_id
from crossroute.formats.anthropic.client_request import reasoning_from_wire
from crossroute.reasoning import BUDGET_BY_EFFORT, budget_of, effort_of

DEFAULT_MAX_TOKENS = 8192
MIN_THINKING_BUDGET = 1024
RAISED_MAX_TOKENS_CEILING = 64000
CONTINUE_TEXT = "(continue)"
JSON_OBJECT_INSTRUCTION = "Respond with a single valid JSON object and nothing else."
_WIRE_EFFORTS = frozenset({"low", "medium", "high", "xhigh", "max"})
_CUSTOM_TOOL_SCHEMA = {"type": "object", "properties": {"input": {"type": "string"}}, "required": ["input"]}

Block = dict[str, Any]


def render_request(req: ir.Request, model: str) -> dict[str, Any]:
    same_format = req.source_format == "anthropic"
    max_tokens = req.max_tokens if req.max_tokens is not None else DEFAULT_MAX_TOKENS  # 0 is a cache pre-warm
    body: dict[str, Any] = {"model": model, "max_tokens": max_tokens}
    system = _system_blocks(req)
    if system:
        body["system"] = system
    body["messages"] = _messages(req.messages)
    _put_tools(body, req, same_format)
    _put_thinking(body, req, same_format)
    _put_sampling(body, req)
    if req.stop:
        body["stop_sequences"] = list(req.stop)
    if req.response_format and req.response_format.type == "json_schema" and req.response_format.schema:
        body.setdefault("output_config", {})["format"] = {"type": "json_schema", "schema": req.response_format.schema}
    if req.user:
        body["metadata"] = {"user_id": req.user}
    if req.stream:
        body["stream"] = True
    if same_format:
        _merge_extras(body, req.extras)
    return body


def _merge_extras(body: dict[str, Any], extras: dict[str, Any]) -> None:
    """What the IR does not model comes back on a same-format hop; what we rendered wins."""
    for key, value in extras.items():
        if key in ("server_tools", "thinking"):
            continue  # placed by _put_tools / _put_thinking
        if key not in body:
            body[key] = value
        elif isinstance(value, dict) and isinstance(body[key], dict):
            body[key] = {**value, **body[key]}


# ---------------------------------------------------------------- system


def _system_blocks(req: ir.Request) -> list[Block]:
    texts = [p.text for p in req.system]
    for message in req.messages:
        if message.role == "system":
            texts.extend(p.text for p in message.parts if isinstance(p, ir.Text))
    if req.response_format and req.response_format.type == "json_object":
        texts.append(JSON_OBJECT_INSTRUCTION)
    return [{"type": "text", "text": text} for text in texts if text.strip()]


# ---------------------------------------------------------------- messages


def _messages(messages: list[ir.Message]) -> list[dict[str, Any]]:
    turns: list[dict[str, Any]] = []
    for message in messages:
        if message.role == "system":
            continue
        role = "assistant" if message.role == "assistant" else "user"
        blocks = _assistant_blocks(message.parts) if role == "assistant" else _user_blocks(message.parts)
        if not blocks:
            continue
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    for turn in turns:
        if turn["role"] == "user":
            turn["content"] = _tool_results_first(turn["content"])
    if not turns or turns[0]["role"] != "user":
        turns.insert(0, {"role": "user", "content": [{"type": "text", "text": CONTINUE_TEXT}]})
    return turns


def _tool_results_first(blocks: list[Block]) -> list[Block]:
    """The API wants a user turn's tool_result blocks before anything else in it."""
    results = [b for b in blocks if b["type"] == "tool_result"]
    return results + [b for b in blocks if b["type"] != "tool_result"]


def _user_blocks(parts: list[ir.Part]) -> list[Block]:
    blocks: list[Block] = []
    for part in parts:
        if isinstance(part, ir.ToolResult):
            blocks.append(_tool_result_block(part))
        elif isinstance(part, ir.Text | ir.Image):
            block = _content_block(part)
            if block:
                blocks.append(block)
    return blocks


def _assistant_blocks(parts: list[ir.Part]) -> list[Block]:
    blocks: list[Block] = []
    for part in parts:
        block: Block | None = None
        if isinstance(part, ir.Text):
            block = _content_block(part)
        elif isinstance(part, ir.Reasoning):
            block = _thinking_block(part)
        elif isinstance(part, ir.ToolCall):
            block = {"type": "tool_use", "id": upstream_tool_id(part.id), "name": part.name, "input": arguments_object(part.arguments, part.kind)}
        # Images in assistant turns are not accepted by the API: dropped.
        if block:
            blocks.append(block)
    return blocks


def _content_block(part: ir.Text | ir.Image) -> Block | None:
    if isinstance(part, ir.Text):
        # The API rejects empty and whitespace-only text blocks.
        return {"type": "text", "text": part.text} if part.text.strip() else None
    return _image_block(part)


def _image_block(image: ir.Image) -> Block | None:
    inline = image.inline()
    if inline:
        media_type, data = inline
        return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}
    if image.url and image.url.startswith(("http://", "https://")):
        return {"type": "image", "source": {"type": "url", "url": image.url}}
    return None


def _thinking_block(part: ir.Reasoning) -> Block | None:
    if part.origin != OWN_FAMILY or not part.signature:
        return None
    if part.redacted:
        return {"type": "redacted_thinking", "data": part.signature}
    return {"type": "thinking", "thinking": part.text, "signature": part.signature}


def _tool_result_block(result: ir.ToolResult) -> Block:
    block: Block = {"type": "tool_result", "tool_use_id": upstream_tool_id(result.call_id)}
    content = [b for b in (_content_block(p) for p in result.content) if b]
    if content:
        block["content"] = content
    if result.is_error:
        block["is_error"] = True
    return block


# ---------------------------------------------------------------- tools


def _put_tools(body: dict[str, Any], req: ir.Request, same_format: bool) -> None:
    tools: list[dict[str, Any]] = [_tool(t) for t in req.tools]
    if same_format and isinstance(req.extras.get("server_tools"), list):
        tools.extend(req.extras["server_tools"])
    if not tools:
        return  # the API refuses a tool_choice without tools
    body["tools"] = tools
    choice = _tool_choice(req.tool_choice)
    if req.parallel_tool_calls is False and choice.get("type") != "none":
        choice["disable_parallel_tool_use"] = True
    if req.tool_choice or len(choice) > 1:
        body["tool_choice"] = choice


def _tool(tool: ir.Tool) -> dict[str, Any]:
    schema = tool.parameters
    if schema is None:
        schema = _CUSTOM_TOOL_SCHEMA if tool.kind == "custom" else {"type": "object", "properties": {}}
    elif "type" not in schema:
        schema = {"type": "object", **schema}
    wire: dict[str, Any] = {"name": tool.name}
    if tool.description:
        wire["description"] = tool.description
    wire["input_schema"] = schema
    if tool.strict:
        wire["strict"] = True
    return wire


def _tool_choice(choice: ir.ToolChoice | None) -> dict[str, Any]:
    if choice is None or choice.mode == "auto":
        return {"type": "auto"}
    if choice.mode == "required":
        return {"type": "any"}
    if choice.mode == "tool" and choice.name:
        return {"type": "tool", "name": choice.name}
    if choice.mode == "none":
        return {"type": "none"}
    return {"type": "any"}


def _forces_tool(body: dict[str, Any]) -> bool:
    return body.get("tool_choice", {}).get("type") in ("any", "tool")


# ---------------------------------------------------------------- thinking and sampling


def _put_thinking(body: dict[str, Any], req: ir.Request, same_format: bool) -> None:
    config = req.reasoning
    if config is None or _forces_tool(body):
        return
    if same_format and _send_client_thinking(body, req, config):
        return
    effort, budget = effort_of(config), budget_of(config)
    if effort == "none" or budget == 0:
        body["thinking"] = {"type": "disabled"}
        return
    if budget is None:
        return
    if budget < 0:
        budget = BUDGET_BY_EFFORT["medium"]
    if _unsigned_tool_turn(body):
        return
    budget, body["max_tokens"] = _fit_budget(budget, req.max_tokens)
    body["thinking"] = {"type": "enabled", "budget_tokens": budget}


def _unsigned_tool_turn(body: dict[str, Any]) -> bool:
    """With thinking on, the API wants the assistant turn of an ongoing tool loop
    to start with its signed thinking block. A history from a client that could
    not keep one (a Chat client, reasoning from another provider) is sent with
    thinking off for this request rather than refused."""
    assistant = next((m for m in reversed(body["messages"]) if m["role"] == "assistant"), None)
    if assistant is None or isinstance(assistant["content"], str):
        return False
    blocks = assistant["content"]
    has_tool_use = any(b.get("type") == "tool_use" for b in blocks)
    starts_with_thinking = bool(blocks) and blocks[0].get("type") in ("thinking", "redacted_thinking")
    return has_tool_use and not starts_with_thinking


def _fit_budget(budget: int, client_max: int | None) -> tuple[int, int]:
    """(budget_tokens, max_tokens) with 1024 <= budget < max_tokens."""
    budget = max(MIN_THINKING_BUDGET, budget)
    max_tokens = client_max if client_max is not None else DEFAULT_MAX_TOKENS
    if client_max is None and budget >= max_tokens:
        max_tokens = min(budget + DEFAULT_MAX_TOKENS, RAISED_MAX_TOKENS_CEILING)
    if max_tokens <= MIN_THINKING_BUDGET:
        # Nothing fits otherwise; the client's value stays as answer room.
        max_tokens = MIN_THINKING_BUDGET + max(max_tokens, 1)
    return min(budget, max_tokens - 1), max_tokens


def _send_client_thinking(body: dict[str, Any], req: ir.Request, config: ir.ReasoningConfig) -> bool:
    """Send the client's own thinking / effort if the reasoning still is what they parse to."""
    raw = req.extras.get("thinking")
    for effort in (None, config.effort):
        try:
            unchanged = reasoning_from_wire(raw, effort) == config
        except ir.GatewayError:
            return False
        if not unchanged:
            continue
        if raw is not None:
            body["thinking"] = raw
        if effort in _WIRE_EFFORTS:
            body.setdefault("output_config", {})["effort"] = effort
        return True
    return False


def _thinking_on(body: dict[str, Any]) -> bool:
    thinking = body.get("thinking")
    return isinstance(thinking, dict) and thinking.get("type") not in (None, "disabled")


def _put_sampling(body: dict[str, Any], req: ir.Request) -> None:
    if _thinking_on(body):
        return  # the API rejects sampling parameters with thinking on
    if req.temperature is not None:
        body["temperature"] = min(1.0, max(0.0, req.temperature))
    if req.top_p is not None:
        body["top_p"] = req.top_p
    if req.top_k is not None:
        body["top_k"] = req.top_k

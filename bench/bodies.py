"""Fixed bodies for the benchmark: what the fake upstream (nginx) answers, what wrk sends, and how a
gateway's answer is checked.

Every upstream body carries the same assistant text, cut into the same 20 deltas, so whatever format a
gateway translates to, the client must get exactly TEXT back: `check_response` parses a response with
the official SDK types and compares the text, which is how the harness makes sure a gateway answering
errors (or dropping deltas) fast cannot win.

Run as a script: `python bench/bodies.py OUTDIR` writes the upstream bodies to OUTDIR/upstream/ and the
request bodies to OUTDIR/requests/, validating each upstream body with the SDK types first.
"""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path
from typing import Any

CREATED = 1767225600
CHUNKS = [
    "The failing test is `test_parse_empty_body`: ",
    "the parser returns `None` for an empty request ",
    "body, but the handler then calls `.get()` on it. ",
    "\n\nHere is the smallest fix, in `server/http.py`:",
    "\n\n```python\ndef read_json(body: bytes) -> dict:\n",
    "    if not body.strip():\n",
    "        return {}\n",
    "    return json.loads(body)\n```\n\n",
    "With that change an empty body is an empty object, ",
    "so the handler answers 400 with a clear message ",
    "(\"messages is required\") instead of a 500. ",
    "I also added a test for a body that is only ",
    "whitespace, since `json.loads` rejects it too. ",
    "\n\nRun `pytest tests/test_http.py -q` to check: ",
    "all 14 tests pass locally. ",
    "Nothing else calls `read_json`, ",
    "so no other module needs a change. ",
    "If you want the stricter behaviour instead, ",
    "return a 400 from `read_json` itself and let ",
    "the caller pass the error through unchanged.",
]
TEXT = "".join(CHUNKS)
assert len(CHUNKS) == 20
USAGE_IN, USAGE_OUT = 1250, 187

SYSTEM = (
    "You are a coding agent working in the user's repository. Read files before changing them, keep "
    "changes small, explain what you did in a few sentences, and run the tests after every change. "
    "Prefer the project's existing helpers over new dependencies. Never print secrets."
)
HISTORY = [
    ("user", "The CI run fails on test_parse_empty_body. Can you find out why and fix it?"),
    ("assistant", "I'll look at the test and the parser it exercises."),
    ("user", "Here is the traceback:\nTraceback (most recent call last):\n  File \"tests/test_http.py\", "
             "line 41, in test_parse_empty_body\n    resp = client.post('/v1/chat', content=b'')\n"
             "AttributeError: 'NoneType' object has no attribute 'get'\nPlease fix it."),
]
TOOL = {
    "name": "read_file",
    "description": "Read a file of the repository and return its text.",
    "parameters": {"type": "object", "properties": {"path": {"type": "string", "description": "relative path"}},
                   "required": ["path"]},
}


def _sse(events: list[tuple[str | None, Any]], sep: str = "\n\n") -> bytes:
    out = []
    for name, data in events:
        payload = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
        out.append((f"event: {name}\n" if name else "") + f"data: {payload}{sep}")
    return "".join(out).encode()


# ---------------------------------------------------------------- upstream bodies

def chat_json() -> dict[str, Any]:
    return {
        "id": "chatcmpl-bench0001", "object": "chat.completion", "created": CREATED, "model": "gpt-4o-mini",
        "system_fingerprint": "fp_bench",
        "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None,
                     "message": {"role": "assistant", "content": TEXT, "refusal": None}}],
        "usage": {"prompt_tokens": USAGE_IN, "completion_tokens": USAGE_OUT,
                  "total_tokens": USAGE_IN + USAGE_OUT},
    }


def chat_chunks() -> list[dict[str, Any]]:
    base = {"id": "chatcmpl-bench0001", "object": "chat.completion.chunk", "created": CREATED,
            "model": "gpt-4o-mini", "system_fingerprint": "fp_bench"}
    chunks = [{**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""},
                                    "finish_reason": None}]}]
    chunks += [{**base, "choices": [{"index": 0, "delta": {"content": c}, "finish_reason": None}]} for c in CHUNKS]
    chunks.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    chunks.append({**base, "choices": [], "usage": {"prompt_tokens": USAGE_IN, "completion_tokens": USAGE_OUT,
                                                    "total_tokens": USAGE_IN + USAGE_OUT}})
    return chunks


def chat_sse() -> bytes:
    return _sse([(None, c) for c in chat_chunks()] + [(None, "[DONE]")])


def anthropic_json() -> dict[str, Any]:
    return {
        "id": "msg_bench0001", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
        "content": [{"type": "text", "text": TEXT}], "stop_reason": "end_turn", "stop_sequence": None,
        "usage": {"input_tokens": USAGE_IN, "output_tokens": USAGE_OUT,
                  "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0},
    }


def anthropic_events() -> list[dict[str, Any]]:
    start = anthropic_json() | {"content": [], "stop_reason": None,
                                "usage": {"input_tokens": USAGE_IN, "output_tokens": 1,
                                          "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}}
    events: list[dict[str, Any]] = [
        {"type": "message_start", "message": start},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "ping"},
    ]
    events += [{"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": c}}
               for c in CHUNKS]
    events += [
        {"type": "content_block_stop", "index": 0},
        {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
         "usage": {"output_tokens": USAGE_OUT}},
        {"type": "message_stop"},
    ]
    return events


def anthropic_sse() -> bytes:
    return _sse([(e["type"], e) for e in anthropic_events()])


def responses_events() -> list[dict[str, Any]]:
    msg_id, resp_id = "msg_bench0001", "resp_bench0001"
    response = {
        "id": resp_id, "object": "response", "created_at": CREATED, "status": "in_progress", "model": "gpt-4o-mini",
        "output": [], "parallel_tool_calls": True, "tool_choice": "auto", "tools": [], "error": None,
        "incomplete_details": None, "instructions": None, "metadata": {}, "temperature": 1.0, "top_p": 1.0,
        "usage": None,
    }
    part_done = {"type": "output_text", "text": TEXT, "annotations": [], "logprobs": []}
    item_done = {"id": msg_id, "type": "message", "role": "assistant", "status": "completed", "content": [part_done]}
    completed = response | {"status": "completed", "output": [item_done], "usage": {
        "input_tokens": USAGE_IN, "output_tokens": USAGE_OUT, "total_tokens": USAGE_IN + USAGE_OUT,
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0}, "output_tokens_details": {"reasoning_tokens": 0}}}
    events: list[dict[str, Any]] = [
        {"type": "response.created", "response": response},
        {"type": "response.in_progress", "response": response},
        {"type": "response.output_item.added", "output_index": 0,
         "item": {"id": msg_id, "type": "message", "role": "assistant", "status": "in_progress", "content": []}},
        {"type": "response.content_part.added", "item_id": msg_id, "output_index": 0, "content_index": 0,
         "part": {"type": "output_text", "text": "", "annotations": [], "logprobs": []}},
    ]
    events += [{"type": "response.output_text.delta", "item_id": msg_id, "output_index": 0, "content_index": 0,
                "delta": c, "logprobs": []} for c in CHUNKS]
    events += [
        {"type": "response.output_text.done", "item_id": msg_id, "output_index": 0, "content_index": 0,
         "text": TEXT, "logprobs": []},
        {"type": "response.content_part.done", "item_id": msg_id, "output_index": 0, "content_index": 0,
         "part": part_done},
        {"type": "response.output_item.done", "output_index": 0, "item": item_done},
        {"type": "response.completed", "response": completed},
    ]
    for n, e in enumerate(events):
        e["sequence_number"] = n
    return events


def responses_sse() -> bytes:
    return _sse([(e["type"], e) for e in responses_events()])


def gemini_chunks() -> list[dict[str, Any]]:
    out = []
    for n, c in enumerate(CHUNKS):
        last = n == len(CHUNKS) - 1
        cand: dict[str, Any] = {"content": {"role": "model", "parts": [{"text": c}]}, "index": 0}
        if last:
            cand["finishReason"] = "STOP"
        out.append({
            "candidates": [cand],
            "usageMetadata": {"promptTokenCount": USAGE_IN, "totalTokenCount": USAGE_IN + (USAGE_OUT if last else 0),
                              **({"candidatesTokenCount": USAGE_OUT} if last else {})},
            "modelVersion": "gemini-2.5-flash", "responseId": "bench0001",
        })
    return out


def gemini_sse() -> bytes:
    return _sse([(None, c) for c in gemini_chunks()], sep="\r\n\r\n")


UPSTREAM: dict[str, tuple[str, Any]] = {  # name -> (content type, body)
    "chat-json": ("application/json", chat_json),
    "chat-sse": ("text/event-stream", chat_sse),
    "anthropic-json": ("application/json", anthropic_json),
    "anthropic-sse": ("text/event-stream", anthropic_sse),
    "responses-sse": ("text/event-stream", responses_sse),
    "gemini-sse": ("text/event-stream", gemini_sse),
}


def upstream_bytes(name: str) -> bytes:
    body = UPSTREAM[name][1]()
    return body if isinstance(body, bytes) else json.dumps(body, separators=(",", ":")).encode()


# ---------------------------------------------------------------- request bodies (what wrk sends)

def chat_request(model: str, stream: bool) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": model, "stream": stream, "max_tokens": 1024, "temperature": 0.2,
        "messages": [{"role": "system", "content": SYSTEM}] + [{"role": r, "content": t} for r, t in HISTORY],
        "tools": [{"type": "function", "function": TOOL}],
    }
    if stream:
        body["stream_options"] = {"include_usage": True}
    return body


def anthropic_request(model: str, stream: bool) -> dict[str, Any]:
    return {
        "model": model, "stream": stream, "max_tokens": 1024, "temperature": 0.2,
        "system": [{"type": "text", "text": SYSTEM}],
        "messages": [{"role": r, "content": [{"type": "text", "text": t}]} for r, t in HISTORY],
        "tools": [{"name": TOOL["name"], "description": TOOL["description"], "input_schema": TOOL["parameters"]}],
    }


def responses_request(model: str, stream: bool) -> dict[str, Any]:
    return {
        "model": model, "stream": stream, "store": False, "max_output_tokens": 1024, "instructions": SYSTEM,
        "input": [{"type": "message", "role": r, "content": [
            {"type": "input_text" if r == "user" else "output_text", "text": t}]} for r, t in HISTORY],
        "tools": [{"type": "function", **TOOL}],
    }


REQUESTS = {"chat": chat_request, "anthropic": anthropic_request, "responses": responses_request}
PATHS = {"chat": "/v1/chat/completions", "anthropic": "/v1/messages", "responses": "/v1/responses"}


def request_bytes(client: str, model: str, stream: bool) -> bytes:
    return json.dumps(REQUESTS[client](model, stream), separators=(",", ":")).encode()


# ---------------------------------------------------------------- checking answers with the SDK types

class BadResponse(Exception):
    pass


def _sse_events(raw: bytes) -> list[tuple[str | None, str]]:
    text = raw.decode().replace("\r\n", "\n")
    events = []
    for block in text.split("\n\n"):
        name, data = None, []
        for line in block.split("\n"):
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].removeprefix(" "))
        if data:
            events.append((name, "\n".join(data)))
    return events


def check_response(client: str, stream: bool, raw: bytes, sdk_types: bool = True) -> str:
    """Check a client-format answer the way a client reads it; return "" or a note, or raise BadResponse.

    First the shape a client relies on (the stream's end marker, a finish reason, the full TEXT);
    then every object against the official SDK's pydantic type. An answer whose text and framing are
    right but which fails the stricter SDK types is still measured, with the deviation as a note (the
    SDKs themselves do not validate stream events, so clients accept it)."""
    try:
        text, objects = _parse(client, stream, raw)
    except BadResponse:
        raise
    except Exception as exc:  # bad JSON, missing keys
        raise BadResponse(f"{type(exc).__name__}: {exc}"[:400]) from None
    if text != TEXT:
        raise BadResponse(f"text differs: got {text[:80]!r}... ({len(text)} chars, want {len(TEXT)})")
    notes: list[str] = []
    if not sdk_types:
        return ""
    if client != "chat" and stream and b"data: [DONE]" in raw:
        notes.append(f"a {client} stream ending with data: [DONE] (not in that protocol; the openai SDK stops there)")
    if client == "chat" and stream:
        events = _sse_events(raw)
        after = len(events) - 1 - [d for _, d in events].index("[DONE]")
        if after:
            notes.append(f"{after} event(s) after the first data: [DONE] (ignored by the SDK)")
    for kind, obj in objects:
        try:
            sdk = _sdk_type(client, kind)
            sdk.validate_python(obj) if hasattr(sdk, "validate_python") else sdk.model_validate(obj)
        except Exception as exc:
            first = str(exc).splitlines()
            notes.append(f"{kind or client}: {' '.join(x.strip() for x in first[:3])}"[:300])
            break
    return "; ".join(notes)


def _parse(client: str, stream: bool, raw: bytes) -> tuple[str, list[tuple[str, Any]]]:
    """(text, [(kind, object)]) from an answer, by plain JSON, checking the framing clients rely on."""
    if not stream:
        obj = json.loads(raw)
        if client == "chat":
            return obj["choices"][0]["message"]["content"] or "", [("", obj)]
        if client == "anthropic":
            if obj.get("type") != "message":
                raise BadResponse(f"not a message: {raw[:200]!r}")
            return "".join(b["text"] for b in obj["content"] if b["type"] == "text"), [("", obj)]
        raise ValueError(f"no checker for {client} non-stream")
    events = _sse_events(raw)
    if client != "chat" and any(d == "[DONE]" for _, d in events):  # the openai SDK stops there, whatever the stream
        events = events[:[d for _, d in events].index("[DONE]")]
    if client == "chat":
        # like the openai SDK: read until the first [DONE], ignore what follows
        ends = [n for n, (_, d) in enumerate(events) if d == "[DONE]"]
        if not ends:
            raise BadResponse("chat stream has no [DONE]")
        chunks = [json.loads(d) for _, d in events[:ends[0]]]
        if not any(c["choices"] and c["choices"][0].get("finish_reason") for c in chunks):
            raise BadResponse("chat stream has no finish_reason")
        text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
        return text, [("chunk", c) for c in chunks]
    if client == "anthropic":
        objs = [json.loads(d) for name, d in events if name != "ping"]
        if not objs or objs[0]["type"] != "message_start" or objs[-1]["type"] != "message_stop":
            raise BadResponse("Anthropic stream is not message_start ... message_stop")
        text = "".join(e["delta"]["text"] for e in objs if e["type"] == "content_block_delta"
                       and e["delta"]["type"] == "text_delta")
        return text, [("event", e) for e in objs]
    if client == "responses":
        objs = [json.loads(d) for _, d in events]
        if not objs or objs[-1]["type"] != "response.completed":
            raise BadResponse("Responses stream does not end with response.completed")
        return "".join(e["delta"] for e in objs if e["type"] == "response.output_text.delta"), \
            [(e["type"], e) for e in objs]
    if client == "gemini":
        objs = [json.loads(d) for _, d in events]
        if not objs or not objs[-1]["candidates"][0].get("finishReason"):
            raise BadResponse("Gemini stream has no finishReason")
        text = "".join(p.get("text", "") for c in objs for p in c["candidates"][0]["content"].get("parts", []))
        return text, [("chunk", c) for c in objs]
    raise ValueError(f"no checker for {client}")


@functools.cache
def _sdk_type(client: str, kind: str) -> Any:
    if client == "chat":
        from openai.types.chat import ChatCompletion, ChatCompletionChunk
        return ChatCompletionChunk if kind == "chunk" else ChatCompletion
    if client == "anthropic":
        from anthropic.types import Message, RawMessageStreamEvent
        from pydantic import TypeAdapter
        return TypeAdapter(RawMessageStreamEvent) if kind == "event" else Message
    if client == "responses":
        classes = _responses_event_classes()
        if kind not in classes:
            raise BadResponse(f"unknown Responses event type {kind!r}")
        return classes[kind]
    from google.genai import types
    return types.GenerateContentResponse


@functools.cache
def _responses_event_classes() -> dict[str, Any]:
    """openai's ResponseStreamEvent union, keyed by each member's `type` literal."""
    import typing

    from openai.types.responses import ResponseStreamEvent
    union = typing.get_args(ResponseStreamEvent)[0]
    return {typing.get_args(cls.model_fields["type"].annotation)[0]: cls for cls in typing.get_args(union)}


UPSTREAM_CLIENT = {  # how to check an upstream body on its own: (client format, stream)
    "chat-json": ("chat", False), "chat-sse": ("chat", True), "anthropic-json": ("anthropic", False),
    "anthropic-sse": ("anthropic", True), "responses-sse": ("responses", True), "gemini-sse": ("gemini", True),
}


def write_all(out: Path, requests: dict[str, tuple[str, str, bool]]) -> None:
    """Upstream bodies (validated) to out/upstream, request bodies to out/requests."""
    (out / "upstream").mkdir(parents=True, exist_ok=True)
    (out / "requests").mkdir(parents=True, exist_ok=True)
    for name in UPSTREAM:
        raw = upstream_bytes(name)
        note = check_response(*UPSTREAM_CLIENT[name], raw)
        if note:
            raise BadResponse(f"upstream body {name} fails the SDK types: {note}")
        (out / "upstream" / name).write_bytes(raw)
    for name, (client, model, stream) in requests.items():
        (out / "requests" / f"{name}.json").write_bytes(request_bytes(client, model, stream))


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "bench/out/bodies")
    write_all(target, {})
    for name in UPSTREAM:
        print(f"{name}: {len(upstream_bytes(name))} bytes, valid")

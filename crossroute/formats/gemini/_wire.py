"""Pieces of the Gemini wire format shared by the request, response and stream code."""

from __future__ import annotations

import base64
import binascii
import functools
import json
import re
from typing import Any

import orjson

from crossroute import ir

OWN_FAMILY = "gemini"

# Documented sentinels a client sends for history that has no real signature.
SKIP_SIGNATURE = "skip_thought_signature_validator"
_SENTINELS = frozenset({SKIP_SIGNATURE, "context_engineering_is_the_way_to_go"})

_CONTENT_FILTER_REASONS = frozenset(
    {
        "SAFETY",
        "PROHIBITED_CONTENT",
        "BLOCKLIST",
        "SPII",
        "RECITATION",
        "IMAGE_SAFETY",
        "IMAGE_PROHIBITED_CONTENT",
        "IMAGE_RECITATION",
        "IMAGE_OTHER",
        "MODEL_ARMOR",
    }
)
_FINISH_BY_STOP: dict[str, str] = {
    "end_turn": "STOP",
    "stop_sequence": "STOP",
    "tool_use": "STOP",
    "max_tokens": "MAX_TOKENS",
    "content_filter": "SAFETY",
    "error": "OTHER",
}

_CAMEL_HUMP = re.compile(r"(?<!^)(?=[A-Z])")


# ---------------------------------------------------------------- field access


@functools.lru_cache(maxsize=1024)  # field names are a fixed set; the regex per lookup was a quarter of a Gemini stream
def snake(name: str) -> str:
    return _CAMEL_HUMP.sub("_", name).lower()


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(word[:1].upper() + word[1:] for word in rest)


def field(obj: dict[str, Any], name: str) -> Any:
    """A lowerCamelCase field, also found under its snake_case spelling (proto-JSON accepts both)."""
    if name in obj:
        return obj[name]
    return obj.get(snake(name))


def has_field(obj: dict[str, Any], name: str) -> bool:
    return name in obj or snake(name) in obj


def dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def text_of(value: Any) -> str:
    """A string as is, anything else as its JSON."""
    if isinstance(value, str):
        return value
    try:
        return dumps(value)
    except TypeError:  # integers beyond 64 bits: orjson refuses them, the stdlib does not
        return json.dumps(value, ensure_ascii=False, default=str)


# ---------------------------------------------------------------- stop reasons


def stop_reason_from(finish: str | None, *, has_calls: bool) -> ir.StopReason:
    if has_calls:
        return "tool_use"
    if finish in _CONTENT_FILTER_REASONS:
        return "content_filter"
    if finish == "MAX_TOKENS":
        return "max_tokens"
    return "end_turn"


def finish_reason_for(stop: ir.StopReason) -> str:
    return _FINISH_BY_STOP.get(stop, "STOP")


def blocked_prompt(body: dict[str, Any]) -> bool:
    feedback = field(body, "promptFeedback")
    return isinstance(feedback, dict) and bool(field(feedback, "blockReason"))


# ---------------------------------------------------------------- usage


def usage_metadata(usage: ir.Usage) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "promptTokenCount": usage.input_tokens,
        "candidatesTokenCount": max(usage.output_tokens - usage.reasoning_tokens, 0),
        "totalTokenCount": usage.total_tokens,
    }
    if usage.reasoning_tokens:
        meta["thoughtsTokenCount"] = usage.reasoning_tokens
    if usage.cached_tokens:
        meta["cachedContentTokenCount"] = usage.cached_tokens
    return meta


# ---------------------------------------------------------------- signatures
#
# google-genai (Python) types thoughtSignature as bytes and base64-decodes it,
# so a client can only be handed valid base64. A Gemini signature (base64
# already) goes out as it is. Anything else (another family's signature, or
# a Gemini one that is not base64) is tagged with its origin and shown as the
# base64 of the tagged string; it is unwrapped when the client replays it.


def client_signature(signature: str, origin: str | None) -> str:
    own = origin in (None, OWN_FAMILY)
    if own and _is_base64(signature):
        return signature
    # A client family no origin has, so the origin tag is always added.
    tagged = ir.signature_for_client(signature, origin or OWN_FAMILY, client_family="")
    return base64.b64encode(tagged.encode()).decode()


def signature_from_client(value: Any) -> tuple[str, str] | None:
    """(signature, origin) of a thoughtSignature a client replayed; None for a
    sentinel or anything that is not a string."""
    if not isinstance(value, str) or not value or value in _SENTINELS:
        return None
    unwrapped = _unwrap_tagged(value)
    if unwrapped is not None:
        return unwrapped
    return ir.signature_from_client(value, OWN_FAMILY)


def _is_base64(value: str) -> bool:
    try:
        base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


def _unwrap_tagged(value: str) -> tuple[str, str] | None:
    try:
        decoded = base64.b64decode(value, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    signature, origin = ir.signature_from_client(decoded, OWN_FAMILY)
    if signature == decoded:
        return None  # no origin tag inside: a plain Gemini signature
    return signature, origin

"""DashScope's OpenAI-compatible chat for paid API keys (`kind: openai, preset:
dashscope`), and the base of the Qwen Code login provider (crossroute/providers/qwen.py).
It sends the DashScope headers (naming crossroute, not Qwen Code), caps
`max_tokens` at the model's output limit (DashScope refuses a larger value rather
than clipping it), and asks streams for their usage. No OAuth here: a config
without logins does not load the login stack."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from crossroute import __version__, ir
from crossroute.providers.openai_compat import OpenAICompatProvider

USER_AGENT = f"crossroute/{__version__}"
# Lower case, as the data-plane client's header names are.
DASHSCOPE_HEADERS: Mapping[str, str] = {
    "user-agent": USER_AGENT,
    "x-dashscope-useragent": USER_AGENT,
    "x-dashscope-cachecontrol": "enable",
}
# Output-token limits per model (the seed plugin's table; qwen-code's coder models alike).
OUTPUT_CAPS: Mapping[str, int] = {
    "coder-model": 65536,
    "vision-model": 8192,
    "qwen3-coder-plus": 65536,
    "qwen3-coder-flash": 65536,
}

class DashScopeProvider(OpenAICompatProvider):
    """An OpenAI Chat provider for DashScope (chosen by the `dashscope` preset's adaptation)."""

    def headers(self, key: str, client_headers: Mapping[str, str] | None = None) -> dict[str, str]:
        headers = super().headers(key, client_headers)
        headers.update(DASHSCOPE_HEADERS)
        return headers

    def adapt_body(self, body: dict[str, Any], req: ir.Request) -> dict[str, Any]:
        return dashscope_body(super().adapt_body(body, req), copy=False)

    def passthrough_body(self, body: dict[str, Any]) -> dict[str, Any]:
        return dashscope_body(body, copy=True)



def dashscope_body(body: dict[str, Any], *, copy: bool) -> dict[str, Any]:
    """`max_tokens` within the model's output limit, and usage asked for on a stream; `copy`: leave the
    given dict as it is (a client's body on the passthrough)."""
    model = body.get("model")
    cap = OUTPUT_CAPS.get(model) if isinstance(model, str) else None
    over = [name for name in ("max_tokens", "max_completion_tokens") if cap is not None
            and type(body.get(name)) is int and body[name] > cap]
    options = body.get("stream_options")
    options = options if isinstance(options, dict) else {}
    streams = body.get("stream") is True and not options.get("include_usage")
    if not over and not streams:
        return body
    if copy:
        body = dict(body)
    for name in over:
        body[name] = cap
    if streams:
        body["stream_options"] = {**options, "include_usage": True}
    return body

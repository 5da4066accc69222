"""DashScope's OpenAI-compatible chat, two ways in:

- `DashScopeProvider`: paid API keys (`kind: openai, preset: dashscope`);
- `QwenProvider`: Qwen Code logins (kind `qwen`, crossroute/oauth/qwen.py), whose API
  host is each account's `resource_url` unless the config sets `base_url`.

Both send the DashScope headers (naming crossroute, not Qwen Code), cap
`max_tokens` at the model's output limit (DashScope refuses a larger value
rather than clipping it), and ask streams for their usage. A login's quota
refusal (`insufficient_quota`, the free tier's daily limit) rests the account
until the quota comes back: midnight Beijing time, unless the answer named
its own reset time."""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from crossroute import ir
from crossroute.oauth.qwen import DASHSCOPE_HEADERS, QwenLogin, resource_base
from crossroute.providers.login import LoginProvider
from crossroute.providers.openai_compat import OpenAICompatProvider

if TYPE_CHECKING:
    from crossroute.accounts import OAuthToken

# Output-token limits per model (the seed plugin's table; qwen-code's coder models alike).
OUTPUT_CAPS: Mapping[str, int] = {
    "coder-model": 65536,
    "vision-model": 8192,
    "qwen3-coder-plus": 65536,
    "qwen3-coder-flash": 65536,
}
QUOTA_CODES = frozenset({"insufficient_quota", "quota_exceeded"})
QUOTA_WORDS = "free allocated quota exceeded"
QUOTA_DAY = timezone(timedelta(hours=8))  # the daily quota resets at 00:00 Beijing time


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


class QwenProvider(LoginProvider, DashScopeProvider):
    kind = "qwen"
    login = QwenLogin()

    def resource_base(self, token: OAuthToken) -> str | None:
        url = token.extras.get("resource_url")
        return resource_base(url) if isinstance(url, str) and url else None

    def models_request(self, token: OAuthToken) -> tuple[str, dict[str, str]] | None:
        """No live model list: providers.md knows none for Qwen OAuth, so the built-in list serves."""
        return None

    def upstream_error(self, error: ir.GatewayError) -> None:
        if error.code in QUOTA_CODES or QUOTA_WORDS in error.message.lower():
            error.kind, error.code = "billing", error.code or "insufficient_quota"
            if error.retry_after is None:
                error.retry_after = seconds_until_quota_reset(time.time())


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


def seconds_until_quota_reset(now: float) -> float:
    """Seconds from `now` to the next midnight in Beijing, when the free tier's daily quota comes back."""
    today = datetime.fromtimestamp(now, UTC).astimezone(QUOTA_DAY)
    midnight = (today + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return midnight.timestamp() - now

"""Qwen Code logins (kind `qwen`, crossroute/oauth/qwen.py) on DashScope's
OpenAI-compatible chat (crossroute/providers/dashscope.py: its headers, output
caps and stream usage), the API host being each account's `resource_url`
unless the config sets `base_url`. A login's quota refusal (`insufficient_quota`, the free tier's daily limit) rests the account
until the quota comes back: midnight Beijing time, unless the answer named
its own reset time."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta, timezone
from typing import TYPE_CHECKING

from crossroute import ir
from crossroute.oauth.qwen import QwenLogin, resource_base
from crossroute.providers.dashscope import DashScopeProvider
from crossroute.providers.login import LoginProvider

if TYPE_CHECKING:
    from crossroute.accounts import OAuthToken

QUOTA_CODES = frozenset({"insufficient_quota", "quota_exceeded"})
QUOTA_WORDS = "free allocated quota exceeded"
QUOTA_DAY = timezone(timedelta(hours=8))  # the daily quota resets at 00:00 Beijing time


class QwenProvider(LoginProvider, DashScopeProvider):
    kind = "qwen"
    login = QwenLogin()

    def resource_base(self, token: OAuthToken) -> str | None:
        url = token.extras.get("resource_url")
        return resource_base(url) if isinstance(url, str) and url else None

    def models_request(self, token: OAuthToken) -> tuple[str, dict[str, str]] | None:
        """No live model list: providers.md knows none for Qwen OAuth, so the built-in list serves."""
        return None

    def upstream_error(self, error: ir.GatewayError, raw: bytes) -> None:
        if error.code in QUOTA_CODES or QUOTA_WORDS in error.message.lower():
            error.kind, error.code = "billing", error.code or "insufficient_quota"
            if error.retry_after is None:
                error.retry_after = seconds_until_quota_reset(time.time())


def seconds_until_quota_reset(now: float) -> float:
    """Seconds from `now` to the next midnight in Beijing, when the free tier's daily quota comes back."""
    today = datetime.fromtimestamp(now, UTC).astimezone(QUOTA_DAY)
    midnight = (today + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return midnight.timestamp() - now

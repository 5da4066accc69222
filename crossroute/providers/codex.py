"""Codex (ChatGPT plan): a login (crossroute/oauth/codex.py) in front of the
ChatGPT Codex backend, a Responses API with rules of its own
(`https://chatgpt.com/backend-api/codex/responses`): it answers only as a
stream, wants `store: false` and `instructions`, refuses the sampling and
limit parameters, and takes no `system` role in the input. adapt_body makes
any request fit; a client's non-stream request is streamed upstream and
assembled by the pipeline (`streams_only`). Its answers carry the plan's
usage windows (`x-codex-primary-*`, `x-codex-secondary-*`), read here into
the account's quota state; a spent one rests the account until it resets."""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from typing import Any

import orjson

from crossroute import ir
from crossroute.accounts.model import OAuthToken
from crossroute.oauth.codex import CodexLogin
from crossroute.providers.login import LoginProvider
from crossroute.providers.openai_responses import OpenAIResponsesProvider
from crossroute.routing import cooldown
from crossroute.state.accounts import Quota, UsageWindow

# Top-level fields the backend refuses ("Unsupported parameter: ...").
UNSUPPORTED = frozenset({
    "max_output_tokens", "max_completion_tokens", "max_tool_calls", "temperature", "top_p", "frequency_penalty",
    "presence_penalty", "stream_options", "truncation", "metadata", "safety_identifier", "background", "user",
    "prompt_cache_retention", "context_management", "previous_response_id",
})
ENCRYPTED_REASONING = "reasoning.encrypted_content"  # with store: false, how reasoning carries over turns
# The model list names the models a client of this Codex version can drive (it is a protocol level,
# not who asks: the originator and user agent say crossroute). Raise it as the backend moves on.
MODELS_CLIENT_VERSION = "0.144.1"
WINDOWS = ("primary", "secondary")  # the plan's usage windows in the headers: 5 hours, weekly


class CodexProvider(LoginProvider, OpenAIResponsesProvider):
    kind = "codex"
    login = CodexLogin()
    streams_only = True
    forwarded_headers = ()  # the backend wants none of the public API's organization/project headers

    @staticmethod
    def quota_from_headers(headers: Mapping[str, str], now: float | None = None) -> Quota | None:
        """The plan's windows (primary: 5 hours, secondary: weekly): used percent, length, reset."""
        if "x-codex-primary-used-percent" not in headers:
            return None
        now = time.time() if now is None else now
        windows = []
        for name in WINDOWS:
            used = _number(headers.get(f"x-codex-{name}-used-percent"))
            minutes = _number(headers.get(f"x-codex-{name}-window-minutes"))
            if used is None or minutes is None or minutes < 1:
                continue
            after = _number(headers.get(f"x-codex-{name}-reset-after-seconds"))
            at = _number(headers.get(f"x-codex-{name}-reset-at"))
            resets_at = now + after if after is not None else at if at is not None else 0.0
            windows.append(UsageWindow(int(minutes), used, resets_at))
        return Quota(seen_at=now, windows=tuple(windows))

    @staticmethod
    def reset_from_headers(headers: Mapping[str, str], now: float | None = None) -> float | None:
        """Retry-After, else the latest reset of a spent window (an unspent one's reset is no wait)."""
        retry_after = cooldown.retry_after_seconds(headers.get("retry-after"), now)
        if retry_after is not None:
            return retry_after
        spent = [_number(headers.get(f"x-codex-{name}-reset-after-seconds")) for name in WINDOWS
                 if (_number(headers.get(f"x-codex-{name}-used-percent")) or 0) >= 100]
        return max((seconds for seconds in spent if seconds is not None), default=None)

    def adapt_body(self, body: dict[str, Any], req: ir.Request) -> dict[str, Any]:
        body = {name: value for name, value in super().adapt_body(body, req).items() if name not in UNSUPPORTED}
        body.update(stream=True, store=False)
        if not isinstance(body.get("instructions"), str):
            body["instructions"] = ""
        if body.get("service_tier") not in (None, "priority"):
            del body["service_tier"]
        include = body.get("include")
        include = list(include) if isinstance(include, list) else []
        if ENCRYPTED_REASONING not in include:
            body["include"] = [*include, ENCRYPTED_REASONING]
        items = body.get("input")
        if isinstance(items, list):
            body["input"] = [_no_system_role(item) for item in items]
        return body

    def upstream_error(self, error: ir.GatewayError, raw: bytes) -> None:
        """A spent usage window (429 `usage_limit_reached`) is quota, not a rate limit: the account rests
        until the window resets (the headers' reset, else the body's `resets_in_seconds`)."""
        if error.status != 429 or b'"usage_limit_reached"' not in raw:
            return
        error.kind = "billing"
        if error.retry_after is None:
            error.retry_after = reset_in_body(raw)

    def models_request(self, token: OAuthToken) -> tuple[str, dict[str, str]] | None:
        """The live model list: `GET {base}/models?client_version=...` with the account's headers."""
        headers = {"authorization": f"Bearer {token.access_token}", **self.login.request_headers(token),
                   "accept": "application/json"}
        return f"{self.base_url}/models?client_version={MODELS_CLIENT_VERSION}", headers

    def models_from_answer(self, data: Any) -> list[str]:
        """`{"models": [{"slug": ...}, ...]}` -> the slugs."""
        entries = data.get("models") if isinstance(data, dict) else None
        if not isinstance(entries, list):
            return []
        return [entry["slug"] for entry in entries
                if isinstance(entry, dict) and isinstance(entry.get("slug"), str) and entry["slug"]]


def reset_in_body(raw: bytes) -> float | None:
    """A spent plan window says when it lifts in the body: `{"error": {"resets_in_seconds": N}}`."""
    if b"resets_in_seconds" not in raw:
        return None
    try:
        error = orjson.loads(raw).get("error")
        seconds = error.get("resets_in_seconds") if isinstance(error, dict) else None
    except (orjson.JSONDecodeError, AttributeError):
        return None
    return float(seconds) if isinstance(seconds, int | float) and not isinstance(seconds, bool) and seconds >= 0 \
        else None


def _number(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) and number >= 0 else None


def _no_system_role(item: Any) -> Any:
    """The backend refuses `system` input messages; `developer` is its name for them."""
    if isinstance(item, dict) and item.get("role") == "system":
        return {**item, "role": "developer"}
    return item

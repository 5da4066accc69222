"""CodeBuddy (Tencent): an OpenAI Chat API (`{base}/chat/completions`, base
`https://www.codebuddy.ai/v2`, or `https://copilot.tencent.com/v2` with
`region: cn`) that answers only as a stream and refuses a request without a
system message (code 11101). Two kinds of account: API keys (`ck_...`, from
the config's `api_keys` or an auth-dir file) and logins (crossroute/oauth/codebuddy.py).

Both carry the secret twice, as the bearer and as `X-API-Key`; a login adds
its user, enterprise and domain headers. adapt_body makes every request fit
the API's rules: a stream with its usage, a system message (a `developer`
one becomes `system`), `tool_choice` as a string, `max_tokens` at most 32000.
A client's non-stream request is streamed upstream and assembled by the
pipeline (`streams_only`). CodeBuddy's errors (`{"code": 11101, "msg": ...}`)
become the client's format's errors with a status that says what they mean.

The live model list is `GET {host}/v3/config` (one third-party report; its
answer's shape is a guess, so an answer in another shape keeps the built-in
list), fetched with a login's token."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import orjson

from crossroute import ir
from crossroute.accounts.model import ApiKey
from crossroute.oauth.codebuddy import CodeBuddyLogin
from crossroute.providers.base import UpstreamRequest
from crossroute.providers.login import LoginProvider
from crossroute.providers.openai_compat import OpenAICompatProvider

if TYPE_CHECKING:
    from crossroute.accounts import Account, OAuthToken

SYSTEM_PROMPT = "You are a helpful assistant."  # what stands in when the client sent no system message
MAX_OUTPUT_TOKENS = 32000  # above it the API answers 11133 "Invalid request parameters" (max_output_tokens)
# CodeBuddy's error codes -> (HTTP status, error kind) for the client.
ERROR_CODES: Mapping[int, tuple[int, ir.ErrorKind]] = {
    11101: (400, "invalid_request"),  # "Parse message failed", "Non-stream chat request is currently not supported"
    11133: (400, "invalid_request"),  # "Invalid request parameters" (extError.param names the field)
    12153: (401, "authentication"),  # "Offline user session not found": the login is gone
    14401: (403, "permission"),  # "Image model [...] route config not found": not in the account's plan
}


class CodeBuddyProvider(LoginProvider, OpenAICompatProvider):
    kind = "codebuddy"
    login = CodeBuddyLogin()
    streams_only = True

    def auth_headers(self, key: str) -> dict[str, str]:
        return {"authorization": f"Bearer {key}", "x-api-key": key} if key else {}

    def url_for(self, account: Account, model: str, stream: bool) -> str:
        return self.url(model, stream)  # no per-account host (and an API key has no login to ask)

    async def prepare(self, request: UpstreamRequest, account: Account) -> UpstreamRequest:
        if isinstance(account.credential, ApiKey):  # a key: its headers are set already, nothing to refresh
            return request
        return await super().prepare(request, account)

    async def refresh(self, account: Account) -> Account | None:
        if isinstance(account.credential, ApiKey):
            return None
        return await super().refresh(account)

    def adapt_body(self, body: dict[str, Any], req: ir.Request) -> dict[str, Any]:
        body = super().adapt_body(body, req)
        body["stream"] = True
        body["stream_options"] = {**(body.get("stream_options") or {}), "include_usage": True}
        body["messages"] = with_system_message(body.get("messages") or [])
        narrow_tool_choice(body)
        for name in ("max_tokens", "max_completion_tokens"):
            if type(body.get(name)) is int and body[name] > MAX_OUTPUT_TOKENS:
                body[name] = MAX_OUTPUT_TOKENS
        return body

    def upstream_error(self, error: ir.GatewayError, raw: bytes) -> None:
        """`{"code": N, "msg": ...}`: a status and kind for N."""
        answer = _codebuddy_answer(raw)
        if answer is None:
            return
        code, message, param = answer
        status, kind = ERROR_CODES.get(code, (error.status, error.kind))
        error.status, error.kind, error.code = status, kind, str(code)
        error.param = param or error.param
        error.message = f"CodeBuddy refused the request ({code}): {message}" if message else \
            f"CodeBuddy refused the request ({code})"

    def models_request(self, token: OAuthToken) -> tuple[str, dict[str, str]] | None:
        """`GET {host}/v3/config` with the login's headers (the host of the API base)."""
        parts = urlsplit(self.api_base(token))
        headers = {**self.config.headers, **self.auth_headers(token.access_token),
                   **self.login.request_headers(token), "accept": "application/json"}
        return f"{parts.scheme}://{parts.netloc}/v3/config", headers

    def models_from_answer(self, data: Any) -> list[str]:
        """`{"code": 0, "data": {"models": [{"id": ...}]}}` (UNCERTAIN), or OpenAI's `{"data": [{"id": ...}]}`."""
        inner = data.get("data") if isinstance(data, dict) else None
        entries = inner.get("models") if isinstance(inner, dict) else inner
        if not isinstance(entries, list):
            return []
        ids = (entry.get("id") or entry.get("modelId") for entry in entries if isinstance(entry, dict))
        return list(dict.fromkeys(name for name in ids if isinstance(name, str) and name))


def with_system_message(messages: list[Any]) -> list[Any]:
    """The messages with a system message (the API refuses a request without one); `developer` becomes
    `system`, which is the only name the API knows."""
    fixed = [{**m, "role": "system"} if isinstance(m, dict) and m.get("role") == "developer" else m
             for m in messages]
    if any(isinstance(m, dict) and m.get("role") == "system" for m in fixed):
        return fixed
    return [{"role": "system", "content": SYSTEM_PROMPT}, *fixed]


def narrow_tool_choice(body: dict[str, Any]) -> None:
    """`tool_choice` naming one function: the API takes only a string, so the tools are narrowed to that
    one and the call made `required`, which asks the same of the model."""
    choice = body.get("tool_choice")
    if not isinstance(choice, dict):
        return
    named = choice.get("function") if isinstance(choice.get("function"), dict) else choice.get("custom")
    name = named.get("name") if isinstance(named, dict) else None
    tools = body.get("tools")
    if isinstance(name, str) and isinstance(tools, list):
        body["tools"] = [tool for tool in tools if _tool_name(tool) == name] or tools
    body["tool_choice"] = "required"


def _tool_name(tool: Any) -> str | None:
    if not isinstance(tool, dict):
        return None
    inner = tool.get(tool.get("type") or "function")
    return inner.get("name") if isinstance(inner, dict) else None


def _codebuddy_answer(body: bytes) -> tuple[int, str, str | None] | None:
    """(code, msg, the parameter it names) when an error body is CodeBuddy's `{"code": N, "msg": ...}`."""
    if not body.lstrip().startswith(b"{"):
        return None
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    code = data.get("code") if isinstance(data, dict) else None
    if not isinstance(code, int) or isinstance(code, bool) or code == 0:
        return None
    message, ext = data.get("msg"), data.get("extError")
    param = ext.get("param") if isinstance(ext, dict) else None
    return (code, " ".join(message.split())[:500] if isinstance(message, str) else "",
            param if isinstance(param, str) else None)

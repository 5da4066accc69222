"""Kimi Code: a login (crossroute/oauth/kimi.py) in front of an OpenAI Chat API
(`https://api.kimi.com/coding/v1/chat/completions`); the `X-Msh-*` device headers
go with every request."""

from __future__ import annotations

from typing import Any

from crossroute import ir
from crossroute.oauth.kimi import KimiLogin
from crossroute.providers.login import LoginProvider
from crossroute.providers.openai_compat import OpenAICompatProvider


class KimiProvider(LoginProvider, OpenAICompatProvider):
    kind = "kimi"
    login = KimiLogin()

    def adapt_body(self, body: dict[str, Any], req: ir.Request) -> dict[str, Any]:
        body = super().adapt_body(body, req)
        if body.get("stream"):  # the usage comes in a last chunk only when asked for
            body["stream_options"] = {**(body.get("stream_options") or {}), "include_usage": True}
        return body

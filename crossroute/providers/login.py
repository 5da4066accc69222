"""Providers whose accounts are logins (OAuth tokens in the auth dir): the token
is made fresh before each request uses it (by the login kind's lead time) and
once more after a 401, through the kind's RefreshManager (crossroute/oauth/refresh.py).
Their models come from the provider's live list where it has one (`models_request`,
`models_from_answer`; fetched and cached by crossroute/oauth/models.py) unless the
config lists `models:`."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any, ClassVar

from crossroute import ir
from crossroute.config import ProviderConfig
from crossroute.oauth.base import LoginKind, RefreshRejected, RefreshUnavailable
from crossroute.oauth.refresh import manager_for
from crossroute.providers.base import Provider, UpstreamRequest

if TYPE_CHECKING:
    from crossroute.accounts import Account, OAuthToken


class LoginProvider(Provider):
    """Mixed in before the class of the format the API speaks:
    `class KimiProvider(LoginProvider, OpenAICompatProvider)`."""

    login: ClassVar[LoginKind]

    def __init__(self, config: ProviderConfig) -> None:
        super().__init__(config)
        assert config.auth_url is not None
        self.tokens = manager_for(self.login, config.auth_url)

    def resource_base(self, token: OAuthToken) -> str | None:
        """A per-account API base the login answered with (Qwen's `resource_url`); None: the provider's.
        A base_url set in the config wins over it."""
        return None

    def api_base(self, token: OAuthToken) -> str:
        """The API base for the account holding `token`: the config's base_url, else its resource URL."""
        if not self.config.base_url_configured:
            base = self.resource_base(token)
            if base:
                return base.rstrip("/")
        return self.base_url

    def url_for(self, account: Account, model: str, stream: bool) -> str:
        url = self.url(model, stream)
        if not self.config.base_url_configured:
            base = self.resource_base(self.tokens.current(account))
            if base:
                return base.rstrip("/") + url[len(self.base_url):]
        return url

    def models_request(self, token: OAuthToken) -> tuple[str, dict[str, str]] | None:
        """The URL and headers of the provider's live model list for this account's token; None: it
        has none (the built-in list of crossroute/kinds.py is served). By default OpenAI's
        `GET {api base}/models` with the bearer and the kind's request headers."""
        headers = {**self.config.headers, **self.auth_headers(token.access_token),
                   **self.login.request_headers(token)}
        return f"{self.api_base(token)}/models", headers

    def models_from_answer(self, data: Any) -> list[str]:
        """The model ids in the live list's answer (OpenAI's `{"data": [{"id": ...}]}`); [] for a shape
        it does not know."""
        items = data.get("data") if isinstance(data, dict) else None
        if not isinstance(items, list):
            return []
        ids = (item.get("id") for item in items if isinstance(item, dict))
        return list(dict.fromkeys(name for name in ids if isinstance(name, str) and name))

    async def fresh_token(self, account: Account) -> OAuthToken:
        """The account's token, refreshed first if it is due; the client's 401 or 503 when it cannot be."""
        try:
            return await self.tokens.fresh_token(account, self.proxy_for(account))
        except RefreshRejected:
            raise ir.GatewayError(401, f"an account of provider {self.name} needs a new login (crossroute login "
                                       f"{self.name})", kind="authentication") from None
        except RefreshUnavailable:
            raise ir.GatewayError(503, f"provider {self.name}: the login could not be refreshed; try again later",
                                  kind="unavailable") from None

    async def prepare(self, request: UpstreamRequest, account: Account) -> UpstreamRequest:
        token = await self.fresh_token(account)
        if token.access_token != account.secret:
            request.headers.update(self.auth_headers(token.access_token))
        request.headers.update(self.login.request_headers(token))
        return request

    async def refresh(self, account: Account) -> Account | None:
        try:
            token = await self.tokens.after_rejection(account, self.proxy_for(account))
        except (RefreshRejected, RefreshUnavailable):
            return None
        return replace(account, credential=token)

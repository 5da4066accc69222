"""What every provider module provides: where to send a request and how to sign it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from crossroute import ir
from crossroute.config import ProviderConfig
from crossroute.formats import WireFormat

if TYPE_CHECKING:
    from crossroute.accounts import Account
    from crossroute.state.accounts import Quota


@dataclass(slots=True)
class UpstreamRequest:
    """The final upstream call, as `Provider.prepare` sees it: after the payload rules and the encoding."""

    method: str
    url: str
    headers: dict[str, str]
    body: bytes


class Provider:
    """One configured upstream. Subclasses set the class attributes and
    override the hooks their API needs; the pipeline never branches on kind."""

    kind: ClassVar[str]
    format: ClassVar[WireFormat]  # what the upstream speaks
    # client headers worth forwarding on a same-format hop
    forwarded_headers: ClassVar[tuple[str, ...]] = ()
    # A private envelope around the standard format (wrap_body / unwrap_*): never a passthrough.
    has_envelope: ClassVar[bool] = False
    # The upstream answers only as a stream, to a body of its own (adapt_body): never a passthrough, and
    # a client's non-stream request is streamed upstream and assembled into one answer.
    streams_only: ClassVar[bool] = False
    # Whether the class overrides `prepare` / `passthrough_body`: set by __init_subclass__, so a
    # provider that does not costs no call per request.
    prepares: ClassVar[bool] = False
    edits_passthrough: ClassVar[bool] = False
    # Whether the class reads quota and resets from the headers its own way (`quota_from_headers`,
    # `reset_from_headers`), instead of the standard readers of routing/quota.py and routing/cooldown.py.
    reads_own_quota: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.prepares = cls.prepare is not Provider.prepare
        cls.edits_passthrough = cls.passthrough_body is not Provider.passthrough_body
        cls.reads_own_quota = cls.quota_from_headers is not Provider.quota_from_headers

    def __init__(self, config: ProviderConfig) -> None:
        self.config = config
        self.name = config.name
        assert config.base_url is not None
        self.base_url = config.base_url
        self.timeouts = config.timeouts

    def url(self, model: str, stream: bool) -> str:
        raise NotImplementedError

    def proxy_for(self, account: Account) -> str | None:
        """The account's own proxy, else the provider's (None: the environment's, or none)."""
        return self.config.proxy if account.proxy is None else account.proxy

    def url_for(self, account: Account, model: str, stream: bool) -> str:
        """The URL for this account (a per-account resource or project); by default the provider's."""
        return self.url(model, stream)

    async def prepare(self, request: UpstreamRequest, account: Account) -> UpstreamRequest:
        """The last word on the final request (sign it, add per-account headers,
        refresh the token first). Awaited only when a subclass overrides it."""
        return request

    async def refresh(self, account: Account) -> Account | None:
        """After a 401: the account with a fresh credential, to retry once on; None: no refresh."""
        return None

    def wrap_body(self, body: dict[str, Any], model: str) -> dict[str, Any]:
        """The envelope around the upstream body (only with `has_envelope`), before encoding."""
        return body

    def unwrap_response(self, obj: Any) -> Any:
        """The standard answer inside a non-stream envelope (only with `has_envelope`)."""
        return obj

    def unwrap_event(self, obj: Any) -> Any:
        """The standard event inside one SSE data object of a stream (only with `has_envelope`); a str
        is sent on as the data line itself (`[DONE]`)."""
        return obj

    def excludes(self, model: str) -> bool:
        """Whether `excluded_models` hides this model, asked for as `provider/model`."""
        return self.config.excludes(model)

    def auth_headers(self, key: str) -> dict[str, str]:
        return {"authorization": f"Bearer {key}"} if key else {}

    def headers(self, key: str, client_headers: Mapping[str, str] | None = None) -> dict[str, str]:
        headers = {"content-type": "application/json", **self.auth_headers(key), **self.config.headers}
        if client_headers:
            for name in self.forwarded_headers:
                if name in client_headers:
                    headers[name] = client_headers[name]
        return headers

    def adapt_body(self, body: dict[str, Any], req: ir.Request) -> dict[str, Any]:
        """A quirk hook: the last word on the upstream body."""
        return body

    def passthrough_body(self, body: dict[str, Any]) -> dict[str, Any]:
        """The quirk hook of a passthrough (the client's body, in the upstream's format): a new
        dict when it changes something, the client's left as it is. Called only when overridden."""
        return body

    def quota_from_headers(self, headers: Mapping[str, str]) -> Quota | None:
        """The account's quota in an answer's headers, for an upstream that reports it its own way;
        together with `reset_from_headers`. Called only when overridden."""
        raise NotImplementedError

    def reset_from_headers(self, headers: Mapping[str, str]) -> float | None:
        """Seconds an error answer's headers say to rest (with `reads_own_quota`)."""
        raise NotImplementedError

    def upstream_error(self, error: ir.GatewayError, raw: bytes) -> None:
        """A quirk hook on an upstream's error answer (`raw`: its body, secrets scrubbed), after the
        gateway read it: a provider's quota refusal and when the quota comes back (`retry_after`, if
        the headers named none)."""

    def count_tokens_url(self, model: str) -> str | None:
        """The provider's own token-counting endpoint, if it has one."""
        return None

    def count_tokens_url_for(self, account: Account, model: str) -> str | None:
        return self.count_tokens_url(model)

    def count_tokens_body(self, body: dict[str, Any], model: str) -> dict[str, Any]:
        return body

    def read_token_count(self, answer: Any) -> int | None:
        return None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"

"""What every provider module provides: where to send a request and how to sign it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from crossroute import ir
from crossroute.config import ProviderConfig


class Provider:
    """One configured upstream. Subclasses set the class attributes and
    override the hooks their API needs; the pipeline never branches on kind."""

    kind: ClassVar[str]
    format: ClassVar[ir.Format]
    # client headers worth forwarding on a same-format hop
    forwarded_headers: ClassVar[tuple[str, ...]] = ()

    def __init__(self, config: ProviderConfig) -> None:
        self.config = config
        self.name = config.name
        assert config.base_url is not None
        self.base_url = config.base_url
        self.timeouts = config.timeouts

    def url(self, model: str, stream: bool) -> str:
        raise NotImplementedError

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

    def count_tokens_url(self, model: str) -> str | None:
        """The provider's own token-counting endpoint, if it has one."""
        return None

    def count_tokens_body(self, body: dict[str, Any], model: str) -> dict[str, Any]:
        return body

    def read_token_count(self, answer: Any) -> int | None:
        return None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"

"""The control plane's HTTP client (logins, refreshes, model lists): httpx, through the
same proxy the data plane would use for that provider and address (crossroute/upstream_proxy.py):
the provider's or account's `proxy:` (`direct` or "" for none), else HTTPS_PROXY / HTTP_PROXY /
ALL_PROXY / NO_PROXY, loopback always direct. httpx's own reading of the environment is off, so
the two planes never disagree."""

from __future__ import annotations

import os
from urllib.parse import urlsplit

import httpx

from crossroute.oauth.base import HTTP_TIMEOUT
from crossroute.upstream_proxy import DIRECT, Proxy, ProxyEnvironment, parse_proxy


def proxy_for_url(url: str, setting: str | None) -> httpx.Proxy | None:
    """The proxy a control-plane call to `url` goes through; `setting` is `Provider.proxy_for(account)`
    (None: the environment's)."""
    proxy: Proxy | None
    if setting is not None:
        if setting.strip().lower() in DIRECT:
            return None
        proxy = parse_proxy(setting)
    else:
        parts = urlsplit(url)
        scheme = parts.scheme or "https"
        proxy = ProxyEnvironment(os.environ).proxy_for(scheme, parts.hostname or "",
                                                       parts.port or (443 if scheme == "https" else 80))
    if proxy is None:
        return None
    host = f"[{proxy.host}]" if ":" in proxy.host else proxy.host
    headers = {"Proxy-Authorization": proxy.authorization} if proxy.authorization else None
    return httpx.Proxy(f"http://{host}:{proxy.port}", headers=headers)


def control_client(url: str, proxy: str | None, timeout: float = HTTP_TIMEOUT) -> httpx.Client:
    """A client for calls to `url`'s host (an OAuth server, an API's model list)."""
    return httpx.Client(timeout=timeout, proxy=proxy_for_url(url, proxy), trust_env=False)

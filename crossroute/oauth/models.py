"""Login providers' live model lists: fetched off the request path, cached, refreshed periodically.

One `LiveModels` per login provider (whose config lists no `models:`) and gateway, in each
worker. It serves what it last knew: the list in memory, else the cache file in the state dir
(`models-<provider>.json`, written atomically, so a restart, a reload and the other workers
see it at once), else the kind's built-in list (crossroute/kinds.py). A background task fetches
the list again `providers[].models_refresh` seconds after the last fetch (default an hour): with
httpx through the provider's proxy, with a fresh token of one of the provider's usable accounts
from the RefreshManager, under a lock on the cache file, which it reads again first so that of
several workers only one calls. A failed fetch keeps the list served, is logged once per streak
of failures (with no token in the line), and is tried again after `RETRY_SECONDS`."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import orjson

from crossroute import ir
from crossroute.accounts.files import FlockLock, LockTimeout, read_small_file, write_atomic
from crossroute.accounts.model import Account, OAuthToken
from crossroute.oauth.base import RefreshRejected, RefreshUnavailable
from crossroute.oauth.http import control_client
from crossroute.routing.registry import check_model_name
from crossroute.upstream_proxy import UnusableProxy

if TYPE_CHECKING:
    from crossroute.providers.login import LoginProvider

log = logging.getLogger("crossroute.oauth")

RETRY_SECONDS = 60.0  # after a failed fetch (or with no usable account yet), the next try; at most the interval
MAX_ANSWER_BYTES = 1024 * 1024
MAX_MODELS = 1000
MAX_FILE_BYTES = 256 * 1024
LOCK_WAIT = 30.0


class ModelListFailed(Exception):
    """The live list could not be fetched now; the message holds no secret."""


class NoLiveList(Exception):
    """The provider has no live list (`models_request` answered None): the built-in one is served."""


def models_file_for(responses_db: str | Path, provider: str) -> Path:
    """The provider's cached live list, beside the Responses store in the state dir."""
    return Path(responses_db).with_name(f"models-{provider}.json")


class LiveModels:
    def __init__(self, provider: LoginProvider, path: Path, accounts: Callable[[], Iterable[Account]],
                 on_change: Callable[[list[str]], None], clock: Callable[[], float] = time.time) -> None:
        self.provider = provider
        self.path = path
        self.interval = provider.config.models_refresh
        self._accounts = accounts
        self._on_change = on_change
        self._clock = clock
        self.names: list[str] | None = None  # None: not fetched yet (the built-in list is served)
        self.fetched_at = 0.0
        self._failing = False
        self._task: asyncio.Task[None] | None = None
        self._adopt(self._read_file())

    # ------------------------------------------------------------ the task

    def start(self) -> None:
        """Keep the list fresh from now on (a running event loop is needed)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(await self.refresh())

    async def refresh(self) -> float:
        """Fetch the list if it is due; the seconds until the next look."""
        due = self.fetched_at + self.interval - self._clock()
        if self.names is not None and due > 0:
            return due
        try:
            await self._fetch()
        except NoLiveList:
            return self.interval
        except ModelListFailed as exc:
            self._failed(str(exc))
            return min(self.interval, RETRY_SECONDS)
        if self._failing:
            log.info("provider %s: the live model list was fetched again", self.provider.name)
            self._failing = False
        return max(self.fetched_at + self.interval - self._clock(), 0.0)

    async def _fetch(self) -> None:
        if self._adopt(self._read_file()):  # another worker fetched it meanwhile
            return
        usable = [a for a in self._accounts() if a.provider == self.provider.name and a.usable]
        # a login first; an API key where the kind takes keys too (its list is asked with the key)
        account = next((a for a in usable if isinstance(a.credential, OAuthToken)), None) or \
            next((a for a in usable if self.provider.config.api_keys_allowed and a.secret), None)
        if account is None:
            raise ModelListFailed("no usable account (log in with crossroute login)")
        proxy = self.provider.proxy_for(account)
        try:
            token = await self.provider.tokens.fresh_token(account, proxy) \
                if isinstance(account.credential, OAuthToken) else OAuthToken(account.secret)
        except (RefreshRejected, RefreshUnavailable) as exc:
            raise ModelListFailed(f"no fresh token ({exc})") from None
        request = self.provider.models_request(token)
        if request is None:
            raise NoLiveList
        self._adopt(await asyncio.to_thread(self._fetch_locked, request, proxy))

    def _fetch_locked(self, request: tuple[str, dict[str, str]], proxy: str | None) -> dict[str, Any] | None:
        """Under the file's lock: the file if another worker just wrote it, else a new fetch, written."""
        try:
            with FlockLock(self.path.parent).hold(self.path.stem, timeout=LOCK_WAIT):
                cached = self._read_file()
                if cached is not None and self._clock() < cached["fetched_at"] + self.interval:
                    return cached
                names = self._call(*request, proxy)
                cached = {"base_url": self.provider.base_url, "fetched_at": self._clock(), "models": names}
                write_atomic(self.path, orjson.dumps(cached))
                return cached
        except LockTimeout:
            raise ModelListFailed("another worker held the list's lock too long") from None
        except OSError as exc:
            raise ModelListFailed(f"the cache file could not be written ({exc.strerror})") from None

    def _call(self, url: str, headers: dict[str, str], proxy: str | None) -> list[str]:
        try:
            with control_client(url, proxy) as http, http.stream("GET", url, headers=headers) as response:
                if response.status_code != 200:
                    raise ModelListFailed(f"HTTP {response.status_code}")
                body = b""
                for chunk in response.iter_bytes():
                    body += chunk
                    if len(body) > MAX_ANSWER_BYTES:
                        raise ModelListFailed(f"the answer is larger than {MAX_ANSWER_BYTES} bytes")
        except httpx.HTTPError as exc:
            raise ModelListFailed(f"the API could not be reached ({type(exc).__name__})") from None
        except UnusableProxy as exc:
            raise ModelListFailed(str(exc)) from None
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise ModelListFailed("the answer is not JSON") from None
        names = usable_names(self.provider.models_from_answer(data))
        if not names:
            raise ModelListFailed("the answer lists no model")
        return names

    # ------------------------------------------------------------ the cache

    def _read_file(self) -> dict[str, Any] | None:
        return read_cache(self.path, self.provider.base_url)

    def _adopt(self, cached: dict[str, Any] | None) -> bool:
        """Serve `cached` if it is newer than what is served; whether it is fresh."""
        if cached is None:
            return False
        if self.names is None or cached["fetched_at"] > self.fetched_at:
            changed = cached["models"] != self.names
            self.names, self.fetched_at = cached["models"], cached["fetched_at"]
            if changed:
                self._on_change(self.names)
        return self._clock() < self.fetched_at + self.interval

    def _failed(self, reason: str) -> None:
        if self._failing:
            log.debug("provider %s: the live model list could not be fetched (%s)", self.provider.name, reason)
            return
        self._failing = True
        served = "the last fetched list" if self.names is not None else "the built-in list"
        log.warning("provider %s: the live model list could not be fetched (%s); %s is served until it can",
                    self.provider.name, reason, served)


def read_cache(path: Path, base_url: str) -> dict[str, Any] | None:
    """The cached list ({"fetched_at", "models"}) if the file holds a usable one of this API."""
    try:
        data = orjson.loads(read_small_file(path, path.parent, MAX_FILE_BYTES))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("base_url") != base_url:
        return None  # another API's list (the config's base_url changed)
    names, fetched_at = data.get("models"), data.get("fetched_at")
    if not isinstance(names, list) or not isinstance(fetched_at, int | float):
        return None
    names = usable_names(name for name in names if isinstance(name, str))
    return {"fetched_at": float(fetched_at), "models": names} if names else None


def usable_names(names: Iterable[str]) -> list[str]:
    """The model ids a client may ask for by name (as a configured one could be), at most MAX_MODELS."""
    usable: dict[str, None] = {}
    for name in names:
        try:
            check_model_name(name)
        except ir.GatewayError:
            continue
        usable[name] = None
        if len(usable) >= MAX_MODELS:
            break
    return list(usable)

"""Reload an AccountStore when its auth dir changes (watchfiles), so a file
added, edited or removed takes effect without a restart."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from watchfiles import Change, awatch

from crossroute.accounts.files import TEMP_SUFFIX
from crossroute.accounts.store import LOCK_DIR, AccountStore

log = logging.getLogger("crossroute.accounts")

DEBOUNCE_MS = 1600  # a burst of changes is read once, at most this long after it began
STEP_MS = 50  # ... or this long after its last change
RESCAN_SECONDS = 30.0  # a full rescan even without an event (a missed event, a lock that was busy)


async def watch_auth_dir(store: AccountStore, stop: asyncio.Event | None = None) -> None:
    """Until `stop` is set or the task is cancelled."""
    try:
        async for _changes in awatch(store.auth_dir, watch_filter=_worth_a_rescan, debounce=DEBOUNCE_MS,
                                     step=STEP_MS, stop_event=stop, recursive=False,
                                     rust_timeout=int(RESCAN_SECONDS * 1000), yield_on_timeout=True):
            await store.reload_async()
    except OSError as exc:
        log.error("auth dir %s cannot be watched (%s); changes to it take effect at the next restart",
                  store.auth_dir, exc)


def _worth_a_rescan(change: Change, path: str) -> bool:
    name = Path(path).name
    return name != LOCK_DIR and not name.endswith(TEMP_SUFFIX)

"""Fixed-size slot tables in a file that every worker of a host maps into
memory (the account state, the metrics): opening one, the flock that guards
writes, and finding a slot by a 16-byte digest (linear probing)."""

from __future__ import annotations

import fcntl
import functools
import mmap
import os
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

HEADER_SIZE = 64
_HEADER = struct.Struct("=8sI")  # magic (the table's kind and version), capacity
EMPTY = bytes(16)


@dataclass(frozen=True, slots=True)
class Layout:
    magic: bytes  # 8 bytes
    capacity: int
    slot: int  # bytes per slot; each starts with the 16-byte digest of what it holds

    @property
    def size(self) -> int:
        return HEADER_SIZE + self.capacity * self.slot

    def offsets(self, start: int) -> Iterator[int]:
        """Every slot's offset, from the one `start` falls on, wrapping round."""
        for probe in range(self.capacity):
            yield HEADER_SIZE + (start + probe) % self.capacity * self.slot


def open_table(path: Path | None, layout: Layout) -> tuple[int, mmap.mmap]:
    """(fd, mapping) of the table at `path`, created (0600) or started over when
    it is of another kind, version or size; `path=None`: an anonymous mapping
    for one process, with fd -1 (no lock needed)."""
    if path is None:
        table = mmap.mmap(-1, layout.size)
        _HEADER.pack_into(table, 0, layout.magic, layout.capacity)
        return -1, table
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    lock(fd)
    try:
        if os.fstat(fd).st_size != layout.size or os.pread(fd, 8, 0) != layout.magic:
            os.ftruncate(fd, 0)
            os.ftruncate(fd, layout.size)
            os.pwrite(fd, _HEADER.pack(layout.magic, layout.capacity), 0)
    finally:
        unlock(fd)
    return fd, mmap.mmap(fd, layout.size)


def lockers(fd: int) -> tuple[Callable[[], None], Callable[[], None]]:
    """(lock, unlock) of the table's flock as calls straight to flock (a hot path locks three times a
    request); no-ops for an anonymous table (fd -1), which one process has to itself."""
    if fd < 0:
        return _nothing, _nothing
    return functools.partial(fcntl.flock, fd, fcntl.LOCK_EX), functools.partial(fcntl.flock, fd, fcntl.LOCK_UN)


def _nothing() -> None:
    pass


def lock(fd: int) -> None:
    if fd >= 0:
        fcntl.flock(fd, fcntl.LOCK_EX)


def unlock(fd: int) -> None:
    if fd >= 0:
        fcntl.flock(fd, fcntl.LOCK_UN)


def probe(table: mmap.mmap, layout: Layout, digest: bytes) -> tuple[int, bool]:
    """(the slot holding `digest`, True), else (the first empty slot on its path, or -1 if full, False)."""
    for at in layout.offsets(int.from_bytes(digest[:8], "little")):
        held = table[at:at + 16]
        if held == digest:
            return at, True
        if held == EMPTY:
            return at, False
    return -1, False


def used_slots(table: mmap.mmap, layout: Layout) -> Iterator[int]:
    for at in layout.offsets(0):
        if table[at:at + 16] != EMPTY:
            yield at

"""The file primitives of the auth dir: an atomic write (a reader sees the old
file or the new one, never a torn one, even if the writer is killed), a bounded
read that refuses what is not a small regular file inside the dir, and the
cross-process lock that a reader shares and a writer (a token refresh) holds
alone.

`AccountLock` is the one seam for locking: `FlockLock` serves the processes of
one host; a Redis lock will implement the same interface for replicas."""

from __future__ import annotations

import errno
import fcntl
import os
import stat
import tempfile
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Protocol

TEMP_SUFFIX = ".tmp"
DEFAULT_LOCK_TIMEOUT = 10.0
_READ_ONLY_ERRORS = (errno.EROFS, errno.EACCES, errno.EPERM)


class LockTimeout(TimeoutError):
    """The lock was held by someone else for longer than the caller would wait."""


class UnreadableFile(ValueError):
    """A file the auth dir cannot use; the reason never quotes its content."""


class AccountLock(Protocol):
    def hold(self, name: str, *, shared: bool = False,
             timeout: float = DEFAULT_LOCK_TIMEOUT) -> AbstractContextManager[None]:
        """Hold the lock called `name` (an account id) until the block ends:
        shared among readers, exclusive for a writer. Raises LockTimeout."""
        ...


class FlockLock:
    """flock(2) on `<dir>/<name>.lock`, one lock file per account. The lock is
    on a file beside the data because a rewrite replaces the data file's inode.
    Lock files are left in place: removing one while another process waits on
    it would let two holders in at once."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    @contextmanager
    def hold(self, name: str, *, shared: bool = False, timeout: float = DEFAULT_LOCK_TIMEOUT) -> Iterator[None]:
        try:
            fd = self._open(name)
        except OSError as exc:
            if shared and exc.errno in _READ_ONLY_ERRORS:
                # A read-only auth dir (a mounted secret) has no writer to wait for.
                yield
                return
            raise
        try:
            _flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX, timeout)
            yield
        finally:
            os.close(fd)  # closing the descriptor releases the lock

    def _open(self, name: str) -> int:
        path = self.directory / f"{name}.lock"
        try:
            return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except FileNotFoundError:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)


def _flock(fd: int, operation: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    pause = 0.002
    while True:
        try:
            fcntl.flock(fd, operation | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise LockTimeout(f"lock still held after {timeout:g} s") from None
            time.sleep(pause)
            pause = min(pause * 2, 0.05)


def write_atomic(path: Path, data: bytes) -> None:
    """Write `data` to `path` mode 0600 so that the path always names either
    the complete old content or the complete new one: a temp file in the same
    dir, written and fsynced, renamed over the path, then the dir fsynced so
    the rename itself survives a crash."""
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TEMP_SUFFIX)
    try:
        with os.fdopen(fd, "wb") as file:
            os.fchmod(file.fileno(), 0o600)
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp, path)
    except BaseException:
        _remove_quietly(Path(temp))
        raise
    fsync_dir(path.parent)


def remove_durably(path: Path) -> None:
    path.unlink()
    fsync_dir(path.parent)


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_stale_temps(directory: Path, older_than: float = 600.0) -> None:
    """Temp files of writers that were killed mid-write (never those of a
    writer still at work: they are younger than `older_than` seconds)."""
    cutoff = time.time() - older_than
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return
    for entry in entries:
        if entry.name.startswith(".") and entry.name.endswith(TEMP_SUFFIX):
            try:
                if entry.is_file(follow_symlinks=False) and entry.stat(follow_symlinks=False).st_mtime < cutoff:
                    os.unlink(entry.path)
            except OSError:
                pass


def read_small_file(path: Path, root: Path, limit: int) -> bytes:
    """The bytes of `path`, if it is a regular file of at most
    `limit` bytes that is in `root` or a symlink to a file inside `root`."""
    if path.is_symlink() and not _inside(path.resolve(), root.resolve()):
        raise UnreadableFile("a symlink to a file outside the auth dir")
    try:
        before = os.stat(path)
    except FileNotFoundError:
        if path.is_symlink():
            raise UnreadableFile("a broken symlink") from None
        raise
    _check_regular(before, limit)
    # O_NONBLOCK: should a FIFO be swapped in after the check, opening it must not hang.
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        _check_regular(os.fstat(fd), limit)
        with os.fdopen(fd, "rb", closefd=False) as file:
            data = file.read(limit + 1)
    finally:
        os.close(fd)
    if len(data) > limit:
        raise UnreadableFile(f"larger than {limit} bytes")
    return data


def _check_regular(st: os.stat_result, limit: int) -> None:
    if not stat.S_ISREG(st.st_mode):
        raise UnreadableFile("not a regular file")
    if st.st_size > limit:
        raise UnreadableFile(f"larger than {limit} bytes")


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def _remove_quietly(path: Path) -> None:
    try:
        path.unlink()
    except OSError:
        pass

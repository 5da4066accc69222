"""Incremental Server-Sent Events framing, chunk boundaries anywhere."""

from __future__ import annotations

from dataclasses import dataclass

# One event (its data lines) or one line may not pass this: a big inline image in
# a Gemini chunk is tens of MiB; past this, an upstream is not sending an event.
MAX_EVENT_BYTES = 32 * 1024 * 1024


class EventTooLarge(ValueError):
    """The upstream's event or line passed the cap; the message follows the provider's name."""


@dataclass(slots=True)
class SSEFrame:
    event: str | None
    data: str


class SSEParser:
    """Feed raw bytes, get complete frames. Handles \\n, \\r\\n and \\r line
    ends, multi-line data, comments, and a byte stream cut anywhere (even in
    the middle of a UTF-8 sequence). An unfinished line waits in pieces, so a
    long one costs time in proportion to its length; one event or line over
    `limit` bytes raises EventTooLarge."""

    STRAY_LIMIT = 65536

    def __init__(self, limit: int = MAX_EVENT_BYTES) -> None:
        self.limit = limit
        self._pending: list[bytes] = []  # an unfinished line, as it came
        self._pending_size = 0
        self._open_size = 0  # data bytes of the event being collected
        self._event: str | None = None
        self._data: list[str] = []
        # Lines that are not SSE fields, e.g. the bare JSON error object Gemini writes into an SSE stream.
        self.stray: list[str] = []
        self._stray_size = 0

    def feed(self, chunk: bytes) -> list[SSEFrame]:
        if self._pending:
            if b"\n" not in chunk and b"\r" not in chunk and not self._pending[-1].endswith(b"\r"):
                self._hold(chunk)  # the line goes on: only the new piece is searched
                return []
            self._pending.append(chunk)
            buffer = b"".join(self._pending)
            self._pending = []
            self._pending_size = 0
        else:
            buffer = chunk
        frames: list[SSEFrame] = []
        if b"\r" in buffer:
            plain = _plain_line_ends(buffer)
            if plain is None:  # lone \r line ends: the careful way, line by line
                self._take_lines(buffer, frames)
                return frames
            buffer, held = plain
        else:
            held = b""
        end = buffer.rfind(b"\n")
        if end == -1:
            self._hold(buffer)
            self._hold(held)
            return frames
        data = self._data
        size = self._open_size
        for line in buffer[:end].split(b"\n"):  # whole lines only, so no UTF-8 sequence is cut
            if not line:
                if data:
                    frames.append(SSEFrame(self._event, data[0] if len(data) == 1 else "\n".join(data)))
                    data = self._data = []
                self._event = None
                size = 0
            elif line.startswith(b"data: "):
                data.append(line[6:].decode("utf-8", errors="replace"))
                size += len(line)
            elif line.startswith(b"event: "):
                self._event = line[7:].decode("utf-8", errors="replace")
            else:
                self._open_size = size
                self._take_line(line, frames)
                data, size = self._data, self._open_size
        self._open_size = size
        self._check_size()
        self._hold(buffer[end + 1:])
        self._hold(held)
        return frames

    def close(self) -> list[SSEFrame]:
        """End of stream: a final frame without its blank line still counts."""
        frames: list[SSEFrame] = []
        if self._pending:
            rest = b"".join(self._pending)
            self._pending = []
            self._pending_size = 0
            for line in rest.splitlines():
                self._take_line(line, frames)
        self._dispatch(frames)
        return frames

    def _hold(self, piece: bytes) -> None:
        if piece:
            self._pending.append(piece)
            self._pending_size += len(piece)
            self._check_size()

    def _check_size(self) -> None:
        if self._open_size + self._pending_size > self.limit:
            raise EventTooLarge(f"sent an SSE event over {self.limit >> 20} MiB" if self.limit >= 1 << 20
                                else f"sent an SSE event over {self.limit} bytes")

    def _take_lines(self, buffer: bytes, frames: list[SSEFrame]) -> None:
        """Every complete line of the buffer, ends found by position (not by
        re-slicing the rest, which would copy it once per line)."""
        start, last = 0, len(buffer) - 1
        nl, cr = buffer.find(b"\n"), buffer.find(b"\r")
        while True:
            if -1 < nl < start:
                nl = buffer.find(b"\n", start)
            if -1 < cr < start:
                cr = buffer.find(b"\r", start)
            if cr != -1 and (nl == -1 or cr < nl):
                if cr == last:
                    break  # a lone \r at the end may be half of \r\n
                end, skip = cr, 2 if buffer[cr + 1] == 10 else 1
            elif nl != -1:
                end, skip = nl, 1
            else:
                break
            self._take_line(buffer[start:end], frames)
            start = end + skip
        self._check_size()
        self._hold(buffer[start:])

    def _take_line(self, raw: bytes, frames: list[SSEFrame]) -> None:
        if not raw:
            self._dispatch(frames)
            return
        line = raw.decode("utf-8", errors="replace")
        if line.startswith(":"):
            return
        name, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
            self._open_size += len(raw)
        elif name == "event":
            self._event = value
        elif name not in ("id", "retry") and self._stray_size < self.STRAY_LIMIT:
            self.stray.append(line)
            self._stray_size += len(line)

    def _dispatch(self, frames: list[SSEFrame]) -> None:
        if self._data:
            frames.append(SSEFrame(self._event, "\n".join(self._data)))
        self._event = None
        self._data = []
        self._open_size = 0


def _plain_line_ends(buffer: bytes) -> tuple[bytes, bytes] | None:
    """\r\n line ends (Google's) as \n, with a final \r held back as maybe half
    of one; None when the stream uses lone \r line ends."""
    held = b""
    if buffer.endswith(b"\r"):
        buffer, held = buffer[:-1], b"\r"
    plain = buffer.replace(b"\r\n", b"\n")
    return None if b"\r" in plain else (plain, held)


def frame(data: bytes, event: str | None = None) -> bytes:
    """One SSE frame from already-serialised JSON."""
    if event is None:
        return b"data: " + data + b"\n\n"
    return b"event: " + event.encode() + b"\ndata: " + data + b"\n\n"

"""Incremental Server-Sent Events framing, chunk boundaries anywhere."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class SSEFrame:
    event: str | None
    data: str


class SSEParser:
    """Feed raw bytes, get complete frames. Handles \\n, \\r\\n and \\r line
    ends, multi-line data, comments, and a byte stream cut anywhere (even in
    the middle of a UTF-8 sequence)."""

    STRAY_LIMIT = 65536

    def __init__(self) -> None:
        self._buffer = b""
        self._event: str | None = None
        self._data: list[str] = []
        # Lines that are not SSE fields, e.g. the bare JSON error object Gemini writes into an SSE stream.
        self.stray: list[str] = []
        self._stray_size = 0

    def feed(self, chunk: bytes) -> list[SSEFrame]:
        buffer = self._buffer + chunk if self._buffer else chunk
        frames: list[SSEFrame] = []
        if b"\r" in buffer:
            plain = _plain_line_ends(buffer)
            if plain is None:  # lone \r line ends: the careful way, line by line
                self._buffer = buffer
                while True:
                    line, found = self._next_line()
                    if not found:
                        return frames
                    self._take_line(line, frames)
            buffer, held = plain
        else:
            held = b""
        end = buffer.rfind(b"\n")
        if end == -1:
            self._buffer = buffer + held
            return frames
        self._buffer = buffer[end + 1:] + held
        data = self._data
        for line in buffer[:end].split(b"\n"):  # whole lines only, so no UTF-8 sequence is cut
            if not line:
                if data:
                    frames.append(SSEFrame(self._event, data[0] if len(data) == 1 else "\n".join(data)))
                    data = self._data = []
                self._event = None
            elif line.startswith(b"data: "):
                data.append(line[6:].decode("utf-8", errors="replace"))
            elif line.startswith(b"event: "):
                self._event = line[7:].decode("utf-8", errors="replace")
            else:
                self._take_line(line, frames)
                data = self._data
        return frames

    def close(self) -> list[SSEFrame]:
        """End of stream: a final frame without its blank line still counts."""
        frames: list[SSEFrame] = []
        if self._buffer:
            rest, self._buffer = self._buffer, b""
            for line in rest.splitlines():
                self._take_line(line, frames)
        self._dispatch(frames)
        return frames

    def _next_line(self) -> tuple[bytes, bool]:
        buf = self._buffer
        nl = buf.find(b"\n")
        cr = buf.find(b"\r")
        if cr != -1 and (nl == -1 or cr < nl):
            if cr == len(buf) - 1:
                return b"", False  # a lone \r at the end may be half of \r\n
            end, skip = cr, 2 if buf[cr + 1 : cr + 2] == b"\n" else 1
        elif nl != -1:
            end, skip = nl, 1
        else:
            return b"", False
        self._buffer = buf[end + skip :]
        return buf[:end], True

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

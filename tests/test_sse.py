"""SSE framing with any line ending and the bytes cut anywhere."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from crossroute.sse import SSEFrame, SSEParser, frame

texts = st.text(alphabet=st.characters(blacklist_characters="\r\n", blacklist_categories=("Cs",)), max_size=30)
events = st.lists(st.tuples(st.none() | st.text(alphabet="abcdefghij._", min_size=1, max_size=8), texts), max_size=8)


def wire(items: list[tuple[str | None, str]], newline: str) -> bytes:
    out = []
    for event, data in items:
        if event is not None:
            out.append(f"event: {event}{newline}")
        out.append(f": a comment{newline}data: {data}{newline}{newline}")
    return "".join(out).encode()


@settings(max_examples=200, deadline=None)
@given(items=events, newline=st.sampled_from(["\n", "\r\n", "\r"]), cuts=st.lists(st.integers(0, 2000), max_size=10))
def test_frames_survive_any_cut(items: list[tuple[str | None, str]], newline: str, cuts: list[int]) -> None:
    data = wire(items, newline)
    points = sorted({c % (len(data) + 1) for c in cuts})
    parser = SSEParser()
    frames: list[SSEFrame] = []
    for a, b in zip([0, *points], [*points, len(data)], strict=True):
        frames += parser.feed(data[a:b])
    frames += parser.close()
    assert [(f.event, f.data) for f in frames] == items


def test_multi_line_data_and_a_final_frame_without_blank_line() -> None:
    parser = SSEParser()
    frames = parser.feed(b"data: one\ndata: two\n\ndata: last")
    frames += parser.close()
    assert [f.data for f in frames] == ["one\ntwo", "last"]


def test_frame_writes_event_lines() -> None:
    assert frame(b'{"a":1}', "ping") == b'event: ping\ndata: {"a":1}\n\n'
    assert frame(b"[DONE]") == b"data: [DONE]\n\n"

"""Usage read beside passthrough streams, with the bytes cut anywhere."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crossroute import ir
from crossroute.formats import DEFAULT_OPTIONS, FORMATS
from crossroute.usage_sniffer import UsageSniffer
from tests.chunking import split_at

USAGE = ir.Usage(input_tokens=120, output_tokens=45, cached_tokens=20, reasoning_tokens=5)


def encoded_stream(format_name: str) -> bytes:
    encoder = FORMATS[format_name].stream_encoder(ir.Request(model="m", extras={"stream_options": {"include_usage": True}}),
                                                 DEFAULT_OPTIONS)
    response = ir.Response(id="r1", model="m", parts=[ir.Text("hello " * 30), ir.ToolCall("c1", "f", '{"usage": 1}')],
                           stop_reason="tool_use", usage=USAGE)
    return b"".join(encoder.encode(e) for e in ir.response_events(response)) + encoder.close()




@pytest.mark.parametrize("format_name", list(FORMATS))
@settings(max_examples=60, deadline=None)
@given(cuts=st.lists(st.integers(min_value=0, max_value=20000), max_size=12))
def test_usage_is_found_at_any_chunking(format_name: str, cuts: list[int]) -> None:
    sniffer = UsageSniffer()
    for piece in split_at(encoded_stream(format_name), cuts):
        sniffer.feed(piece)
    usage = sniffer.close()
    assert usage is not None
    assert (usage.input_tokens, usage.output_tokens) == (120, 45)


def test_no_usage_in_the_stream_means_none() -> None:
    sniffer = UsageSniffer()
    sniffer.feed(b'data: {"choices":[{"delta":{"content":"hi"}}]}\n\ndata: [DONE]\n\n')
    assert sniffer.close() is None

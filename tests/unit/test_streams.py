"""SSE and NDJSON decoding: the WHATWG rules, and any chunking of the same bytes gives the same
events."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reaper_lsp.net.streams import NDJSONDecoder, SSEDecoder, SSEEvent, StreamTooLarge


def decode(chunks: list[bytes]) -> list[SSEEvent]:
    decoder = SSEDecoder()
    events = [event for chunk in chunks for event in decoder.feed(chunk)]
    decoder.close()
    return events


def split_at(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    pieces, last = [], 0
    for p in points:
        pieces.append(data[last:p])
        last = p
    pieces.append(data[last:])
    return pieces


def test_data_only_events_as_openai_sends_them() -> None:
    raw = b'data: {"a":1}\n\ndata: [DONE]\n\n'
    assert [e.data for e in decode([raw])] == ['{"a":1}', "[DONE]"]
    assert all(e.event == "message" for e in decode([raw]))


def test_named_events_comments_multiline_data_and_id() -> None:
    raw = (
        b": keep-alive\n"
        b"event: content_block_delta\nid: 7\ndata: line one\ndata: line two\n\n"
        b"event: ping\ndata: {}\n\n"
        b"data:no-space\n\n"
    )
    events = decode([raw])
    assert events[0] == SSEEvent("content_block_delta", "line one\nline two", "7", None)
    assert events[1].event == "ping"
    assert events[2].data == "no-space"
    assert events[2].id == "7"  # the last id persists across events


def test_crlf_and_lone_cr_terminators_and_bom() -> None:
    raw = b"\xef\xbb\xbfdata: a\r\n\r\ndata: b\r\rdata: c\n\n"
    assert [e.data for e in decode([raw])] == ["a", "b", "c"]


def test_bom_split_across_chunks_is_removed_once() -> None:
    assert [e.data for e in decode([b"\xef", b"\xbb", b"\xbfdata: x\n\n"])] == ["x"]
    # A BOM later in the stream is data.
    assert decode([b"data: \xef\xbb\xbfy\n\n"])[0].data == "\ufeffy"


def test_event_without_data_is_dropped_and_unterminated_event_discarded() -> None:
    assert decode([b"event: ping\n\ndata: tail"]) == []


def test_unicode_line_separators_inside_json_do_not_split_events() -> None:
    payload = json.dumps({"text": "a\u2028b\u0085c\x0bd"}, ensure_ascii=False)
    raw = f"data: {payload}\n\n".encode()
    [event] = decode([raw])
    assert json.loads(event.data)["text"] == "a\u2028b\u0085c\x0bd"


def test_retry_field_only_when_all_digits() -> None:
    assert decode([b"retry: 1500\ndata: x\n\n"])[0].retry == 1500
    assert decode([b"retry: 15x\ndata: x\n\n"])[0].retry is None


def test_oversized_line_raises() -> None:
    decoder = SSEDecoder(max_event=100)
    with pytest.raises(StreamTooLarge):
        list(decoder.feed(b"data: " + b"x" * 200))


SAMPLE = (
    '\ufeffevent: message_start\r\ndata: {"a": "é😀\u2028"}\r\n\r\n'
    ": comment\n\ndata: one\ndata: two\r\rdata: [DONE]\n\n"
).encode()


@given(st.lists(st.integers(min_value=0, max_value=10_000), max_size=12))
def test_any_chunking_gives_the_same_events(cuts: list[int]) -> None:
    assert decode(split_at(SAMPLE, cuts)) == decode([SAMPLE])


@given(
    st.lists(
        st.text(alphabet=st.characters(blacklist_characters="\r\n", blacklist_categories=("Cs",))),
        max_size=5,
    )
)
def test_data_lines_round_trip(values: list[str]) -> None:
    raw = "".join(f"data: {v}\n\n" for v in values).encode()
    got = [e.data for e in decode([raw])]
    # An event whose data is empty is still dispatched ("data:" with empty value appends "").
    assert got == values


def test_ndjson_lines_split_on_newline_only() -> None:
    decoder = NDJSONDecoder()
    lines = list(decoder.feed(b'{"a":"x\xe2\x80\xa8y"}\n\n{"b":'))
    lines += list(decoder.feed(b'2}\n{"c":3}'))
    lines += decoder.close()
    assert [json.loads(line) for line in lines] == [{"a": "x\u2028y"}, {"b": 2}, {"c": 3}]


@given(st.lists(st.integers(min_value=0, max_value=200), max_size=8))
def test_ndjson_any_chunking(cuts: list[int]) -> None:
    raw = b'{"response":"h\xc3\xa9"}\r\n{"response":"\xf0\x9f\x98\x80"}\n{"done":true}'
    decoder = NDJSONDecoder()
    lines = [line for piece in split_at(raw, cuts) for line in decoder.feed(piece)]
    lines += decoder.close()
    assert [json.loads(line) for line in lines] == [
        {"response": "hé"},
        {"response": "😀"},
        {"done": True},
    ]

"""The frame reader on raw bytes: every bad frame of the fault table, any split of the stream,
pauses, and hypothesis-made garbage followed by one well-formed request."""

from __future__ import annotations

import json
import tracemalloc
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reaper_lsp.lsp.frames import MAX_CONTENT_LENGTH, Event, FrameReader, Message, Rejected


def frame(obj: object, header: bytes = b"Content-Length") -> bytes:
    body = json.dumps(obj).encode()
    return (
        header
        + b": %d\r\nContent-Type: application/vscode-jsonrpc; charset=utf-8\r\n\r\n" % len(body)
        + body
    )


def request(msg_id: int | str, method: str, params: object = None) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params}


GOOD = request(99, "textDocument/hover")


def read(*chunks: bytes, max_length: int = MAX_CONTENT_LENGTH) -> list[Event]:
    reader = FrameReader(max_length)
    return [event for chunk in chunks for event in reader.feed(chunk)]


def split_at(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    pieces, last = [], 0
    for p in points:
        pieces.append(data[last:p])
        last = p
    pieces.append(data[last:])
    return pieces


# --- the reader ---------------------------------------------------------------------------


def test_well_formed_frames_arrive_whole_however_the_bytes_are_split() -> None:
    stream = frame(request(1, "a")) + frame(request(2, "b", {"x": "é"}))
    expected = [Message(request(1, "a")), Message(request(2, "b", {"x": "é"}))]
    assert read(stream) == expected
    for cut in range(len(stream) + 1):
        assert read(stream[:cut], stream[cut:]) == expected
    assert read(*(stream[i : i + 1] for i in range(len(stream)))) == expected


def test_header_names_are_case_insensitive_and_other_headers_ignored() -> None:
    for name in (b"content-length", b"CONTENT-LENGTH", b"Content-length"):
        assert read(frame(GOOD, name)) == [Message(GOOD)]
    body = json.dumps(GOOD).encode()
    odd = b"X-Thing: 1\r\ncontent-type: x\r\nContent-Length : %d\n\n" % len(body) + body
    assert read(odd) == [Message(GOOD)]


BODY = json.dumps(request(7, "textDocument/completion", {"a": 1})).encode()
BAD_FRAMES = {
    "length too small": b"Content-Length: 10\r\n\r\n" + BODY,
    "length too large": b"Content-Length: %d\r\n\r\n" % (len(BODY) + 500) + BODY,
    "length missing": b"Content-Type: application/json\r\n\r\n" + BODY,
    "length abc": b"Content-Length: abc\r\n\r\n" + BODY,
    "length 0": b"Content-Length: 0\r\n\r\n" + BODY,
    "length -5": b"Content-Length: -5\r\n\r\n" + BODY,
    "no blank line": b"Content-Length: %d\r\n" % len(BODY) + BODY,
    "garbage between frames": b"\x00\xffhello\r\n\r\nContent-Type: x\r\nnot a header\r\n\r\n",
    "length 10^12": b"Content-Length: 1000000000000\r\n\r\n" + BODY,
}


@pytest.mark.parametrize("bad", BAD_FRAMES.values(), ids=BAD_FRAMES.keys())
def test_a_bad_frame_is_skipped_and_the_next_one_delivered(bad: bytes) -> None:
    stream = bad + frame(GOOD)
    for cut in range(0, len(stream) + 1, 7):
        events = read(stream[:cut], stream[cut:])
        assert events[-1] == Message(GOOD)
        # Before it: errors to answer, or the bad frame's own message when its body was whole.
        assert all(e == Message(json.loads(BODY)) or isinstance(e, Rejected) for e in events[:-1])


def test_a_truncated_body_is_a_parse_error_answered_with_the_recovered_id() -> None:
    body = json.dumps(request(7, "x", {"text": "a long text"})).encode()
    events = read(b"Content-Length: 30\r\n\r\n" + body + frame(GOOD))
    assert events == [Rejected(-32700, events[0].message, 7), Message(GOOD)]  # type: ignore[union-attr]
    assert events[0].message.startswith("Parse error")  # type: ignore[union-attr]


def test_a_body_that_is_not_json_is_a_parse_error_with_a_null_id() -> None:
    for body in (b"hello", b'{"id": [1', b"\xff\xfe{}", b"[" * 100_000):
        events = read(b"Content-Length: %d\r\n\r\n" % len(body) + body + frame(GOOD))
        assert isinstance(events[0], Rejected), body[:10]
        assert (events[0].code, events[0].msg_id) == (-32700, None)
        assert events[-1] == Message(GOOD)


def test_a_length_too_large_still_delivers_a_complete_body_and_the_next_frame() -> None:
    body = json.dumps(GOOD).encode()
    stream = b"Content-Length: %d\r\n\r\n" % (len(body) + 40) + body + frame(request(2, "b"))
    assert read(stream) == [Message(GOOD), Message(request(2, "b"))]


def test_a_pause_after_a_whole_body_delivers_it_despite_a_too_large_length() -> None:
    reader = FrameReader()
    body = json.dumps(GOOD).encode()
    assert reader.feed(b"Content-Length: %d\r\n\r\n" % (len(body) + 9) + body[:-1]) == []
    assert reader.waiting_for_body and reader.idle() == []  # not yet a whole JSON value
    assert reader.feed(body[-1:] + b"  ") == []
    assert reader.idle() == [Message(GOOD)]
    assert reader.feed(b"\r\n" + frame(request(2, "b"))) == [Message(request(2, "b"))]


def test_an_over_long_body_is_dropped_with_the_id_it_started_with() -> None:
    big = json.dumps(request("big", "x", {"text": "y" * 500})).encode()
    stream = b"Content-Length: %d\r\n\r\n" % len(big) + big + frame(GOOD)
    events = read(*split_at(stream, [13, 100, 333]), max_length=200)
    assert [type(e) for e in events] == [Rejected, Message]
    assert (events[0].code, events[0].msg_id) == (-32600, "big")  # type: ignore[union-attr]
    assert events[1] == Message(GOOD)


def test_a_terabyte_content_length_is_read_and_dropped_in_constant_memory() -> None:
    reader = FrameReader()
    chunk = b"x" * 65536
    tracemalloc.start()
    try:
        assert reader.feed(b"Content-Length: 1000000000000\r\n\r\n") == []
        for _ in range(200):  # 13 MB
            assert reader.feed(chunk) == []
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000
    events = reader.feed(frame(GOOD))
    assert isinstance(events[0], Rejected) and "1000000000000 bytes" in events[0].message
    assert events[-1] == Message(GOOD)


# --- fuzz: any bytes, then one well-formed request ----------------------------------------

names = st.sampled_from(
    [b"Content-Length", b"content-length", b"CONTENT-length", b"Content-Type", b"X", b""]
)
values = st.one_of(
    st.integers(-10, 10**13).map(lambda n: str(n).encode()),
    st.binary(max_size=12),
    st.sampled_from([b"abc", b"", b" 5 ", b"0", b"-5", b"1e3"]),
)
ends = st.sampled_from([b"\r\n", b"\n", b"", b"\r"])
bodies = st.one_of(
    st.binary(max_size=300),
    st.builds(lambda obj, cut: json.dumps(obj).encode()[:cut], st.just(GOOD), st.integers(0, 80)),
    st.sampled_from([b"{}", b"[]", b"null", b'{"jsonrpc":"2.0"}', b'"Content-Length: 5"']),
)
pieces = st.one_of(
    st.builds(
        lambda n, s, v, e, b: n + s + v + e + e + b,
        names,
        st.sampled_from([b":", b": "]),
        values,
        ends,
        bodies,
    ),
    st.binary(max_size=100),
    bodies,
)
junk = st.lists(pieces, max_size=6).map(b"".join)
cuts = st.lists(st.integers(0, 10_000), max_size=8)


@settings(max_examples=600, deadline=None)
@given(junk, cuts, st.booleans())
def test_fuzz_any_garbage_then_a_request_delivers_that_request(
    garbage: bytes, at: list[int], pauses: bool
) -> None:
    final = request("final", "textDocument/hover")
    reader = FrameReader()
    events: list[Event] = []
    for chunk in split_at(garbage + frame(final), at):
        events += reader.feed(chunk)
        if pauses:  # the client goes quiet between reads
            events += reader.idle()
    assert events[-1] == Message(final)
    assert events.count(Message(final)) == 1

"""The forwarder's view of the stream: exact frame offsets whatever the chunking, and the
session state a restarted daemon is told."""

from __future__ import annotations

import itertools
import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from reaper_lsp.core.document import Change, DocumentStore, Position
from reaper_lsp.daemon.tracker import RESTARTED, ClientState
from reaper_lsp.daemon.wire import FrameSplitter, encode

MESSAGES: list[dict[str, Any]] = [
    {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"x": "é" * 3}},
    {"jsonrpc": "2.0", "method": "initialized", "params": {}},
    {"jsonrpc": "2.0", "id": "a", "method": "m", "params": ["\U0001f600\r\n"]},
]
STREAM = b"".join(encode(m) for m in MESSAGES)


def split(stream: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(stream) + 1) for c in cuts} | {0, len(stream)})
    return [stream[a:b] for a, b in itertools.pairwise(points)]


def frames_of(chunks: list[bytes], splitter: FrameSplitter | None = None) -> list[tuple[int, Any]]:
    """(absolute end offset, message) for every frame."""
    splitter = splitter or FrameSplitter()
    out, base = [], 0
    for chunk in chunks:
        out += [(base + end, message) for end, message in splitter.feed(chunk)]
        base += len(chunk)
    return out


ENDS = [sum(len(encode(m)) for m in MESSAGES[: i + 1]) for i in range(len(MESSAGES))]


@given(st.lists(st.integers(min_value=0), max_size=12))
def test_every_chunking_gives_the_same_frames_at_the_same_offsets(cuts: list[int]) -> None:
    assert frames_of(split(STREAM, cuts)) == list(zip(ENDS, MESSAGES, strict=True))


@given(st.lists(st.integers(min_value=0), max_size=12))
def test_garbage_and_a_too_long_length_do_not_lose_the_next_frame(cuts: list[int]) -> None:
    stream = b"noise\r\n" + b"Content-Length: 3\r\n\r\n{}" + encode({"id": 9}) + b"trailing"
    messages = [m for _, m in frames_of(split(stream, cuts)) if m is not None]
    assert messages == [{"id": 9}]


def test_a_frame_cut_short_by_the_next_header_is_given_up_there() -> None:
    stream = b'Content-Length: 999\r\n\r\n{"a":' + encode({"id": 2})
    assert [m for _, m in frames_of([stream])] == [None, {"id": 2}]


def test_a_body_that_is_not_an_object_is_a_frame_without_message() -> None:
    assert frames_of([b"Content-Length: 2\r\n\r\n[]"]) == [(23, None)]


def test_an_oversized_body_is_counted_through_without_being_kept() -> None:
    big = encode({"pad": "x" * 100})
    splitter = FrameSplitter(max_length=50)
    found = frames_of([big[:30], big[30:80], big[80:] + encode({"id": 1})], splitter)
    assert found == [(len(big), None), (len(big) + len(encode({"id": 1})), {"id": 1})]


def test_partial_is_the_unfinished_frame_and_padding_completes_it() -> None:
    splitter = FrameSplitter()
    frame = encode(MESSAGES[0])
    splitter.feed(STREAM[:0] + b"junk" + frame[:30])
    assert splitter.partial == frame[:30]
    assert len(splitter.padding()) == len(frame) - 30
    splitter.feed(frame[30:])
    assert splitter.partial == b""
    assert splitter.padding() == b""


def test_a_header_still_coming_is_partial() -> None:
    splitter = FrameSplitter()
    splitter.feed(b"Content-Len")
    assert splitter.partial == b"Content-Len" or splitter.partial == b""
    splitter.feed(b"gth: 2\r\n")
    assert splitter.partial == b"Content-Length: 2\r\n"


# -- the session state ---------------------------------------------------------------------------


def request(msg_id: object, method: str, params: object = None) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params or {}}


def note(method: str, params: object) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "method": method, "params": params}


def answer(msg_id: object) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": msg_id, "result": None}


def change(uri: str, version: int, *changes: dict[str, Any]) -> dict[str, Any]:
    return note(
        "textDocument/didChange",
        {"textDocument": {"uri": uri, "version": version}, "contentChanges": list(changes)},
    )


def edit(sl: int, sc: int, el: int, ec: int, text: str) -> dict[str, Any]:
    span = {"start": {"line": sl, "character": sc}, "end": {"line": el, "character": ec}}
    return {"range": span, "rangeLength": 99, "text": text}


def opened(uri: str, text: str, version: int = 1) -> dict[str, Any]:
    doc = {"uri": uri, "languageId": "python", "version": version, "text": text}
    return note("textDocument/didOpen", {"textDocument": doc})


def test_the_replay_is_initialize_then_initialized_configuration_and_open_documents() -> None:
    state = ClientState()
    init = request(1, "initialize", {"rootUri": "file:///p", "workspaceFolders": []})
    for message in [
        init,
        note("initialized", {}),
        note("workspace/didChangeConfiguration", {"settings": {"n": 1}}),
        opened("file:///a.py", "def f():\n    pass\n"),
        opened("file:///b.py", "b"),
        change("file:///a.py", 2, edit(1, 4, 1, 8, "return 1")),
        note("textDocument/didClose", {"textDocument": {"uri": "file:///b.py"}}),
        note("workspace/didChangeConfiguration", {"settings": {"n": 2}}),
    ]:
        state.from_client(message)
    state.from_daemon(answer(1))
    assert state.initialize_answered
    assert state.replay_initialize() == init
    assert state.replay_rest() == [
        note("initialized", {}),
        note("workspace/didChangeConfiguration", {"settings": {"n": 2}}),
        opened("file:///a.py", "def f():\n    return 1\n", version=2),
    ]


def test_changes_apply_exactly_as_the_server_applies_them() -> None:
    text = "a😀b\r\nline two\nthree"
    edits = [
        edit(0, 1, 0, 3, "X"),  # the emoji is two UTF-16 units
        edit(1, 0, 2, 2, "joined "),
        {"text": "whole\nnew\n"},
        edit(2, 0, 2, 0, "end"),
        edit(0, 99, 0, 99, "!"),  # past the end of the line: clamped
    ]
    state = ClientState()
    state.from_client(opened("file:///x", text))
    server = DocumentStore()
    server.open("file:///x", "python", 1, text)
    for version, item in enumerate(edits, start=2):
        state.from_client(change("file:///x", version, item))
        if "range" in item:
            r = item["range"]
            start = Position(r["start"]["line"], r["start"]["character"])
            server_change = Change(
                item["text"], start, Position(r["end"]["line"], r["end"]["character"])
            )
        else:
            server_change = Change(item["text"])
        server.change("file:///x", version, [server_change])
    replayed: Any
    [replayed] = state.replay_rest()
    doc = server.get("file:///x")
    assert doc is not None
    assert replayed["params"]["textDocument"]["text"] == doc.text
    assert replayed["params"]["textDocument"]["version"] == len(edits) + 1


def test_unanswered_requests_are_taken_once_and_initialize_kept_for_the_replay() -> None:
    state = ClientState()
    for message in [request(1, "initialize"), request(2, "a"), request("2", "b"), request(3, "c")]:
        state.from_client(message)
    state.from_daemon(answer(3))
    state.from_daemon(request(3, "window/workDoneProgress/create"))  # the daemon's own request
    assert state.take_unanswered() == [(2, "a"), ("2", "b")]
    assert state.take_unanswered() == []
    assert state.take_unanswered(keep_initialize=False) == [(1, "initialize")]
    assert not state.initialize_answered


def test_shutdown_and_exit_are_noticed() -> None:
    state = ClientState()
    state.from_client(request(5, "shutdown"))
    state.from_client(note("exit", None))
    assert state.shutdown and state.exit


def test_workspace_folder_changes_are_folded_into_the_replayed_initialize() -> None:
    state = ClientState()
    one, two = {"uri": "file:///1", "name": "1"}, {"uri": "file:///2", "name": "2"}
    state.from_client(request(1, "initialize", {"workspaceFolders": [one]}))
    event = {"event": {"added": [two], "removed": [one]}}
    state.from_client(note("workspace/didChangeWorkspaceFolders", event))
    replayed: Any = state.replay_initialize()
    assert replayed is not None
    assert replayed["params"]["workspaceFolders"] == [two]
    assert replayed["id"] == 1


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(
        st.sampled_from(["id", "method", "params", "textDocument", "uri", "version", "text",
                         "contentChanges", "range", "start", "end", "line", "character",
                         "languageId", "event", "added", "removed"]),
        inner,
        max_size=4,
    ),
    max_leaves=20,
)  # fmt: skip
methods = st.sampled_from(
    ["initialize", "textDocument/didOpen", "textDocument/didChange", "textDocument/didClose",
     "workspace/didChangeWorkspaceFolders", "shutdown", "exit", "x"]
)  # fmt: skip


@given(st.lists(st.tuples(methods, json_values, json_values), max_size=8))
def test_malformed_messages_never_break_the_state(items: list[tuple[str, Any, Any]]) -> None:
    state = ClientState()
    for method, params, msg_id in items:
        message = {"jsonrpc": "2.0", "method": method, "params": params}
        if msg_id is not None:
            message["id"] = msg_id
        state.from_client(message)
        state.from_daemon({"id": msg_id, "result": params})
    state.replay_initialize()
    json.dumps(state.replay_rest())
    for msg_id, _ in state.take_unanswered(keep_initialize=False):
        assert isinstance(msg_id, int | str) and not isinstance(msg_id, bool)


def test_the_error_answer_names_the_restart() -> None:
    from reaper_lsp.daemon.tracker import error_answer

    assert error_answer(4) == {
        "jsonrpc": "2.0",
        "id": 4,
        "error": {"code": RESTARTED, "message": "reaper-lsp: the daemon restarted; try again"},
    }

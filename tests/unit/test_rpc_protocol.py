"""The guarded protocol on a real pygls LanguageServer writing into memory, fed through the
frame reader: lifecycle refusals, invalid params, failing handlers, and fuzzed requests that
must each get exactly one answer."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lsprotocol import types as lsp
from pygls.lsp.server import LanguageServer
from pygls.protocol import default_converter

from reaper_lsp.logs import register_secret
from reaper_lsp.lsp.frames import FrameReader
from reaper_lsp.lsp.rpc import GuardedProtocol, deliver, install_log_guard
from tests.unit.test_rpc_reader import cuts, frame, junk, request, split_at

INIT = {"capabilities": {}, "processId": None, "rootUri": None}
_FRAME = re.compile(rb"Content-Length: (\d+)\r\n(?:[^\r\n]+\r\n)*\r\n")


class Capture:
    """A pygls writer that keeps what the server sends."""

    def __init__(self) -> None:
        self.data = bytearray()

    def write(self, data: bytes) -> None:
        self.data += data

    def close(self) -> None:
        pass

    def messages(self) -> list[dict[str, Any]]:
        found, pos = [], 0
        while (m := _FRAME.match(self.data, pos)) is not None:
            end = m.end() + int(m.group(1))
            found.append(json.loads(self.data[m.end() : end]))
            pos = end
        assert pos == len(self.data), "the server wrote something that is not a frame"
        return found


@attrs.define
class Job:
    name: str
    count: int


CONVERTER = default_converter()  # one for all servers: each new one compiles its hooks again


def make_server() -> tuple[LanguageServer, Capture]:
    server = LanguageServer(
        "test", "0", protocol_cls=GuardedProtocol, converter_factory=lambda: CONVERTER
    )
    server.calls: list[str] = []  # type: ignore[attr-defined]

    @server.feature(lsp.TEXT_DOCUMENT_HOVER)
    async def hover(ls: Any, params: lsp.HoverParams) -> lsp.Hover | None:
        ls.calls.append(params.text_document.uri)
        if params.text_document.uri.endswith("explode"):
            raise ValueError("cannot hover\n  at some inner detail")
        return None

    @server.feature(lsp.TEXT_DOCUMENT_COMPLETION)
    def completion(ls: Any, params: lsp.CompletionParams) -> None:
        ls.calls.append("completion")

    @server.command("test.fail")
    async def fail(ls: Any, *args: Any) -> None:
        raise RuntimeError(f"upstream said {args[0] if args else ''}")

    @server.command("test.oom")
    def oom(ls: Any, *args: Any) -> None:
        raise MemoryError

    @server.command("test.job")
    def job(ls: Any, spec: Job) -> str:
        return spec.name * spec.count

    out = Capture()
    server.protocol.set_writer(out)
    return server, out


async def exchange(server: LanguageServer, out: Capture, *payloads: object) -> list[Any]:
    """Send each payload as a frame; every message the server wrote, once handlers settle."""
    reader = FrameReader()
    for payload in payloads:
        for event in reader.feed(frame(payload)):
            deliver(server.protocol, event)
    await asyncio.sleep(0.01)
    return out.messages()


def answer(messages: list[dict[str, Any]], msg_id: object) -> dict[str, Any]:
    [found] = [m for m in messages if m.get("id") == msg_id and "method" not in m]
    return found


def hover_params(uri: str = "file:///a.py", line: int = 0, character: int = 0) -> dict[str, Any]:
    return {"textDocument": {"uri": uri}, "position": {"line": line, "character": character}}


async def started() -> tuple[LanguageServer, Capture]:
    server, out = make_server()
    await exchange(server, out, request(0, "initialize", INIT))
    out.data.clear()
    return server, out


async def test_requests_before_initialize_are_refused_and_reach_no_handler() -> None:
    server, out = make_server()
    opened = {"textDocument": {"uri": "file:///a.py", "languageId": "python", "version": 1,
                               "text": "x"}}  # fmt: skip
    sent = await exchange(
        server,
        out,
        request(1, "textDocument/hover", hover_params()),
        {"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": opened},
        request(2, "initialize", INIT),
        request(3, "textDocument/hover", hover_params()),
    )
    assert answer(sent, 1)["error"]["code"] == -32002
    assert "result" in answer(sent, 2)
    assert "result" in answer(sent, 3)
    assert server.calls == ["file:///a.py"]  # type: ignore[attr-defined]
    assert len(sent) == 3  # the early notification was dropped silently


async def test_a_second_initialize_is_an_invalid_request() -> None:
    server, out = await started()
    sent = await exchange(server, out, request(5, "initialize", INIT))
    assert answer(sent, 5)["error"]["code"] == -32600


async def test_requests_after_shutdown_are_invalid_requests() -> None:
    server, out = await started()
    sent = await exchange(
        server, out, request(1, "shutdown"), request(2, "textDocument/hover", hover_params())
    )
    assert answer(sent, 1) == {"jsonrpc": "2.0", "id": 1, "result": None}
    assert answer(sent, 2)["error"]["code"] == -32600
    assert server.calls == []  # type: ignore[attr-defined]


INVALID_PARAMS = {
    "negative line": ("textDocument/hover", hover_params(line=-1), "Position.line"),
    "line 2^31": ("textDocument/hover", hover_params(line=2**31), "2147483648"),
    "character 2^53": ("textDocument/hover", hover_params(character=2**53), "Position.character"),
    "line is text": ("textDocument/hover", hover_params() | {"position": {"line": "x"}}, "line"),
    "no document": ("textDocument/completion", {"position": {"line": 0, "character": 0}},
                    "missing @ params.textDocument"),
    "executeCommand {}": ("workspace/executeCommand", {}, "command"),
    "executeCommand null": ("workspace/executeCommand", None, "params"),
    "command argument": ("workspace/executeCommand",
                         {"command": "test.job", "arguments": [{"name": "a"}]}, "count"),
}  # fmt: skip


@pytest.mark.parametrize("method,params,mentions", INVALID_PARAMS.values(), ids=INVALID_PARAMS)
async def test_invalid_params_are_answered_with_what_was_wrong(
    method: str, params: object, mentions: str
) -> None:
    server, out = await started()
    sent = await exchange(server, out, request(4, method, params), request(5, "shutdown"))
    error = answer(sent, 4)["error"]
    assert error["code"] == -32602
    assert mentions in error["message"]
    assert "\n" not in error["message"] and "data" not in error
    assert answer(sent, 5)["result"] is None  # still serving


async def test_a_failing_handler_answers_internal_error_in_one_line_without_traceback() -> None:
    server, out = await started()
    sent = await exchange(
        server, out, request(1, "textDocument/hover", hover_params("file:///explode"))
    )
    error = answer(sent, 1)["error"]
    assert error == {
        "code": -32603,
        "message": "textDocument/hover failed: ValueError: cannot hover",
    }


async def test_a_failing_command_answers_request_failed_with_secrets_redacted() -> None:
    register_secret("sk-live-0123456789abcdef")
    server, out = await started()
    call = {"command": "test.fail", "arguments": ["sk-live-0123456789abcdef"]}
    sent = await exchange(server, out, request(1, "workspace/executeCommand", call))
    error = answer(sent, 1)["error"]
    assert error["code"] == -32803
    assert error["message"] == "test.fail failed: RuntimeError: upstream said ***"
    assert "data" not in error


async def test_memory_error_in_a_handler_is_answered_and_the_server_keeps_serving() -> None:
    server, out = await started()
    sent = await exchange(
        server,
        out,
        request(1, "workspace/executeCommand", {"command": "test.oom"}),
        request(2, "workspace/executeCommand", {"command": "test.job",
                                                "arguments": [{"name": "ab", "count": 2}]}),
    )  # fmt: skip
    assert answer(sent, 1)["error"] == {"code": -32803, "message": "test.oom failed: out of memory"}
    assert answer(sent, 2)["result"] == "abab"


@pytest.mark.parametrize(
    "payload,msg_id",
    [([1, 2], None), ({"jsonrpc": "1.0", "id": 3, "method": "x"}, 3),
     ({"jsonrpc": "2.0", "id": 1.5, "method": "x"}, None), ({"jsonrpc": "2.0"}, None),
     ({"jsonrpc": "2.0", "id": 4, "method": 5}, 4)],
)  # fmt: skip
async def test_json_that_is_not_a_message_is_an_invalid_request(
    payload: object, msg_id: object
) -> None:
    server, out = await started()
    sent = await exchange(server, out, payload)
    assert [m["id"] for m in sent] == [msg_id]
    assert sent[0]["error"]["code"] == -32600


async def test_a_request_without_params_is_dispatched_like_one_with_null_params() -> None:
    server, out = await started()
    bare = [{"jsonrpc": "2.0", "id": n, "method": m} for n, m in enumerate(
        ["test/unknown", "textDocument/hover", "shutdown"], 1)]  # fmt: skip
    sent = await exchange(server, out, *bare)
    assert answer(sent, 1)["error"]["code"] == -32601  # method not found
    assert answer(sent, 2)["error"]["code"] == -32602
    assert "params" in answer(sent, 2)["error"]["message"]
    assert answer(sent, 3)["result"] is None


async def test_pygls_conversion_tracebacks_are_not_logged(caplog: pytest.LogCaptureFixture) -> None:
    install_log_guard()
    server, out = await started()
    caplog.set_level(logging.DEBUG)
    await exchange(server, out, request(1, "textDocument/hover", hover_params(line=-7)))
    assert answer(out.messages(), 1)["error"]["code"] == -32602
    assert "Position.line should be in range" in caplog.text  # our one line
    assert "Traceback" not in caplog.text and "Unable to deserialize" not in caplog.text


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**60), 2**60) | st.floats(allow_nan=False)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)  # fmt: skip
positions = st.fixed_dictionaries(
    {"line": st.integers(-5, 2**54), "character": st.integers(-5, 2**54) | st.text(max_size=3)}
)
random_params = st.one_of(
    json_values,
    st.builds(lambda p: {"textDocument": {"uri": "file:///a.py"}, "position": p}, positions),
    st.fixed_dictionaries({
        "command": st.sampled_from(["test.fail", "test.oom", "test.job", "nope"]) | json_values,
        "arguments": st.lists(json_values, max_size=3) | json_values,
    }),
)  # fmt: skip
methods = st.sampled_from([
    "textDocument/hover", "textDocument/completion", "workspace/executeCommand", "initialize",
    "shutdown", "textDocument/didOpen", "$/cancelRequest", "initialized", "test/unknown",
])  # fmt: skip


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(methods, random_params), min_size=1, max_size=6))
def test_fuzz_every_request_gets_exactly_one_answer(calls: list[tuple[str, object]]) -> None:
    async def scenario() -> list[dict[str, Any]]:
        server, out = make_server()
        await exchange(server, out, request(0, "initialize", INIT))
        await exchange(server, out, *(request(n, m, p) for n, (m, p) in enumerate(calls, 1)))
        return out.messages()

    answered = [m["id"] for m in asyncio.run(scenario()) if "id" in m and "method" not in m]
    assert sorted(answered) == list(range(len(calls) + 1))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(junk, cuts)
def test_fuzz_any_garbage_then_initialize_is_answered(garbage: bytes, at: list[int]) -> None:
    async def scenario() -> list[dict[str, Any]]:
        server, out = make_server()
        reader = FrameReader()
        for chunk in split_at(garbage + frame(request("init", "initialize", INIT)), at):
            for event in reader.feed(chunk):
                deliver(server.protocol, event)
        await asyncio.sleep(0)
        return out.messages()

    answers = [m for m in asyncio.run(scenario()) if m.get("id") == "init"]
    assert len(answers) == 1
    assert "result" in answers[0] or answers[0]["error"]["code"] == -32600  # already initialized

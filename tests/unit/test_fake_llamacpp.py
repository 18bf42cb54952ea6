"""The llama-server fake answers like the real one over real sockets: `/infill` fields, token
budget and layout, stream framing without `[DONE]`, the context-exceeded 400, `/v1/completions`
ignoring `suffix`, the probes, the 503 while loading, and `cancel task` when a client leaves.
Every run holds it to the captures of the real server in tests/fakes/captures/llamacpp; tests
marked `llamacpp` also run against a live llama-server (`LLAMA_SERVER`, docs/llamacpp.md)."""

from __future__ import annotations

import asyncio
import json
import re
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e import llamacpp_server
from tests.e2e.llamacpp_server import LlamaServer, requires_llama_server, serve_tiny_model
from tests.fakes import llamacpp
from tests.fakes.runner import FakeServer
from tests.fakes.script import Reply


def _sse(raw: bytes) -> list[str]:
    """The data of each event, split on blank lines the way an SSE parser does."""
    events = []
    for block in raw.decode().split("\n\n"):
        data = [line[5:].lstrip(" ") for line in block.split("\n") if line.startswith("data:")]
        if data:
            events.append("\n".join(data))
    return events


# --- llama-server -----------------------------------------------------------------------------

INFILL = {
    "input_prefix": "def add(a, b):\n    return ",
    "input_suffix": "\n\nprint(add(1, 2))\n",
    "input_extra": [{"filename": "util.py", "text": "def sub(a, b):\n    return a - b\n"}],
    "cache_prompt": True,
}


@pytest.fixture
def llama_app() -> llamacpp.FakeLlamaServer:
    return llamacpp.create_app()


@pytest.fixture
def llama_fake(llama_app: llamacpp.FakeLlamaServer) -> Iterator[FakeServer]:
    with FakeServer(llama_app) as server:
        yield server


async def test_llama_infill_streams_tokens_then_a_stop_event(
    llama_app: llamacpp.FakeLlamaServer, llama_fake: FakeServer
) -> None:
    llama_fake.script.queue(Reply(text="a + b"))
    async with httpx.AsyncClient() as client:
        response = await client.post(
            llama_fake.base_url + "/infill", json={**INFILL, "stream": True}
        )
    assert response.headers["content-type"] == "text/event-stream"
    events = [json.loads(d) for d in _sse(response.content)]  # no [DONE]: every event is JSON
    *tokens, last = events
    assert "".join(e["content"] for e in tokens) == "a + b"
    assert all(e["stop"] is False for e in tokens) and last["stop"] is True
    assert last["stop_type"] == "eos" and last["content"] == ""
    layout = llama_app.infills[0]
    assert last["tokens_evaluated"] == layout.n_prompt_tokens == tokens[0]["tokens_evaluated"]
    assert last["timings"]["prompt_n"] == layout.n_prompt_tokens
    prompt = last["prompt"]
    assert prompt.index("<|file_sep|>util.py") < prompt.index("<|fim_prefix|>def add")
    assert prompt.endswith("<|fim_suffix|>\n\nprint(add(1, 2))\n<|fim_middle|>")


async def test_llama_infill_counts_the_suffix_and_honours_n_predict_and_stop(
    llama_app: llamacpp.FakeLlamaServer, llama_fake: FakeServer
) -> None:
    llama_fake.script.default = Reply(text="first line\nsecond line\n")
    url = llama_fake.base_url + "/infill"
    async with httpx.AsyncClient() as client:
        whole = await client.post(url, json=INFILL)
        no_suffix = await client.post(url, json={**INFILL, "input_suffix": ""})
        limited = await client.post(url, json={**INFILL, "n_predict": 2})
        stopped = await client.post(url, json={**INFILL, "stop": ["\n"]})
    assert whole.json()["content"] == "first line\nsecond line\n"
    assert whole.json()["tokens_evaluated"] > no_suffix.json()["tokens_evaluated"]
    assert llama_app.infills[0].n_suffix_take == llama_app.infills[0].n_suffix > 0
    first_two = "".join(llamacpp.tokenize("first line")[:2])
    assert (limited.json()["content"], limited.json()["stop_type"]) == (first_two, "limit")
    assert limited.json()["tokens_predicted"] == 2
    assert stopped.json()["content"] == "first line"
    assert (stopped.json()["stop_type"], stopped.json()["stopping_word"]) == ("word", "\n")


async def test_llama_infill_checks_its_fields_like_the_server(llama_fake: FakeServer) -> None:
    url = llama_fake.base_url + "/infill"
    async with httpx.AsyncClient() as client:
        not_list = await client.post(url, json={**INFILL, "input_extra": "util.py"})
        no_text = await client.post(url, json={**INFILL, "input_extra": [{"filename": "a"}]})
        no_prefix = await client.post(url, json={"input_suffix": ""})
    assert not_list.status_code == 400 and no_text.status_code == 400
    assert not_list.json()["error"]["type"] == "invalid_request_error"
    assert '"text" field' in no_text.json()["error"]["message"]
    assert no_prefix.status_code == 500 and "input_prefix" in no_prefix.json()["error"]["message"]


async def test_llama_prompt_over_the_context_is_a_400_even_when_streaming() -> None:
    app = llamacpp.FakeLlamaServer(n_ctx=256, n_batch=2048)
    with FakeServer(app) as server:
        async with httpx.AsyncClient() as client:
            response = await client.post(
                server.base_url + "/infill",
                json={**INFILL, "input_prefix": "x = 1\n" * 200, "stream": True},
            )
    error = response.json()["error"]
    assert response.status_code == 400 and response.headers["content-type"].startswith(
        "application/json"
    )
    assert error["type"] == "exceed_context_size_error" and error["code"] == 400
    assert error["n_ctx"] == 256 and error["n_prompt_tokens"] == app.infills[0].n_prompt_tokens
    assert error["message"].startswith(f"request ({error['n_prompt_tokens']} tokens) exceeds")
    assert server.script.requests[0].completed.wait(5)


async def test_llama_v1_completions_ignores_the_suffix(llama_fake: FakeServer) -> None:
    llama_fake.script.default = Reply(text="a + b")
    body = {"prompt": "def add(a, b):\n    return ", "max_tokens": 16}
    async with httpx.AsyncClient() as client:
        url = llama_fake.base_url + "/v1/completions"
        with_suffix = await client.post(url, json={**body, "suffix": "\nprint(add(1, 2))\n"})
        without = await client.post(url, json=body)
    assert with_suffix.status_code == 200
    assert with_suffix.json()["usage"]["prompt_tokens"] == without.json()["usage"]["prompt_tokens"]
    assert with_suffix.json()["choices"][0]["text"] == "a + b"


async def test_llama_chat_streams_openai_chunks(llama_fake: FakeServer) -> None:
    llama_fake.script.queue(Reply(text="Hi there"))
    body = {
        "messages": [{"role": "user", "content": "Say hi"}],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    async with httpx.AsyncClient() as client:
        response = await client.post(llama_fake.base_url + "/v1/chat/completions", json=body)
    data = _sse(response.content)
    assert data[-1] == "[DONE]"
    chunks = [json.loads(d) for d in data[:-1]]
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": None}
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == "Hi there"
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] > 0


async def test_llama_identifies_itself_and_answers_503_while_loading(
    llama_app: llamacpp.FakeLlamaServer, llama_fake: FakeServer
) -> None:
    async with httpx.AsyncClient(base_url=llama_fake.base_url) as client:
        models = (await client.get("/v1/models")).json()
        props = (await client.get("/props")).json()
        health = await client.get("/health")
        llama_app.loading = True
        loading = await client.get("/health")
        infill = await client.post("/infill", json=INFILL)
    assert models["data"][0]["owned_by"] == "llamacpp"
    assert props["default_generation_settings"]["n_ctx"] == llama_app.n_ctx
    assert props["model_path"] == llama_app.model_path
    assert health.json() == {"status": "ok"}
    expected = {"error": {"code": 503, "message": "Loading model", "type": "unavailable_error"}}
    assert loading.status_code == 503 and loading.json() == expected
    assert infill.status_code == 503


async def test_llama_api_key_guards_all_but_health() -> None:
    with FakeServer(llamacpp.FakeLlamaServer(api_key="sk-local")) as server:
        async with httpx.AsyncClient(base_url=server.base_url) as client:
            health = await client.get("/health")
            refused = await client.get("/v1/models")
            allowed = await client.get("/v1/models", headers={"authorization": "Bearer sk-local"})
    assert health.status_code == 200 and allowed.status_code == 200
    assert refused.status_code == 401
    assert refused.json()["error"]["type"] == "authentication_error"


async def test_llama_logs_cancel_task_when_the_client_leaves(
    llama_app: llamacpp.FakeLlamaServer, llama_fake: FakeServer
) -> None:
    llama_fake.script.queue(Reply(text="partial", hold_open=True))
    async with (
        httpx.AsyncClient() as client,
        client.stream(
            "POST", llama_fake.base_url + "/infill", json={**INFILL, "stream": True}
        ) as response,
    ):
        async for _ in response.aiter_raw():
            break
    recorded = llama_fake.script.requests[0]
    assert await asyncio.to_thread(recorded.disconnected.wait, 5)
    for _ in range(100):
        if llama_app.cancelled:
            break
        await asyncio.sleep(0.02)
    assert llama_app.cancelled == [recorded]
    assert llama_app.log[0].startswith("srv  format_promp: n_prefix_take = ")
    assert llama_app.log[1] == "srv          stop: cancel task, id_task = 0"


# --- the llama-server fake against the real server ---------------------------------------------


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaServer]:
    yield from serve_tiny_model(tmp_path_factory)


def _shape(value: Any) -> Any:
    """Field names in order and value types, recursively: what a client's parser depends on."""
    if isinstance(value, dict):
        return [(key, _shape(item)) for key, item in value.items()]
    if isinstance(value, list):
        return ["list", *([_shape(value[0])] if value else [])]
    return type(value).__name__


def _read_capture(folder: Path, name: str) -> tuple[int, str, bytes]:
    head, _, body = (folder / name).read_bytes().partition(b"\n\n")
    status_line, type_line = head.decode().split("\n")
    return int(status_line.split()[1]), type_line.split(": ", 1)[1], body


def _events(body: bytes) -> list[Any]:
    return [d if d == "[DONE]" else json.loads(d) for d in _sse(body)]


async def _ask_fake(folder: Path) -> dict[str, httpx.Response]:
    """Send the fake the requests the captures in `folder` were made with."""
    props = json.loads(_read_capture(folder, "props.txt")[2])
    app = llamacpp.FakeLlamaServer(
        n_ctx=props["default_generation_settings"]["n_ctx"],
        n_batch=2048,
        model_path=props["model_path"],
    )
    app.script.default = Reply(text="def sub(a, b): return a - b\n")
    infill = {
        "input_prefix": llamacpp_server.PREFIX,
        "input_suffix": llamacpp_server.SUFFIX,
        "input_extra": [{"filename": "util.py", "text": "def sub(a, b):\n    return a - b\n"}],
        "n_predict": 6,
        "temperature": 0,
        "cache_prompt": True,
    }
    long_prefix = "x = 1\n" * 2000
    chat = {
        "messages": [{"role": "user", "content": "Say hi"}],
        "max_tokens": 4,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    out: dict[str, httpx.Response] = {}
    with FakeServer(app) as server:
        async with httpx.AsyncClient(base_url=server.base_url) as client:
            out["health.txt"] = await client.get("/health")
            out["props.txt"] = await client.get("/props")
            out["v1_models.txt"] = await client.get("/v1/models")
            out["infill_stream.txt"] = await client.post("/infill", json={**infill, "stream": True})
            out["infill.txt"] = await client.post("/infill", json=infill)
            out["infill_stop.txt"] = await client.post(
                "/infill", json={**infill, "n_predict": 40, "stop": [" "]}
            )
            out["infill_exceeds_context.txt"] = await client.post(
                "/infill", json={**infill, "input_prefix": long_prefix, "stream": True}
            )
            out["completion_exceeds_context.txt"] = await client.post(
                "/v1/completions", json={"prompt": long_prefix, "max_tokens": 4}
            )
            out["infill_no_prefix.txt"] = await client.post(
                "/infill", json={"input_suffix": llamacpp_server.SUFFIX}
            )
            out["infill_bad_extra.txt"] = await client.post(
                "/infill", json={**infill, "input_extra": [{"filename": "a.py"}]}
            )
            out["infill_extra_not_list.txt"] = await client.post(
                "/infill", json={**infill, "input_extra": "util.py"}
            )
            completion = {"prompt": llamacpp_server.PREFIX, "max_tokens": 4, "stream": True}
            out["v1_completions.txt"] = await client.post("/v1/completions", json=completion)
            out["v1_completions_suffix.txt"] = await client.post(
                "/v1/completions", json={**completion, "suffix": llamacpp_server.SUFFIX}
            )
            out["v1_chat_stream.txt"] = await client.post("/v1/chat/completions", json=chat)
            app.loading = True
            out["loading.txt"] = await client.get("/health")
            app.loading = False
    with FakeServer(llamacpp.FakeLlamaServer(api_key="sk-local")) as server:
        async with httpx.AsyncClient(base_url=server.base_url) as client:
            out["unauthorized.txt"] = await client.get(
                "/v1/models", headers={"authorization": "Bearer x"}
            )
    return out


def _capture_names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob("*.txt"))


EXACT = [
    "health.txt",
    "loading.txt",
    "unauthorized.txt",
    "infill_no_prefix.txt",
    "infill_bad_extra.txt",
    "infill_extra_not_list.txt",
]
"""Answers that do not depend on the model: the fake sends the very same bytes."""


async def _compare_with_captures(folder: Path) -> None:
    fake = await _ask_fake(folder)
    assert sorted(fake) == _capture_names(folder)
    for name, response in fake.items():
        status, content_type, body = _read_capture(folder, name)
        assert (response.status_code, response.headers["content-type"]) == (
            status,
            content_type,
        ), name
        if name in EXACT:
            assert response.content == body, name
        elif content_type == "text/event-stream":
            real, ours = _events(body), _events(response.content)
            assert (real[-1] == "[DONE]") == (ours[-1] == "[DONE]"), name
            # Every kind of event, first and last included, has the real one's shape.
            assert {json.dumps(_shape(e)) for e in ours} == {json.dumps(_shape(e)) for e in real}
            assert _shape(ours[0]) == _shape(real[0]) and _shape(ours[-1]) == _shape(real[-1])
        else:
            assert _shape(response.json()) == _shape(json.loads(body)), name
    for name in ("infill_exceeds_context.txt", "completion_exceeds_context.txt"):
        error = fake[name].json()["error"]
        assert error["n_prompt_tokens"] >= error["n_ctx"]
        assert re.fullmatch(
            r"request \(\d+ tokens\) exceeds the available context size \(\d+ tokens\), "
            r"try increasing it",
            error["message"],
        )
    stopped = fake["infill_stop.txt"].json()
    assert (stopped["stop_type"], stopped["stopping_word"]) == ("word", " ")


async def test_llama_fake_answers_like_the_captured_real_server() -> None:
    await _compare_with_captures(llamacpp.CAPTURES)


def test_captured_real_server_ignores_suffix_on_v1_completions() -> None:
    def prompt_tokens(name: str) -> int:
        events = _events(_read_capture(llamacpp.CAPTURES, name)[2])
        return int(events[-2]["usage"]["prompt_tokens"])

    assert prompt_tokens("v1_completions.txt") == prompt_tokens("v1_completions_suffix.txt")


@pytest.mark.llamacpp
@requires_llama_server
async def test_llama_fake_answers_like_the_live_server(tmp_path: Path) -> None:
    """Capture the live server afresh (the version under test) and hold the fake to it."""
    binary, model = llamacpp_server.binary_path(), llamacpp_server.model_path()
    assert binary is not None
    server = await asyncio.to_thread(
        llamacpp_server.start_llama_server, binary, model, verbose=False, log_dir=tmp_path
    )
    folder = tmp_path / "captures"
    try:
        await asyncio.to_thread(llamacpp_server.capture, server.base_url, folder)
    finally:
        server.stop()
    await asyncio.to_thread(llamacpp_server.capture_startup, binary, model, folder)
    await _compare_with_captures(folder)


@pytest.mark.llamacpp
@requires_llama_server
async def test_live_infill_counts_the_suffix_and_logs_cancel_task_at_once(
    llama_server: LlamaServer,
) -> None:
    body = {"input_prefix": "def add(a, b):\n    return ", "input_suffix": "\nprint(1)\n"}
    fresh = httpx.Limits(max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=llama_server.base_url, limits=fresh) as client:
        with_suffix = await client.post("/infill", json={**body, "n_predict": 1})
        without = await client.post("/infill", json={**body, "input_suffix": "", "n_predict": 1})
        assert with_suffix.json()["tokens_evaluated"] > without.json()["tokens_evaluated"]
        async with client.stream(
            "POST", "/infill", json={**body, "n_predict": 100000, "stream": True}
        ) as response:
            async for chunk in response.aiter_raw():
                if b'"stop":false' in chunk:
                    break
        left = asyncio.get_running_loop().time()
    found = await asyncio.to_thread(llama_server.wait_for_log, "cancel task", 2.0)
    took = asyncio.get_running_loop().time() - left
    assert found and took < 1.0
    # The same lines the fake writes to its `log`.
    assert re.search(
        r"srv  format_promp: n_prefix_take = \d+, n_suffix_take = [1-9]", log := llama_server.log()
    )
    assert re.search(r"srv          stop: cancel task, id_task = \d+", log)


@pytest.mark.llamacpp
@requires_llama_server
def test_live_server_closes_the_connection_after_a_stream(
    llama_server: LlamaServer,
) -> None:
    """Without saying so (`Keep-Alive: timeout=5` and no `Connection: close`): a pooled
    connection reused right after a streamed answer may be dead, and the next request on it
    fails with "Server disconnected without sending a response"."""
    request = (
        b"POST /infill HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n%s"
    )
    body = b'{"input_prefix":"a","input_suffix":"b","n_predict":2,"stream":true}'
    with socket.create_connection(("127.0.0.1", llama_server.port), timeout=5) as sock:
        sock.sendall(request % (len(body), body))
        received = b""
        while not received.partition(b"\r\n\r\n")[2].endswith(b"\n\r\n0\r\n\r\n"):
            chunk = sock.recv(65536)
            assert chunk, "closed before the stream ended"
            received += chunk
        head = received.partition(b"\r\n\r\n")[0].lower()
        assert b"keep-alive: timeout=" in head and b"connection: close" not in head
        assert sock.recv(1) == b""  # closed by the server

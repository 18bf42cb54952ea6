"""Local model servers through the real server process: llama.cpp's `/infill`, Ollama's FIM
rules, keep_alive, num_ctx and thinking, stop sequences, prompts cut to a model's context, and
LiteLLM's proxy behaviour — against the fakes held to those servers' captures."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from reaper_lsp.net.client import open_stream
from reaper_lsp.net.metrics import ProviderMetrics
from tests.e2e.conftest import Session
from tests.fakes.litellm import FakeLiteLLM
from tests.fakes.llamacpp import FakeLlamaServer
from tests.fakes.ollama import FakeOllama
from tests.fakes.runner import FakeServer
from tests.fakes.script import Reply

PY = "def greet(name):\n    return \n"


def serve(app: Any) -> Iterator[FakeServer]:
    server = FakeServer(app)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def llama() -> Iterator[FakeServer]:
    yield from serve(FakeLlamaServer())


@pytest.fixture
def small_llama() -> Iterator[FakeServer]:
    """A llama-server started with a 1024-token context (and the default 2048 batch)."""
    yield from serve(FakeLlamaServer(n_ctx=1024))


@pytest.fixture
def keyed_llama() -> Iterator[FakeServer]:
    """A llama-server started with `--api-key sk-local`."""
    yield from serve(FakeLlamaServer(api_key="sk-local"))


@pytest.fixture
def ollama() -> Iterator[FakeServer]:
    yield from serve(FakeOllama())


@pytest.fixture
def litellm() -> Iterator[FakeServer]:
    yield from serve(FakeLiteLLM())


def llama_options(fake: FakeServer, **extra: Any) -> dict[str, Any]:
    return {
        "completion": {"providers": ["llamacpp"], "debounce_ms": 0, "prefetch": False},
        "chat": {"providers": ["llamacpp"]},
        "providers": {"llamacpp": {"base_url": fake.base_url, **extra}},
    }


def ollama_options(fake: FakeServer, **extra: Any) -> dict[str, Any]:
    return {
        "completion": {"providers": ["ollama"], "debounce_ms": 0, "prefetch": False},
        "chat": {"providers": ["ollama"]},
        "providers": {"ollama": {"base_url": fake.base_url, **extra}},
    }


def posts(fake: FakeServer, path: str) -> list[Any]:
    return [r for r in fake.script.requests if r.method == "POST" and r.path == path]


async def until(check: Any, timeout: float = 5.0) -> None:
    for _ in range(int(timeout / 0.02)):
        if check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not met in time")


# --- llama.cpp ----------------------------------------------------------------------------


async def test_llamacpp_completes_through_infill_with_the_suffix_and_other_documents(
    start_session: Any, llama: FakeServer
) -> None:
    llama.script.queue(Reply(text='f"Hello, {name}!"'))
    s: Session = await start_session(llama_options(llama))
    s.open("lib/names.py", "def shout(name):\n    return name.upper() + '!'\n")
    uri = s.open("greet.py", "def greet(name):\n    return \n\nprint(greet('x'))\n")
    assert await s.inline(uri, 1, 11) == ['f"Hello, {name}!"']
    [sent] = posts(llama, "/infill")
    body = sent.body
    assert body["input_prefix"] == "def greet(name):\n    return "
    assert body["input_suffix"] == "\n\nprint(greet('x'))\n"
    assert body["cache_prompt"] is True and body["stream"] is True
    assert body["n_predict"] == 128 and body["stop"]
    [extra] = body["input_extra"]
    assert extra["filename"] == "lib/names.py" and "name.upper()" in extra["text"]
    layout = llama.app.infills[-1]
    assert layout.n_suffix_take > 0 and layout.n_extra_take > 0  # the server used both


async def test_llamacpp_is_warmed_up_with_health_and_waits_out_loading_model(
    start_session: Any, llama: FakeServer
) -> None:
    app: FakeLlamaServer = llama.app
    app.loading = True  # 503 "Loading model" until the model is in memory
    llama.script.default = Reply(text="42")
    s: Session = await start_session(llama_options(llama))
    await until(lambda: llama.script.prewarms > 0)
    assert not [r for r in llama.script.requests if r.method == "HEAD"]
    asyncio.get_running_loop().call_later(0.15, setattr, app, "loading", False)
    uri = s.open("a.py", "x = \n")
    assert await s.inline(uri, 0, 4, invoked=True) == ["42"]
    assert len(posts(llama, "/infill")) >= 2  # the 503 was retried, not given up on


async def test_llamacpp_key_is_sent_and_a_wrong_one_is_not_retried(
    start_session: Any, keyed_llama: FakeServer
) -> None:
    keyed_llama.script.default = Reply(text="1")
    s: Session = await start_session(llama_options(keyed_llama), {"LLAMA_API_KEY": "sk-local"})
    uri = s.open("a.py", "x = \n")
    assert await s.inline(uri, 0, 4, invoked=True) == ["1"]
    assert posts(keyed_llama, "/infill")[-1].headers["authorization"] == "Bearer sk-local"
    wrong: Session = await start_session(llama_options(keyed_llama, api_key="sk-wrong"))
    other = wrong.open("b.py", "y = \n")
    before = len(posts(keyed_llama, "/infill"))
    await wrong.inline(other, 0, 4, invoked=True)
    assert len(posts(keyed_llama, "/infill")) == before + 1


async def test_llamacpp_superseded_completion_is_cancelled_on_the_server(
    start_session: Any, llama: FakeServer
) -> None:
    app: FakeLlamaServer = llama.app
    llama.script.queue(Reply(text="first", hold_open=True), Reply(text="second"))
    s: Session = await start_session(llama_options(llama))
    uri = s.open("a.py", "x = \n")
    first = asyncio.ensure_future(s.inline(uri, 0, 4, invoked=True))
    await until(lambda: len(posts(llama, "/infill")) == 1)
    s.type_text(uri, 0, 4, "q")  # disagrees with "first": that call can serve no cursor now
    await s.inline(uri, 0, 5, invoked=True)
    await first
    await until(lambda: any("cancel task" in line for line in app.log))


async def test_llamacpp_chat_streams_from_v1_chat_completions(
    start_session: Any, llama: FakeServer
) -> None:
    llama.script.queue(Reply(text="Use enumerate(items).", chunk_size=4))
    s: Session = await start_session(llama_options(llama))
    result = await s.command("reaper.chat", {"prompt": "How do I loop with an index?"})
    assert result["text"] == "Use enumerate(items)." and result["provider"] == "llamacpp"
    assert posts(llama, "/v1/chat/completions")
    await asyncio.sleep(0.05)
    deltas = [getattr(p, "delta", "") for m, p in s.notifications if m == "reaper/chatDelta"]
    assert "".join(deltas) == "Use enumerate(items)." and len(deltas) > 1


async def test_llamacpp_prompt_too_long_is_halved_at_once_and_remembered(
    start_session: Any, small_llama: FakeServer
) -> None:
    small_llama.script.default = Reply(text="total")
    options = llama_options(small_llama)
    options["completion"]["max_prefix_chars"] = 3000  # about 1400 tokens of this code
    s: Session = await start_session(options)
    body = "".join(f"value_{i} = compute(value_{i - 1}, {i})\n" for i in range(1, 200))
    uri = s.open("big.py", body + "result = \n")
    last = body.count("\n")
    assert await s.inline(uri, last, 9, invoked=True) == ["total"]
    first, retried = posts(small_llama, "/infill")
    assert len(retried.body["input_prefix"]) <= len(first.body["input_prefix"]) // 2 + 1
    assert retried.body["input_prefix"].endswith("result = ")
    told = [m.message for m in s.client.messages if "too long" in m.message]
    assert len(told) == 1 and "llamacpp" in told[0]
    # The next keystroke sends the size that fits straight away, and is not told again.
    s.type_text(uri, last, 9, "v")
    assert await s.inline(uri, last, 10, invoked=True) == ["total"]
    assert len(posts(small_llama, "/infill")) == 3
    assert [m.message for m in s.client.messages if "too long" in m.message] == told


async def test_openai_fim_against_llama_server_tells_the_user_to_switch(
    start_session: Any, llama: FakeServer
) -> None:
    llama.script.default = Reply(text="a + b")
    options = {
        "completion": {"providers": ["openai"], "debounce_ms": 0, "prefetch": False},
        "providers": {"openai": {"base_url": llama.base_url + "/v1", "fim": True}},
    }
    s: Session = await start_session(options, {"OPENAI_API_KEY": "sk-local"})
    uri = s.open("add.py", "def add(a, b):\n    return \n")
    await s.inline(uri, 1, 11, invoked=True)
    told = [m.message for m in s.client.messages if "llama-server" in m.message]
    assert len(told) == 1
    assert "llamacpp" in told[0] and f'base_url = "{llama.base_url}"' in told[0]
    assert await s.inline(uri, 1, 11, invoked=True) == ["a + b"]
    # `suffix` on /v1/completions would be ignored: the chat prompt is used instead.
    assert posts(llama, "/v1/completions") == []
    assert posts(llama, "/v1/chat/completions")
    assert len([m for m in s.client.messages if "llama-server" in m.message]) == 1


# --- Ollama -------------------------------------------------------------------------------


async def test_ollama_empty_suffix_is_raw_fim_with_the_family_template(
    start_session: Any, ollama: FakeServer
) -> None:
    ollama.script.default = Reply(text="name.title()")
    s: Session = await start_session(ollama_options(ollama))
    uri = s.open("greet.py", "def greet(name):\n    return ")  # no newline at the end
    assert await s.inline(uri, 1, 11, invoked=True) == ["name.title()"]
    seen = [x for x in ollama.app.seen if x.path == "/api/generate" and x.mode != "load"]
    assert [x.mode for x in seen] == ["raw"]
    body = posts(ollama, "/api/generate")[-1].body
    assert body["prompt"].startswith("<|fim_prefix|>") and body["prompt"].endswith(
        "    return <|fim_suffix|><|fim_middle|>"
    )
    assert "suffix" not in body and body["think"] is False and body["keep_alive"] == "30m"


async def test_ollama_suffix_is_native_fim_with_context_sized_to_the_prompt(
    start_session: Any, ollama: FakeServer
) -> None:
    ollama.script.default = Reply(text="name.title()")
    s: Session = await start_session(ollama_options(ollama, keep_alive="2h"))
    uri = s.open("greet.py", PY)
    assert await s.inline(uri, 1, 11, invoked=True) == ["name.title()"]
    done = [x for x in ollama.app.seen if x.mode not in ("load",)]
    assert [x.mode for x in done] == ["fim"]
    # Sized for the default prompt budget, whatever this prompt's length: 10000 characters of
    # code around the cursor and 4000 of snippets (Ollama's default 4096 tokens would cut
    # the snippets, which come first, out of a long prompt).
    assert done[0].num_ctx == 8192 and done[0].keep_alive == "2h" and done[0].think is False
    assert done[0].stop and "\n" in done[0].stop[0]


async def test_ollama_unknown_family_with_empty_suffix_still_gets_fim(
    start_session: Any, ollama: FakeServer
) -> None:
    ollama.script.default = Reply(text="1")
    s: Session = await start_session(ollama_options(ollama, model="mystery-coder:7b"))
    uri = s.open("a.py", "x = ")
    assert await s.inline(uri, 0, 4, invoked=True) == ["1"]
    [mode] = [x.mode for x in ollama.app.seen if x.mode != "load"]
    assert mode == "fim"  # not "chat-wrapped": the model was not asked a question


async def test_ollama_num_ctx_holds_the_prompt_budget_and_the_warm_up_loads_it(
    start_session: Any, ollama: FakeServer
) -> None:
    ollama.script.default = Reply(text="0")
    # Ollama's default 4096 cannot hold it; set where the App (and its warm-up) reads it.
    budget = {"completion": {"max_prefix_chars": 30000}}
    s: Session = await start_session(ollama_options(ollama), user_config=budget)
    text = "".join(f"item_{i} = {i}\n" for i in range(2600)) + "last = \n"
    uri = s.open("long.py", text)
    assert await s.inline(uri, 2600, 7, invoked=True) == ["0"]
    short = s.open("short.py", "x = \n")
    assert await s.inline(short, 0, 4, invoked=True) == ["0"]
    load, long, brief = ollama.app.seen
    assert load.mode == "load" and long.mode == brief.mode == "fim"
    assert long.num_ctx == 16384 and long.prompt_tokens > 4096 and not long.truncated
    # One size throughout: a change of num_ctx would make Ollama reload the model.
    assert load.num_ctx == brief.num_ctx == 16384


async def test_ollama_is_warmed_up_with_keep_alive_after_start(
    start_session: Any, ollama: FakeServer
) -> None:
    await start_session(ollama_options(ollama))
    await until(lambda: any(x.mode == "load" for x in ollama.app.seen))
    [load] = [x for x in ollama.app.seen if x.mode == "load"]
    assert load.model == "qwen2.5-coder:1.5b" and load.keep_alive == "30m"


async def test_ollama_context_exceeded_is_retried_shorter(
    start_session: Any, ollama: FakeServer
) -> None:
    ollama.app.overflow = "error"
    ollama.script.default = Reply(text="0")
    # Punctuation is a token a character: more tokens than num_ctx was sized for (at three
    # characters a token, the prefix, the suffix and the 4000 characters of snippets).
    budget = {"completion": {"max_prefix_chars": 20000}}
    s: Session = await start_session(ollama_options(ollama), user_config=budget)
    text = "x = [\n" + ("(),.;" * 15 + "\n") * 300 + "]\nlast = \n"
    uri = s.open("dense.py", text)
    assert await s.inline(uri, 302, 7, invoked=True) == ["0"]
    refused, ok = [x for x in ollama.app.seen if x.mode != "load"]
    assert refused.mode == "refused" or refused.truncated
    assert ok.prompt_tokens < refused.prompt_tokens
    assert any("too long" in m.message for m in s.client.messages)


async def test_ollama_chat_does_not_think_unless_asked(
    start_session: Any, ollama: FakeServer
) -> None:
    ollama.app.thinking_models.add("qwen2.5-coder:7b")
    ollama.script.default = Reply(text="Use a loop.")
    s: Session = await start_session(ollama_options(ollama))
    result = await s.command("reaper.chat", {"prompt": "How?"})
    assert result["text"] == "Use a loop."
    assert [x.think for x in ollama.app.seen if x.path == "/api/chat"] == [False]


async def test_ollama_chat_thinking_is_shown_not_dropped(
    start_session: Any, ollama: FakeServer
) -> None:
    ollama.app.thinking_models.add("qwen2.5-coder:7b")
    ollama.script.default = Reply(text="Use a loop.")
    s: Session = await start_session(ollama_options(ollama, think=True))
    result = await s.command("reaper.chat", {"prompt": "How?"})
    assert result["text"].startswith("*thinking…*") and result["text"].endswith("Use a loop.")
    assert "The user wants" not in result["text"]  # the thoughts themselves are not shown


# --- stop sequences -----------------------------------------------------------------------


async def test_every_provider_request_carries_stop_sequences_within_its_limit(
    start_session: Any, llama: FakeServer, ollama: FakeServer, openai_fake: FakeServer
) -> None:
    for fake in (llama, ollama, openai_fake):
        fake.script.default = Reply(text="pass")
    doc = "class A:\n    def f(self):\n        \n"
    for name, fake in (("llamacpp", llama), ("ollama", ollama), ("openai", openai_fake)):
        base = fake.base_url + ("/v1" if name == "openai" else "")
        options = {
            "completion": {"providers": [name], "debounce_ms": 0, "prefetch": False,
                           "multiline": "always"},
            "providers": {name: {"base_url": base}},
        }  # fmt: skip
        s: Session = await start_session(options, {"OPENAI_API_KEY": "sk-test"})
        uri = s.open(f"{name}.py", doc)
        assert await s.inline(uri, 2, 8, invoked=True) == ["pass"]
    infill = posts(llama, "/infill")[-1].body["stop"]
    generate = posts(ollama, "/api/generate")[-1].body["options"]["stop"]
    chat = [r for r in openai_fake.script.requests if r.method == "POST"][-1].body["stop"]
    assert infill == generate and "\ndef " in infill and len(infill) > 4
    assert chat == infill[:4]  # OpenAI takes four, the most specific first


# --- LiteLLM ------------------------------------------------------------------------------


def litellm_options(fake: FakeServer) -> dict[str, Any]:
    return {
        "completion": {"providers": ["openai"], "debounce_ms": 0, "prefetch": False},
        "chat": {"providers": ["openai"]},
        "providers": {"openai": {"base_url": fake.base_url + "/v1", "model": "gpt-4o-mini"}},
    }


async def test_litellm_upstream_down_reaches_the_user_as_its_cause(
    start_session: Any, litellm: FakeServer
) -> None:
    app: FakeLiteLLM = litellm.app
    app.upstream_down = True
    s: Session = await start_session(litellm_options(litellm), {"OPENAI_API_KEY": app.master_key})
    uri = s.open("a.py", "x = \n")
    await s.inline(uri, 0, 4, invoked=True)
    status = await s.command("reaper.status")
    error = status["providers"]["openai"]["health"]["lastError"]
    assert "APIConnectionError" in error and "timed out" not in error.lower()
    # The proxy retried its upstream already: one request from us, not our retries on top.
    assert len(posts(litellm, "/v1/chat/completions")) == 1
    assert app.upstream_attempts == app.num_retries + 1


async def test_litellm_warm_up_is_answered_not_404(start_session: Any, litellm: FakeServer) -> None:
    app: FakeLiteLLM = litellm.app
    app.script.default = Reply(text="1")
    await start_session(litellm_options(litellm), {"OPENAI_API_KEY": app.master_key})
    await until(lambda: any("/v1/models" in line for line in app.access_log))
    assert not [r for r in app.script.requests if r.method == "HEAD"]
    log = "\n".join(app.access_log)
    assert '/v1/models HTTP/1.1" 200' in log and " 404 " not in log


async def test_litellm_superseded_completion_closes_the_stream(
    start_session: Any, litellm: FakeServer
) -> None:
    app: FakeLiteLLM = litellm.app
    app.script.queue(Reply(text="first", hold_open=True), Reply(text="second"))
    s: Session = await start_session(litellm_options(litellm), {"OPENAI_API_KEY": app.master_key})
    uri = s.open("a.py", "x = \n")
    first = asyncio.ensure_future(s.inline(uri, 0, 4, invoked=True))
    await until(lambda: len(posts(litellm, "/v1/chat/completions")) == 1)
    s.type_text(uri, 0, 4, "q")  # disagrees with "first": the call cannot serve the new cursor
    await s.inline(uri, 0, 5, invoked=True)
    await first
    held = posts(litellm, "/v1/chat/completions")[0]
    await until(held.disconnected.is_set)


# --- the request log line -----------------------------------------------------------------


async def test_one_debug_line_per_upstream_request_without_secrets(
    llama: FakeServer, caplog: pytest.LogCaptureFixture
) -> None:
    llama.script.queue(Reply(text="abc"))
    secret = "sk-very-secret-0123456789"
    body = {"input_prefix": "x = ", "input_suffix": "", "stream": True, "api_key": secret}
    caplog.set_level(logging.DEBUG, logger="reaper_lsp.net.client")
    async with (
        httpx.AsyncClient() as client,
        open_stream(
            client,
            llama.base_url + "/infill?key=" + secret,
            body=body,
            headers={"authorization": f"Bearer {secret}"},
            metrics=ProviderMetrics(),
            accept="text/event-stream",
        ) as stream,
    ):
        received = b"".join([c async for c in stream.chunks()])
    [line] = [r.getMessage() for r in caplog.records if r.name == "reaper_lsp.net.client"]
    assert line.startswith(f"POST {llama.base_url}/infill -> 200")
    assert f"{len(received)} received" in line and "first byte" in line and "total" in line
    assert secret not in line

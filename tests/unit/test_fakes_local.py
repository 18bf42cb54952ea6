"""The Ollama and LiteLLM fakes behave like the real servers over real sockets: Ollama's
FIM-only-with-a-suffix rule, raw mode, warm-up, keep_alive, num_ctx and thinking; LiteLLM's
re-encoded stream, its own retries of a down upstream, and its 404 for `HEAD /v1`.
(The llama-server fake has its own module, test_fake_llamacpp.py.)"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.fakes import litellm, ollama
from tests.fakes.runner import FakeServer
from tests.fakes.script import Reply


def _ndjson(response: httpx.Response) -> list[dict[str, Any]]:
    return [json.loads(line) for line in response.content.split(b"\n") if line]


def _sse(raw: bytes) -> list[str]:
    """The data of each event, split on blank lines the way an SSE parser does."""
    events = []
    for block in raw.decode().split("\n\n"):
        data = [line[5:].lstrip(" ") for line in block.split("\n") if line.startswith("data:")]
        if data:
            events.append("\n".join(data))
    return events


# --- Ollama -----------------------------------------------------------------------------------


@pytest.fixture
def ollama_app() -> ollama.FakeOllama:
    return ollama.create_app()


@pytest.fixture
def ollama_server(ollama_app: ollama.FakeOllama) -> Iterator[FakeServer]:
    with FakeServer(ollama_app) as server:
        yield server


async def test_ollama_fills_the_middle_only_with_a_non_empty_suffix(
    ollama_app: ollama.FakeOllama, ollama_server: FakeServer
) -> None:
    ollama_server.script.default = Reply(text="a + b")
    url = ollama_server.base_url + "/api/generate"
    prompt = "def add(a, b):\n    return "
    async with httpx.AsyncClient() as client:
        fim = await client.post(url, json={"model": "q", "prompt": prompt, "suffix": "\n"})
        empty = await client.post(url, json={"model": "q", "prompt": prompt, "suffix": ""})
        absent = await client.post(url, json={"model": "q", "prompt": prompt})
        raw = await client.post(url, json={"model": "q", "prompt": prompt, "raw": True})

    def text(response: httpx.Response) -> str:
        return "".join(line["response"] for line in _ndjson(response))

    assert text(fim) == "a + b" and text(raw) == "a + b"
    # Without a suffix the prompt is wrapped as a chat message and answered as a question.
    assert text(empty) == ollama.CHAT_WRAPPED_ANSWER == text(absent)
    assert [s.mode for s in ollama_app.seen] == ["fim", "chat-wrapped", "chat-wrapped", "raw"]


async def test_ollama_raw_refuses_a_template_and_think_needs_a_thinking_model(
    ollama_server: FakeServer,
) -> None:
    url = ollama_server.base_url + "/api/generate"
    async with httpx.AsyncClient() as client:
        raw = await client.post(
            url, json={"model": "q", "prompt": "x", "raw": True, "system": "be brief"}
        )
        think = await client.post(url, json={"model": "q", "prompt": "x", "think": True})
    assert raw.status_code == 400
    assert raw.json() == {"error": "raw mode does not support template, system, or context"}
    assert think.status_code == 400 and "does not support thinking" in think.json()["error"]


async def test_ollama_records_keep_alive_num_ctx_think_and_stop(
    ollama_app: ollama.FakeOllama, ollama_server: FakeServer
) -> None:
    ollama_app.thinking_models.add("q")
    body = {
        "model": "q",
        "prompt": "x = ",
        "suffix": "\n",
        "keep_alive": "30m",
        "think": False,
        "options": {"num_ctx": 2048, "stop": ["\n"]},
    }
    async with httpx.AsyncClient() as client:
        await client.post(ollama_server.base_url + "/api/generate", json=body)
    seen = ollama_app.seen[-1]
    assert (seen.keep_alive, seen.num_ctx, seen.think, seen.stop) == ("30m", 2048, False, ["\n"])
    assert seen.loaded_first


async def test_ollama_warm_up_with_an_empty_prompt_loads_the_model(
    ollama_app: ollama.FakeOllama, ollama_server: FakeServer
) -> None:
    ollama_app.load_delay = 0.3
    url = ollama_server.base_url + "/api/generate"
    async with httpx.AsyncClient() as client:
        loop = asyncio.get_running_loop()
        started = loop.time()
        warm = await client.post(url, json={"model": "q", "prompt": "", "keep_alive": "30m"})
        warm_took = loop.time() - started
        started = loop.time()
        await client.post(url, json={"model": "q", "prompt": "x", "suffix": "\n"})
        next_took = loop.time() - started
        unload = await client.post(url, json={"model": "q", "prompt": "", "keep_alive": 0})
        ps = await client.get(ollama_server.base_url + "/api/ps")
    assert warm.headers["content-type"].startswith("application/json")
    assert warm.json()["done"] is True and warm.json()["done_reason"] == "load"
    assert warm_took >= 0.3 and next_took < 0.3  # loaded once, kept by keep_alive
    assert unload.json()["done_reason"] == "unload"
    assert ps.json() == {"models": []}
    assert [s.loaded_first for s in ollama_app.seen] == [True, False, False]


async def test_ollama_model_unloaded_after_keep_alive_is_loaded_again(
    ollama_app: ollama.FakeOllama, ollama_server: FakeServer
) -> None:
    url = ollama_server.base_url + "/api/generate"
    async with httpx.AsyncClient() as client:
        body = {"model": "q", "prompt": "x", "suffix": "\n", "keep_alive": "50ms"}
        await client.post(url, json=body)
        await client.post(url, json=body)
        await asyncio.sleep(0.1)
        await client.post(url, json=body)
    assert [s.loaded_first for s in ollama_app.seen] == [True, False, True]


async def test_ollama_thinking_model_streams_thinking_before_content(
    ollama_app: ollama.FakeOllama, ollama_server: FakeServer
) -> None:
    ollama_app.thinking_models.add("qwen3")
    ollama_server.script.default = Reply(text="Use a dict.", chunk_size=4)
    url = ollama_server.base_url + "/api/chat"
    messages = [{"role": "user", "content": "How?"}]
    async with httpx.AsyncClient() as client:
        thinking = await client.post(url, json={"model": "qwen3", "messages": messages})
        quiet = await client.post(
            url, json={"model": "qwen3", "messages": messages, "think": False}
        )
    lines = _ndjson(thinking)
    thoughts = [line["message"].get("thinking", "") for line in lines]
    contents = [line["message"]["content"] for line in lines]
    first_content = next(i for i, c in enumerate(contents) if c)
    assert "".join(thoughts) == ollama_app.thinking_text
    assert all(t == "" for t in thoughts[first_content:]) and all(not c for c in contents[:2])
    assert "".join(contents) == "Use a dict."
    assert all("thinking" not in line["message"] for line in _ndjson(quiet))


async def test_ollama_prompt_over_num_ctx_truncates_or_fails(
    ollama_app: ollama.FakeOllama, ollama_server: FakeServer
) -> None:
    url = ollama_server.base_url + "/api/generate"
    body = {"model": "q", "prompt": "word " * 300, "suffix": "\n", "options": {"num_ctx": 64}}
    async with httpx.AsyncClient() as client:
        truncated = await client.post(url, json={**body, "stream": False})
        refused = await client.post(url, json={**body, "truncate": False})
        ollama_app.overflow = "error"
        refused_always = await client.post(url, json=body)
        fits = await client.post(url, json={**body, "options": {"num_ctx": 8192}})
    assert truncated.status_code == 200 and truncated.json()["prompt_eval_count"] == 64
    assert ollama_app.seen[0].truncated
    for response in (refused, refused_always):
        assert response.status_code == 400
        assert response.json() == {"error": ollama.CONTEXT_EXCEEDED}
    assert fits.status_code == 200 and not ollama_app.seen[-1].truncated


async def test_ollama_show_lists_capabilities(
    ollama_app: ollama.FakeOllama, ollama_server: FakeServer
) -> None:
    ollama_app.no_insert_models.add("llama3")
    ollama_app.thinking_models.add("qwen3")
    async with httpx.AsyncClient() as client:
        shown = {
            m: (await client.post(ollama_server.base_url + "/api/show", json={"model": m})).json()
            for m in ("llama3", "qwen3")
        }
    assert "insert" not in shown["llama3"]["capabilities"]
    assert {"insert", "thinking"} <= set(shown["qwen3"]["capabilities"])


# --- LiteLLM ----------------------------------------------------------------------------------


@pytest.fixture
def litellm_app() -> litellm.FakeLiteLLM:
    return litellm.create_app()


@pytest.fixture
def litellm_server(litellm_app: litellm.FakeLiteLLM) -> Iterator[FakeServer]:
    with FakeServer(litellm_app) as server:
        yield server


KEY = {"authorization": "Bearer sk-litellm"}


async def test_litellm_re_encodes_the_stream_with_usage_on_every_chunk(
    litellm_server: FakeServer,
) -> None:
    litellm_server.script.queue(Reply(text="hello world", chunk_size=4))
    body = {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "hi"}],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    async with httpx.AsyncClient() as client:
        response = await client.post(
            litellm_server.base_url + "/v1/chat/completions", headers=KEY, json=body
        )
    data = _sse(response.content)
    assert data[-1] == "[DONE]"
    chunks = [json.loads(d) for d in data[:-1]]
    assert all("usage" in c for c in chunks)
    assert chunks[-1]["choices"] == [{"index": 0, "delta": {}}]
    assert chunks[-1]["usage"]["completion_tokens"] == 3
    assert [c["choices"][0].get("finish_reason") for c in chunks[-2:]] == ["stop", None]
    assert all("logprobs" not in choice for c in chunks for choice in c["choices"])
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert text == "hello world"


async def test_litellm_last_chunk_may_have_empty_choices(
    litellm_app: litellm.FakeLiteLLM, litellm_server: FakeServer
) -> None:
    litellm_app.empty_last_choices = True
    litellm_server.script.queue(Reply(text="ok"))
    body = {"model": "m", "stream": True, "stream_options": {"include_usage": True}}
    async with httpx.AsyncClient() as client:
        response = await client.post(
            litellm_server.base_url + "/chat/completions", headers=KEY, json=body
        )
    last = json.loads(_sse(response.content)[-2])
    assert last["choices"] == [] and last["usage"]["total_tokens"] > 0


async def test_litellm_upstream_down_is_retried_by_the_proxy_then_a_500(
    litellm_app: litellm.FakeLiteLLM, litellm_server: FakeServer
) -> None:
    litellm_app.upstream_down = True
    litellm_app.retry_delay = 0.2
    async with httpx.AsyncClient() as client:
        loop = asyncio.get_running_loop()
        started = loop.time()
        response = await client.post(
            litellm_server.base_url + "/v1/chat/completions",
            headers=KEY,
            json={"model": "gpt-4o-mini", "stream": True},
        )
        took = loop.time() - started
    error = response.json()["error"]
    assert response.status_code == 500
    assert error["message"].startswith("litellm.APIConnectionError")
    assert (error["type"], error["param"], error["code"]) == (None, None, "500")
    assert litellm_app.upstream_attempts == 3 and took >= 0.4


async def test_litellm_head_v1_is_a_404_in_the_proxy_log(
    litellm_app: litellm.FakeLiteLLM, litellm_server: FakeServer
) -> None:
    async with httpx.AsyncClient() as client:
        head = await client.head(litellm_server.base_url + "/v1")
        alive = await client.get(litellm_server.base_url + "/health/liveliness")
    assert head.status_code == 404
    assert alive.status_code == 200 and alive.json() == "I'm alive!"
    assert '"HEAD /v1 HTTP/1.1" 404 Not Found' in litellm_app.access_log[0]
    assert '"GET /health/liveliness HTTP/1.1" 200 OK' in litellm_app.access_log[1]


async def test_litellm_wrong_key_shows_only_its_last_characters(
    litellm_server: FakeServer,
) -> None:
    async with httpx.AsyncClient() as client:
        response = await client.post(
            litellm_server.base_url + "/v1/chat/completions",
            headers={"authorization": "Bearer sk-secret-value-1234"},
            json={},
        )
    assert response.status_code == 401
    assert "sk-secret-value" not in response.text and "sk-...1234" in response.text
    assert response.json()["error"]["type"] == "auth_error"


async def test_litellm_keeps_the_upstream_generating_after_the_client_leaves(
    litellm_app: litellm.FakeLiteLLM, litellm_server: FakeServer
) -> None:
    litellm_server.script.queue(Reply(text="partial", hold_open=True))
    async with (
        httpx.AsyncClient() as client,
        client.stream(
            "POST",
            litellm_server.base_url + "/v1/chat/completions",
            headers=KEY,
            json={"model": "m", "stream": True},
        ) as response,
    ):
        async for _ in response.aiter_raw():
            break
    recorded = litellm_server.script.requests[0]
    assert await asyncio.to_thread(recorded.disconnected.wait, 5)
    for _ in range(100):
        if litellm_app.upstream_kept_generating:
            break
        await asyncio.sleep(0.02)
    assert litellm_app.upstream_kept_generating == 1

"""The fake providers speak their wire protocols over real sockets: what a test queues comes
back decoded by a plain client, errors have the provider's shape, and the fakes notice a client
that leaves early (the proof behind the cancellation tests)."""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import Iterator

import httpx
import pytest

from tests.fakes import anthropic, ollama, openai
from tests.fakes.runner import FakeServer
from tests.fakes.script import Reply


@pytest.fixture
def openai_fake() -> Iterator[FakeServer]:
    with FakeServer(openai.create_app()) as server:
        yield server


def _sse_data(raw: bytes) -> list[str]:
    return [line[len("data: ") :] for line in raw.decode().split("\n") if line.startswith("data: ")]


async def test_openai_streams_the_queued_text(openai_fake: FakeServer) -> None:
    openai_fake.script.queue(Reply(text="hello world", chunk_size=3))
    async with httpx.AsyncClient() as client:
        response = await client.post(
            openai_fake.base_url + "/v1/chat/completions",
            headers={"authorization": "Bearer sk-test"},
            json={"model": "m", "stream": True, "stream_options": {"include_usage": True}},
        )
    assert response.headers["content-type"].startswith("text/event-stream")
    data = _sse_data(response.content)
    assert data[-1] == "[DONE]"
    chunks = [json.loads(d) for d in data[:-1]]
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert text == "hello world"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["total_tokens"] > 0


async def test_openai_rejects_a_wrong_key_with_its_error_shape(openai_fake: FakeServer) -> None:
    async with httpx.AsyncClient() as client:
        response = await client.post(
            openai_fake.base_url + "/v1/chat/completions",
            headers={"authorization": "Bearer nope"},
            json={},
        )
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_api_key"


async def test_error_status_with_retry_after(openai_fake: FakeServer) -> None:
    openai_fake.script.queue(Reply(status=429, headers={"retry-after": "2"}))
    async with httpx.AsyncClient() as client:
        response = await client.post(
            openai_fake.base_url + "/v1/completions",
            headers={"authorization": "Bearer sk-test"},
            json={"stream": True},
        )
    assert response.status_code == 429
    assert response.headers["retry-after"] == "2"
    assert response.json()["error"]["code"] == "rate_limit_exceeded"


async def test_garbage_mode_sends_no_events(openai_fake: FakeServer) -> None:
    openai_fake.script.queue(Reply(garbage=True))
    async with httpx.AsyncClient() as client:
        response = await client.post(
            openai_fake.base_url + "/v1/chat/completions",
            headers={"authorization": "Bearer sk-test"},
            json={"stream": True},
        )
    assert response.status_code == 200
    assert b"[DONE]" not in response.content


async def _leave_early(client: httpx.AsyncClient, url: str) -> None:
    async with client.stream(
        "POST", url, headers={"authorization": "Bearer sk-test"}, json={"stream": True}
    ) as response:
        async for _ in response.aiter_raw():
            break


async def test_client_leaving_a_held_stream_is_noticed_http1(openai_fake: FakeServer) -> None:
    openai_fake.script.queue(Reply(text="partial", hold_open=True))
    async with httpx.AsyncClient() as client:
        await _leave_early(client, openai_fake.base_url + "/v1/chat/completions")
    recorded = openai_fake.script.requests[0]
    assert await asyncio.to_thread(recorded.disconnected.wait, 5)
    assert not recorded.completed.is_set()


async def test_http2_stream_reset_is_noticed_and_connections_are_shared() -> None:
    with FakeServer(openai.create_app(), tls=True) as server:
        server.script.queue(Reply(text="partial", hold_open=True))
        server.script.default = Reply(text="ok")
        context = ssl.create_default_context(cafile=server.ca_file)
        async with httpx.AsyncClient(http2=True, verify=context) as client:
            url = server.base_url + "/v1/chat/completions"
            await _leave_early(client, url)
            headers = {"authorization": "Bearer sk-test"}
            replies = await asyncio.gather(
                *[client.post(url, headers=headers, json={"stream": True}) for _ in range(2)]
            )
            assert {r.http_version for r in replies} == {"HTTP/2"}
        recorded = server.script.requests[0]
        assert await asyncio.to_thread(recorded.disconnected.wait, 5)
        assert not recorded.completed.is_set()
        assert server.connections_opened == 1


async def test_anthropic_named_events_and_vertex_mode() -> None:
    with FakeServer(anthropic.create_app()) as server:
        server.script.queue(Reply(text="hi there"))
        async with httpx.AsyncClient() as client:
            response = await client.post(
                server.base_url + "/v1/messages",
                headers={"x-api-key": "sk-ant-test", "anthropic-version": "2023-06-01"},
                json={"model": "claude", "stream": True},
            )
        events = [line[7:] for line in response.text.split("\n") if line.startswith("event: ")]
        assert events[0] == "message_start" and events[-1] == "message_stop"
        assert "ping" in events
    app = anthropic.create_app(vertex=True)
    app.accepted_tokens.add("ya29.test")
    with FakeServer(app) as server:
        path = (
            "/v1/projects/p/locations/us-east5/publishers/anthropic/models/claude:streamRawPredict"
        )
        async with httpx.AsyncClient() as client:
            ok = await client.post(
                server.base_url + path,
                headers={"authorization": "Bearer ya29.test"},
                json={"anthropic_version": "vertex-2023-10-16", "stream": True},
            )
            with_model = await client.post(
                server.base_url + path,
                headers={"authorization": "Bearer ya29.test"},
                json={"anthropic_version": "vertex-2023-10-16", "model": "claude"},
            )
            no_token = await client.post(server.base_url + path, json={})
        assert ok.status_code == 200 and "message_stop" in ok.text
        assert with_model.status_code == 400
        assert no_token.status_code == 401


async def test_ollama_ndjson_and_no_insert_model() -> None:
    app = ollama.create_app()
    app.no_insert_models.add("llama3")
    with FakeServer(app) as server:
        server.script.queue(Reply(text="abc def"))
        async with httpx.AsyncClient() as client:
            response = await client.post(
                server.base_url + "/api/generate",
                json={"model": "qwen", "prompt": "x", "suffix": "\n"},  # FIM needs a suffix
            )
            refused = await client.post(
                server.base_url + "/api/generate",
                json={"model": "llama3", "prompt": "x", "suffix": "y"},
            )
    lines = [json.loads(line) for line in response.text.splitlines()]
    assert "".join(line["response"] for line in lines) == "abc def"
    assert lines[-1]["done"] is True
    assert refused.status_code == 400 and "does not support insert" in refused.json()["error"]

"""Inline and menu completion through the real server process, against fake providers."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types as lsp

from tests.e2e.conftest import Session, isolated_env, merge_user_config, openai_options
from tests.fakes.runner import FakeServer
from tests.fakes.script import Reply

KEY = {"OPENAI_API_KEY": "sk-test"}
PY = "def greet(name):\n    return \n"


async def test_inline_completion_from_openai_chat(
    start_session: Any, openai_fake: FakeServer
) -> None:
    openai_fake.script.queue(Reply(text='f"Hello, {name}!"'))
    s: Session = await start_session(openai_options(openai_fake), KEY)
    uri = s.open("greet.py", PY)
    assert await s.inline(uri, 1, 11) == ['f"Hello, {name}!"']
    sent = openai_fake.script.requests[-1]
    assert sent.path.endswith("/chat/completions")
    assert sent.headers["authorization"] == "Bearer sk-test"
    assert sent.body["stream"] is True
    user = sent.body["messages"][-1]["content"]
    assert "def greet(name):\n    return <cursor>\n" in user


async def test_menu_completion_item_carries_edit_filter_and_provider(
    start_session: Any, openai_fake: FakeServer
) -> None:
    openai_fake.script.queue(Reply(text="ame.upper()"))
    s: Session = await start_session(openai_options(openai_fake), KEY)
    uri = s.open("greet.py", "def greet(name):\n    return n\n")
    result = await s.menu(uri, 1, 12)
    assert result.is_incomplete is True
    [item] = result.items
    assert "openai" in (item.detail or "")
    assert isinstance(item.text_edit, lsp.TextEdit)
    # The edit replaces the word being typed, so the editor's own filtering keeps the item.
    assert item.text_edit.range == lsp.Range(lsp.Position(1, 11), lsp.Position(1, 12))
    assert item.text_edit.new_text == "name.upper()"
    assert item.filter_text == "name.upper()"


async def test_openai_fim_mode_sends_prompt_and_suffix(
    start_session: Any, openai_fake: FakeServer
) -> None:
    openai_fake.script.queue(Reply(text="a + b"))
    options = openai_options(openai_fake, fim=True)
    s: Session = await start_session(options, KEY)
    uri = s.open("add.py", "def add(a, b):\n    return \n\nprint(add(1, 2))\n")
    assert await s.inline(uri, 1, 11) == ["a + b"]
    sent = openai_fake.script.requests[-1]
    assert sent.path.endswith("/completions") and "chat" not in sent.path
    assert sent.body["prompt"] == "# Path: add.py\ndef add(a, b):\n    return "
    assert sent.body["suffix"] == "\n\nprint(add(1, 2))\n"


async def test_inline_completion_from_claude(
    start_session: Any, anthropic_fake: FakeServer
) -> None:
    anthropic_fake.script.queue(Reply(text="name.title()"))
    options = {
        "completion": {"providers": ["claude"], "prefetch": False},
        "providers": {"claude": {"base_url": anthropic_fake.base_url + "/v1"}},
    }
    s: Session = await start_session(options, {"ANTHROPIC_API_KEY": "sk-ant-test"})
    uri = s.open("greet.py", PY)
    assert await s.inline(uri, 1, 11) == ["name.title()"]
    sent = anthropic_fake.script.requests[-1]
    assert sent.headers["x-api-key"] == "sk-ant-test"
    assert sent.headers["anthropic-version"] == "2023-06-01"
    result = await s.menu(uri, 1, 11)
    assert "claude" in (result.items[0].detail or "")


async def test_inline_completion_from_ollama(start_session: Any, ollama_fake: FakeServer) -> None:
    ollama_fake.script.queue(Reply(text="name * 2"))
    options = {
        "completion": {"providers": ["ollama"], "prefetch": False},
        "providers": {"ollama": {"base_url": ollama_fake.base_url}},
    }
    s: Session = await start_session(options)
    uri = s.open("greet.py", PY)
    assert await s.inline(uri, 1, 11) == ["name * 2"]
    sent = ollama_fake.script.requests[-1]
    assert sent.path == "/api/generate"
    assert sent.body["suffix"] == "\n"
    assert sent.body["prompt"].endswith("    return ")


async def test_failing_provider_falls_through_to_the_next(
    start_session: Any, openai_fake: FakeServer, ollama_fake: FakeServer
) -> None:
    openai_fake.script.queue(*[Reply(status=503)] * 4)
    ollama_fake.script.queue(Reply(text="name or 'world'"))
    options = openai_options(openai_fake)
    options["completion"]["providers"] = ["openai", "ollama"]
    options["providers"]["ollama"] = {"base_url": ollama_fake.base_url}
    options["http"] = {"retry_backoff": 1}
    s: Session = await start_session(options, KEY)
    uri = s.open("greet.py", PY)
    assert await s.inline(uri, 1, 11) == ["name or 'world'"]
    assert len(openai_fake.script.requests) == 4  # first try + max_retries (3)
    status = await s.command("reaper.status")
    assert status["providers"]["openai"]["health"]["state"] == "failing"


async def test_unauthorized_provider_is_not_retried(
    start_session: Any, openai_fake: FakeServer, ollama_fake: FakeServer
) -> None:
    ollama_fake.script.queue(Reply(text="x"))
    options = openai_options(openai_fake)
    options["completion"]["providers"] = ["openai", "ollama"]
    options["providers"]["ollama"] = {"base_url": ollama_fake.base_url}
    s: Session = await start_session(options, {"OPENAI_API_KEY": "sk-wrong"})
    uri = s.open("greet.py", PY)
    assert await s.inline(uri, 1, 11) == ["x"]
    assert len(openai_fake.script.requests) == 1


async def test_repeated_request_is_a_cache_hit(start_session: Any, openai_fake: FakeServer) -> None:
    openai_fake.script.queue(Reply(text="name.upper()"))
    s: Session = await start_session(openai_options(openai_fake), KEY)
    uri = s.open("greet.py", PY)
    assert await s.inline(uri, 1, 11) == ["name.upper()"]
    assert await s.inline(uri, 1, 11) == ["name.upper()"]
    assert await s.menu(uri, 1, 11)
    assert len(openai_fake.script.requests) == 1
    status = await s.command("reaper.status")
    assert status["cache"]["hits"] >= 2


async def test_typing_through_a_suggestion_needs_no_upstream_call(
    start_session: Any, openai_fake: FakeServer
) -> None:
    openai_fake.script.queue(Reply(text="name.upper()"))
    s: Session = await start_session(openai_options(openai_fake), KEY)
    uri = s.open("greet.py", PY)
    assert await s.inline(uri, 1, 11) == ["name.upper()"]
    for i, ch in enumerate("name."):
        s.type_text(uri, 1, 11 + i, ch)
        assert await s.inline(uri, 1, 12 + i) == ["name.upper()"[i + 1 :]]
    assert len(openai_fake.script.requests) == 1


async def test_clear_cache_command_forgets_suggestions(
    start_session: Any, openai_fake: FakeServer
) -> None:
    openai_fake.script.queue(Reply(text="one"), Reply(text="two"))
    s: Session = await start_session(openai_options(openai_fake), KEY)
    uri = s.open("greet.py", PY)
    assert await s.inline(uri, 1, 11) == ["one"]
    assert await s.command("reaper.clearCache") == {"cleared": True}
    assert await s.inline(uri, 1, 11) == ["two"]


async def test_cancel_request_closes_the_upstream_stream(
    start_session: Any, openai_fake: FakeServer
) -> None:
    openai_fake.script.queue(Reply(text="partial", hold_open=True))
    s: Session = await start_session(openai_options(openai_fake), KEY)
    uri = s.open("greet.py", PY)
    pending = asyncio.ensure_future(s.inline(uri, 1, 11))
    assert await asyncio.to_thread(openai_fake.script.wait_for_requests, 1, 10)
    request_id = max(s.client.protocol._request_futures)  # the inline request just sent
    s.client.protocol.notify("$/cancelRequest", lsp.CancelParams(id=request_id))
    with pytest.raises(Exception, match="cancel"):
        await pending
    recorded = openai_fake.script.requests[0]
    assert await asyncio.to_thread(recorded.disconnected.wait, 10)
    assert not recorded.completed.is_set()


async def test_newer_request_for_the_same_document_cancels_the_older_upstream(
    start_session: Any, openai_fake: FakeServer
) -> None:
    openai_fake.script.queue(Reply(text="slow", hold_open=True), Reply(text="name"))
    s: Session = await start_session(openai_options(openai_fake), KEY)
    uri = s.open("greet.py", PY)
    older = asyncio.ensure_future(s.inline(uri, 1, 11))
    assert await asyncio.to_thread(openai_fake.script.wait_for_requests, 1, 10)
    s.type_text(uri, 1, 11, "n")
    assert await s.inline(uri, 1, 12) == ["name"]
    assert await older == []
    first = openai_fake.script.requests[0]
    assert await asyncio.to_thread(first.disconnected.wait, 10)


async def test_five_megabyte_buffer_is_completed_within_budget(
    start_session: Any, openai_fake: FakeServer
) -> None:
    openai_fake.script.queue(Reply(text="42"))
    filler = "".join(f"value_{i} = {i}\n" for i in range(300_000))
    assert len(filler) > 5_000_000
    s: Session = await start_session(openai_options(openai_fake), KEY)
    uri = s.open("big.py", filler + "answer = \n")
    assert await s.inline(uri, 300_000, 9) == ["42"]
    user = openai_fake.script.requests[-1].body["messages"][-1]["content"]
    assert len(user) < 8000 + 2000 + 1000
    assert "answer = <cursor>" in user


async def test_emoji_before_the_cursor_uses_utf16_columns(
    start_session: Any, openai_fake: FakeServer
) -> None:
    openai_fake.script.queue(Reply(text=" world"))
    s: Session = await start_session(openai_options(openai_fake), KEY)
    uri = s.open("emoji.py", 'print("😀 你好 hello")\n')
    # "😀" is two UTF-16 units, so the column after "hello" is 1 + 6 + 2 + 1 + 2 + 1 + 5 = 18.
    line = 'print("😀 你好 hello'
    column = len(line.encode("utf-16-le")) // 2
    assert await s.inline(uri, 0, column) == [" world"]
    user = openai_fake.script.requests[-1].body["messages"][-1]["content"]
    assert 'print("😀 你好 hello<cursor>")' in user


async def test_unopened_file_is_read_from_disk(
    start_session: Any, openai_fake: FakeServer, workspace: Path
) -> None:
    openai_fake.script.queue(Reply(text="1"))
    (workspace / "disk.py").write_text("x = \n", encoding="utf-8")
    s: Session = await start_session(openai_options(openai_fake), KEY)
    assert await s.inline((workspace / "disk.py").as_uri(), 0, 4) == ["1"]


async def test_unknown_document_answers_empty_and_server_keeps_serving(
    start_session: Any, openai_fake: FakeServer
) -> None:
    openai_fake.script.queue(Reply(text="ok"))
    s: Session = await start_session(openai_options(openai_fake), KEY)
    assert await s.inline("untitled:Untitled-1", 0, 0) == []
    uri = s.open("a.py", "x = \n")
    assert await s.inline(uri, 0, 4) == ["ok"]


async def test_garbage_stream_falls_back_and_server_keeps_serving(
    start_session: Any, openai_fake: FakeServer
) -> None:
    openai_fake.script.queue(*[Reply(garbage=True)] * 4, Reply(text="fine"))
    options = openai_options(openai_fake)
    options["http"] = {"retry_backoff": 1}
    s: Session = await start_session(options, KEY)
    uri = s.open("a.py", "def twice(value):\n    return value * 2\n\nthree = twice(\n")
    await s.inline(uri, 3, 14)  # whatever the offline engine finds; it must not be an error
    assert len(openai_fake.script.requests) == 4  # garbage is retried like a broken connection
    s.type_text(uri, 3, 14, "1")
    assert await s.inline(uri, 3, 15) == ["fine"]


async def test_bad_config_value_is_reported_and_the_server_still_completes(
    start_session: Any, openai_fake: FakeServer, home: Path
) -> None:
    config_dir = home / "config" / "reaper-lsp"
    config_dir.mkdir(parents=True)
    (config_dir / "reaper.toml").write_text('[completion]\ntimeout_ms = "fast"\n', encoding="utf-8")
    openai_fake.script.queue(Reply(text="ok"))
    s: Session = await start_session(openai_options(openai_fake), KEY)
    await asyncio.sleep(0.2)
    messages = [m.message for m in s.client.messages]
    assert any("completion.timeout_ms" in m and "reaper.toml" in m for m in messages), messages
    uri = s.open("a.py", "x = \n")
    assert await s.inline(uri, 0, 4) == ["ok"]


async def test_status_reports_providers_cache_and_http_figures_without_secrets(
    start_session: Any, openai_fake: FakeServer
) -> None:
    openai_fake.script.queue(Reply(text="1"))
    s: Session = await start_session(openai_options(openai_fake), KEY)
    uri = s.open("a.py", "x = \n")
    await s.inline(uri, 0, 4)
    status = await s.command("reaper.status")
    openai = status["providers"]["openai"]
    assert openai["configured"] is True
    assert openai["http"]["requests"] == 1
    assert openai["http"]["bytesReceived"] > 0
    assert status["providers"]["claude"]["configured"] is False
    assert "sk-test" not in json.dumps(status)


async def test_configuration_change_takes_effect_without_restart(
    start_session: Any, openai_fake: FakeServer, ollama_fake: FakeServer, home: Path
) -> None:
    ollama_fake.script.queue(Reply(text="from ollama"))
    s: Session = await start_session(openai_options(openai_fake), KEY)
    # The user points Ollama somewhere in their config file; the editor then tells the server
    # its own settings changed (endpoints never come from the editor).
    merge_user_config(
        isolated_env(home), {"providers": {"ollama": {"base_url": ollama_fake.base_url}}}
    )
    s.client.workspace_did_change_configuration(
        lsp.DidChangeConfigurationParams(
            settings={"reaper": {"completion": {"providers": ["ollama"], "prefetch": False}}}
        )
    )
    uri = s.open("a.py", "x = \n")
    assert await s.inline(uri, 0, 4) == ["from ollama"]
    assert openai_fake.script.requests == []


async def test_chat_streams_deltas_and_returns_the_text(
    start_session: Any, openai_fake: FakeServer
) -> None:
    openai_fake.script.queue(Reply(text="Use a dict comprehension.", chunk_size=5))
    options = openai_options(openai_fake)
    options["chat"] = {"providers": ["openai"]}
    s: Session = await start_session(options, KEY)
    uri = s.open("a.py", "x = [1, 2]\n")
    result = await s.command(
        "reaper.chat",
        {"prompt": "How do I map this?", "textDocument": {"uri": uri}, "conversationId": "c1"},
    )
    assert result["text"] == "Use a dict comprehension."
    assert result["provider"] == "openai"
    sent = openai_fake.script.requests[-1].body
    assert sent["model"] == "gpt-4o" and "x = [1, 2]" in sent["messages"][-1]["content"]
    await asyncio.sleep(0.05)
    deltas = [getattr(p, "delta", "") for m, p in s.notifications if m == "reaper/chatDelta"]
    assert "".join(deltas) == "Use a dict comprehension." and len(deltas) > 1

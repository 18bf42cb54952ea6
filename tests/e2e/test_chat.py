"""Chat through the real server and the OpenAI fake: conversations kept per id, `$/progress`
streaming, cancellation that reaches the upstream stream, a provider failing mid-answer."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from lsprotocol import types as lsp

from tests.e2e.conftest import Session, openai_options
from tests.fakes.runner import FakeServer
from tests.fakes.script import Reply

KEY = {"OPENAI_API_KEY": "sk-test"}


def chat_options(fake: FakeServer) -> dict[str, Any]:
    options = openai_options(fake)
    options["chat"] = {"providers": ["openai"]}
    return options


def deltas(s: Session, conversation: str) -> list[str]:
    return [
        p.delta
        for m, p in s.notifications
        if m == "reaper/chatDelta" and p.conversationId == conversation
    ]


async def test_a_second_turn_sends_the_first_upstream(
    start_session: Any, openai_fake: FakeServer
) -> None:
    openai_fake.script.queue(Reply(text="Use sorted(xs)."), Reply(text="Pass reverse=True."))
    s: Session = await start_session(chat_options(openai_fake), KEY)
    uri = s.open("a.py", "xs = [3, 1, 2]\nprint(xs)\n")
    first = await s.command(
        "reaper.chat",
        {
            "conversationId": "c1",
            "prompt": "How do I sort this?",
            "textDocument": {"uri": uri},
            "range": {"start": {"line": 0, "character": 0}, "end": {"line": 1, "character": 0}},
        },
    )
    assert first["text"] == "Use sorted(xs)."
    second = await s.command("reaper.chat", {"conversationId": "c1", "prompt": "Descending?"})
    assert second["text"] == "Pass reverse=True."
    sent = openai_fake.script.requests[1].body["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "user"]
    assert sent[0]["content"].startswith("How do I sort this?")
    assert "Selected (lines 1-1 of a.py)" in sent[0]["content"]
    assert "xs = [3, 1, 2]" in sent[0]["content"]
    assert sent[1]["content"] == "Use sorted(xs)."
    assert sent[2]["content"] == "Descending?"

    listed = await s.command("reaper.chatList")
    assert [(c["conversationId"], c["turns"]) for c in listed["conversations"]] == [("c1", 4)]
    assert await s.command("reaper.chatReset", {"conversationId": "c1"}) == {
        "conversationId": "c1",
        "reset": True,
    }
    openai_fake.script.queue(Reply(text="Fresh."))
    await s.command("reaper.chat", {"conversationId": "c1", "prompt": "Hello"})
    assert [m["role"] for m in openai_fake.script.requests[2].body["messages"]] == ["user"]


async def test_conversations_do_not_mix(start_session: Any, openai_fake: FakeServer) -> None:
    openai_fake.script.queue(Reply(text="A1"), Reply(text="B1"), Reply(text="A2"))
    s: Session = await start_session(chat_options(openai_fake), KEY)
    await s.command("reaper.chat", {"conversationId": "a", "prompt": "qa1"})
    await s.command("reaper.chat", {"conversationId": "b", "prompt": "qb1"})
    await s.command("reaper.chat", {"conversationId": "a", "prompt": "qa2"})
    contents = [m["content"] for m in openai_fake.script.requests[2].body["messages"]]
    assert contents == ["qa1", "A1", "qa2"]


async def test_progress_begin_reports_growing_text_and_end_with_a_token(
    start_session: Any, openai_fake: FakeServer
) -> None:
    openai_fake.script.queue(Reply(text="one two three four", chunk_size=4))
    s: Session = await start_session(chat_options(openai_fake), KEY)
    s.client.progress_reports["tok-1"] = []
    result = await s.client.workspace_execute_command_async(
        lsp.ExecuteCommandParams(
            command="reaper.chat",
            arguments=[{"prompt": "Count", "conversationId": "p"}],
            work_done_token="tok-1",
        )
    )
    assert result["text"] == "one two three four"
    await asyncio.sleep(0.1)
    reports = s.client.progress_reports["tok-1"]
    assert isinstance(reports[0], lsp.WorkDoneProgressBegin)
    assert isinstance(reports[-1], lsp.WorkDoneProgressEnd)
    assert reports[-1].message == "answered by openai"
    texts = [r.message for r in reports[1:-1]]
    assert all(isinstance(r, lsp.WorkDoneProgressReport) for r in reports[1:-1])
    # Each report shows the end of the answer so far (a tail, never the whole answer again).
    assert texts and all(text and "one two three four".find(text) >= 0 for text in texts)
    assert "".join(deltas(s, "p")) == "one two three four"


async def test_progress_of_a_long_answer_in_many_pieces_stays_small(
    start_session: Any, openai_fake: FakeServer
) -> None:
    """40 KB in 4,000 pieces once made 4,002 `$/progress` messages totalling 80 MB: each report
    carried the whole answer so far."""
    answer = "".join(f"{i % 10}" for i in range(40_000))
    openai_fake.script.queue(Reply(text=answer, chunk_size=10))
    s: Session = await start_session(chat_options(openai_fake), KEY)
    s.client.progress_reports["tok-big"] = []
    result = await s.client.workspace_execute_command_async(
        lsp.ExecuteCommandParams(
            command="reaper.chat",
            arguments=[{"prompt": "Long", "conversationId": "big"}],
            work_done_token="tok-big",
        )
    )
    assert result["text"] == answer
    await asyncio.sleep(0.1)
    reports = s.client.progress_reports["tok-big"]
    sent = sum(len(getattr(r, "message", None) or "") for r in reports)
    assert sent <= 20_000, sent  # was 80 MB
    assert "".join(deltas(s, "big")) == answer  # the deltas add up to the answer, once


async def test_cancelling_a_chat_closes_the_upstream_stream_and_stops_the_deltas(
    start_session: Any, openai_fake: FakeServer
) -> None:
    openai_fake.script.queue(Reply(text="partial answer ", chunk_size=4, hold_open=True))
    s: Session = await start_session(chat_options(openai_fake), KEY)
    params = lsp.ExecuteCommandParams(
        command="reaper.chat", arguments=[{"prompt": "Go on forever", "conversationId": "x"}]
    )
    pending = asyncio.wrap_future(
        s.client.protocol.send_request(lsp.WORKSPACE_EXECUTE_COMMAND, params, msg_id="chat-1")
    )
    assert await asyncio.to_thread(openai_fake.script.wait_for_requests, 1, 10)
    for _ in range(100):  # the text before the hold has reached the client
        if "".join(deltas(s, "x")) == "partial answer ":
            break
        await asyncio.sleep(0.05)
    s.client.protocol.notify("$/cancelRequest", lsp.CancelParams(id="chat-1"))
    with pytest.raises(Exception, match="cancel"):
        await pending
    recorded = openai_fake.script.requests[0]
    assert await asyncio.to_thread(recorded.disconnected.wait, 10)
    assert not recorded.completed.is_set()
    seen = len(s.notifications)
    await asyncio.sleep(0.3)
    assert len(s.notifications) == seen
    # The cancelled exchange is not part of the conversation.
    assert (await s.command("reaper.chatList"))["conversations"][0]["turns"] == 0


async def test_a_provider_failing_mid_answer_is_continued_by_the_next(
    start_session: Any, openai_fake: FakeServer, ollama_fake: FakeServer
) -> None:
    openai_fake.script.queue(Reply(text="The first half and more", error_mid_stream=True))
    ollama_fake.script.queue(Reply(text=" the second half."))
    options = chat_options(openai_fake)
    options["chat"] = {"providers": ["openai", "ollama"]}
    options["providers"]["ollama"] = {"base_url": ollama_fake.base_url}
    s: Session = await start_session(options, KEY)
    result = await s.command("reaper.chat", {"conversationId": "m", "prompt": "Halves?"})
    assert result["provider"] == "ollama"
    assert result["text"].endswith(" the second half.")
    head = result["text"].removesuffix(" the second half.")
    assert head and "The first half and more".startswith(head)
    sent = ollama_fake.script.requests[0].body["messages"]
    assert sent[-2] == {"role": "assistant", "content": head}
    assert "Continue it exactly where it stopped" in sent[-1]["content"]


async def test_chat_without_prompt_or_messages_is_invalid_params(
    start_session: Any, openai_fake: FakeServer
) -> None:
    s: Session = await start_session(chat_options(openai_fake), KEY)
    with pytest.raises(Exception, match="needs a prompt or messages"):
        await s.command("reaper.chat", {"conversationId": "z"})

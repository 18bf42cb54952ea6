"""Failures that once escaped the chain (issue: architecture). Each must end in an answer — the
provider's when it can give one, else the offline engine's — never in nothing."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from lsprotocol import types as lsp

from tests.e2e.conftest import Session, openai_options
from tests.e2e.test_copilot import github_fake, options, sign_in  # noqa: F401 (fixture)
from tests.fakes.runner import FakeServer
from tests.fakes.script import Reply

KEY = {"OPENAI_API_KEY": "sk-test"}
DOC = "total = compute_total(items)\nprint(total)\ntotal = comp\n"
SSE = {"content-type": "text/event-stream"}


async def test_a_stream_line_over_the_size_limit_falls_back_to_the_offline_engine(
    start_session: Any, openai_fake: FakeServer
) -> None:
    huge = b"data: " + b"x" * (5 * 1024 * 1024) + b"\n\n"
    openai_fake.script.queue(Reply(body=huge, headers=SSE))
    s: Session = await start_session(openai_options(openai_fake, max_retries=0), KEY)
    uri = s.open("a.py", DOC)
    assert await s.inline(uri, 2, 12, invoked=True) == ["ute_total(items)"]
    status = await s.command("reaper.status")
    assert status["providers"]["openai"]["health"]["failures"] >= 1


async def test_a_usage_field_of_the_wrong_type_does_not_cost_the_answer(
    start_session: Any, openai_fake: FakeServer
) -> None:
    chunk = {
        "choices": [{"index": 0, "delta": {"content": "ute_total(items)  # paid"}}],
        "usage": {"prompt_tokens": "lots", "completion_tokens": None},
    }
    body = b"data: " + json.dumps(chunk).encode() + b"\n\ndata: [DONE]\n\n"
    openai_fake.script.queue(Reply(body=body, headers=SSE))
    s: Session = await start_session(openai_options(openai_fake), KEY)
    uri = s.open("a.py", DOC)
    assert await s.inline(uri, 2, 12, invoked=True) == ["ute_total(items)  # paid"]


async def test_garbage_that_breaks_a_provider_falls_back(
    start_session: Any, openai_fake: FakeServer
) -> None:
    openai_fake.script.queue(Reply(body=b"data: [1, 2\n\n", headers=SSE))
    s: Session = await start_session(openai_options(openai_fake, max_retries=0), KEY)
    uri = s.open("a.py", DOC)
    assert await s.inline(uri, 2, 12, invoked=True) == ["ute_total(items)"]


async def test_an_http_change_then_a_copilot_token_remint_still_completes(
    start_session: Any,
    github_fake: FakeServer,  # noqa: F811 (fixture)
) -> None:
    github_fake.script.queue(Reply(text="one"), Reply(text="two"))
    opts = options(github_fake)
    s: Session = await start_session(opts)
    await sign_in(s)
    uri = s.open("a.py", "x = \n")
    assert await s.inline(uri, 0, 4, invoked=True) == ["one"]
    minted = github_fake.app.state.mints
    # A new [http] section closes the old HTTP clients; sign-in must use the new ones.
    s.client.workspace_did_change_configuration(
        lsp.DidChangeConfigurationParams(settings={**opts, "http": {"read_timeout": 60000}})
    )
    github_fake.app.state.expire_all()  # the next request needs a fresh Copilot token
    s.type_text(uri, 0, 4, "1\n")
    assert await s.inline(uri, 1, 0, invoked=True) == ["two"]
    assert github_fake.app.state.mints == minted + 1


async def test_a_rejected_api_key_is_told_once_naming_the_key_and_falls_back(
    start_session: Any, openai_fake: FakeServer
) -> None:
    s: Session = await start_session(
        openai_options(openai_fake), {"OPENAI_API_KEY": "sk-wrong-key-123456"}
    )
    uri = s.open("a.py", DOC)
    assert await s.inline(uri, 2, 12, invoked=True) == ["ute_total(items)"]
    s.type_text(uri, 2, 12, "u")
    assert await s.inline(uri, 2, 13, invoked=True) == ["te_total(items)"]
    await asyncio.sleep(0.2)
    told = [m.message for m in s.client.messages if "rejected the API key" in m.message]
    assert told == [
        "openai rejected the API key from $OPENAI_API_KEY (HTTP 401); "
        "the next provider in the chain answers until it is fixed"
    ]
    assert "sk-wrong" not in json.dumps([m.message for m in s.client.messages])

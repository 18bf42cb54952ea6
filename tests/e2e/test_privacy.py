"""What leaves the machine, through the real server and the fakes (which record every byte they
receive): canaries planted in `.env`, `id_rsa`, `~/.aws/credentials` and a buffer (an AWS key)
reach no provider through completion, context from other open tabs (llama.cpp's `input_extra`),
chat attachments or code actions; a disabled language or a toggled-off switch sends nothing."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types as lsp

from tests.e2e.conftest import (
    REAPER_LSP,
    Session,
    isolated_env,
    merge_user_config,
    openai_options,
)
from tests.fakes.llamacpp import FakeLlamaServer
from tests.fakes.runner import FakeServer
from tests.fakes.script import Reply

KEY = {"OPENAI_API_KEY": "sk-test"}
CANARY = "canary-7f3a9e"
"""Not shaped like a credential: only the exclusion rules can keep it from a provider."""
ENV_FILE = f'DATABASE_HOST = "{CANARY}-env.internal"\nDATABASE_PORT = 5432\n'
ID_RSA = f"-----BEGIN OPENSSH PRIVATE KEY-----\nDATABASE_HOST {CANARY}-rsa\n-----END\n"
AWS_CREDENTIALS = f"[default]\nDATABASE_HOST = {CANARY}-aws\n"
AWS_KEY = "AKIA" + "ZQ3R7N2W" + "5X4Y6T2U"  # built here: a canary, never a real key
APP = (
    "import settings\n\n\ndef connect():\n"
    "    host = settings.DATABASE_HOST\n    port = settings.DATABASE_PORT\n    return \n"
)


def everything_sent(fake: FakeServer) -> bytes:
    return b"".join(r.raw for r in fake.script.requests)


async def until(check: Any, timeout: float = 5.0) -> None:
    for _ in range(int(timeout / 0.02)):
        if check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not met in time")


@pytest.fixture
def llama() -> Iterator[FakeServer]:
    server = FakeServer(FakeLlamaServer())
    server.start()
    try:
        yield server
    finally:
        server.stop()


def llama_options(fake: FakeServer) -> dict[str, Any]:
    return {
        "completion": {"providers": ["llamacpp"], "debounce_ms": 0, "prefetch": False},
        "chat": {"providers": ["llamacpp"]},
        "providers": {"llamacpp": {"base_url": fake.base_url}},
    }


def open_secrets(s: Session, home: Path) -> None:
    """A `.env`, an `id_rsa` and `~/.aws/credentials` open in other tabs, all naming what the
    cursor's lines name (so the snippet search would pick them)."""
    s.open(".env", ENV_FILE, "dotenv")
    s.open("deploy/id_rsa", ID_RSA, "plaintext")
    aws = (home / ".aws" / "credentials").as_uri()
    s.client.text_document_did_open(
        lsp.DidOpenTextDocumentParams(lsp.TextDocumentItem(aws, "ini", 1, AWS_CREDENTIALS))
    )


async def test_an_open_env_file_is_completed_offline_and_never_sent(
    start_session: Any, openai_fake: FakeServer
) -> None:
    openai_fake.script.default = Reply(text="remote")
    s: Session = await start_session(openai_options(openai_fake), KEY)
    uri = s.open(".env", ENV_FILE + "DATABASE_", "dotenv")
    found = await s.inline(uri, 2, 9, invoked=True)
    assert found != ["remote"]  # the offline engine answers, if anything does
    other = s.open("app.py", "x = \n")
    assert await s.inline(other, 0, 4, invoked=True) == ["remote"]  # remote works elsewhere
    assert CANARY.encode() not in everything_sent(openai_fake)
    assert len([r for r in openai_fake.script.requests if r.method == "POST"]) == 1


async def test_excluded_tabs_are_never_context_for_llamacpp_input_extra(
    start_session: Any, llama: FakeServer, home: Path
) -> None:
    llama.script.default = Reply(text="host, port")
    s: Session = await start_session(llama_options(llama))
    open_secrets(s, home)
    s.open("lib/settings.py", "DATABASE_HOST = 'db'\nDATABASE_PORT = 5432\n")
    uri = s.open("app.py", APP)
    assert await s.inline(uri, 6, 11, invoked=True) == ["host, port"]
    [infill] = [r for r in llama.script.requests if r.path == "/infill"]
    # (one file may give several windows)
    assert {extra["filename"] for extra in infill.body["input_extra"]} == {"lib/settings.py"}
    assert CANARY.encode() not in everything_sent(llama)


async def test_a_credential_in_the_buffer_is_scrubbed_before_it_leaves(
    start_session: Any, llama: FakeServer
) -> None:
    llama.script.default = Reply(text="boto3.client('s3')")
    s: Session = await start_session(llama_options(llama))
    uri = s.open("aws.py", f'ACCESS_KEY = "{AWS_KEY}"\nclient = \n')
    assert await s.inline(uri, 1, 9, invoked=True) == ["boto3.client('s3')"]
    [infill] = [r for r in llama.script.requests if r.path == "/infill"]
    assert AWS_KEY.encode() not in everything_sent(llama)
    assert "<secret:aws-access-key>" in infill.body["input_prefix"]
    audit = await s.command("reaper.audit", {"last": 1})
    assert audit["records"][0]["scrubbed"] == 1


async def test_a_chat_about_an_excluded_file_goes_without_it_and_says_so(
    start_session: Any, openai_fake: FakeServer
) -> None:
    openai_fake.script.default = Reply(text="Use a secrets manager.")
    options = openai_options(openai_fake) | {"chat": {"providers": ["openai"]}}
    s: Session = await start_session(options, KEY)
    uri = s.open(".env", ENV_FILE, "dotenv")
    result = await s.command(
        "reaper.chat", {"prompt": "Is this safe?", "textDocument": {"uri": uri}}
    )
    assert result["text"] == "Use a secrets manager."
    [chat] = [r for r in openai_fake.script.requests if r.path.endswith("/chat/completions")]
    question = chat.body["messages"][-1]["content"]
    assert question.startswith("Is this safe?") and "No file is attached" in question
    assert ".env is excluded by [privacy] pattern '.env'" in question
    assert CANARY.encode() not in everything_sent(openai_fake)


async def test_a_code_action_on_an_excluded_file_is_refused_naming_the_rule(
    start_session: Any, openai_fake: FakeServer
) -> None:
    options = openai_options(openai_fake) | {"chat": {"providers": ["openai"]}}
    s: Session = await start_session(options, KEY)
    uri = s.open("deploy/id_rsa", ID_RSA, "plaintext")
    args = {"action": "explain", "uri": uri, "version": 1, "first": 0, "last": 2}
    refused = r"Explain: not sent, deploy/id_rsa is excluded by \[privacy\] pattern .id_rsa\*."
    with pytest.raises(Exception, match=refused):
        await s.command("reaper.codeAction", args)
    assert not [r for r in openai_fake.script.requests if r.method == "POST"]


async def test_a_disabled_language_sends_nothing_and_answers_empty(
    start_session: Any, openai_fake: FakeServer
) -> None:
    openai_fake.script.default = Reply(text="more")
    options = openai_options(openai_fake)
    options["completion"]["disabled_languages"] = ["markdown"]
    s: Session = await start_session(options, KEY)
    notes = s.open("NOTES.md", "# Notes\n\nSome \n", "markdown")
    assert await s.inline(notes, 2, 5, invoked=True) == []
    assert not (await s.menu(notes, 2, 5)).items
    assert not [r for r in openai_fake.script.requests if r.method == "POST"]
    code = s.open("app.py", "x = \n")
    assert await s.inline(code, 0, 4, invoked=True) == ["more"]


async def test_toggles_turn_suggestions_off_and_on_and_status_shows_them(
    start_session: Any, openai_fake: FakeServer, workspace: Path
) -> None:
    openai_fake.script.default = Reply(text="value")
    s: Session = await start_session(openai_options(openai_fake), KEY)
    uri = s.open("app.py", "x = \n")
    doc = {"uri": uri}
    off = await s.command("reaper.toggle", {"scope": "language", "textDocument": doc})
    assert off == {"scope": "language", "enabled": False, "language": "python"}
    assert await s.inline(uri, 0, 4, invoked=True) == []
    status = await s.command("reaper.status")
    assert status["suggestions"]["toggles"]["languages"] == {"python": False}
    on = await s.command("reaper.toggle", {"scope": "language", "textDocument": doc})
    assert on["enabled"] is True
    ws = await s.command("reaper.toggle", {"scope": "workspace", "textDocument": doc})
    assert ws == {"scope": "workspace", "enabled": False, "workspace": str(workspace)}
    assert await s.inline(uri, 0, 4, invoked=True) == []
    await s.command("reaper.toggle", {"scope": "workspace", "textDocument": doc})
    assert await s.command("reaper.toggle", {"scope": "global"}) == {
        "scope": "global",
        "enabled": False,
    }
    assert await s.inline(uri, 0, 4, invoked=True) == []
    assert not [r for r in openai_fake.script.requests if r.method == "POST"]
    await s.command("reaper.toggle", {"scope": "global"})
    assert await s.inline(uri, 0, 4, invoked=True) == ["value"]
    with pytest.raises(Exception, match="scope must be one of global, language, workspace"):
        await s.command("reaper.toggle", {"scope": "everything"})


async def test_remote_off_in_the_workspace_file_keeps_every_request_local(
    start_session: Any, openai_fake: FakeServer, workspace: Path
) -> None:
    (workspace / ".reaper.toml").write_text("[privacy]\nremote = false\n", encoding="utf-8")
    options = openai_options(openai_fake) | {"chat": {"providers": ["openai"]}}
    s: Session = await start_session(options, KEY)
    uri = s.open("app.py", "total = compute_total(items)\nprint(total)\ntotal = comp\n")
    assert await s.inline(uri, 2, 12, invoked=True) == ["ute_total(items)"]  # offline
    with pytest.raises(Exception, match=r"remote providers are off for this project"):
        await s.command("reaper.chat", {"prompt": "hi", "textDocument": {"uri": uri}})
    assert not [r for r in openai_fake.script.requests if r.method == "POST"]


def test_the_terminal_commands_send_no_excluded_file_either(
    home: Path, workspace: Path, openai_fake: FakeServer
) -> None:
    openai_fake.script.default = Reply(text="remote")
    merge_user_config(
        isolated_env(home),
        {
            "completion": {"providers": ["openai"]},
            "chat": {"providers": ["openai"]},
            "providers": {"openai": {"base_url": openai_fake.base_url + "/v1"}},
        },
    )
    (workspace / ".git").mkdir()
    env_file = workspace / ".env"
    env_file.write_text(ENV_FILE + "DATABASE_\n", encoding="utf-8")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [REAPER_LSP, *args], env=isolated_env(home, **KEY), cwd=workspace,
            capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
        )  # fmt: skip

    completed = run("complete", str(env_file), "--line", "3", "--col", "10")
    assert "# openai" not in completed.stderr, completed.stderr
    asked = run("chat", "What is in it?", "--file", str(env_file))
    assert asked.returncode == 0, asked.stderr
    [chat] = [r for r in openai_fake.script.requests if r.method == "POST"]
    assert "No file is attached: .env is excluded" in chat.body["messages"][-1]["content"]
    assert CANARY.encode() not in everything_sent(openai_fake)

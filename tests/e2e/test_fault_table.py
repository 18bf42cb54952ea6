"""Fault-table rows 6-9, 11-14 and 16 (issue 12) end to end: the real `reaper-lsp` process, fake
providers on 127.0.0.1, and the CLI as a user runs it. Rows 1-5 and 19 are in test_rpc_faults.py,
row 10 in test_fallback_regressions.py."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import converters
from lsprotocol import types as lsp

from tests.e2e.conftest import Session, isolated_env, openai_options
from tests.fakes.runner import FakeServer
from tests.fakes.script import Reply

BIN = Path(sys.executable).parent
DOC = "total = compute_total(items)\nprint(total)\ntotal = comp\n"
OFFLINE = "ute_total(items)"
# An OpenAI project key, which the redactor's patterns know, and a key of no known shape (Azure
# OpenAI's and many self-hosted servers' are 32 hex digits), which only registration can catch.
API_KEY = "sk-proj-Q7vX2mLk9RtY4bWz8NcE3hJf6PaS1dUg5KoI0lMnBvCxZqWeRtYuIoPaSdFgHjKl"
HEX_KEY = "9f3c1a7e5b2d48c6a0e4f19b7d3c5a81"
KEYS = pytest.mark.parametrize("key", [API_KEY, HEX_KEY], ids=["openai-key", "hex-key"])
# Something only the server's own environment holds: found upstream, /proc/self/environ leaked.
MARKER = "reaper-marker-4e1f9c2a7b"


def cli(home: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "reaper-lsp"), *args],
        env=isolated_env(home, **env),
        cwd=home,
        capture_output=True,
        text=True,
        timeout=30,
    )


async def end(s: Session) -> None:
    """Shut the server down now (it writes last-run.json on the way out); the fixture's own
    shutdown then has nothing left to do."""
    await asyncio.wait_for(s.client.shutdown_session(), 10)
    s.client.capabilities = None  # pytest-lsp skips shutdown for a client that never started


def shows(text: str, key: str) -> bool:
    """Whether `text` holds `key`, whole or its middle half."""
    return key in text or key[len(key) // 4 : 3 * len(key) // 4] in text


def messages(s: Session) -> list[str]:
    return [m.message for m in s.client.messages]


def peak_rss_kib(s: Session) -> int:
    process = s.client._server
    assert process is not None
    for line in Path(f"/proc/{process.pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


# -- 6: hostile special files in the workspace ---------------------------------------------------


@pytest.mark.parametrize(
    "kind", ["devices", "fifos"], ids=["to-dev-zero-and-urandom", "fifo-instead-of-stdin"]
)
async def test_special_files_in_the_workspace_are_not_read(
    start_session: Any, workspace: Path, kind: str
) -> None:
    if kind == "devices":
        (workspace / ".reaper.toml").symlink_to("/dev/zero")
        (workspace / ".gitignore").symlink_to("/dev/urandom")
    else:
        os.mkfifo(workspace / ".reaper.toml")
        os.mkfifo(workspace / "pipe")
        (workspace / ".gitignore").symlink_to(workspace / "pipe")
    (workspace / "inventory.py").write_text(
        "def read_inventory_records(path):\n    return open(path).read().split()\n"
    )
    options = {"completion": {"providers": ["local"], "debounce_ms": 0, "prefetch": False}}
    s: Session = await asyncio.wait_for(start_session(options), 5)
    uri = s.open("a.py", "records = read_inv\n")
    # Only the workspace scan, which walked past both files, taught the offline engine this name.
    for _ in range(40):
        answer = await asyncio.wait_for(s.inline(uri, 0, 18, invoked=True), 5)
        if answer:
            break
        await asyncio.sleep(0.1)
    assert answer == ["entory_records"]
    assert isinstance(await s.command("reaper.status"), dict)
    assert peak_rss_kib(s) < 400 * 1024


# -- 7: a 401 that echoes the key --------------------------------------------------------------


@KEYS
async def test_an_upstream_error_echoing_the_key_never_shows_it(
    start_session: Any, openai_fake: FakeServer, home: Path, key: str
) -> None:
    openai_fake.app.accepted_keys.add(key)
    echoed = {
        "error": {
            "message": f"Incorrect API key provided: {key}. You can find your API key at "
            "https://platform.openai.com/account/api-keys.",
            "type": "invalid_request_error",
            "param": None,
            "code": "invalid_api_key",
        }
    }
    openai_fake.script.default = Reply(status=401, body=echoed)
    env = {"OPENAI_API_KEY": key}
    s: Session = await start_session(openai_options(openai_fake), env)
    uri = s.open("a.py", DOC)
    assert await s.inline(uri, 2, 12, invoked=True) == [OFFLINE]
    assert openai_fake.script.requests, "the provider was never asked"
    status = await s.command("reaper.status")
    await asyncio.sleep(0.3)  # let the status notifications and messages arrive
    assert any(m == "reaper/status" for m, _ in s.notifications)
    assert any("rejected the API key" in m for m in messages(s)), messages(s)
    await end(s)

    last_run = home / "state" / "reaper-lsp" / "last-run.json"
    shown = {
        "reaper.status": json.dumps(status, default=str),
        "notifications": repr(s.notifications),
        "showMessage": json.dumps(messages(s)),
        "last-run.json": last_run.read_text(),
    }
    both = await asyncio.gather(  # at once: each probes the configured providers
        asyncio.to_thread(cli, home, "status", **env),
        asyncio.to_thread(cli, home, "status", "--json", **env),
    )
    shown["status"], shown["status --json"] = (done.stdout + done.stderr for done in both)
    leaked = [where for where, text in shown.items() if shows(text, key)]
    assert leaked == []
    # The echo did arrive and is shown, with the key masked (not dropped along with the message).
    for where in ("reaper.status", "notifications", "last-run.json"):
        assert "Incorrect API key provided: ***" in shown[where], where


# -- 8: a key in initializationOptions, logged at info -----------------------------------------


@KEYS
async def test_a_key_in_initialization_options_is_not_logged(
    start_session: Any, openai_fake: FakeServer, tmp_path: Path, key: str
) -> None:
    openai_fake.app.accepted_keys.add(key)
    openai_fake.script.queue(Reply(text="pute_total(items)"))
    log_file = tmp_path / "server.log"
    args = ["--log-level", "info", "--log-file", str(log_file)]
    s: Session = await start_session(openai_options(openai_fake, api_key=key), args=args)
    uri = s.open("a.py", DOC)
    assert await s.inline(uri, 2, 12, invoked=True) == ["pute_total(items)"]
    assert openai_fake.script.requests[0].headers["authorization"] == f"Bearer {key}"
    await end(s)
    log = log_file.read_text()
    assert "INFO" in log or "info" in log.lower(), log  # the log was written at info
    assert not shows(log, key)


# -- 9: a secret where a table belongs ---------------------------------------------------------


async def test_a_config_value_of_the_wrong_type_is_named_not_echoed(
    start_session: Any, openai_fake: FakeServer
) -> None:
    options = openai_options(openai_fake)
    options["providers"]["openai"] = HEX_KEY
    s: Session = await start_session(options)
    for _ in range(50):
        if any("providers.openai" in m for m in messages(s)):
            break
        await asyncio.sleep(0.1)
    told = [m for m in messages(s) if "providers.openai" in m]
    assert told, messages(s)
    assert any("str" in m or "string" in m for m in told), told
    assert not shows(json.dumps(messages(s)), HEX_KEY)
    assert isinstance(await s.command("reaper.status"), dict)


# -- 11: a CA file that does not exist ---------------------------------------------------------


async def test_a_missing_ca_file_leaves_the_offline_engine_and_status_working(
    start_session: Any, openai_fake: FakeServer, tmp_path: Path
) -> None:
    options = openai_options(openai_fake)
    missing = tmp_path / "no-such-ca.pem"
    options["http"] = {"tls": {"ca_file": str(missing)}}
    s: Session = await start_session(options, {"OPENAI_API_KEY": "sk-test"})
    uri = s.open("a.py", DOC)
    assert await s.inline(uri, 2, 12, invoked=True) == [OFFLINE]
    s.type_text(uri, 2, 12, "u")
    assert await s.inline(uri, 2, 13, invoked=True) == [OFFLINE[1:]]
    status = await s.command("reaper.status")
    assert isinstance(status, dict) and "providers" in status
    await asyncio.sleep(0.3)
    told = [m for m in messages(s) if "ca_file" in m]
    assert len(told) == 1, messages(s)
    assert "Traceback" not in told[0]


# -- 12: escapes and controls in a suggestion --------------------------------------------------

HOSTILE = "ute_total(\x1b]52;c;SGVsbG8=\x07items\x1b[2J\x9b31m\x85\u202e\x00)"
FORBIDDEN = ["\x1b", "\x07", "\x00", "\x9b", "\x85", "\u202e", "SGVsbG8=", "[2J"]


def assert_clean(text: str) -> None:
    assert [bad for bad in FORBIDDEN if bad in text] == [], repr(text)


async def test_escapes_and_controls_in_a_suggestion_never_reach_the_editor(
    start_session: Any, openai_fake: FakeServer
) -> None:
    openai_fake.script.queue(Reply(text=HOSTILE), Reply(text=HOSTILE))
    s: Session = await start_session(openai_options(openai_fake), {"OPENAI_API_KEY": "sk-test"})
    uri = s.open("a.py", DOC)
    assert await s.inline(uri, 2, 12, invoked=True) == ["ute_total(items)"]
    s.type_text(uri, 2, 12, "p")  # a new prefix: the menu asks upstream again
    menu = await s.menu(uri, 2, 13)
    assert len(openai_fake.script.requests) == 2
    assert menu.items
    shown = list(strings(lsp_json(menu)))
    assert any("ute_total(items)" in text for text in shown), shown  # the model's, cleaned
    assert_clean("".join(shown))


def lsp_json(value: object) -> Any:
    """`value` as the server sent it: what the editor shows, every field of it."""
    return converters.get_converter().unstructure(value)


def strings(value: Any) -> Iterator[str]:
    """Every string in a JSON value, raw (json.dumps would escape the controls we look for)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)


def test_escapes_and_controls_in_a_suggestion_never_reach_the_terminal(
    home: Path, openai_fake: FakeServer, workspace: Path
) -> None:
    openai_fake.script.queue(Reply(text=HOSTILE))
    (workspace / "a.py").write_text(DOC)
    config = home / "reaper.toml"
    config.write_text(
        f'[completion]\nproviders = ["openai"]\n\n'
        f'[providers.openai]\nbase_url = "{openai_fake.base_url}/v1"\n'
    )
    done = cli(
        home, "complete", str(workspace / "a.py"), "--line", "3", "--col", "13",
        REAPER_CONFIG=str(config), OPENAI_API_KEY="sk-test",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "# openai" in done.stderr
    assert done.stdout == "ute_total(items)\n"
    assert_clean(done.stdout + done.stderr)


# -- 13: a 1 MB line -------------------------------------------------------------------------


async def test_a_megabyte_suggestion_is_capped_before_the_editor(
    start_session: Any, openai_fake: FakeServer
) -> None:
    huge = "ute_total(" + "items, " * (1024 * 1024 // 7) + ")"
    openai_fake.script.queue(
        Reply(text=huge, chunk_size=32 * 1024), Reply(text=huge, chunk_size=32 * 1024)
    )
    s: Session = await start_session(openai_options(openai_fake), {"OPENAI_API_KEY": "sk-test"})
    uri = s.open("a.py", DOC)
    [ghost] = await s.inline(uri, 2, 12, invoked=True)
    assert ghost.startswith("ute_total(items, ")
    assert len(ghost) <= 4096
    s.type_text(uri, 2, 12, "x")  # not what was suggested: the menu asks upstream again
    menu = await s.menu(uri, 2, 13)
    assert len(openai_fake.script.requests) == 2
    shown = list(strings(lsp_json(menu)))
    assert any("items, items, items" in text for text in shown)  # the model's, cut
    assert len(json.dumps(lsp_json(menu))) <= 64 * 1024


# -- 14: documents the editor never opened -----------------------------------------------------


async def chat_about(s: Session, uri: str, prompt: str) -> Any:
    lines = {"start": {"line": 0, "character": 0}, "end": {"line": 1, "character": 0}}
    return await s.command(
        "reaper.chat",
        {"conversationId": uri, "prompt": prompt, "textDocument": {"uri": uri}, "range": lines},
    )


async def test_unopened_files_outside_the_workspace_are_never_read_or_sent(
    start_session: Any, openai_fake: FakeServer, tmp_path: Path
) -> None:
    outside = tmp_path / "elsewhere" / "secret.py"
    outside.parent.mkdir()
    # (a name that is no credential's: scrubbing would hide a TOKEN's value from the control)
    outside.write_text(f"GREETING = '{MARKER}'\nprint(GREETING)\n")
    options = openai_options(openai_fake)
    options["chat"] = {"providers": ["openai"]}
    s: Session = await start_session(options, {"OPENAI_API_KEY": "sk-test", "REAPER_MARK": MARKER})
    for uri in ("file:///proc/self/environ", outside.as_uri()):
        await s.client.text_document_inline_completion_async(
            lsp.InlineCompletionParams(
                context=lsp.InlineCompletionContext(lsp.InlineCompletionTriggerKind.Invoked),
                text_document=lsp.TextDocumentIdentifier(uri),
                position=lsp.Position(0, 5),
            )
        )
        try:
            await chat_about(s, uri, "What does this file hold?")
        except Exception as error:  # refusing is fine; leaking is not
            assert MARKER not in str(error)
    # The same document opened by the editor is the user's choice to share: it does go upstream.
    s.client.text_document_did_open(
        lsp.DidOpenTextDocumentParams(
            lsp.TextDocumentItem(outside.as_uri(), "python", 1, outside.read_text())
        )
    )
    await chat_about(s, outside.as_uri(), "And now?")
    *before, opened = [r.raw.decode("utf-8", "replace") for r in openai_fake.script.requests]
    assert MARKER in opened  # the control: an opened document is sent, marker and all
    assert [body for body in before if MARKER in body] == []


# -- 16: a token file others can read ----------------------------------------------------------


def test_a_world_readable_token_file_is_reported_and_made_private(home: Path) -> None:
    folder = home / "data" / "reaper-lsp"
    folder.mkdir(parents=True)
    auth = folder / "auth.json"
    auth.write_text(json.dumps({"github": {"oauth_token": "gho_" + "a1B2c3D4" * 4}}))
    auth.chmod(0o644)
    done = cli(home, "status")
    assert done.returncode == 0, done.stderr
    assert oct(auth.stat().st_mode & 0o777) == oct(0o600)
    assert "readable by other users" in done.stderr
    assert "gho_a1B2" not in done.stdout + done.stderr

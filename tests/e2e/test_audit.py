"""What was sent and what it cost, through the real server and the terminal commands: every
upstream request leaves one audit line without content, `reaper-lsp audit` and `stats` read them
back (and say so on a fresh install), a spent daily token budget stops requests — for the next
server process too — and a used-up quota pauses its provider with one message."""

from __future__ import annotations

import asyncio
import json
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types as lsp

from tests.e2e.conftest import REAPER_LSP, Session, isolated_env, openai_options
from tests.e2e.test_copilot import options as copilot_options
from tests.e2e.test_copilot import sign_in
from tests.fakes import github as fake_github
from tests.fakes.runner import FakeServer
from tests.fakes.script import Reply

KEY = {"OPENAI_API_KEY": "sk-test"}
SOURCE = "def greet(name):\n    return \n"


def run_cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [REAPER_LSP, *args],
        env=isolated_env(home),
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def state_file(path: Path) -> tuple[int, int, str]:
    """(mode, its folder's mode, text) of a state file."""
    return (
        stat.S_IMODE(path.stat().st_mode),
        stat.S_IMODE(path.parent.stat().st_mode),
        path.read_text(encoding="utf-8"),
    )


def posts(fake: FakeServer) -> list[Any]:
    return [r for r in fake.script.requests if r.method == "POST"]


async def until(check: Any, timeout: float = 5.0) -> Any:
    for _ in range(int(timeout / 0.02)):
        found = check()
        if found:
            return found
        await asyncio.sleep(0.02)
    raise AssertionError("condition not met in time")


def messages(s: Session, text: str) -> list[lsp.ShowMessageParams]:
    return [m for m in s.client.messages if text in m.message]


def test_audit_and_stats_work_from_a_fresh_install(home: Path) -> None:
    stats = run_cli(home, "stats")
    assert stats.returncode == 0, stats.stderr
    assert stats.stdout.startswith("no requests recorded yet")
    audit = run_cli(home, "audit", "--json")
    assert audit.returncode == 0 and json.loads(audit.stdout) == []
    bad = run_cli(home, "audit", "--since", "yesterday")
    assert bad.returncode == 2 and "not a duration" in bad.stderr


async def test_each_request_leaves_one_audit_line_without_content(
    start_session: Any, openai_fake: FakeServer, home: Path
) -> None:
    openai_fake.script.default = Reply(text="name.title()")
    s: Session = await start_session(openai_options(openai_fake), KEY)
    uri = s.open("hello/greet.py", SOURCE)
    assert await s.inline(uri, 1, 11) == ["name.title()"]  # automatic: one choice asked for
    result = await s.command("reaper.audit")
    [record] = result["records"]
    assert record["provider"] == "openai" and record["model"] == "gpt-4o-mini"
    assert record["purpose"] == "completion" and record["path"] == "hello/greet.py"
    assert record["language"] == "python" and record["outcome"] == "ok"
    prefix = "def greet(name):\n    return "
    assert record["bytes"]["prefix"] == len(prefix) and record["bytes"]["suffix"] == 1
    assert record["bytes"]["sent"] == len(posts(openai_fake)[0].raw)
    assert record["contextFiles"] == [] and record["scrubbed"] == 0
    assert record["tokens"] == {"in": 9, "out": len("name.title()") // 4 + 1}
    assert record["latencyMs"] > 0 and record["client"] == ""  # the test client sends no clientInfo

    mode, folder_mode, text = state_file(Path(result["file"]))
    assert (mode, folder_mode) == (0o600, 0o700)
    assert "greet(name)" not in text and "name.title" not in text

    cli = run_cli(home, "audit", "--json")
    assert json.loads(cli.stdout) == [record]
    table = run_cli(home, "audit", "--since", "1h").stdout.splitlines()
    assert table[0].split()[:3] == ["TIME", "CLIENT", "PROVIDER"]
    assert "openai" in table[1] and "hello/greet.py" in table[1] and "greet(name)" not in table[1]
    stats = json.loads(run_cli(home, "stats", "--json").stdout)
    [row] = stats["rows"]
    assert row["provider"] == "openai" and row["language"] == "python" and row["requests"] == 1
    assert row["tokensIn"] == 9 and row["latencyMsP50"] == record["latencyMs"]
    text = run_cli(home, "stats").stdout
    assert text.split("\n")[1].split()[:3] == ["openai", "python", "1"]


async def test_a_spent_daily_budget_stops_requests_until_midnight_for_every_process(
    start_session: Any, openai_fake: FakeServer, home: Path
) -> None:
    openai_fake.script.default = Reply(text="abc")  # 9 tokens in, 1 out: the budget of 10
    options = openai_options(openai_fake, daily_token_budget=10)
    s: Session = await start_session(options, KEY)
    uri = s.open("app.py", "total = compute_total(items)\nprint(total)\ntotal = \n")
    assert await s.inline(uri, 2, 8) == ["abc"]  # automatic: one choice asked for
    for column in (8, 8):  # spent: the offline engine answers, nothing goes upstream
        s.type_text(uri, 2, column, "c")
        found = await s.inline(uri, 2, column + 1, invoked=True)
        assert found != ["abc"]
    s.type_text(uri, 2, 8, "x")
    await s.inline(uri, 2, 9, invoked=True)
    assert len(posts(openai_fake)) == 1
    told = await until(lambda: messages(s, "token budget"))
    assert len(told) == 1 and "providers.openai.daily_token_budget" in told[0].message
    paused = [p for m, p in s.notifications if m == "reaper/status" and p.state == "paused"]
    assert len(paused) == 1 and paused[0].provider == "openai"
    status = await s.command("reaper.status")
    assert status["budgets"] == {"openai": {"budget": 10, "used": 10}}
    assert status["providers"]["openai"]["state"] == "paused"

    again: Session = await start_session(options, KEY)  # another editor, another process
    other = again.open("b.py", "y = \n")
    await again.inline(other, 0, 4, invoked=True)
    assert len(posts(openai_fake)) == 1
    mode, _, text = state_file(home / "state" / "reaper-lsp" / "spend.json")
    assert mode == 0o600 and json.loads(text)["tokens"] == {"openai": 10}


async def test_a_used_up_quota_pauses_the_provider_with_one_message(
    start_session: Any, openai_fake: FakeServer
) -> None:
    openai_fake.script.queue(Reply(status=429, error_type="insufficient_quota"))
    s: Session = await start_session(openai_options(openai_fake), KEY)
    uri = s.open("d.py", "total = compute_total(items)\nprint(total)\ntotal = comp\n")
    assert await s.inline(uri, 2, 12, invoked=True) == ["ute_total(items)"]  # the fallback
    for column in (12, 13, 14):
        s.type_text(uri, 2, column, "u")
        await s.inline(uri, 2, column + 1, invoked=True)
    assert len(posts(openai_fake)) == 1  # paused: not asked again on every keystroke
    told = await until(lambda: messages(s, "quota"))
    await asyncio.sleep(0.1)
    assert len(messages(s, "quota")) == 1 and "the next provider" in told[0].message
    [record] = (await s.command("reaper.audit"))["records"]
    assert record["outcome"] == "error: QuotaExhausted (HTTP 429)"


@pytest.fixture
def github_fake() -> Iterator[FakeServer]:
    server = FakeServer(fake_github.create_app())
    server.start()
    state = server.app.state
    state.base_url = server.base_url
    state.device_interval = 0
    state.slow_down_interval = 0
    try:
        yield server
    finally:
        server.stop()


async def test_copilot_quota_429_pauses_it_and_its_cost_is_estimated(
    start_session: Any, github_fake: FakeServer, home: Path
) -> None:
    quota = {"error": {"message": "You have exceeded your monthly quota", "code": "rate_limited"}}
    github_fake.script.queue(Reply(text="ute_total(items)"), Reply(status=429, body=quota))
    s: Session = await start_session(copilot_options(github_fake))
    await sign_in(s)
    uri = s.open("d.py", "total = compute_total(items)\nprint(total)\ntotal = comp\n")
    assert await s.inline(uri, 2, 12, invoked=True) == ["ute_total(items)"]
    other = s.open("e.py", "value = \n")
    for column in (8, 8):
        await s.inline(other, 0, column, invoked=True)
        s.type_text(other, 0, column, "x")
    engines = [r for r in github_fake.script.requests if "/engines/" in r.path]
    assert len(engines) == 2  # after the quota answer, Copilot rests
    told = await until(lambda: messages(s, "monthly quota"))
    assert len(told) == 1
    first, second = (await s.command("reaper.audit"))["records"]
    assert first["tokens"] == {"in": None, "out": None}  # Copilot reports none
    assert second["outcome"] == "error: QuotaExhausted (HTTP 429)"
    stats = json.loads(run_cli(home, "stats", "--json").stdout)["rows"]
    assert [(r["provider"], r["requests"], r["failed"]) for r in stats] == [("copilot", 2, 1)]

"""The ledger's files: audit lines without content, 0600 and rotated; token budgets that two
processes (two `Budgets` over one folder) spend together and that start again at local
midnight; the figures `reaper-lsp stats` computes from the log alone."""

from __future__ import annotations

import json
import stat
import time
from datetime import datetime
from pathlib import Path

import pytest

from reaper_lsp.providers.base import Exchange, Origin
from reaper_lsp.services import audit
from reaper_lsp.services.audit import AuditLedger, parse_duration, read_lines, select
from reaper_lsp.services.budgets import Budgets, until_midnight
from reaper_lsp.services.stats import tally

NOON = datetime(2026, 12, 2, 12, 0, 0).timestamp()


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def exchange(provider: str = "openai", tokens: int = 10, **fields: object) -> Exchange:
    values: dict[str, object] = {
        "provider": provider, "model": "m", "started": NOON, "sent_bytes": 120, "scrubbed": 1,
        "tokens_in": 7, "tokens_out": 3, "estimated_tokens": tokens, "latency_ms": 42.0,
        "outcome": "ok",
        "origin": Origin(client="nvim/0.11", path="src/a.py", language="python", prefix_bytes=90,
                         suffix_bytes=10, context_bytes=20, context_files=("lib/b.py",)),
    }  # fmt: skip
    values.update(fields)
    return Exchange(**values)  # type: ignore[arg-type]


def test_a_record_is_one_line_of_sizes_and_names_in_a_private_file(tmp_path: Path) -> None:
    folder = tmp_path / "state" / "reaper-lsp"
    ledger = AuditLedger(folder, lambda name: 0)
    ledger.record(exchange())
    ledger.close()
    [line] = read_lines(folder)
    assert line == {
        "time": audit.stamp(NOON), "event": "request", "client": "nvim/0.11",
        "provider": "openai", "model": "m", "purpose": "completion", "path": "src/a.py",
        "language": "python", "bytes": {"prefix": 90, "suffix": 10, "context": 20, "sent": 120},
        "contextFiles": ["lib/b.py"], "scrubbed": 1, "tokens": {"in": 7, "out": 3},
        "latencyMs": 42.0, "outcome": "ok",
    }  # fmt: skip
    assert stat.S_IMODE((folder / "audit.jsonl").stat().st_mode) == 0o600
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700


def test_the_log_rotates_keeping_one_previous_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(audit, "ROTATE_BYTES", 1000)
    ledger = AuditLedger(tmp_path, lambda name: 0)
    for n in range(12):
        ledger.record(exchange(model=f"m{n}"))
    ledger.close()
    assert (tmp_path / "audit.jsonl.1").exists() and not (tmp_path / "audit.jsonl.2").exists()
    assert (tmp_path / "audit.jsonl").stat().st_size <= 1000
    models = [line["model"] for line in read_lines(tmp_path)]
    assert models == sorted(models, key=lambda m: int(m[1:])) and models[-1] == "m11"
    assert len(models) < 12  # the oldest went with the file before the previous one


async def test_reading_back_sees_every_write_asked_for(tmp_path: Path) -> None:
    ledger = AuditLedger(tmp_path, lambda name: 0, clock=Clock(NOON + 7200))
    ledger.record(exchange(started=NOON))
    ledger.record(exchange(started=NOON + 3600))
    ledger.feedback("shown", "openai", "python")
    assert len(await ledger.read()) == 2  # feedback lines are not requests
    assert [r["time"] for r in await ledger.read(since=5400)] == [audit.stamp(NOON + 3600)]
    assert len(await ledger.read(last=1)) == 1 and await ledger.read(last=0) == []
    ledger.close()


def test_durations() -> None:
    assert [parse_duration(t) for t in ("90", "90s", "15m", "1h", "2D", "1w", "1.5h")] == [
        90, 90, 900, 3600, 172800, 604800, 5400
    ]  # fmt: skip
    for bad in ("", "h", "1y", "-1h", "1 hour"):
        with pytest.raises(ValueError):
            parse_duration(bad)


def test_two_processes_spend_one_budget(tmp_path: Path) -> None:
    clock = Clock(NOON)
    mine, theirs = Budgets(tmp_path, lambda n: 100, clock=clock), Budgets(tmp_path, lambda n: 100)
    theirs._clock = clock
    mine.spend("openai", 60)
    assert mine.held("openai") is None and mine.used("openai") == 60
    mine.persist("openai", 60)
    theirs.spend("openai", 50)
    theirs.persist("openai", 50)
    clock.now += 2  # past the refresh interval: the other process's spending is seen
    hold = mine.held("openai")
    assert hold is not None and "providers.openai.daily_token_budget" in hold.reason
    assert hold.seconds == pytest.approx(12 * 3600 - 2)
    assert mine.held("claude") is None  # budgets are per provider
    assert json.loads((tmp_path / "spend.json").read_text()) == {
        "day": "2026-12-02", "tokens": {"openai": 110}
    }  # fmt: skip
    assert stat.S_IMODE((tmp_path / "spend.json").stat().st_mode) == 0o600


def test_a_budget_starts_again_at_local_midnight(tmp_path: Path) -> None:
    clock = Clock(NOON)
    budgets = Budgets(tmp_path, lambda n: 10, clock=clock)
    budgets.spend("ollama", 10)
    budgets.persist("ollama", 10)
    assert budgets.held("ollama") is not None
    clock.now = NOON + until_midnight(NOON) + 1
    assert budgets.held("ollama") is None and budgets.used("ollama") == 0
    assert Budgets(tmp_path, lambda n: 0, clock=clock).held("ollama") is None  # 0: no limit


def test_stats_from_the_log_alone(tmp_path: Path) -> None:
    lines = [
        {"event": "request", "provider": "openai", "language": "python", "outcome": "ok",
         "tokens": {"in": 9, "out": 2}, "latencyMs": 100},
        {"event": "request", "provider": "openai", "language": "python", "outcome": "stopped",
         "tokens": {"in": None, "out": None}, "latencyMs": 300},
        {"event": "request", "provider": "openai", "language": "python",
         "outcome": "error: RateLimited (HTTP 429)", "latencyMs": 5},
        {"event": "feedback", "kind": "shown", "provider": "openai", "language": "python"},
        {"event": "feedback", "kind": "shown", "provider": "openai", "language": "python"},
        {"event": "feedback", "kind": "accepted", "provider": "openai", "language": "python"},
        {"event": "request", "provider": "claude", "language": "", "outcome": "cancelled"},
    ]  # fmt: skip
    claude, openai = tally(lines)
    assert (claude.provider, claude.requests, claude.acceptance, claude.latency(0.5)) == (
        "claude", 1, None, None
    )  # fmt: skip
    assert openai.to_json() == {
        "provider": "openai", "language": "python", "requests": 3, "failed": 1,
        "tokensIn": 9, "tokensOut": 2, "shown": 2, "accepted": 1, "partial": 0, "rejected": 0,
        "acceptance": 0.5, "latencyMsP50": 100.0, "latencyMsP90": 300.0,
    }  # fmt: skip


def test_select_ignores_lines_that_are_not_ours() -> None:
    now = time.time()
    lines = [{"event": "request", "time": "garbage"}, {"time": audit.stamp(now)}]
    assert select(lines, since=60, now=now) == [{"time": audit.stamp(now)}]

"""The audit log: one JSON line per upstream request — when, which editor, provider, model and
purpose, the document's path, how many bytes of prefix, suffix and other code went, which other
files, how many credential-shaped strings were scrubbed, the tokens reported, latency and outcome;
never content — plus one line per suggestion the editor reported shown, accepted or rejected
(what acceptance rates are computed from). The file is 0600 in the private state folder, shared
by every reaper-lsp process (appends under the ledger's file lock) and rotated at 5 MB: the
previous file is kept as `audit.jsonl.1`, the one before it deleted.

`AuditLedger` is the App's `providers.base.Ledger`: the HTTP base reports each request to it, and
it asks the token budgets (`budgets.py`) whether a provider may be asked. Writing happens on one
thread of its own, in order, so a request never waits for the disk.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

from reaper_lsp.providers.base import Exchange, Hold
from reaper_lsp.services.budgets import Budgets, locked
from reaper_lsp.workspace import checked_state_file

log = logging.getLogger(__name__)

AUDIT_FILE = "audit.jsonl"
ROTATE_BYTES = 5 * 1024 * 1024
REQUEST, FEEDBACK = "request", "feedback"
"""The two kinds of line (`event`)."""
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*", re.IGNORECASE)


def parse_duration(text: str) -> float:
    """Seconds in "90", "90s", "15m", "1h", "2d" or "1w"; ValueError for anything else."""
    match = _DURATION.fullmatch(text)
    if match is None:
        raise ValueError(f"{text!r} is not a duration like 30m, 1h or 2d")
    return float(match[1]) * _UNITS[match[2].lower()]


def state_home(env: Mapping[str, str]) -> Path:
    """reaper-lsp's state folder for `env` (XDG_STATE_HOME or ~/.local/state on Unix), so a
    server started with another environment (the daemon's, a test's) finds its own."""
    if _xdg_platform():
        xdg = env.get("XDG_STATE_HOME", "").strip()
        home = env.get("HOME") or os.path.expanduser("~")
        base = Path(xdg) if os.path.isabs(xdg) else Path(home) / ".local" / "state"
        return base / "reaper-lsp"
    import platformdirs

    return Path(platformdirs.user_state_dir("reaper-lsp"))


def _xdg_platform() -> bool:
    return sys.platform not in ("win32", "darwin")


def stamp(when: float) -> str:
    """Local time with its UTC offset, to the second."""
    return time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(when))


def record_of(exchange: Exchange) -> dict[str, object]:
    """The audit line of one request: sizes and names, never content."""
    origin = exchange.origin
    return {
        "time": stamp(exchange.started),
        "event": REQUEST,
        "client": origin.client,
        "provider": exchange.provider,
        "model": exchange.model,
        "purpose": origin.purpose,
        "path": origin.path,
        "language": origin.language,
        "bytes": {
            "prefix": origin.prefix_bytes,
            "suffix": origin.suffix_bytes,
            "context": origin.context_bytes,
            "sent": exchange.sent_bytes,
        },
        "contextFiles": list(origin.context_files),
        "scrubbed": exchange.scrubbed,
        "tokens": {"in": exchange.tokens_in, "out": exchange.tokens_out},
        "latencyMs": exchange.latency_ms,
        "outcome": exchange.outcome,
    }


class AuditLedger:
    """The App's ledger: the audit log in `folder`, and the token budgets (`budget(provider)`:
    the configured daily limit, 0 for none)."""

    def __init__(
        self, folder: Path, budget: Callable[[str], int], *, clock: Callable[[], float] = time.time
    ) -> None:
        self.folder = folder
        self.budgets = Budgets(folder, budget, clock=clock)
        self._clock = clock
        self._writer: ThreadPoolExecutor | None = None
        self._failed = False

    @property
    def path(self) -> Path:
        return self.folder / AUDIT_FILE

    # -- the Ledger protocol ------------------------------------------------------------------

    def held(self, provider: str) -> Hold | None:
        return self.budgets.held(provider)

    def record(self, exchange: Exchange) -> None:
        self.budgets.spend(exchange.provider, exchange.estimated_tokens)
        self._submit(self._write, record_of(exchange), exchange.provider, exchange.estimated_tokens)

    # -- what the editor says of the suggestions ----------------------------------------------

    def feedback(self, kind: str, provider: str, language: str) -> None:
        line = {"time": stamp(self._clock()), "event": FEEDBACK, "kind": kind,
                "provider": provider, "language": language}  # fmt: skip
        self._submit(self._write, line, provider, 0)

    # -- reading it back ----------------------------------------------------------------------

    async def read(
        self, *, last: int | None = None, since: float | None = None
    ) -> list[dict[str, Any]]:
        """The request records (oldest first), after every write asked for so far."""
        loop = asyncio.get_running_loop()
        found = await loop.run_in_executor(self._executor(), read_lines, self.folder)
        return select(found, last=last, since=since, now=self._clock())

    def close(self) -> None:
        """Write what is pending, then stop the writer (the App is closing)."""
        if self._writer is not None:
            self._writer.shutdown(wait=True)
            self._writer = None

    # -- writing ------------------------------------------------------------------------------

    def _executor(self) -> ThreadPoolExecutor:
        if self._writer is None:
            self._writer = ThreadPoolExecutor(1, thread_name_prefix="reaper-audit")
        return self._writer

    def _submit(self, work: Callable[..., None], *args: Any) -> None:
        try:
            self._executor().submit(work, *args)
        except RuntimeError:  # shut down (the App is closing): write it here and now
            work(*args)

    def _write(self, line: Mapping[str, object], provider: str, tokens: int) -> None:
        try:
            with locked(self.folder):
                self._append(json.dumps(line, ensure_ascii=False) + "\n")
            self.budgets.persist(provider, tokens)
        except OSError as exc:
            if not self._failed:  # once: the disk will not get better by being told again
                self._failed = True
                log.warning("cannot write the audit log in %s: %s", self.folder, exc)

    def _append(self, text: str) -> None:
        path = self.path
        try:
            if os.stat(path).st_size + len(text) > ROTATE_BYTES:
                os.replace(path, path.with_name(AUDIT_FILE + ".1"))
        except FileNotFoundError:
            pass
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, text.encode("utf-8"))
        finally:
            os.close(fd)


def read_lines(folder: Path) -> list[dict[str, Any]]:
    """Every line of the audit log (the rotated file first) that is a JSON object; files that
    are absent, not ours or open to others' writes are skipped."""
    found: list[dict[str, Any]] = []
    for name in (AUDIT_FILE + ".1", AUDIT_FILE):
        path = folder / name
        try:
            if checked_state_file(path) is None:
                continue
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        for line in text.splitlines():
            try:
                value = json.loads(line)
            except ValueError:
                continue  # a line cut short by a crash
            if isinstance(value, dict):
                found.append(value)
    return found


def parse_time(value: object) -> float | None:
    """The epoch seconds of a line's `time`, None when it is not one of ours."""
    try:
        return datetime.strptime(str(value), "%Y-%m-%dT%H:%M:%S%z").timestamp()
    except (ValueError, OverflowError):
        return None


def select(
    lines: Iterable[dict[str, Any]],
    *,
    last: int | None = None,
    since: float | None = None,
    now: float | None = None,
    event: str = REQUEST,
) -> list[dict[str, Any]]:
    """The lines of `event` no older than `since` seconds before `now`, the `last` of them."""
    chosen = [line for line in lines if line.get("event", REQUEST) == event]
    if since is not None:
        cutoff = (time.time() if now is None else now) - since
        chosen = [line for line in chosen if (parse_time(line.get("time")) or 0) >= cutoff]
    if last is not None:
        chosen = chosen[-last:] if last > 0 else []
    return chosen

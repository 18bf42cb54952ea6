"""Daily token budgets (`[providers.NAME] daily_token_budget`, 0 = none): the tokens each
provider spent today, counted from what it reported (or estimated from characters), in a 0600
file in the state folder that every reaper-lsp process shares — editors in-process, the daemon,
the terminal commands — updated under a file lock, so restarts and several editors spend one
budget. The count starts again at local midnight; a provider whose budget is spent is held until
then."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path

from reaper_lsp.providers.base import Hold
from reaper_lsp.workspace import checked_state_file, private_dir

try:
    import fcntl
except ImportError:  # Windows: one process at a time writes, without a lock
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

SPEND_FILE = "spend.json"
LOCK_FILE = "ledger.lock"
REFRESH_SECONDS = 1.0
"""How stale this process's view of the other processes' spending may be."""


def local_day(now: float) -> str:
    return time.strftime("%Y-%m-%d", time.localtime(now))


def until_midnight(now: float) -> float:
    """Seconds from `now` to the next local midnight."""
    today = datetime.fromtimestamp(now).replace(hour=0, minute=0, second=0, microsecond=0)
    return max(1.0, (today + timedelta(days=1)).timestamp() - now)


@contextlib.contextmanager
def locked(folder: Path) -> Iterator[None]:
    """Hold the ledger's file lock (every process's writes to the state files take it)."""
    private_dir(folder)
    fd = os.open(folder / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


class Budgets:
    """Today's spending by provider: what the file says plus what this process has spent and
    not written yet. `budget(provider)` is the configured limit (0: none)."""

    def __init__(
        self, folder: Path, budget: Callable[[str], int], *, clock: Callable[[], float] = time.time
    ) -> None:
        self.folder = folder
        self.budget = budget
        self._clock = clock
        self._lock = threading.Lock()
        self._day = ""
        self._written: dict[str, int] = {}
        self._pending: dict[str, int] = {}
        self._seen: tuple[float, int] | None = None
        """(mtime, size) of the file when it was last read."""
        self._checked = float("-inf")

    @property
    def path(self) -> Path:
        return self.folder / SPEND_FILE

    def used(self, provider: str) -> int:
        with self._lock:
            self._roll(local_day(self._clock()))
            return self._written.get(provider, 0) + self._pending.get(provider, 0)

    def held(self, provider: str) -> Hold | None:
        """Why `provider` may not be asked until midnight (its budget is spent), or None."""
        limit = self.budget(provider)
        if limit <= 0:
            return None
        now = self._clock()
        if now - self._checked >= REFRESH_SECONDS:
            self._checked = now
            self.refresh()  # another process may have spent it
        if self.used(provider) < limit:
            return None
        reason = (
            f"today's token budget ({limit} tokens, providers.{provider}.daily_token_budget) "
            "is spent; the next provider in the chain answers until midnight"
        )
        return Hold(reason, until_midnight(now))

    def spend(self, provider: str, tokens: int) -> None:
        """Count `tokens` at once (`persist` writes them for the other processes)."""
        if tokens <= 0:
            return
        with self._lock:
            self._roll(local_day(self._clock()))
            self._pending[provider] = self._pending.get(provider, 0) + tokens

    def persist(self, provider: str, tokens: int) -> None:
        """Add `tokens` spent by `provider` to the shared file, under the file lock (blocking:
        called from the ledger's writer thread)."""
        if tokens <= 0:
            return
        with locked(self.folder):
            day = local_day(self._clock())
            totals = self._read(day)
            totals[provider] = totals.get(provider, 0) + tokens
            tmp = self.path.with_name(f".{SPEND_FILE}.{os.getpid()}.tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump({"day": day, "tokens": totals}, out)
            os.replace(tmp, self.path)
            with self._lock:
                self._roll(day)
                left = self._pending.get(provider, 0) - tokens
                if left > 0:
                    self._pending[provider] = left
                else:
                    self._pending.pop(provider, None)
                self._written = totals
                self._seen = self._stamp()

    def refresh(self) -> None:
        """Read the shared file again when it changed since last read."""
        stamp = self._stamp()
        if stamp == self._seen:
            return
        day = local_day(self._clock())
        totals = self._read(day)
        with self._lock:
            self._roll(day)
            self._written, self._seen = totals, stamp

    def snapshot(self, providers: list[str]) -> dict[str, dict[str, int]]:
        """provider → {budget, used} today, for the providers with a budget."""
        self.refresh()
        limits = {name: self.budget(name) for name in providers}
        return {n: {"budget": b, "used": self.used(n)} for n, b in limits.items() if b > 0}

    def _roll(self, day: str) -> None:
        """A new local day: every count starts again (caller holds `_lock`)."""
        if day != self._day:
            self._day, self._written, self._pending = day, {}, {}

    def _stamp(self) -> tuple[float, int] | None:
        try:
            info = os.stat(self.path)
        except OSError:
            return None
        return info.st_mtime, info.st_size

    def _read(self, day: str) -> dict[str, int]:
        """Today's totals in the file ({} when absent, refused, unreadable or of another day)."""
        try:
            if checked_state_file(self.path) is None:
                return {}
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            log.warning("cannot read %s (%s): token budgets count from zero", self.path, exc)
            return {}
        if not isinstance(data, dict) or data.get("day") != day:
            return {}
        tokens = data.get("tokens")
        if not isinstance(tokens, dict):
            return {}
        return {k: v for k, v in tokens.items() if isinstance(v, int) and v > 0}

"""What a fake answers (`Reply`, queued per test in a `Script`) and what it saw (`Recorded`).

The fakes run in a server thread while tests run in theirs, so everything here is guarded by a
lock and signalled with threading.Event.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Reply:
    status: int = 200
    text: str = ""
    """The completion to stream (split into events of `chunk_size` characters)."""
    chunk_size: int = 4
    first_byte_delay: float = 0.0
    chunk_delay: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None
    """Send exactly this (JSON value, str or bytes) with `status` instead of the default."""
    error_mid_stream: bool = False
    garbage: bool = False
    hold_open: bool = False
    """Stream `text`, then keep the stream open until the client goes away (or 30 s)."""
    hostile_chunks: bool = False
    """Send the body in 1-3 byte pieces: CRLF and UTF-8 sequences split across chunks."""
    error_type: str | None = None
    alternatives: tuple[str, ...] = ()
    """Texts of choices 1, 2, … for a request asking for several (`n`); choices beyond them
    repeat `text`, as a model sampling the same answer again would."""

    def choices(self, n: int) -> list[str]:
        texts = [self.text, *self.alternatives]
        return [texts[i] if i < len(texts) else self.text for i in range(max(1, n))]


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: Any
    raw: bytes
    http_version: str
    client: tuple[str, int] | None = None
    completed: threading.Event = field(default_factory=threading.Event)
    disconnected: threading.Event = field(default_factory=threading.Event)


class Script:
    def __init__(self, default: Reply | None = None) -> None:
        self._lock = threading.Lock()
        self._queue: list[Reply] = []
        self._arrived = threading.Condition(self._lock)
        self.default = default or Reply()
        self.requests: list[Recorded] = []
        self.prewarms = 0
        """HEAD requests (connection warm-ups), counted apart from API calls."""

    def queue(self, *replies: Reply) -> None:
        with self._lock:
            self._queue.extend(replies)

    def next_reply(self) -> Reply:
        with self._lock:
            return self._queue.pop(0) if self._queue else self.default

    def record(self, recorded: Recorded) -> None:
        with self._arrived:
            self.requests.append(recorded)
            self._arrived.notify_all()

    def wait_for_requests(self, n: int, timeout: float) -> bool:
        with self._arrived:
            return self._arrived.wait_for(lambda: len(self.requests) >= n, timeout)

    def reset(self) -> None:
        with self._lock:
            self._queue.clear()
            self.requests.clear()

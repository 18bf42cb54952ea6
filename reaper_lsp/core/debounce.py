"""Adaptive debounce: how long a completion request waits for the next keystroke.

Each document learns its typist's rhythm (a moving average of the gaps between edits). A
request that arrives right after a keystroke waits about one such gap, because another
keystroke — which would make this request useless — is likely within it; a request after a
pause waits only the configured floor. Fast typists therefore do not fire a request per key,
and slow ones are not kept waiting. Pure: the caller passes the clock's readings.
"""

from __future__ import annotations

from dataclasses import dataclass

CAP = 0.25
"""Longest wait, seconds, however slow the rhythm."""
PAUSE = 1.0
"""A gap this long is a pause, not part of the typing rhythm."""
SMOOTHING = 0.3
MARGIN = 1.25
"""Wait a little longer than the typical gap, so an on-rhythm keystroke arrives in time."""


@dataclass(slots=True)
class _Rhythm:
    last: float
    gap: float | None = None


class TypingRhythm:
    def __init__(self, floor: float, *, cap: float = CAP) -> None:
        self.floor = floor
        self.cap = max(cap, floor)
        self._docs: dict[str, _Rhythm] = {}

    def keystroke(self, uri: str, now: float) -> None:
        rhythm = self._docs.get(uri)
        if rhythm is None:
            self._docs[uri] = _Rhythm(now)
            return
        gap = now - rhythm.last
        rhythm.last = now
        if 0 < gap < PAUSE:
            rhythm.gap = gap if rhythm.gap is None else rhythm.gap + SMOOTHING * (gap - rhythm.gap)

    def typical_gap(self, uri: str) -> float | None:
        rhythm = self._docs.get(uri)
        return rhythm.gap if rhythm else None

    def wait(self, uri: str, now: float) -> float:
        """Seconds a request arriving at `now` should wait before going upstream."""
        rhythm = self._docs.get(uri)
        if rhythm is None or rhythm.gap is None:
            return self.floor
        target = min(self.cap, rhythm.gap * MARGIN)
        return max(self.floor, target - (now - rhythm.last))

    def forget(self, uri: str) -> None:
        self._docs.pop(uri, None)

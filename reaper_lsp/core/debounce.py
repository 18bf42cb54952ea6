"""Adaptive debounce: how long a completion request waits for the next keystroke.

Each document learns its typist's rhythm: a moving average of the gaps between edits and of
how much they vary (the way TCP estimates round-trip times). A request that arrives right after
a keystroke waits about one gap plus the usual jitter, because another keystroke — which would
make this request useless — is likely within it; a request after a pause waits only the
configured floor. A document nobody has typed in yet borrows the rhythm learned elsewhere.
Fast typists therefore do not fire a request per key,
and slow ones are not kept waiting. Pure: the caller passes the clock's readings.
"""

from __future__ import annotations

from dataclasses import dataclass

CAP = 0.25
"""Longest wait, seconds, however slow the rhythm."""
PAUSE = 1.0
"""A gap this long is a pause, not part of the typing rhythm."""
SMOOTHING = 0.25
MARGIN = 1.25
"""Wait at least this much longer than the typical gap, so an on-rhythm keystroke arrives in
time."""
JITTER = 3.0
"""…and this many mean deviations, so an off-beat keystroke usually does too."""


@dataclass(slots=True)
class _Rhythm:
    last: float
    gap: float | None = None
    deviation: float = 0.0

    def learn(self, gap: float) -> None:
        if self.gap is None:
            self.gap, self.deviation = gap, gap / 4
            return
        self.deviation += SMOOTHING * (abs(gap - self.gap) - self.deviation)
        self.gap += SMOOTHING * (gap - self.gap)

    def target(self, cap: float) -> float:
        assert self.gap is not None
        return min(cap, max(self.gap * MARGIN, self.gap + JITTER * self.deviation))


class TypingRhythm:
    def __init__(self, floor: float, *, cap: float = CAP) -> None:
        self.floor = floor
        self.cap = max(cap, floor)
        self._docs: dict[str, _Rhythm] = {}
        self._overall = _Rhythm(0.0)
        """The rhythm across documents, for documents without one yet."""

    def keystroke(self, uri: str, now: float) -> None:
        rhythm = self._docs.get(uri)
        if rhythm is None:
            self._docs[uri] = _Rhythm(now)
            return
        gap = now - rhythm.last
        rhythm.last = now
        if 0 < gap < PAUSE:
            rhythm.learn(gap)
            self._overall.learn(gap)

    def typical_gap(self, uri: str) -> float | None:
        rhythm = self._docs.get(uri)
        return rhythm.gap if rhythm else None

    def wait(self, uri: str, now: float) -> float:
        """Seconds a request arriving at `now` should wait before going upstream."""
        rhythm = self._docs.get(uri)
        if rhythm is None:
            return self.floor
        learned = rhythm if rhythm.gap is not None else self._overall
        if learned.gap is None:
            return self.floor
        return max(self.floor, learned.target(self.cap) - (now - rhythm.last))

    def forget(self, uri: str) -> None:
        self._docs.pop(uri, None)

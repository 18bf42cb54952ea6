"""When and how long to wait before trying a provider again. Pure: no I/O, no clock reads
(callers pass `now` and a random number), so every rule is unit-testable."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Protocol

_GO_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(h|ms|us|µs|ns|m|s)")
_GO_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}


def parse_go_duration(text: str) -> float | None:
    """Seconds in a Go-style duration such as `644ms`, `1.574s` or `6m0s` (OpenAI's
    `x-ratelimit-reset-*`); None when the text is not one."""
    text = text.strip()
    if not text:
        return None
    pos = 0
    total = 0.0
    for match in _GO_DURATION.finditer(text):
        if match.start() != pos:
            return None
        total += float(match.group(1)) * _GO_UNITS[match.group(2)]
        pos = match.end()
    return total if pos == len(text) and pos > 0 else None


def parse_retry_after(headers: Mapping[str, str], now: float) -> float | None:
    """Seconds to wait that the server asked for: `retry-after-ms` (float milliseconds), else
    `retry-after` as seconds or as an HTTP date (relative to `now`, a Unix time). Negative,
    unparsable or non-finite values give None."""
    lowered = {k.lower(): v for k, v in headers.items()}
    ms = lowered.get("retry-after-ms")
    if ms is not None:
        try:
            value = float(ms) / 1000
        except ValueError:
            value = math.nan
        if math.isfinite(value) and value >= 0:
            return value
    raw = lowered.get("retry-after")
    if raw is None:
        return None
    raw = raw.strip()
    try:
        seconds = float(raw)
    except ValueError:
        try:
            when = parsedate_to_datetime(raw)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            return None
        seconds = when.timestamp() - now
        return max(0.0, seconds) if math.isfinite(seconds) else None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


class _Classified(Protocol):
    """What the policy needs to know about an error (ProviderError satisfies it)."""

    @property
    def retryable(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff: `base_backoff · 2^attempt`, capped, with jitter in [0.75, 1] of the
    step (as the OpenAI and Anthropic SDKs do). A server's retry-after wins when it is within
    `max_retry_after`; a longer one means "do not retry now" (the chain falls through instead
    of stalling the editor)."""

    max_retries: int = 3
    base_backoff: float = 0.1
    cap: float = 5.0
    max_retry_after: float = 60.0

    def should_retry(self, error: _Classified, attempt: int) -> bool:
        """`attempt` counts retries already made (0 after the first failure)."""
        return bool(error.retryable) and attempt < self.max_retries

    def delay(self, attempt: int, retry_after: float | None, rand: float) -> float | None:
        """Seconds before retry number `attempt + 1`; None when the server's wait is too long.
        `rand` is uniform in [0, 1)."""
        if retry_after is not None:
            if retry_after > self.max_retry_after:
                return None
            return max(0.0, retry_after)
        step = min(self.cap, self.base_backoff * 2.0 ** min(attempt, 32))
        return step * (0.75 + 0.25 * min(max(rand, 0.0), 1.0))

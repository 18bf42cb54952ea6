"""Per-provider request figures (counts, failures, latency percentiles, bytes) for status."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field


def percentile(samples: list[float], fraction: float) -> float:
    """Nearest-rank percentile of `samples` (0 when empty)."""
    if not samples:
        return 0.0
    ordered = sorted(samples)
    rank = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[rank]


@dataclass(slots=True)
class ProviderMetrics:
    requests: int = 0
    failures: int = 0
    cancelled: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0
    last_error: str = ""
    first_byte_ms: deque[float] = field(default_factory=lambda: deque(maxlen=512))
    total_ms: deque[float] = field(default_factory=lambda: deque(maxlen=512))

    def snapshot(self) -> dict[str, object]:
        first = list(self.first_byte_ms)
        total = list(self.total_ms)
        return {
            "requests": self.requests,
            "failures": self.failures,
            "cancelled": self.cancelled,
            "bytesSent": self.bytes_sent,
            "bytesReceived": self.bytes_received,
            "firstByteMsP50": round(percentile(first, 0.5), 2),
            "latencyMsP50": round(percentile(total, 0.5), 2),
            "latencyMsP99": round(percentile(total, 0.99), 2),
            "lastError": self.last_error,
        }


class Metrics:
    """All providers' figures, created on first use."""

    def __init__(self) -> None:
        self._by_provider: dict[str, ProviderMetrics] = {}

    def provider(self, name: str) -> ProviderMetrics:
        found = self._by_provider.get(name)
        if found is None:
            found = self._by_provider[name] = ProviderMetrics()
        return found

    def snapshot(self) -> dict[str, dict[str, object]]:
        return {name: m.snapshot() for name, m in sorted(self._by_provider.items())}

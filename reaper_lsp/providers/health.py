"""What the chain knows about each provider's health, and the events it reports."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class Health:
    """What the chain knows about one provider."""

    successes: int = 0
    failures: int = 0
    consecutive_failures: int = 0
    paused_until: float = 0.0
    pause_reason: str = ""
    last_error: str = ""
    failed_requests: int = 0
    """Requests in a row that ended in an error (after their retries): drives the breaker."""
    open_until: float = 0.0
    """Circuit breaker: skipped until then; afterwards one probe request is let through."""
    trips: int = 0
    probing: bool = False

    def state(self, now: float) -> str:
        if self.trips:
            return "open" if self.open_until > now else "half-open"
        if self.paused_until > now:
            return "paused"
        if self.consecutive_failures:
            return "failing"
        return "healthy" if self.successes else "unknown"

    def snapshot(self, now: float) -> HealthSnapshot:
        return HealthSnapshot(
            state=self.state(now),
            circuit_open_for=round(max(0.0, self.open_until - now), 1),
            successes=self.successes,
            failures=self.failures,
            consecutive_failures=self.consecutive_failures,
            paused_for=round(max(0.0, self.paused_until - now), 1),
            last_error=self.last_error,
        )


@dataclass(frozen=True, slots=True)
class HealthSnapshot:
    state: str
    """"unknown", "healthy", "failing", "paused", "open" or "half-open"."""
    circuit_open_for: float
    successes: int
    failures: int
    consecutive_failures: int
    paused_for: float
    last_error: str


@dataclass(frozen=True, slots=True)
class ProviderEvent:
    """Something about a provider the user may care about: its state changed, or an error says
    the user must act (`user_message`)."""

    provider: str
    state: str
    message: str = ""
    user_message: str = ""

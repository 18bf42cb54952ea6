"""What the chain knows about each provider's health: successes and failures, rests asked for
(a rate limit, an unreachable server, a rejected key), the circuit breaker, and the events it
reports when a state changes or the user must act."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from reaper_lsp.providers.errors import ProviderError, RateLimited, Unreachable, detail

log = logging.getLogger(__name__)

UNREACHABLE_REST = 10.0
"""Seconds an unreachable provider is skipped before it is tried again."""
BREAKER_THRESHOLD = 3
"""Requests in a row a provider must fail before its circuit opens."""
BREAKER_COOLDOWN = 30.0
BREAKER_MAX_COOLDOWN = 300.0


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


class HealthBook(dict[str, Health]):
    """The health of every remote provider (a `dict` by name), kept by the chain."""

    def __init__(self, names: Iterable[str], clock: Callable[[], float]) -> None:
        super().__init__({name: Health() for name in names})
        self._clock = clock
        self._states: dict[str, str] = {}
        self.on_event: Callable[[ProviderEvent], None] = lambda event: None
        """Told about state changes and errors the user must act on (the status events)."""

    def resting(self, name: str) -> bool:
        """Paused or its circuit open: not to be tried now."""
        health = self.get(name)
        now = self._clock()
        return health is not None and (health.paused_until > now or health.open_until > now)

    def skip_reason(self, name: str, unusable: str | None) -> str | None:
        """Why `name` is skipped now (`unusable`: the provider's own reason), or None."""
        health = self.get(name)
        if unusable or health is None:
            return unusable
        now = self._clock()
        if health.open_until > now:
            left = health.open_until - now
            return f"circuit open for {left:.0f}s after {health.failed_requests} failed requests"
        if health.trips and health.probing:
            return "circuit half-open: a probe request is in flight"
        paused = health.paused_until - now
        if paused > 0:
            return f"resting for {paused:.1f}s: {health.pause_reason or health.last_error}"
        return None

    def ok(self, name: str) -> None:
        health = self.get(name)
        if health is None:  # the offline engine keeps no health
            return
        health.successes += 1
        health.consecutive_failures = 0
        health.failed_requests = 0
        if health.trips:
            log.info("provider %s answered again: circuit closed", name)
        health.trips = 0
        health.open_until = 0.0
        self._state_changed(name)

    def request_failed(self, name: str) -> None:
        """A request to `name` ended in an error: count it for the circuit breaker."""
        health = self.get(name)
        if health is None:
            return
        health.failed_requests += 1
        if health.trips or health.failed_requests >= BREAKER_THRESHOLD:
            health.trips += 1
            cooldown = min(BREAKER_MAX_COOLDOWN, BREAKER_COOLDOWN * 2 ** (health.trips - 1))
            health.open_until = self._clock() + cooldown
            log.warning(
                "provider %s failed %d requests in a row: skipped for %.0f s",
                name,
                health.failed_requests,
                cooldown,
            )
            self._state_changed(name)

    def failed(self, name: str, error: ProviderError) -> None:
        """One attempt failed: count it, rest the provider if the error asks for it."""
        health = self.get(name)
        if health is None:
            log.warning("the offline engine failed: %s", error)
            return
        health.failures += 1
        health.consecutive_failures += 1
        # Kept without the provider's name: every reader says whose error it is.
        health.last_error = detail(error)
        if error.rest_for:
            self.rest(name, error.rest_for, detail(error))
        elif isinstance(error, RateLimited) and error.retry_after:
            # Asked to wait: skip this provider for that long instead of hammering it.
            self.rest(name, error.retry_after, f"rate limited: {detail(error)}")
        elif isinstance(error, Unreachable):
            self.rest(name, UNREACHABLE_REST, detail(error))
        # Nothing listening is routine (a local Ollama not started): the provider rests instead.
        level = logging.INFO if isinstance(error, Unreachable) else logging.WARNING
        log.log(level, "provider %s failed: %s", name, error)
        self.tell(name, error)
        self._state_changed(name)

    def rest(self, name: str, seconds: float, reason: str) -> None:
        """Skip `name` for `seconds` (the longest rest asked for wins)."""
        health = self.get(name)
        if health is None:
            return
        until = self._clock() + seconds
        if until > health.paused_until:
            health.paused_until = until
            health.pause_reason = reason

    def tell(self, name: str, error: ProviderError) -> None:
        """Report an error the user must act on (it carries a `user_message`)."""
        if error.user_message:
            health = self.get(name)
            state = health.state(self._clock()) if health is not None else ""
            self.on_event(ProviderEvent(name, state, str(error), error.user_message))

    def _state_changed(self, name: str) -> None:
        health = self.get(name)
        if health is None:
            return
        state = health.state(self._clock())
        if self._states.get(name, "unknown") != state:
            self._states[name] = state
            self.on_event(ProviderEvent(name, state, health.last_error))

    def snapshot(self) -> dict[str, HealthSnapshot]:
        now = self._clock()
        return {name: h.snapshot(now) for name, h in self.items()}

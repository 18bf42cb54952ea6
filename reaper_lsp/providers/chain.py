"""The provider chain: try providers in order, skip unusable ones at once, retry what is worth
retrying within one time budget, fall through on failure, and keep per-provider health.

The chain owns every cool-down (`rest`), and is the one place that decides on errors: any
exception a provider raises is a failed attempt, so the offline engine always answers. Changes
the user may care about are reported as `ProviderEvent`s to one listener, never by a provider.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from reaper_lsp.core.types import Suggestion
from reaper_lsp.net.retry import RetryPolicy
from reaper_lsp.providers.base import ChatRequest, CompletionRequest, Provider
from reaper_lsp.providers.errors import (
    NotConfigured,
    ProtocolError,
    ProviderError,
    ProviderUnavailable,
    RateLimited,
    Unreachable,
)
from reaper_lsp.providers.health import Health, HealthSnapshot, ProviderEvent

log = logging.getLogger(__name__)

UNREACHABLE_REST = 10.0
"""Seconds an unreachable provider is skipped before it is tried again."""
BREAKER_THRESHOLD = 3
"""Requests in a row a provider must fail before its circuit opens."""
BREAKER_COOLDOWN = 30.0
BREAKER_MAX_COOLDOWN = 300.0


class Shaper(Protocol):
    """Turns raw streamed text into the suggestion, and says when more text cannot matter."""

    def shape(self, raw: str) -> str | None: ...

    def is_complete(self, partial: str) -> bool: ...


@dataclass(slots=True)
class Attempt:
    provider: str
    outcome: str
    """"ok", "empty", "skipped: …", or the error text."""


@dataclass(slots=True)
class ChainResult:
    suggestion: Suggestion | None
    attempts: list[Attempt] = field(default_factory=list)


class AllProvidersFailed(ProviderError):
    """No provider could answer (chat); the message lists why each one did not."""


class Chain:
    """Ordered fallback over providers; `clock`, `sleep` and `rand` are injectable for tests."""

    def __init__(
        self,
        providers: dict[str, Provider],
        *,
        policy: RetryPolicy,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.providers = providers
        self.policy = policy
        self.health: dict[str, Health] = {name: Health() for name in providers}
        self._clock = clock
        self._sleep = sleep
        self._rand = rand
        self.on_event: Callable[[ProviderEvent], None] = lambda event: None
        """Told about state changes and errors the user must act on (the status service)."""
        self._states: dict[str, str] = {}

    def usable(self, order: Sequence[str]) -> list[str]:
        """Providers of `order` that could be tried now, `local` always last."""
        now = self._clock()
        names = [n for n in order if n != "local"] + ["local"]
        out = []
        for name in names:
            provider = self.providers.get(name)
            if provider is None or provider.unusable_reason() is not None:
                continue
            health = self.health[name]
            if health.paused_until > now or health.open_until > now:
                continue
            out.append(name)
        return out

    async def complete(
        self,
        request: CompletionRequest,
        order: Sequence[str],
        shaper: Shaper,
        *,
        timeout: float,
        hedge: float = 0.0,
        progress: Callable[[str, str], None] | None = None,
    ) -> ChainResult:
        """Try the providers of `order` in turn within `timeout` seconds, then the offline
        engine. With `hedge` > 0, a provider that has sent nothing after `hedge` seconds gets
        company: the next one starts too, the first good answer wins and the other is
        cancelled (its HTTP stream closed)."""
        deadline = self._clock() + timeout
        result = ChainResult(None)
        queue: list[str] = []
        for name in order:
            provider = self.providers.get(name)
            if name == "local" or provider is None:
                continue
            skip = self._skip_reason(name, provider)
            if skip:
                result.attempts.append(Attempt(name, f"skipped: {skip}"))
            else:
                queue.append(name)
        if queue:
            await self._race(queue, request, shaper, deadline, hedge, result, progress)
        if result.suggestion is None and "local" in self.providers:
            local = self.providers["local"]
            # The offline engine is instant and always allowed to answer, even past the budget.
            try:
                text = await self._collect(local, request, shaper, asyncio.Event())
            except Exception as exc:  # the offline engine must never take the answer down
                log.warning("the offline engine failed: %s", type(exc).__name__, exc_info=exc)
                text = ""
            shaped = shaper.shape(text)
            result.attempts.append(Attempt("local", "ok" if shaped else "empty"))
            if shaped:
                result.suggestion = Suggestion(shaped, "local", local.model_for("completion"))
        return result

    async def _race(
        self,
        queue: list[str],
        request: CompletionRequest,
        shaper: Shaper,
        deadline: float,
        hedge: float,
        result: ChainResult,
        progress: Callable[[str, str], None] | None = None,
    ) -> None:
        running: dict[asyncio.Task[str], str] = {}
        first_piece: dict[str, asyncio.Event] = {}
        latest = ("", 0.0)  # the provider started last, and when

        def start(name: str) -> None:
            nonlocal latest
            provider = self.providers[name]
            if self.health[name].trips:
                self.health[name].probing = True  # half-open: this request is the probe
            first_piece[name] = asyncio.Event()
            call = functools.partial(
                self._collect, provider, request, shaper, first_piece[name], progress
            )
            task = asyncio.ensure_future(self._with_retries(name, deadline, call))
            running[task] = name
            latest = (name, self._clock())

        try:
            while queue or running:
                if not running:
                    if self._clock() >= deadline:
                        for name in queue:
                            result.attempts.append(
                                Attempt(name, "skipped: completion.timeout_ms used up")
                            )
                        return
                    start(queue.pop(0))
                wait: float | None = None
                if hedge > 0 and queue and not first_piece[latest[0]].is_set():
                    wait = max(0.0, latest[1] + hedge - self._clock())
                done, _ = await asyncio.wait(
                    running, timeout=wait, return_when=asyncio.FIRST_COMPLETED
                )
                if not done:
                    if not first_piece[latest[0]].is_set() and queue:
                        log.info("%s silent for %.0f ms: hedging", latest[0], hedge * 1000)
                        start(queue.pop(0))
                    continue
                for task in done:
                    name = running.pop(task)
                    self.health[name].probing = False
                    try:
                        text = task.result()
                    except Exception as exc:  # any failure is a failed attempt: fall through
                        result.attempts.append(Attempt(name, str(exc) or type(exc).__name__))
                        self._request_failed(name)
                        continue
                    shaped = shaper.shape(text)
                    result.attempts.append(Attempt(name, "ok" if shaped else "empty"))
                    if shaped:
                        model = self.providers[name].model_for("completion")
                        result.suggestion = Suggestion(shaped, name, model)
                        return
                    if not running:
                        return  # an empty answer is an answer: nothing sensible to insert
        finally:
            for task, name in running.items():
                task.cancel()
                self.health[name].probing = False
            if running:
                await asyncio.gather(*running, return_exceptions=True)

    async def chat(
        self, request: ChatRequest, order: Sequence[str], *, timeout: float
    ) -> AsyncIterator[tuple[str, str]]:
        """Stream (provider, text piece). Falls through only while nothing was streamed yet:
        once text reached the user, a failure ends the answer with an error."""
        deadline = self._clock() + timeout
        reasons: list[str] = []
        for name in order:
            provider = self.providers.get(name)
            if provider is None:
                continue
            skip = self._skip_reason(name, provider)
            if skip:
                reasons.append(f"{name}: {skip}")
                continue
            started = False
            attempt = 0
            while True:
                try:
                    async with asyncio.timeout_at(self._loop_deadline(deadline)):
                        async for piece in provider.stream_chat(request):
                            started = True
                            yield name, piece
                    self._record_ok(name)
                    return
                except TimeoutError:
                    error: ProviderError = ProviderUnavailable("timed out", provider=name)
                except Exception as exc:
                    error = as_provider_error(name, exc)
                self._record_failure(name, error)
                if started:
                    raise error
                delay = self._retry_delay(error, attempt, deadline)
                if delay is None:
                    reasons.append(str(error))
                    break
                await self._sleep(delay)
                attempt += 1
        raise AllProvidersFailed(
            "no chat provider could answer: " + "; ".join(reasons or ["none configured"])
        )

    def _skip_reason(self, name: str, provider: Provider) -> str | None:
        reason = provider.unusable_reason()
        if reason:
            return reason
        health = self.health[name]
        if health.open_until > self._clock():
            left = health.open_until - self._clock()
            return f"circuit open for {left:.0f}s after {health.failed_requests} failed requests"
        if health.trips and health.probing:
            return "circuit half-open: a probe request is in flight"
        paused = health.paused_until - self._clock()
        if paused > 0:
            return f"resting for {paused:.1f}s: {health.pause_reason or health.last_error}"
        return None

    async def _with_retries(
        self, name: str, deadline: float | None, call: Callable[[], Awaitable[str]]
    ) -> str:
        attempt = 0
        while True:
            try:
                if deadline is None:
                    text = await call()
                else:
                    async with asyncio.timeout_at(self._loop_deadline(deadline)):
                        text = await call()
            except TimeoutError:
                error: ProviderError = ProviderUnavailable(
                    "no answer within completion.timeout_ms", provider=name
                )
                self._record_failure(name, error)
                raise error from None
            except NotConfigured as exc:
                self._tell(name, exc)
                raise
            except Exception as caught:
                failed = as_provider_error(name, caught)
                self._record_failure(name, failed)
                delay = self._retry_delay(failed, attempt, deadline)
                if delay is None:
                    raise failed from None
                log.info(
                    "%s failed (%s); retry %d in %.0f ms", name, failed, attempt + 1, delay * 1000
                )
                await self._sleep(delay)
                attempt += 1
                continue
            self._record_ok(name)
            return text

    async def _collect(
        self,
        provider: Provider,
        request: CompletionRequest,
        shaper: Shaper,
        first_piece: asyncio.Event,
        progress: Callable[[str, str], None] | None = None,
    ) -> str:
        """Read the stream until it ends or the suggestion is known to be complete; leaving the
        loop early closes the upstream stream."""
        parts: list[str] = []
        stream = provider.stream_completion(request)
        try:
            async for piece in stream:
                first_piece.set()
                parts.append(piece)
                if progress is not None:
                    progress(provider.name, "".join(parts))
                if "\n" in piece and shaper.is_complete("".join(parts)):
                    break
        finally:
            aclose = getattr(stream, "aclose", None)
            if aclose is not None:
                await aclose()
        return "".join(parts)

    def _retry_delay(
        self, error: ProviderError, attempt: int, deadline: float | None
    ) -> float | None:
        if not self.policy.should_retry(error, attempt):
            return None
        delay = self.policy.delay(attempt, error.retry_after, self._rand())
        if delay is None:
            return None
        if deadline is not None and self._clock() + delay >= deadline:
            return None
        return delay

    def _record_ok(self, name: str) -> None:
        health = self.health[name]
        health.successes += 1
        health.consecutive_failures = 0
        health.failed_requests = 0
        if health.trips:
            log.info("provider %s answered again: circuit closed", name)
        health.trips = 0
        health.open_until = 0.0
        self._state_changed(name)

    def _request_failed(self, name: str) -> None:
        """A request to `name` ended in an error: count it for the circuit breaker."""
        health = self.health[name]
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

    def _record_failure(self, name: str, error: ProviderError) -> None:
        health = self.health[name]
        health.failures += 1
        health.consecutive_failures += 1
        health.last_error = str(error)
        if error.rest_for:
            self.rest(name, error.rest_for, str(error))
        elif isinstance(error, RateLimited) and error.retry_after:
            # Asked to wait: skip this provider for that long instead of hammering it.
            self.rest(name, error.retry_after, f"rate limited: {error}")
        elif isinstance(error, Unreachable):
            self.rest(name, UNREACHABLE_REST, str(error))
        # Nothing listening is routine (a local Ollama not started): the provider rests instead.
        level = logging.INFO if isinstance(error, Unreachable) else logging.WARNING
        log.log(level, "provider %s failed: %s", name, error)
        self._tell(name, error)
        self._state_changed(name)

    def rest(self, name: str, seconds: float, reason: str) -> None:
        """Skip `name` for `seconds` (the longest rest asked for wins)."""
        health = self.health.get(name)
        if health is None:
            return
        until = self._clock() + seconds
        if until > health.paused_until:
            health.paused_until = until
            health.pause_reason = reason

    def _tell(self, name: str, error: ProviderError) -> None:
        if error.user_message:
            state = self.health[name].state(self._clock()) if name in self.health else ""
            self.on_event(ProviderEvent(name, state, str(error), error.user_message))

    def _state_changed(self, name: str) -> None:
        health = self.health[name]
        state = health.state(self._clock())
        if self._states.get(name, "unknown") != state:
            self._states[name] = state
            self.on_event(ProviderEvent(name, state, health.last_error))

    def _loop_deadline(self, deadline: float) -> float:
        """Convert a deadline on our clock to the event loop's clock."""
        return asyncio.get_running_loop().time() + (deadline - self._clock())

    def snapshot(self) -> dict[str, HealthSnapshot]:
        now = self._clock()
        return {name: h.snapshot(now) for name, h in self.health.items()}


def as_provider_error(name: str, exc: BaseException) -> ProviderError:
    """Any exception out of a provider as a provider error: a bug in a provider (a `TypeError`
    from a strange field) costs that attempt, not the answer."""
    if isinstance(exc, ProviderError):
        return exc
    log.warning("provider %s raised %s", name, type(exc).__name__, exc_info=exc)
    return ProtocolError(f"unexpected {type(exc).__name__}", provider=name)

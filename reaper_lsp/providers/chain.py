"""The provider chain: try providers in order, skip unusable ones at once, retry what is worth
retrying within one time budget (one retry loop for completions and chats alike), fall through
on failure, and keep per-provider health.

The chain owns every cool-down (`rest`) and every fallback decision: any exception a provider
raises is a failed attempt, so the offline engine always answers a completion, and a chat answer
cut off mid-way is continued by the next chat provider. The chain and its health are shared by
every editor session; the offline engine reads one session's documents, so it comes with each
call (`local`). Changes the user may care about are reported as `ProviderEvent`s to one
listener, never by a provider.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol, TypeVar

from reaper_lsp.core.postprocess import distinct
from reaper_lsp.core.prompts import CONTINUE
from reaper_lsp.core.types import Suggestion
from reaper_lsp.net.retry import RetryPolicy
from reaper_lsp.providers.base import (
    LOCAL,
    ChatMessage,
    ChatRequest,
    CompletionRequest,
    Provider,
    SeveralChoices,
)
from reaper_lsp.providers.errors import (
    NotConfigured,
    ProtocolError,
    ProviderError,
    ProviderUnavailable,
    detail,
)
from reaper_lsp.providers.health import HealthBook

log = logging.getLogger(__name__)


T = TypeVar("T")


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
    alternatives: list[Suggestion] = field(default_factory=list)
    """Distinct suggestions of the provider that answered, best (`suggestion`) first: several
    when the request asked for several (`n`) and the provider could give them."""

    def answered(self, name: str, model: str, shaped: list[str]) -> None:
        self.alternatives = [Suggestion(text, name, model) for text in shaped]
        self.suggestion = self.alternatives[0] if shaped else None


class AllProvidersFailed(ProviderError):
    """No provider could answer (chat); the message lists why each one did not."""


class Chain:
    """Ordered fallback over the remote providers; `clock`, `sleep` and `rand` are injectable
    for tests."""

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
        self.health = HealthBook(providers, clock)
        """Health, rests and circuit breakers by provider; its `on_event` hears of changes."""
        self._clock = clock
        self._sleep = sleep
        self._rand = rand

    def usable(self, order: Sequence[str]) -> list[str]:
        """Providers of `order` that could be tried now, `local` always last."""
        out = []
        for name in order:
            provider = self.providers.get(name)
            if name == LOCAL or provider is None or provider.unusable_reason() is not None:
                continue
            if self.health.resting(name):
                continue
            out.append(name)
        return [*out, LOCAL]

    async def complete(
        self,
        request: CompletionRequest,
        order: Sequence[str],
        shaper: Shaper,
        *,
        local: Provider | None = None,
        timeout: float,
        hedge: float = 0.0,
        progress: Callable[[str, str], None] | None = None,
    ) -> ChainResult:
        """Try the providers of `order` in turn within `timeout` seconds, then the offline
        engine `local`. With `hedge` > 0, a provider that has sent nothing after `hedge` seconds
        gets company: the next one starts too, the first good answer wins and the other is
        cancelled (its HTTP stream closed)."""
        deadline = self._clock() + timeout
        result = ChainResult(None)
        queue: list[str] = []
        for name in order:
            provider = self.providers.get(name)
            if name == LOCAL or provider is None:
                continue
            # What must stay on this machine never goes to a remote provider, whoever asked.
            skip = request.origin.private or self.health.skip_reason(
                name, provider.unusable_reason()
            )
            if skip:
                result.attempts.append(Attempt(name, f"skipped: {skip}"))
            else:
                queue.append(name)
        if queue:
            await self._race(queue, request, shaper, deadline, hedge, result, progress)
        if result.suggestion is None and local is not None:
            # The offline engine is instant and always allowed to answer, even past the budget.
            try:
                texts = await self._collect(local, request, shaper, asyncio.Event())
            except Exception as exc:  # the offline engine must never take the answer down
                log.warning("the offline engine failed: %s", type(exc).__name__, exc_info=exc)
                texts = []
            shaped = _distinct(shaper, texts)
            result.attempts.append(Attempt(LOCAL, "ok" if shaped else "empty"))
            result.answered(LOCAL, local.model_for("completion"), shaped)
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
        running: dict[asyncio.Task[list[str]], str] = {}
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
                        texts = task.result()
                    except Exception as exc:  # any failure is a failed attempt: fall through
                        result.attempts.append(Attempt(name, detail(exc)))
                        self.health.request_failed(name)
                        continue
                    shaped = _distinct(shaper, texts)
                    result.attempts.append(Attempt(name, "ok" if shaped else "empty"))
                    if shaped:
                        result.answered(name, self.providers[name].model_for("completion"), shaped)
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
        self,
        request: ChatRequest,
        order: Sequence[str],
        *,
        local: Provider | None = None,
        timeout: float,
    ) -> AsyncIterator[tuple[str, str]]:
        """Stream (provider, text piece) from the first provider of `order` that answers. A
        provider that fails before sending anything is retried, then the next one is asked; one
        that fails mid-answer is replaced by the next one, asked to continue from where the
        answer stopped. `AllProvidersFailed` when none could answer (or finish)."""
        deadline = self._clock() + timeout
        reasons: list[str] = []
        parts: list[str] = []
        for name in order:
            provider = local if name == LOCAL else self.providers.get(name)
            if provider is None:
                continue
            private = request.origin.private if name != LOCAL else ""
            skip = private or self.health.skip_reason(name, provider.unusable_reason())
            if skip:
                reasons.append(f"{name}: {skip}")
                continue
            asked = _continued(request, "".join(parts)) if parts else request
            if parts:
                log.info("chat: the answer was cut off; %s continues it", name)
            opening = functools.partial(_first_piece, provider, asked)
            try:
                first, rest = await self._with_retries(name, deadline, opening)
            except Exception as exc:
                reasons.append(str(exc) or type(exc).__name__)
                continue
            try:
                async with asyncio.timeout_at(self._loop_deadline(deadline)):
                    pieces = _chained(first, rest)
                    async for piece in pieces:
                        parts.append(piece)
                        yield name, piece
            except TimeoutError:
                error: ProviderError = ProviderUnavailable("timed out", provider=name)
            except Exception as exc:
                error = as_provider_error(name, exc)
            else:
                self.health.ok(name)
                return
            self.health.failed(name, error)
            reasons.append(str(error))
        raise AllProvidersFailed(
            "no chat provider could answer: " + "; ".join(reasons or ["none configured"])
        )

    async def _with_retries(
        self, name: str, deadline: float, call: Callable[[], Awaitable[T]]
    ) -> T:
        """`call()`, retried while the error and the time left allow (the one retry loop)."""
        attempt = 0
        while True:
            try:
                async with asyncio.timeout_at(self._loop_deadline(deadline)):
                    answer = await call()
            except TimeoutError:
                error: ProviderError = ProviderUnavailable("no answer in time", provider=name)
                self.health.failed(name, error)
                raise error from None
            except NotConfigured as exc:
                self.health.tell(name, exc)
                raise
            except Exception as caught:
                failed = as_provider_error(name, caught)
                self.health.failed(name, failed)
                delay = self._retry_delay(failed, attempt, deadline)
                if delay is None:
                    raise failed from None
                log.info(
                    "%s failed (%s); retry %d in %.0f ms", name, failed, attempt + 1, delay * 1000
                )
                await self._sleep(delay)
                attempt += 1
                continue
            self.health.ok(name)
            return answer

    async def _collect(
        self,
        provider: Provider,
        request: CompletionRequest,
        shaper: Shaper,
        first_piece: asyncio.Event,
        progress: Callable[[str, str], None] | None = None,
    ) -> list[str]:
        """The raw text of each alternative (one unless the request asks for several and the
        provider can give them), read until the stream ends or every alternative is known to
        be complete; leaving the loop early closes the upstream stream."""
        if request.n > 1 and isinstance(provider, SeveralChoices):
            stream = provider.stream_alternatives(request)
        else:
            stream = _first_only(provider.stream_completion(request))
        parts: dict[int, list[str]] = {}
        try:
            async for index, piece in stream:
                if index >= request.n:
                    continue  # more than was asked for
                first_piece.set()
                parts.setdefault(index, []).append(piece)
                if progress is not None and index == 0:
                    progress(provider.name, "".join(parts[0]))
                if "\n" in piece and _all_complete(shaper, parts, request.n):
                    break
        finally:
            aclose = getattr(stream, "aclose", None)
            if aclose is not None:
                await aclose()
        return ["".join(parts[index]) for index in sorted(parts)]

    def _retry_delay(self, error: ProviderError, attempt: int, deadline: float) -> float | None:
        if not self.policy.should_retry(error, attempt):
            return None
        delay = self.policy.delay(attempt, error.retry_after, self._rand())
        if delay is None or self._clock() + delay >= deadline:
            return None
        return delay

    def _loop_deadline(self, deadline: float) -> float:
        """Convert a deadline on our clock to the event loop's clock."""
        return asyncio.get_running_loop().time() + (deadline - self._clock())


def as_provider_error(name: str, exc: BaseException) -> ProviderError:
    """Any exception out of a provider as a provider error: a bug in a provider (a `TypeError`
    from a strange field) costs that attempt, not the answer."""
    if isinstance(exc, ProviderError):
        return exc
    log.warning("provider %s raised %s", name, type(exc).__name__, exc_info=exc)
    return ProtocolError(f"unexpected {type(exc).__name__}", provider=name)


async def _first_only(stream: AsyncIterator[str]) -> AsyncIterator[tuple[int, str]]:
    """A one-answer stream as alternative 0."""
    try:
        async for piece in stream:
            yield 0, piece
    finally:
        aclose = getattr(stream, "aclose", None)
        if aclose is not None:
            await aclose()


def _all_complete(shaper: Shaper, parts: dict[int, list[str]], wanted: int) -> bool:
    if len(parts) < wanted:
        return False
    return all(shaper.is_complete("".join(pieces)) for pieces in parts.values())


def _distinct(shaper: Shaper, texts: Sequence[str]) -> list[str]:
    """The shaped alternatives worth showing (`core.postprocess.distinct`)."""
    return distinct(shaper.shape(text) or "" for text in texts)


async def _first_piece(provider: Provider, request: ChatRequest) -> tuple[str, AsyncIterator[str]]:
    """Open `provider`'s chat stream up to its first piece ("" when it sent none), and the rest
    of the stream: a failure up to here is worth a retry, as nothing reached the user."""
    stream = provider.stream_chat(request)
    try:
        first = await anext(stream, "")
    except BaseException:
        aclose = getattr(stream, "aclose", None)
        if aclose is not None:
            await aclose()
        raise
    return first, stream


async def _chained(first: str, rest: AsyncIterator[str]) -> AsyncIterator[str]:
    try:
        if first:
            yield first
        async for piece in rest:
            yield piece
    finally:
        aclose = getattr(rest, "aclose", None)
        if aclose is not None:
            await aclose()


def _continued(request: ChatRequest, partial: str) -> ChatRequest:
    """`request` asked again after `partial` was answered: continue it, do not start over."""
    messages = (
        *request.messages,
        ChatMessage("assistant", partial),
        ChatMessage("user", CONTINUE),
    )
    return replace(request, messages=messages)

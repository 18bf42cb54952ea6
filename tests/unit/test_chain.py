"""The provider chain's decisions: order, skipping, retries, fallback, budget, health.

Providers here are in-process scripted objects: the chain only knows the Provider protocol, and
its decisions are what is under test. Wire protocols are tested against fake servers elsewhere.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Literal

import pytest

from reaper_lsp.core.types import CompletionContext
from reaper_lsp.net.retry import RetryPolicy
from reaper_lsp.providers.base import ChatMessage, ChatRequest, CompletionRequest
from reaper_lsp.providers.chain import AllProvidersFailed, Chain
from reaper_lsp.providers.errors import (
    AuthError,
    BadRequest,
    ProviderError,
    ProviderUnavailable,
    QuotaExhausted,
    RateLimited,
    Unreachable,
)

Step = str | ProviderError | float


class Scripted:
    """Answers each call with the next step: text, an error to raise, or a delay in seconds
    before answering "slow"."""

    def __init__(self, name: str, *steps: Step, usable: bool = True) -> None:
        self.name = name
        self.steps = list(steps)
        self.calls = 0
        self.usable = usable
        self.closed = 0

    def unusable_reason(self) -> str | None:
        return None if self.usable else "no key"

    def model_for(self, kind: Literal["completion", "chat"]) -> str:
        return f"{self.name}-model"

    async def _next(self) -> AsyncIterator[str]:
        self.calls += 1
        step = self.steps.pop(0) if self.steps else "default"
        try:
            if isinstance(step, ProviderError):
                raise step
            if isinstance(step, float):
                await asyncio.sleep(step)
                step = "slow"
            for piece in (step[:2], step[2:]):
                if piece:
                    yield piece
        finally:
            self.closed += 1

    def stream_completion(self, request: CompletionRequest) -> AsyncIterator[str]:
        return self._next()

    def stream_chat(self, request: ChatRequest) -> AsyncIterator[str]:
        return self._next()

    async def aclose(self) -> None:
        return None


class Identity:
    def shape(self, raw: str) -> str | None:
        return raw or None

    def is_complete(self, partial: str) -> bool:
        return partial.endswith("\n")


REQUEST = CompletionRequest(CompletionContext("a = ", "", "python", "x.py"))


def chain(*providers: Scripted, retries: int = 2) -> Chain:
    sleeps: list[float] = []

    async def no_sleep(delay: float) -> None:
        sleeps.append(delay)

    c = Chain(
        {p.name: p for p in providers if p.name != "local"},
        policy=RetryPolicy(max_retries=retries, base_backoff=0.01),
        sleep=no_sleep,
        rand=lambda: 0.5,
    )
    c.sleeps = sleeps  # type: ignore[attr-defined]
    c.local = next((p for p in providers if p.name == "local"), None)  # type: ignore[attr-defined]
    return c


async def complete(
    c: Chain, order: tuple[str, ...], timeout: float = 5.0
) -> tuple[str | None, str | None]:
    local = c.local  # type: ignore[attr-defined]
    result = await c.complete(REQUEST, order, Identity(), local=local, timeout=timeout)
    s = result.suggestion
    return (s.text, s.provider) if s else (None, None)


async def test_first_usable_provider_answers() -> None:
    a, b = Scripted("a", "one"), Scripted("b", "two")
    assert await complete(chain(a, b, Scripted("local")), ("a", "b")) == ("one", "a")
    assert b.calls == 0


async def test_unconfigured_provider_is_skipped_without_a_call() -> None:
    a, b = Scripted("a", "one", usable=False), Scripted("b", "two")
    assert await complete(chain(a, b, Scripted("local")), ("a", "b")) == ("two", "b")
    assert a.calls == 0


async def test_retryable_failure_is_retried_then_succeeds() -> None:
    a = Scripted("a", ProviderUnavailable("503"), "one")
    c = chain(a, Scripted("local"))
    assert await complete(c, ("a",)) == ("one", "a")
    assert a.calls == 2
    assert c.sleeps == [pytest.approx(0.01 * 0.875)]  # type: ignore[attr-defined]


async def test_retries_exhausted_fall_through_to_the_next_provider() -> None:
    a = Scripted("a", *[ProviderUnavailable("503")] * 5)
    b = Scripted("b", "two")
    assert await complete(chain(a, b, Scripted("local"), retries=2), ("a", "b")) == ("two", "b")
    assert a.calls == 3


@pytest.mark.parametrize(
    "error",
    [
        AuthError("bad key", status=401),
        QuotaExhausted("quota", status=429),
        BadRequest("too large", status=413),
    ],
)
async def test_fatal_errors_are_never_retried(error: ProviderError) -> None:
    a, b = Scripted("a", error, "late"), Scripted("b", "two")
    assert await complete(chain(a, b, Scripted("local")), ("a", "b")) == ("two", "b")
    assert a.calls == 1


async def test_rate_limit_with_long_retry_after_pauses_the_provider() -> None:
    a = Scripted("a", RateLimited("slow down", status=429, retry_after=30.0), "one")
    b = Scripted("b", "two", "three")
    c = chain(a, b, Scripted("local"))
    assert await complete(c, ("a", "b")) == ("two", "b")
    # The next request does not touch the paused provider at all.
    assert await complete(c, ("a", "b")) == ("three", "b")
    assert a.calls == 1
    assert c.health.snapshot()["a"].state == "paused"


async def test_local_answers_when_every_remote_provider_fails() -> None:
    a = Scripted("a", AuthError("no", status=401))
    assert await complete(chain(a, Scripted("local", "offline")), ("a",)) == ("offline", "local")


async def test_budget_covers_the_whole_chain_and_local_still_answers() -> None:
    a = Scripted("a", 5.0)
    b = Scripted("b", "never")
    got = await complete(chain(a, b, Scripted("local", "offline")), ("a", "b"), timeout=0.05)
    assert got == ("offline", "local")
    assert a.closed == 1


async def test_stream_is_closed_as_soon_as_the_suggestion_is_complete() -> None:
    a = Scripted("a", "x\nrest of a long answer")
    c = chain(a, Scripted("local"))
    result = await c.complete(REQUEST, ("a",), Identity(), timeout=1)
    assert result.suggestion is not None and result.suggestion.text == "x\n"
    assert a.closed == 1


async def test_health_records_failures_and_recovery() -> None:
    a = Scripted("a", AuthError("no", status=401), "one")
    c = chain(a, Scripted("local"))
    await complete(c, ("a",))
    assert c.health.snapshot()["a"].state == "failing"
    await complete(c, ("a",))
    assert c.health.snapshot()["a"].state == "healthy"


async def test_chat_falls_through_before_any_text_was_streamed() -> None:
    a, b = Scripted("a", AuthError("no", status=401)), Scripted("b", "hello")
    c = chain(a, b)
    req = ChatRequest((ChatMessage("user", "hi"),))
    got = [item async for item in c.chat(req, ("a", "b"), timeout=1)]
    assert "".join(p for _, p in got) == "hello"
    assert {name for name, _ in got} == {"b"}


async def test_chat_with_no_usable_provider_says_why() -> None:
    c = chain(Scripted("a", usable=False))
    req = ChatRequest((ChatMessage("user", "hi"),))
    with pytest.raises(AllProvidersFailed, match="a: no key"):
        async for _ in c.chat(req, ("a",), timeout=1):
            pass


async def test_unreachable_provider_is_not_retried_and_rests_a_while() -> None:
    a = Scripted("a", Unreachable("cannot connect"), "never")
    c = chain(a, Scripted("local", "offline", "again"))
    assert await complete(c, ("a",)) == ("offline", "local")
    assert a.calls == 1
    assert await complete(c, ("a",)) == ("again", "local")
    assert a.calls == 1  # skipped while resting


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_circuit_breaker_opens_skips_half_opens_and_closes() -> None:
    down = ProviderUnavailable("503")
    a = Scripted("a", down, down, down, "probe ok")
    c = chain(a, Scripted("local", *["offline"] * 10), retries=0)
    clock = FakeClock()
    c._clock = c.health._clock = clock  # type: ignore[method-assign]
    for _ in range(3):
        assert await complete(c, ("a",)) == ("offline", "local")
    assert c.health.snapshot()["a"].state == "open"
    assert await complete(c, ("a",)) == ("offline", "local")
    assert a.calls == 3  # skipped while open
    clock.now += 31
    assert c.health.snapshot()["a"].state == "half-open"
    assert await complete(c, ("a",)) == ("probe ok", "a")  # one probe, and it worked
    assert c.health.snapshot()["a"].state == "healthy"


async def test_failed_probe_reopens_for_longer() -> None:
    down = ProviderUnavailable("503")
    a = Scripted("a", down, down, down, down)
    c = chain(a, Scripted("local", *["offline"] * 10), retries=0)
    clock = FakeClock()
    c._clock = c.health._clock = clock  # type: ignore[method-assign]
    for _ in range(3):
        await complete(c, ("a",))
    clock.now += 31
    await complete(c, ("a",))
    assert a.calls == 4
    assert c.health.snapshot()["a"].state == "open"
    assert c.health.snapshot()["a"].circuit_open_for == 60.0


async def test_hedging_starts_the_next_provider_and_cancels_the_loser() -> None:
    slow, fast = Scripted("slow", 5.0), Scripted("fast", "quick")
    c = chain(slow, fast, Scripted("local"))
    result = await c.complete(REQUEST, ("slow", "fast"), Identity(), timeout=10, hedge=0.05)
    assert result.suggestion is not None
    assert (result.suggestion.text, result.suggestion.provider) == ("quick", "fast")
    assert slow.calls == 1 and slow.closed == 1  # the loser's stream was closed


async def test_no_hedge_when_the_first_provider_streams_in_time() -> None:
    a, b = Scripted("a", "answer"), Scripted("b", "other")
    c = chain(a, b, Scripted("local"))
    result = await c.complete(REQUEST, ("a", "b"), Identity(), timeout=10, hedge=0.05)
    assert result.suggestion is not None and result.suggestion.provider == "a"
    assert b.calls == 0


class Several(Scripted):
    """Scripted, and able to answer with several alternatives (pieces interleaved)."""

    def __init__(self, name: str, *texts: str) -> None:
        super().__init__(name, texts[0])
        self.texts = texts
        self.asked: list[int] = []

    async def stream_alternatives(
        self, request: CompletionRequest
    ) -> AsyncIterator[tuple[int, str]]:
        self.asked.append(request.n)
        for half in (0, 1):
            for index, text in enumerate(self.texts[: request.n]):
                piece = text[: len(text) // 2] if half == 0 else text[len(text) // 2 :]
                if piece:
                    yield index, piece


async def test_several_alternatives_come_from_one_call_distinct_and_best_first() -> None:
    a = Several("a", "alpha()", "alpha", "beta()", "gamma()")
    c = chain(a, Scripted("local"))
    asked = CompletionRequest(REQUEST.context, n=3)
    result = await c.complete(asked, ("a",), Identity(), timeout=1)
    assert [s.text for s in result.alternatives] == ["alpha()", "beta()"]
    assert result.suggestion == result.alternatives[0] and a.asked == [3]
    # An automatic request asks for one, through the plain stream.
    one = await c.complete(REQUEST, ("a",), Identity(), timeout=1)
    assert [s.text for s in one.alternatives] == ["alpha()"] and a.asked == [3]


async def test_a_provider_without_alternatives_gives_its_one_answer_when_asked_for_several() -> (
    None
):
    c = chain(Scripted("a", "only()"), Scripted("local"))
    result = await c.complete(
        CompletionRequest(REQUEST.context, n=3), ("a",), Identity(), timeout=1
    )
    assert [s.text for s in result.alternatives] == ["only()"]

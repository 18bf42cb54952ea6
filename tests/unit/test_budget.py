"""The prompt budget: halve on a context-exceeded answer, retry once at once, remember, grow
back slowly, never past a size known to fail."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from reaper_lsp.core.budget import (
    FORGET_AFTER,
    GROW_EVERY,
    MIN_CHARS,
    Prompt,
    PromptBudget,
    PromptBudgets,
    prompt_size,
    trim,
)
from reaper_lsp.core.types import CompletionContext, ContextSnippet


class TooLong(Exception):
    pass


def ctx(prefix: str, suffix: str = "") -> CompletionContext:
    return CompletionContext(prefix, suffix, "python", "a.py")


LINES = "".join(f"line_{i} = {i}\n" for i in range(400))


def test_trim_keeps_the_end_of_the_prefix_and_the_start_of_the_suffix_on_line_bounds() -> None:
    c = ctx(LINES + "x = ", "\n" + LINES)
    cut = trim(c, 1000)
    assert prompt_size(cut) <= 1000
    assert cut.prefix.endswith("line_399 = 399\nx = ") and cut.prefix.startswith("line_")
    assert cut.suffix.startswith("\nline_0 = 0\n") and cut.suffix.endswith("\n")
    assert len(cut.suffix) <= 250


def test_trim_leaves_a_prompt_that_fits_alone() -> None:
    c = ctx("a = ", "\n")
    assert trim(c, 100) is c


def test_exceeded_halves_from_the_size_that_failed() -> None:
    budget = PromptBudget()
    assert budget.exceeded(8000)
    assert budget.limit == 4000 and budget.too_long == 8000
    assert budget.exceeded(4000)
    assert budget.limit == 2000


def test_exceeded_stops_at_the_minimum() -> None:
    budget = PromptBudget()
    assert budget.exceeded(MIN_CHARS + 1)
    assert budget.limit == MIN_CHARS
    assert not budget.exceeded(MIN_CHARS)


def test_grows_back_slowly_and_never_to_a_size_known_to_fail() -> None:
    budget = PromptBudget()
    budget.exceeded(1000)
    for _ in range(GROW_EVERY - 1):
        budget.succeeded()
    assert budget.limit == 500
    budget.succeeded()
    assert budget.limit == 625
    for _ in range(GROW_EVERY * 5):
        budget.succeeded()
    assert budget.limit == 999


def test_the_size_that_failed_is_forgotten_after_many_fits() -> None:
    budget = PromptBudget()
    budget.exceeded(1000)
    for _ in range(FORGET_AFTER + GROW_EVERY):
        budget.succeeded()
    assert budget.too_long is None and budget.limit is not None and budget.limit > 1000


async def test_stream_retries_once_shorter_and_tells_once() -> None:
    told: list[tuple[str, str]] = []
    budgets = PromptBudgets("llamacpp", notify=lambda cause, text: told.append((cause, text)))
    sizes: list[int] = []

    def send(p: Prompt) -> AsyncIterator[str]:
        async def gen() -> AsyncIterator[str]:
            sizes.append(p.size)
            if p.size > len(LINES) * 3 // 4:
                raise TooLong
            yield "ok"

        return gen()

    big = Prompt(ctx(LINES))
    assert [p async for p in budgets.stream("m", big, send, TooLong)] == ["ok"]
    assert sizes[0] == len(LINES) and sizes[1] <= len(LINES) // 2
    assert len(told) == 1 and "llamacpp" in told[0][1] and "'m'" in told[0][1]
    sizes.clear()
    assert [p async for p in budgets.stream("m", big, send, TooLong)] == ["ok"]
    assert len(sizes) == 1  # remembered: the size that fits is sent first
    assert budgets.of("other").limit is None  # per model


async def test_stream_raises_the_second_refusal() -> None:
    budgets = PromptBudgets("ollama")
    calls = 0

    def send(p: Prompt) -> AsyncIterator[str]:
        async def gen() -> AsyncIterator[str]:
            nonlocal calls
            calls += 1
            raise TooLong
            yield ""

        return gen()

    with pytest.raises(TooLong):
        _ = [p async for p in budgets.stream("m", Prompt(ctx(LINES)), send, TooLong)]
    assert calls == 2


async def test_a_refusal_after_text_is_not_retried() -> None:
    budgets = PromptBudgets("ollama")
    calls = 0

    def send(p: Prompt) -> AsyncIterator[str]:
        async def gen() -> AsyncIterator[str]:
            nonlocal calls
            calls += 1
            yield "partial"
            raise TooLong

        return gen()

    with pytest.raises(TooLong):
        _ = [p async for p in budgets.stream("m", Prompt(ctx(LINES)), send, TooLong)]
    assert calls == 1 and budgets.of("m").limit is None


def test_snippets_are_dropped_worst_first_before_the_code_is_cut() -> None:
    code = ctx("x = 1\n" * 100 + "y = ", "\n" * 10)
    best, worst = ContextSnippet("a.py", "a" * 300), ContextSnippet("b.py", "b" * 300)
    prompt = Prompt(code, (best, worst))
    budget = PromptBudget()
    assert budget.fit(prompt) == prompt  # no refusal yet: everything goes
    budget.limit = prompt_size(code) + 400
    assert budget.fit(prompt) == Prompt(code, (best,))
    budget.limit = prompt_size(code) + 10
    assert budget.fit(prompt) == Prompt(code)
    budget.limit = 300
    fitted = budget.fit(prompt)
    assert fitted.snippets == () and fitted.size <= 300 and fitted.context.prefix.endswith("y = ")


async def test_a_refusal_counts_the_snippets_in_the_size_that_failed() -> None:
    budgets = PromptBudgets("llamacpp")
    sent: list[Prompt] = []
    code = ctx("x = 1\n" * 100 + "y = ")
    prompt = Prompt(code, (ContextSnippet("a.py", "a" * 2000),))

    def send(p: Prompt) -> AsyncIterator[str]:
        async def gen() -> AsyncIterator[str]:
            sent.append(p)
            if p.size > 1500:
                raise TooLong
            yield "ok"

        return gen()

    assert [p async for p in budgets.stream("m", prompt, send, TooLong)] == ["ok"]
    assert [p.snippets for p in sent] == [prompt.snippets, ()]
    assert sent[1].context == code  # the code around the cursor stayed whole

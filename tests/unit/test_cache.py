"""The completion cache: exact hits, TTL and LRU limits, and typed-through reuse."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from reaper_lsp.core.cache import CachedSuggestion, CompletionCache, context_digest
from reaper_lsp.core.types import ContextSnippet


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make(ttl: float = 300, size: int = 8) -> tuple[CompletionCache, Clock]:
    clock = Clock()
    return CompletionCache(ttl_seconds=ttl, max_entries=size, clock=clock), clock


def hit(text: str) -> CachedSuggestion:
    return CachedSuggestion(text, "openai", "m")


def test_exact_hit_needs_same_provider_model_prefix_and_suffix() -> None:
    cache, _ = make()
    cache.put(("openai", "m", "def f(", ")\n", ""), hit("x, y"))
    assert cache.get(("openai", "m", "def f(", ")\n", "")) == hit("x, y")
    assert cache.get(("openai", "m2", "def f(", ")\n", "")) is None
    assert cache.get(("claude", "m", "def f(", ")\n", "")) is None
    assert cache.get(("openai", "m", "def f(", "", "")) is None
    assert cache.stats.hits == 1


def test_entries_expire_after_ttl() -> None:
    cache, clock = make(ttl=10)
    cache.put(("openai", "m", "a", "b", ""), hit("c"))
    clock.now += 9.9
    assert cache.get(("openai", "m", "a", "b", "")) is not None
    clock.now += 0.2
    assert cache.get(("openai", "m", "a", "b", "")) is None


def test_least_recently_used_entry_is_evicted_first() -> None:
    cache, _ = make(size=2)
    cache.put(("p", "m", "1", "", ""), hit("one"))
    cache.put(("p", "m", "2", "", ""), hit("two"))
    assert cache.get(("p", "m", "1", "", "")) is not None
    cache.put(("p", "m", "3", "", ""), hit("three"))
    assert cache.get(("p", "m", "2", "", "")) is None
    assert cache.get(("p", "m", "1", "", "")) is not None


def test_a_suggestion_made_with_other_snippets_is_no_exact_hit() -> None:
    cache, _ = make()
    taxes = context_digest([ContextSnippet("taxes.py", "def compute_tax_rate(region, year):")])
    other = context_digest([ContextSnippet("rates.py", "def compute_tax_rate(region, year):")])
    assert context_digest([]) == "" and "" != taxes != other
    # File names and texts are kept apart: moving text between them changes the digest.
    assert context_digest([ContextSnippet("ab", "c")]) != context_digest(
        [ContextSnippet("a", "bc")]
    )
    cache.put(("openai", "m", "rate = compute_", "\n", taxes), hit("tax_rate(r, y)"))
    assert cache.get(("openai", "m", "rate = compute_", "\n", taxes)) == hit("tax_rate(r, y)")
    assert cache.get(("openai", "m", "rate = compute_", "\n", other)) is None
    assert cache.get(("openai", "m", "rate = compute_", "\n", "")) is None
    # Typing it through is still right whatever the model was shown.
    found = cache.typed_through("rate = compute_tax", "\n")
    assert found is not None and found.text == "_rate(r, y)"


def test_typing_the_start_of_a_suggestion_serves_the_rest() -> None:
    cache, _ = make()
    cache.put(("openai", "m", "x = compute(", ")\n", ""), hit("alpha, beta"))
    found = cache.typed_through("x = compute(alp", ")\n")
    assert found == CachedSuggestion("ha, beta", "openai", "m")
    assert cache.stats.typed_through == 1


def test_typing_something_else_is_not_served() -> None:
    cache, _ = make()
    cache.put(("openai", "m", "x = compute(", ")\n", ""), hit("alpha, beta"))
    assert cache.typed_through("x = compute(alx", ")\n") is None
    assert cache.typed_through("x = compute(alp", "]\n") is None


def test_typing_the_whole_suggestion_leaves_nothing_to_serve() -> None:
    cache, _ = make()
    cache.put(("openai", "m", "a = ", "", ""), hit("1"))
    assert cache.typed_through("a = 1", "") is None


def test_typed_through_survives_the_prefix_window_moving() -> None:
    # The prefix is cut to a budget at line boundaries, so typing can drop its first line.
    cache, _ = make()
    head = "".join(f"line {i}\n" for i in range(100))
    cache.put(("openai", "m", head + "value = ", "", ""), hit("compute(1)"))
    moved = head[len("line 0\n") :] + "value = comp"
    assert cache.typed_through(moved, "") == CachedSuggestion("ute(1)", "openai", "m")


def test_typed_through_expires_with_the_ttl() -> None:
    cache, clock = make(ttl=5)
    cache.put(("openai", "m", "a = ", "", ""), hit("foo()"))
    clock.now += 6
    assert cache.typed_through("a = f", "") is None


def test_clear_forgets_everything() -> None:
    cache, _ = make()
    cache.put(("openai", "m", "a = ", "", ""), hit("foo()"))
    cache.clear()
    assert len(cache) == 0
    assert cache.typed_through("a = f", "") is None


@given(
    prefix=st.text(max_size=300),
    suggestion=st.text(min_size=2, max_size=60),
    cut=st.integers(min_value=1, max_value=59),
    suffix=st.text(max_size=20),
)
def test_typed_through_returns_exactly_the_untyped_rest(
    prefix: str, suggestion: str, cut: int, suffix: str
) -> None:
    cut = min(cut, len(suggestion) - 1)
    cache, _ = make()
    cache.put(("p", "m", prefix, suffix, ""), hit(suggestion))
    found = cache.typed_through(prefix + suggestion[:cut], suffix)
    assert found is not None
    assert prefix + suggestion[:cut] + found.text == prefix + suggestion


def test_knowing_a_cursor_means_knowing_it_with_the_same_snippets() -> None:
    cache, _ = make()
    cache.put(("openai", "m", "x = ", "\n", ""), hit("1"))
    assert cache.knows("x = ", "\n") and cache.knows("x = ", "\n", "")
    assert not cache.knows("x = ", "\n", "digest-of-other-snippets")

"""Prefetching on a hunch: used hunches keep it going, a run of misses stops it until a
suggestion is taken again."""

from __future__ import annotations

from reaper_lsp.core.types import CompletionContext, Suggestion
from reaper_lsp.services.prefetch import Prefetches, after


def ctx(prefix: str) -> CompletionContext:
    return CompletionContext(prefix, "\n", "python", "a.py", uri="file:///a.py", line=0)


def test_a_hunch_typed_through_to_its_target_is_used() -> None:
    p = Prefetches(lambda: 0.0)
    shown = ctx("x = ")
    target = after(shown, Suggestion("total", "openai"), 8000)
    p.hunch(shown, target)
    p.seen(ctx("x = to"))  # on the way: undecided
    p.seen(ctx("x = total"))
    for _ in range(5):  # misses after a use do not stop it at once
        p.hunch(shown, target)
        p.seen(ctx("x = q"))
    assert p.worth_a_hunch() is False
    p.taken()
    assert p.worth_a_hunch()


def test_three_missed_hunches_stop_them() -> None:
    p = Prefetches(lambda: 0.0)
    for n in range(3):
        assert p.worth_a_hunch()
        shown = ctx(f"line{n} = ")
        p.hunch(shown, after(shown, Suggestion("zq_unrelated(1)", "openai"), 8000))
        p.seen(ctx(f"line{n} = 4"))  # the user typed something else
    assert not p.worth_a_hunch()


def test_a_cursor_is_claimed_once_per_ttl() -> None:
    now = [0.0]
    p = Prefetches(lambda: now[0])
    target = ctx("x = total")
    assert p.claim(target, "d1") and not p.claim(target, "d1")
    assert p.digests(target, "d2") == ("d2", "d1")
    now[0] = 31.0
    assert p.claim(target, "d1")

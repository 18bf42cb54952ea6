"""Adaptive debounce."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from reaper_lsp.core.debounce import CAP, TypingRhythm


def test_unknown_rhythm_waits_the_floor() -> None:
    assert TypingRhythm(0.025).wait("u", 0.0) == 0.025


def test_fast_typist_waits_about_one_gap_after_a_keystroke() -> None:
    rhythm = TypingRhythm(0.025)
    for i in range(10):
        rhythm.keystroke("u", i * 0.040)
    gap = rhythm.typical_gap("u")
    assert gap is not None and abs(gap - 0.040) < 1e-9
    assert abs(rhythm.wait("u", 9 * 0.040) - 0.050) < 1e-3  # just after the keystroke
    assert rhythm.wait("u", 9 * 0.040 + 0.5) == 0.025  # after a pause: only the floor


def test_slow_rhythm_is_capped_and_pauses_are_not_rhythm() -> None:
    rhythm = TypingRhythm(0.0)
    for i in range(5):
        rhythm.keystroke("u", i * 0.9)
    assert rhythm.wait("u", 3.6) == CAP
    rhythm.keystroke("u", 10.0)  # a 6.4 s pause
    gap = rhythm.typical_gap("u")
    assert gap is not None and gap < 1.0


def test_a_new_document_borrows_the_rhythm_learned_elsewhere() -> None:
    rhythm = TypingRhythm(0.01)
    for i in range(5):
        rhythm.keystroke("a", i * 0.1)
    assert rhythm.wait("b", 0.5) == 0.01  # never typed in: nothing to wait for
    rhythm.keystroke("b", 1.0)
    assert rhythm.wait("b", 1.0) > 0.1  # first keystroke there: the typist's usual gap


def test_irregular_typing_waits_longer_than_regular() -> None:
    steady, uneven = TypingRhythm(0.0), TypingRhythm(0.0)
    now_s = now_u = 0.0
    for i in range(20):
        now_s += 0.05
        now_u += 0.03 if i % 2 else 0.07
        steady.keystroke("u", now_s)
        uneven.keystroke("u", now_u)
    assert uneven.wait("u", now_u) > steady.wait("u", now_s)


@given(st.lists(st.floats(min_value=0.0, max_value=3.0), max_size=30), st.floats(0, 0.2))
def test_wait_is_between_floor_and_cap(gaps: list[float], floor: float) -> None:
    rhythm = TypingRhythm(floor)
    now = 0.0
    for gap in gaps:
        now += gap
        rhythm.keystroke("u", now)
    wait = rhythm.wait("u", now)
    assert floor <= wait <= max(CAP, floor)

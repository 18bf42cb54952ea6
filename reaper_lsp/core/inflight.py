"""Whether an answer still on its way can serve the cursor where it is now. Pure.

A request starts at one cursor; the user types on. The answer stays useful while what was
typed since the request started can still be the start of it: then the rest of the answer,
after the typed text, is the suggestion for the new cursor.
"""

from __future__ import annotations

ANCHOR = 256
"""Characters of the older prefix looked for in the newer one when the prefix window moved."""
MAX_TYPED = 1024
"""Characters typed since a request started, at most, for it to count as the same line of
work."""


def typed_since(before: str, now: str) -> str | None:
    """The text typed after `before` to reach `now` (maybe ""), or None when `now` does not
    extend `before` — a deletion, a cursor jump, another document.

    The prefix window is cut to a budget at line boundaries, so its start may move while the
    user types: then the last `ANCHOR` characters of `before` are looked for near the end of
    `now`, and the latest place they stand wins (the shortest typed text).
    """
    if now.startswith(before):
        typed = now[len(before) :]
        return typed if len(typed) <= MAX_TYPED else None
    if len(before) < ANCHOR:  # a short prefix was not cut: it must be extended as it is
        return None
    anchor = before[-ANCHOR:]
    at = now.rfind(anchor, max(0, len(now) - MAX_TYPED - len(anchor)))
    return now[at + len(anchor) :] if at >= 0 else None


def agrees(typed: str, partial: str) -> bool:
    """Whether an answer streamed as far as `partial` can still start with `typed`."""
    return partial.startswith(typed) or typed.startswith(partial)


def remainder(text: str, typed: str) -> str | None:
    """What is left of suggestion `text` once `typed` is in the buffer; None when the typed
    text is not its start or nothing would be left to show."""
    if len(text) > len(typed) and text.startswith(typed):
        return text[len(typed) :]
    return None


def relation(start_prefix: str, prefix: str) -> tuple[str, str | None]:
    """How a cursor at `prefix` relates to a request that started at `start_prefix`:
    ("behind", typed) when the request started earlier on this line of work, ("ahead", gap)
    when it started further along (a prefetch for the end of the suggestion being typed), or
    ("apart", None)."""
    typed = typed_since(start_prefix, prefix)
    if typed is not None:
        return "behind", typed
    gap = typed_since(prefix, start_prefix)
    if gap is not None:
        return "ahead", gap
    return "apart", None

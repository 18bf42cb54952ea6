"""Text helpers of the offline engine: ranking candidate texts, common prefixes, word
boundaries and indentation. Pure."""

from __future__ import annotations


def fit_suffix(rest: str, after: str) -> str | None:
    """`rest` without the text already after the cursor (None when it does not end with it)."""
    if not after:
        return rest
    if not rest.endswith(after):
        return None
    return rest[: len(rest) - len(after)].rstrip()


def ranked(scores: dict[str, float], *, agree: float = 0.0, strict: bool = False) -> list[str]:
    """Best first: weight, then a little for length (a longer rest saves more typing).

    With `agree`, when the best text holds less than that share of the weight, the part of it
    that enough candidates agree on comes first (`self.assert` + `Equal(a, b)` / `Equal(c, d)`
    / `True(e)` gives `Equal(`): a shorter right suggestion beats a longer wrong one. With
    `strict`, nothing when they agree on nothing."""
    ranked = sorted(scores, key=lambda text: (-(scores[text] + min(len(text), 80) / 400), text))
    if not agree or not ranked:
        return ranked
    best, total = ranked[0], sum(scores.values())
    if scores[best] >= agree * total:
        return ranked
    shared = sorted(((common(best, text), scores[text]) for text in ranked[:100]), reverse=True)
    held = 0.0
    for length, weight in shared:
        held += weight
        if held >= agree * total:
            part = word_boundary(best, length)
            if part.strip():
                return [part, *ranked]
            break
    return [] if strict else ranked


def common(a: str, b: str) -> int:
    """Length of the common start of `a` and `b`."""
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def word_boundary(text: str, length: int) -> str:
    """`text[:length]`, backed off to the start of a word it would cut (unless that is all)."""
    end = length
    if 0 < end < len(text) and is_word(text[end - 1]) and is_word(text[end]):
        while end > 0 and is_word(text[end - 1]):
            end -= 1
        if end == 0:
            end = length
    return text[:end]


def is_word(ch: str) -> bool:
    return ch.isalnum() or ch == "_"


def previous_nonblank(prefix: str) -> tuple[str, int]:
    """The last non-blank line before the cursor's line, and how many blank lines follow it."""
    end = prefix.rfind("\n")
    gap = 0
    while end > 0:
        start = prefix.rfind("\n", 0, end) + 1
        line = prefix[start:end].rstrip("\r")
        if line.strip():
            return line, gap
        gap += 1
        end = start - 1
    return "", gap


def reindent(indent: str, old_base: str, new_base: str) -> str:
    """`indent` (relative to `old_base`) moved onto `new_base`."""
    if indent.startswith(old_base):
        return new_base + indent[len(old_base) :]
    dedent = len(old_base) - len(indent)
    return new_base[: max(0, len(new_base) - dedent)]

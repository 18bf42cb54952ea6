"""Completion cache: exact hits by (provider, model, prefix, suffix, context digest), and
typed-through reuse.

The context digest names the snippets of other files the prompt showed: a suggestion made
while `taxes.py` was open may be wrong once it is closed, so it is an exact hit only for the
same snippets. Typed-through reuse ignores it: what the user types agrees with the suggestion
whatever the model was shown.

Typed-through: when the user types characters that match the start of a suggestion shown a
moment ago, the rest of that suggestion is still right, so it is served from memory instead of
asking a provider again. Only a few recent suggestions can be typed through at any time, so
they are kept in a short list and matched by string comparison (memcmp-speed on CPython), which
is cheaper than hashing every candidate split of a long prefix.
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from cachetools import TLRUCache

from reaper_lsp.core.types import ContextSnippet

CacheKey = tuple[str, str, str, str, str]
"""(provider, model, prefix, suffix, context digest)."""


def context_digest(snippets: Iterable[ContextSnippet]) -> str:
    """A short digest of the snippets a prompt shows ("" for none)."""
    h = hashlib.blake2b(digest_size=12)
    empty = True
    for snippet in snippets:
        empty = False
        for part in (snippet.filename, snippet.text):
            data = part.encode("utf-8", "surrogatepass")
            h.update(len(data).to_bytes(8, "little") + data)
    return "" if empty else h.hexdigest()


@dataclass(frozen=True, slots=True)
class CachedSuggestion:
    text: str
    provider: str
    model: str
    others: tuple[str, ...] | None = None
    """The other alternatives of a request that asked for several (None: it asked for one)."""


@dataclass(frozen=True, slots=True)
class _Shown:
    prefix: str
    suffix: str
    suggestion: CachedSuggestion
    expires: float
    digest: str
    """Of the snippets the prompt showed."""


@dataclass(slots=True)
class CacheStats:
    hits: int = 0
    typed_through: int = 0
    misses: int = 0
    stores: int = 0

    def as_dict(self) -> dict[str, int]:
        return {
            "hits": self.hits,
            "typedThrough": self.typed_through,
            "misses": self.misses,
            "stores": self.stores,
        }


_ANCHOR = 256


def _typed_since(before: str, now: str, text: str) -> str:
    """What was typed after `before` to reach `now`, if it is a strict start of `text`;
    "" otherwise.

    Usually `now` simply extends `before`. The prefix window is cut to a budget at line
    boundaries, though, so its start may move while the user types; then the last `_ANCHOR`
    characters of `before` are looked for near the end of `now`.
    """
    if now.startswith(before):
        typed = now[len(before) :]
        return typed if len(typed) < len(text) and text.startswith(typed) else ""
    anchor = before[-_ANCHOR:]
    if not anchor:
        return ""
    at = now.find(anchor, max(0, len(now) - len(text) - len(anchor)))
    while at >= 0:
        typed = now[at + len(anchor) :]
        if typed and len(typed) < len(text) and text.startswith(typed):
            return typed
        at = now.find(anchor, at + 1)
    return ""


class CompletionCache:
    """TTL + LRU cache of suggestions; `clock` is injected so tests control time."""

    def __init__(
        self,
        *,
        ttl_seconds: float,
        max_entries: int,
        clock: Callable[[], float],
        recent: int = 16,
    ) -> None:
        self._ttl = ttl_seconds
        self._clock = clock
        self._entries: TLRUCache[CacheKey, CachedSuggestion] = TLRUCache(
            maxsize=max_entries, ttu=lambda _k, _v, now: now + ttl_seconds, timer=clock
        )
        self._recent: deque[_Shown] = deque(maxlen=recent)
        self.stats = CacheStats()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: CacheKey) -> CachedSuggestion | None:
        found = self._entries.get(key)
        if found is not None:
            self.stats.hits += 1
        return found

    def put(self, key: CacheKey, suggestion: CachedSuggestion) -> None:
        prefix, suffix = key[2], key[3]
        self._entries[key] = suggestion
        self.stats.stores += 1
        shown = _Shown(prefix, suffix, suggestion, self._clock() + self._ttl, key[4])
        self._recent.append(shown)

    def typed_through(self, prefix: str, suffix: str) -> CachedSuggestion | None:
        """The unshown rest of a recent suggestion the user has been typing, if any.

        The newest match wins. The text after the cursor must be unchanged, the typed text
        must be a strict prefix of the suggestion, and something must remain to show.
        """
        now = self._clock()
        for shown in reversed(self._recent):
            if shown.expires <= now or shown.suffix != suffix:
                continue
            text = shown.suggestion.text
            typed = _typed_since(shown.prefix, prefix, text)
            if typed:
                self.stats.typed_through += 1
                rest = text[len(typed) :]
                return CachedSuggestion(rest, shown.suggestion.provider, shown.suggestion.model)
        return None

    def knows(self, prefix: str, suffix: str, digest: str | None = None) -> bool:
        """Whether a live suggestion was stored for exactly this cursor (no statistics) — made
        with the snippets of `digest`, when given."""
        now = self._clock()
        return any(
            s.prefix == prefix
            and s.suffix == suffix
            and s.expires > now
            and digest in (None, s.digest)
            for s in self._recent
        )

    def miss(self) -> None:
        self.stats.misses += 1

    def clear(self) -> None:
        self._entries.clear()
        self._recent.clear()

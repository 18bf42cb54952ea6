"""What has been prefetched, and whether prefetching on a hunch still pays.

Once a suggestion is shown, the one after it is worth fetching ahead: accepting or typing it
through then finds the next one ready. Typed through, it is certainly wanted (always fetched);
merely looked at for a moment, it is a hunch — and a hunch that keeps missing (the user reads
each suggestion and types something else, as with a model that guesses wrong) is an upstream
call per pause that nobody uses: those stop until a prefetch is used again.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable

from reaper_lsp.core.context import cut_prefix
from reaper_lsp.core.types import CompletionContext, Suggestion

PREFETCH_TTL = 30.0
"""Seconds before the same cursor is prefetched again."""
HUNCHES = 4
"""Recent hunches weighed; `MISSES` of them missed, none used: no more until one is used."""
MISSES = 3
_Key = tuple[str, str, str]


def after(ctx: CompletionContext, shown: Suggestion, max_prefix_chars: int) -> CompletionContext:
    """The cursor after `shown` is taken at `ctx`."""
    return CompletionContext(
        cut_prefix(ctx.prefix + shown.text, max_prefix_chars),
        ctx.suffix,
        ctx.language,
        ctx.path,
        uri=ctx.uri,
        line=ctx.line + shown.text.count("\n") if ctx.line >= 0 else -1,
    )


def _key(ctx: CompletionContext) -> _Key:
    return (ctx.uri, ctx.prefix, ctx.suffix)


class Prefetches:
    """One session's prefetches: when each cursor was last asked for (and with which snippets),
    and how the recent hunches fared."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._sent: dict[_Key, tuple[float, str]] = {}
        self._hunches: dict[str, tuple[str, CompletionContext]] = {}
        """Per document: an unsettled hunch (the prefix it was made at, the cursor it fetched)."""
        self._outcomes: deque[bool] = deque(maxlen=HUNCHES)
        self._timers: dict[str, asyncio.TimerHandle] = {}
        """Per document: a hunch waiting for the user to have looked at the suggestion."""

    def later(self, uri: str, timer: asyncio.TimerHandle) -> None:
        self.cancel(uri)
        self._timers[uri] = timer

    def cancel(self, uri: str) -> None:
        """The hunch waiting for `uri` is off (a keystroke came first)."""
        timer = self._timers.pop(uri, None)
        if timer is not None:
            timer.cancel()

    def pending(self) -> list[str]:
        return list(self._timers)

    def digests(self, ctx: CompletionContext, digest: str) -> tuple[str, ...]:
        """The snippet digests an exact hit at `ctx` may have been made with: this request's,
        and those of a prefetch made for exactly this cursor (the snippets of the moment
        before, which only what was taken has moved)."""
        sent = self._sent.get(_key(ctx))
        if sent is None or self._clock() - sent[0] >= PREFETCH_TTL:
            return (digest,)
        return tuple(dict.fromkeys((digest, sent[1])))

    def claim(self, target: CompletionContext, digest: str) -> bool:
        """Whether `target` may be fetched now (not asked within the TTL); recorded if so."""
        now = self._clock()
        key = _key(target)
        if now - self._sent.get(key, (-PREFETCH_TTL, ""))[0] < PREFETCH_TTL:
            return False
        if len(self._sent) >= 64:
            self._sent.pop(next(iter(self._sent)))
        self._sent[key] = (now, digest)
        return True

    def hunch(self, shown_at: CompletionContext, target: CompletionContext) -> None:
        """A prefetch on a hunch went out: `target`, after the suggestion shown at `shown_at`."""
        self._hunches[target.uri] = (shown_at.prefix, target)

    def seen(self, ctx: CompletionContext) -> None:
        """A request at `ctx`: the hunch for its document is used (the cursor reached its
        target), still open (typing through toward it), or missed."""
        open_hunch = self._hunches.get(ctx.uri)
        if open_hunch is None:
            return
        start, target = open_hunch
        if ctx.suffix == target.suffix and ctx.prefix == target.prefix:
            self._settle(ctx.uri, used=True)
        elif not (
            ctx.suffix == target.suffix
            and target.prefix.startswith(ctx.prefix)
            and len(ctx.prefix) > len(start)
        ):
            self._settle(ctx.uri, used=False)

    def taken(self) -> None:
        """A suggestion was typed through: a prefetch after it is no hunch, and a good sign."""
        self._outcomes.append(True)

    def worth_a_hunch(self) -> bool:
        recent = list(self._outcomes)
        return not (len(recent) >= MISSES and not any(recent))

    def forget(self, uri: str) -> None:
        self.cancel(uri)
        self._hunches.pop(uri, None)

    def _settle(self, uri: str, *, used: bool) -> None:
        del self._hunches[uri]
        self._outcomes.append(used)

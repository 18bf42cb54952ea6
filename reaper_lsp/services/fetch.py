"""One upstream call for a cursor (`Fetch`), and how raw model text becomes what the user sees
(`Shaper`): the pieces `CompletionService` juggles while the user types."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field, replace

from reaper_lsp.core.inflight import agrees, relation, remainder
from reaper_lsp.core.postprocess import is_complete, postprocess
from reaper_lsp.core.sanitize import sanitize_suggestion
from reaper_lsp.core.types import CompletionContext, Suggestion


@dataclass(frozen=True, slots=True)
class Shaper:
    context: CompletionContext
    multiline: bool

    def shape(self, raw: str) -> str | None:
        """The text to show: post-processed, then cleaned of anything an editor or terminal
        would interpret (escapes, controls, bidi overrides) and capped in length."""
        shaped = postprocess(raw, self.context, multiline=self.multiline)
        return sanitize_suggestion(shaped) or None if shaped else None

    def is_complete(self, partial: str) -> bool:
        return is_complete(partial, self.context, multiline=self.multiline)


@dataclass(eq=False)
class Fetch:
    """One upstream call for the cursor at `context`."""

    context: CompletionContext
    task: asyncio.Task[Suggestion | None] = field(init=False)
    partials: dict[str, str] = field(default_factory=dict)
    """Raw text streamed so far, per provider (hedging and fallback may run several)."""
    waiters: int = 0
    speculative: bool = False
    """A prefetch: kept while it may still be wanted, without waiters."""
    linger: asyncio.TimerHandle | None = None

    def usable_for(self, context: CompletionContext) -> tuple[str, str | None]:
        """("behind", typed) when this call can still serve `context`, ("ahead", gap) when it
        is for a cursor further along the text being typed, else ("apart", None)."""
        if context.suffix != self.context.suffix or context.uri != self.context.uri:
            return "apart", None
        where, text = relation(self.context.prefix, context.prefix)
        if where == "ahead" and not self.speculative:
            return "apart", None  # a deletion: this call's answer no longer fits
        if where == "behind" and text is not None and not self.agrees(text):
            return "apart", None
        return where, text

    def agrees(self, typed: str) -> bool:
        """Nothing streamed yet, or some provider's stream still agrees with `typed`."""
        return not self.partials or any(agrees(typed, p) for p in self.partials.values())

    def flowing(self, typed: str) -> bool:
        """Some provider's stream agrees with `typed` and already goes beyond it."""
        return any(len(p) > len(typed) and agrees(typed, p) for p in self.partials.values())


def rest_of(answer: Suggestion, typed: str) -> Suggestion | None:
    rest = remainder(answer.text, typed)
    return None if rest is None else replace(answer, text=rest)

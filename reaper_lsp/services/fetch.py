"""One upstream call for a cursor (`Fetch`), the calls in flight per document (`InFlight`), and
how raw model text becomes what the user sees (`Shaper`): the pieces `CompletionService`
juggles while the user types."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field, replace
from typing import Any

from reaper_lsp.core.inflight import agrees, relation, remainder
from reaper_lsp.core.postprocess import distinct, is_complete, postprocess
from reaper_lsp.core.sanitize import sanitize_suggestion
from reaper_lsp.core.types import CompletionContext, Suggestion
from reaper_lsp.services.related import NOTHING, Related


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
    related: Related = NOTHING
    """The snippets its prompt shows (a prefetch shows those of the request it follows)."""
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

    def waiter(self, linger: float) -> asyncio.Future[Suggestion | None]:
        """A future for this call's answer that can be cancelled without cancelling the call;
        a call left without anyone waiting lingers `linger` seconds, then is cancelled."""
        self.waiters += 1
        if self.linger is not None:
            self.linger.cancel()
            self.linger = None
        waiter: asyncio.Future[Suggestion | None] = asyncio.get_running_loop().create_future()

        def settle(task: asyncio.Task[Suggestion | None]) -> None:
            if not waiter.done():
                failed = task.cancelled() or task.exception() is not None
                waiter.set_result(None if failed else task.result())

        def left(_: object) -> None:
            self.task.remove_done_callback(settle)
            self.waiters -= 1
            if self.waiters == 0 and not self.task.done() and not self.speculative:
                loop = asyncio.get_running_loop()
                self.linger = loop.call_later(linger, self.task.cancel)

        self.task.add_done_callback(settle)
        waiter.add_done_callback(left)
        return waiter

    def flowing(self, typed: str) -> bool:
        """Some provider's stream agrees with `typed` and already goes beyond it."""
        return any(len(p) > len(typed) and agrees(typed, p) for p in self.partials.values())


class InFlight:
    """Upstream calls in flight, per document: the same cursor and snippets share one call, and
    a document has `limit` at most (starting one more cancels the oldest)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._by_uri: dict[str, list[Fetch]] = {}
        self.started = 0
        """Calls started (prefetches included): the cost side of the latency figures."""

    def __bool__(self) -> bool:
        return bool(self._by_uri)

    def uris(self) -> list[str]:
        return list(self._by_uri)

    def usable(self, ctx: CompletionContext) -> list[tuple[Fetch, str]]:
        """Earlier calls that may serve `ctx` (with what was typed since each started); calls
        that can no longer serve this document's cursor are cancelled."""
        keep: list[Fetch] = []
        usable: list[tuple[Fetch, str]] = []
        for fetch in self._by_uri.get(ctx.uri, []):
            where, text = fetch.usable_for(ctx)
            if where == "apart":
                fetch.task.cancel()
                continue
            keep.append(fetch)
            if where == "behind" and text is not None:
                usable.append((fetch, text))
        self._by_uri[ctx.uri] = keep
        return usable

    def start(
        self,
        ctx: CompletionContext,
        related: Related,
        run: Callable[[Fetch], Coroutine[Any, Any, Suggestion | None]],
        *,
        speculative: bool = False,
    ) -> Fetch:
        """The call in flight for `ctx` and `related`, or a new one running `run(fetch)`."""
        for fetch in self._by_uri.get(ctx.uri, []):
            same = fetch.context == ctx and fetch.related.digest == related.digest
            if same and not fetch.task.done():
                return fetch
        fetch = Fetch(ctx, related, speculative=speculative)
        fetch.task = asyncio.ensure_future(run(fetch))
        fetches = self._by_uri.setdefault(ctx.uri, [])
        fetches.append(fetch)
        if len(fetches) > self.limit:
            fetches.pop(0).task.cancel()
        fetch.task.add_done_callback(lambda _: self._forget(fetch))
        self.started += 1
        return fetch

    def cancel(self, uri: str) -> None:
        for fetch in self._by_uri.pop(uri, []):
            fetch.task.cancel()

    def _forget(self, fetch: Fetch) -> None:
        fetches = self._by_uri.get(fetch.context.uri)
        if fetches and fetch in fetches:
            fetches.remove(fetch)
            if not fetches:
                del self._by_uri[fetch.context.uri]
        if fetch.linger is not None:
            fetch.linger.cancel()


def distinct_suggestions(found: list[Suggestion]) -> list[Suggestion]:
    """`found` without repeats or starts of earlier ones (`core.postprocess.distinct`)."""
    first = {s.text: s for s in reversed(found)}
    return [first[text] for text in distinct(s.text for s in found)]


def rest_of(answer: Suggestion, typed: str) -> Suggestion | None:
    rest = remainder(answer.text, typed)
    return None if rest is None else replace(answer, text=rest)

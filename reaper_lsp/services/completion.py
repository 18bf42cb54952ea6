"""CompletionService: document → context → cache → chain → post-process, and the policies that
decide what the user waits for. One per editor session: its documents, debounce and calls in
flight are the session's; the cache and the chain are the App's, shared by every session (a
suggestion one editor window fetched serves another at the same context).

An editor sends a completion request on every keystroke. Requests and upstream calls
(`Fetch`es) are kept apart:

- A newer request for the same document answers the older *request* at once (with nothing),
  but an upstream call keeps running while what was typed since it started can still be the
  start of its answer; when that answer lands, its remainder is the suggestion, and it is cached
  under the cursor it was asked for, so typing through it is served from memory.
- An upstream call is cancelled (its HTTP/2 stream reset) only when it can no longer match: a
  deletion, a cursor jump, or streamed text that disagrees with what was typed — or when nobody
  has wanted it for `LINGER` seconds.
- A request waits for whichever comes first: an earlier call that still agrees, or its own
  call, started after a short debounce. Two requests for the same context share one call.
- Once a suggestion is served, the one after it is fetched ahead (`prefetch`), so accepting or
  typing it through finds the next one ready.
- Every prompt shows snippets of related code (other open documents, imported files, distant
  parts of this one: services/related.py); exact cache hits need the same snippets.
- Debounce: remote providers wait `debounce_ms`; a local model (Ollama, llama.cpp), which
  shares the user's CPU/GPU, waits out the typing rhythm (core/debounce.py); the offline engine
  does not wait at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any, Protocol, TypeVar

from reaper_lsp.core.cache import CachedSuggestion, CompletionCache
from reaper_lsp.core.context import build_context
from reaper_lsp.core.debounce import TypingRhythm
from reaper_lsp.core.document import Document, Position
from reaper_lsp.core.postprocess import wants_multiline
from reaper_lsp.core.prompts import stop_sequences
from reaper_lsp.core.types import CompletionContext, Suggestion
from reaper_lsp.providers.base import LOCAL, CompletionRequest, Provider
from reaper_lsp.providers.chain import Chain, ChainResult
from reaper_lsp.services.fetch import Fetch, InFlight, Shaper, distinct_suggestions, rest_of
from reaper_lsp.services.prefetch import Prefetches, after
from reaper_lsp.services.privacy import Policy, default_policy
from reaper_lsp.services.related import NOTHING, Related, RelatedCode
from reaper_lsp.settings import CompletionSettings
from reaper_lsp.workspace import Workspace

log = logging.getLogger(__name__)
T = TypeVar("T")

LOCAL_MODELS = frozenset({"ollama", "llamacpp"})
"""Providers that run on the user's machine: their debounce follows the typing rhythm."""
LINGER = 1.0
"""Seconds an upstream call nobody waits for is kept, in case the next keystroke wants it."""
PREFETCH_WAIT, PREFETCH_WAIT_MAX = 0.15, 0.6
"""How long a shown suggestion must stay the latest (1.5 typing gaps, within these bounds)
before the one after it is fetched."""
ALTERNATIVES = 3
"""Suggestions an invoked inline request asks for (where the provider can give several)."""
MAX_FETCHES = 2
"""Upstream calls in flight per document, at most (the oldest is cancelled)."""
STALL = 0.3
"""Seconds a request trusts an agreeing stream before starting a call of its own beside it."""


class CompletionShared(Protocol):
    """What a completion needs of the App (whose parts may be rebuilt at any time)."""

    @property
    def chain(self) -> Chain: ...

    @property
    def cache(self) -> CompletionCache: ...


class CompletionService:
    """Completions for one editor session (or one CLI run). `settings` are replaced by the
    session when its configuration changes."""

    def __init__(
        self,
        shared: CompletionShared,
        workspace: Workspace,
        local: Provider,
        settings: CompletionSettings,
        *,
        editor: str = "",
        policy: Policy | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`policy`: the session's rules — what may leave the machine (an excluded document
        is never shown as a snippet either), whether suggestions are on."""
        self.shared = shared
        self.policy = policy or default_policy(workspace, editor)
        self.workspace = workspace
        self.local = local
        self.settings = settings
        self.editor = editor
        self._clock = clock
        self.related = RelatedCode(workspace, self.policy.excluded)
        self.rhythm = TypingRhythm(settings.debounce_ms / 1000)
        self._requests: dict[tuple[str, str], asyncio.Task[Any]] = {}
        self.in_flight = InFlight(MAX_FETCHES)
        self.prefetches = Prefetches(clock)
        self._asked_alternatives = 0

    @property
    def upstream_calls(self) -> int:
        """Calls started (prefetches included): the cost side of the latency figures."""
        return self.in_flight.started + self._asked_alternatives

    @property
    def chain(self) -> Chain:
        return self.shared.chain

    @property
    def cache(self) -> CompletionCache:
        return self.shared.cache

    def reconfigure(self, settings: CompletionSettings) -> None:
        self.settings = settings
        self.rhythm.floor = settings.debounce_ms / 1000
        self.rhythm.cap = max(self.rhythm.cap, self.rhythm.floor)
        self.related.reconfigure()

    # -- what the editor tells us -------------------------------------------------------------

    def keystroke(self, uri: str) -> None:
        self.rhythm.keystroke(uri, self._clock())

    def closed(self, uri: str) -> None:
        self.rhythm.forget(uri)
        self.related.closed(uri)
        self.prefetches.forget(uri)
        self.in_flight.cancel(uri)

    def close(self) -> None:
        """The session ended: every request and call of its own stops."""
        for task in self._requests.values():
            task.cancel()
        for uri in [*self.in_flight.uris(), *self.prefetches.pending()]:
            self.closed(uri)

    # -- requests -----------------------------------------------------------------------------

    async def complete(
        self, uri: str, position: Position, *, kind: str = "inline", invoked: bool = False
    ) -> Suggestion | None:
        """The suggestion at `position`. A newer request of the same kind for the same document
        answers this one with None (the upstream call it was waiting for goes on while it may
        still serve the newer one). `invoked`: the user asked, so no debounce."""
        return await self._latest((uri, kind), self._request(uri, position, invoked))

    async def alternatives(
        self, uri: str, position: Position, *, count: int = ALTERNATIVES
    ) -> list[Suggestion]:
        """Up to `count` distinct suggestions at `position`, best first, for a request the user
        made (no debounce): one upstream call asks for them all, from a provider that can give
        several; others give one. Answered with [] by a newer inline request."""
        found: list[Suggestion] | None = await self._latest(
            (uri, "inline"), self._alternatives(uri, position, count)
        )
        return found or []

    async def _alternatives(self, uri: str, position: Position, count: int) -> list[Suggestion]:
        doc = await self.workspace.document(uri)
        if doc is None:
            return []
        ctx = self.context_at(doc, position)
        if not self.policy.enabled(ctx.uri, ctx.language):
            return []  # suggestions are off here: nothing is asked, nothing is shown
        related = await self.related_at(doc, ctx, position)
        hit = self.cached(ctx, related=related, exact=True)
        if hit is not None and hit.others is not None:
            found = [Suggestion(t, hit.provider, hit.model) for t in (hit.text, *hit.others)]
        else:
            self.cache.miss()
            self._asked_alternatives += 1
            found = (await self._call(ctx, related, n=count)).alternatives
        through = self.cache.typed_through(ctx.prefix, ctx.suffix)  # stays the first
        if through is not None:
            found = [Suggestion(through.text, through.provider, through.model), *found]
        found = distinct_suggestions(found)
        if found:
            self._prefetch_soon(ctx, found[0], related)
        return found[:count]

    async def _latest(self, key: tuple[str, str], work: Coroutine[Any, Any, T]) -> T | None:
        """`work`'s answer, or None when a newer request under `key` came first."""
        self.prefetches.cancel(key[0])  # a keystroke: the suggestion shown was not simply taken
        older = self._requests.get(key)
        if older is not None and not older.done():
            older.cancel()
        task: asyncio.Task[T] = asyncio.ensure_future(work)
        self._requests[key] = task
        try:
            return await task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                task.cancel()
                raise
            return None
        finally:
            if self._requests.get(key) is task:
                del self._requests[key]

    async def _request(self, uri: str, position: Position, invoked: bool) -> Suggestion | None:
        doc = await self.workspace.document(uri)
        if doc is None:
            log.warning("completion for %s, which is neither open nor a readable file", uri)
            return None
        ctx = self.context_at(doc, position)
        related = await self.related_at(doc, ctx, position)
        return await self.complete_context(ctx, invoked=invoked, related=related)

    async def related_at(
        self, doc: Document, ctx: CompletionContext, position: Position
    ) -> Related:
        """The snippets a prompt for `ctx` shows."""
        column = doc.clamp(position)[1]
        return await self.related.gather(doc, ctx, column, self.settings.max_context_chars)

    def context_at(self, doc: Document, position: Position) -> CompletionContext:
        return build_context(
            doc,
            position,
            max_prefix_chars=self.settings.max_prefix_chars,
            max_suffix_chars=self.settings.max_suffix_chars,
            path=self.workspace.relative_path(doc.uri),
        )

    def cached(
        self,
        ctx: CompletionContext,
        usable: list[str] | None = None,
        *,
        related: Related = NOTHING,
        exact: bool = False,
    ) -> CachedSuggestion | None:
        """A typed-through or exact hit (`exact`: only that); `usable`: the chain's usable
        providers, when the caller has them already (asking checks every sign-in)."""
        hit = None if exact else self.cache.typed_through(ctx.prefix, ctx.suffix)
        if hit is not None:
            return hit
        digests = self.prefetches.digests(ctx, related.digest)
        for name in self.chain.usable(self.settings.providers) if usable is None else usable:
            if name == LOCAL:
                continue  # the offline engine's answers are not cached
            model = self.chain.providers[name].model_for("completion")
            for digest in digests:
                found = self.cache.get((name, model, ctx.prefix, ctx.suffix, digest))
                if found is not None:
                    return found
        return None

    async def complete_context(
        self, ctx: CompletionContext, *, invoked: bool = True, related: Related = NOTHING
    ) -> Suggestion | None:
        """Cache, then an earlier call that still agrees, then a call of our own. `related`:
        the snippets the prompt shows."""
        if not self.policy.enabled(ctx.uri, ctx.language):
            return None  # suggestions are off here: nothing is asked, nothing is shown
        self.prefetches.seen(ctx)
        through = self.cache.typed_through(ctx.prefix, ctx.suffix)
        usable = self.chain.usable(self.settings.providers)
        hit = through or self.cached(ctx, usable, related=related)
        if hit is not None:
            found = Suggestion(hit.text, hit.provider, hit.model)
            # Typing it through is the user taking it: the next one is wanted now.
            self._prefetch_soon(ctx, found, related, now=through is not None)
            return found
        self.cache.miss()
        candidates = self.in_flight.usable(ctx)
        waiting: dict[asyncio.Future[Suggestion | None], tuple[Fetch, str]] = {}
        for fetch, typed in candidates:
            waiting[fetch.waiter(LINGER)] = (fetch, typed)
        # A call whose stream already agrees with what was typed, and goes beyond it, is worth
        # waiting for alone; otherwise a call of our own starts after the debounce, beside it.
        flowing = any(f.flowing(t) for f, t in candidates)
        delay = 0.0 if invoked else self._debounce(ctx.uri, usable)
        if flowing:  # ...unless that stream stalls
            delay = max(delay, STALL)
        timer: asyncio.Future[None] | None = asyncio.ensure_future(asyncio.sleep(delay))
        own: Fetch | None = None
        served_by_other = False
        try:
            while True:
                if not waiting and timer is None:
                    if own is not None:
                        return None
                    timer = asyncio.ensure_future(asyncio.sleep(0))  # the earlier calls failed
                pending: set[asyncio.Future[Any]] = {*waiting}
                if timer is not None:
                    pending.add(timer)
                done, _ = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                if timer is not None and timer in done:
                    timer = None
                    hit = self.cached(ctx, related=related)  # an earlier call may have landed
                    if hit is not None:
                        return Suggestion(hit.text, hit.provider, hit.model)
                    own = self._start(ctx, related)
                    waiting[own.waiter(LINGER)] = (own, "")
                for future in [f for f in waiting if f in done]:
                    fetch, typed = waiting.pop(future)
                    answer = future.result()
                    if answer is None:
                        continue
                    served = answer if fetch is own else rest_of(answer, typed)
                    if served is not None:
                        served_by_other = fetch is not own
                        self._prefetch_soon(ctx, served, related)
                        return served
        finally:
            if timer is not None:
                timer.cancel()
            for future in waiting:
                future.cancel()
            if served_by_other and own is not None and own.waiters <= 1 and not own.task.done():
                own.task.cancel()  # served by an earlier call: ours is not needed

    def _debounce(self, uri: str, usable: list[str]) -> float:
        remote = [n for n in usable if n != LOCAL]
        if not remote:
            return 0.0  # the offline engine answers in a millisecond: nothing to save
        if remote[0] in LOCAL_MODELS:
            return self.rhythm.wait(uri, self._clock())
        return self.settings.debounce_ms / 1000

    # -- upstream calls -----------------------------------------------------------------------

    def _start(
        self, ctx: CompletionContext, related: Related, *, speculative: bool = False
    ) -> Fetch:
        return self.in_flight.start(ctx, related, self._fetch, speculative=speculative)

    async def _fetch(self, fetch: Fetch) -> Suggestion | None:
        try:
            return await self._ask(fetch)
        except Exception:  # a bug costs this suggestion, never the editor's patience
            log.exception("completion failed unexpectedly")
            return None

    async def _ask(self, fetch: Fetch) -> Suggestion | None:
        def progress(provider: str, partial: str) -> None:
            fetch.partials[provider] = partial

        result = await self._call(fetch.context, fetch.related, progress=progress)
        return result.suggestion

    async def _call(
        self,
        ctx: CompletionContext,
        related: Related,
        *,
        n: int = 1,
        progress: Callable[[str, str], None] | None = None,
    ) -> ChainResult:
        """One request down the chain (asking for `n` alternatives); what a remote provider
        answers is cached under the context and the snippets its prompt showed. A document
        that must stay on this machine gets the offline engine only, or nothing."""
        settings = self.settings
        request, shaper = self.request_for(ctx, related, n=n)
        private = request.origin.private
        if private and not self.policy.local_allowed:
            return ChainResult(None)
        result = await self.chain.complete(
            request,
            () if private else settings.providers,
            shaper,
            local=self.local,
            timeout=settings.timeout_ms / 1000,
            hedge=settings.hedge_ms / 1000,
            progress=progress,
        )
        found = result.suggestion
        if found is not None and found.provider != LOCAL:
            others = tuple(a.text for a in result.alternatives[1:]) if n > 1 else None
            self.cache.put(
                (found.provider, found.model, ctx.prefix, ctx.suffix, related.digest),
                CachedSuggestion(found.text, found.provider, found.model, others),
            )
        if found is None:
            why = "; ".join(f"{a.provider}: {a.outcome}" for a in result.attempts)
            log.info("no suggestion: %s", why)
        return result

    def request_for(
        self, ctx: CompletionContext, related: Related = NOTHING, *, n: int = 1
    ) -> tuple[CompletionRequest, Shaper]:
        """The request for `ctx` under this session's settings (its origin says whether it may
        leave the machine), and what shapes its answer."""
        multiline = wants_multiline(ctx, self.settings.multiline)
        origin = self.policy.origin("completion", ctx.uri, ctx.language, prefix=ctx.prefix,
                                    suffix=ctx.suffix, context=related.snippets)  # fmt: skip
        request = CompletionRequest(
            ctx,
            max_tokens=self.settings.max_tokens,
            multiline=multiline,
            stop=stop_sequences(ctx, multiline=multiline),
            snippets=related.snippets,
            editor=self.editor,
            n=n,
            origin=origin,
        )
        return request, Shaper(ctx, multiline)

    def _prefetch_soon(
        self, ctx: CompletionContext, shown: Suggestion, related: Related, *, now: bool = False
    ) -> None:
        """Prefetch after `shown`: at once when it was typed through (the user takes it),
        else once the user has looked at it for a moment — a keystroke before then (typing
        on, not taking it) cancels that, and so does a run of such hunches nobody used."""
        self.prefetches.cancel(ctx.uri)
        if now:
            self.prefetches.taken()
            self._prefetch(ctx, shown, related)
            return
        if not self.prefetches.worth_a_hunch():
            return
        gap = self.rhythm.typical_gap(ctx.uri) or 0.0
        delay = min(PREFETCH_WAIT_MAX, max(PREFETCH_WAIT, 1.5 * gap))
        loop = asyncio.get_running_loop()
        self.prefetches.later(
            ctx.uri, loop.call_later(delay, self._prefetch, ctx, shown, related, True)
        )

    def _prefetch(
        self, ctx: CompletionContext, shown: Suggestion, related: Related, hunch: bool = False
    ) -> None:
        """Fetch the suggestion for the cursor after `shown`, typed or accepted (its prompt
        shows the snippets of the one before: the cursor has moved little)."""
        if not self.settings.prefetch or shown.provider == LOCAL or not shown.text:
            return
        if not self.policy.enabled(ctx.uri, ctx.language):
            return  # switched off since it was shown: nothing more goes upstream
        target = after(ctx, shown, self.settings.max_prefix_chars)
        if self.cache.knows(target.prefix, target.suffix, related.digest):
            return  # answered already
        if not self.prefetches.claim(target, related.digest):
            return  # asked recently (perhaps with nothing to suggest)
        if hunch:
            self.prefetches.hunch(ctx, target)
        with contextlib.suppress(RuntimeError):  # no running loop: nothing to prefetch into
            self._start(target, related, speculative=True)

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
- Debounce: remote providers wait `debounce_ms`; a local model (Ollama, llama.cpp), which
  shares the user's CPU/GPU, waits out the typing rhythm (core/debounce.py); the offline engine
  does not wait at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any, Protocol

from reaper_lsp.core.cache import CachedSuggestion, CompletionCache
from reaper_lsp.core.context import build_context, cut_prefix
from reaper_lsp.core.debounce import TypingRhythm
from reaper_lsp.core.document import Document, Position
from reaper_lsp.core.postprocess import wants_multiline
from reaper_lsp.core.prompts import stop_sequences
from reaper_lsp.core.related import SnippetIndex
from reaper_lsp.core.types import CompletionContext, ContextSnippet, Suggestion
from reaper_lsp.providers.base import LOCAL, CompletionRequest, Provider
from reaper_lsp.providers.chain import Chain
from reaper_lsp.services.fetch import Fetch, Shaper, rest_of
from reaper_lsp.services.privacy import Policy, default_policy
from reaper_lsp.settings import CompletionSettings
from reaper_lsp.workspace import Workspace

log = logging.getLogger(__name__)

SNIPPET_TAKERS = frozenset({"llamacpp"})
"""Providers whose prompts show snippets of the other open documents."""
LOCAL_MODELS = frozenset({"ollama", "llamacpp"})
"""Providers that run on the user's machine: their debounce follows the typing rhythm."""
LINGER = 1.0
"""Seconds an upstream call nobody waits for is kept, in case the next keystroke wants it."""
PREFETCH_WAIT, PREFETCH_WAIT_MAX = 0.15, 0.6
"""How long a shown suggestion must stay the latest (1.5 typing gaps, within these bounds)
before the one after it is fetched."""
PREFETCH_TTL = 30.0
"""Seconds before the same cursor is prefetched again."""
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
        clock: Callable[[], float] = time.monotonic,
        policy: Policy | None = None,
    ) -> None:
        """`policy`: what may leave the machine, whether suggestions are on (the session's)."""
        self.shared = shared
        self.policy = policy or default_policy(workspace, editor)
        self.workspace = workspace
        self.local = local
        self.settings = settings
        self.editor = editor
        self._clock = clock
        self._snippets = SnippetIndex()
        self.rhythm = TypingRhythm(settings.debounce_ms / 1000)
        self._requests: dict[tuple[str, str], asyncio.Task[Suggestion | None]] = {}
        self._fetches: dict[str, list[Fetch]] = {}
        self._prefetched: dict[tuple[str, str, str], float] = {}
        self._pending_prefetch: dict[str, asyncio.TimerHandle] = {}
        """When a prefetch for (uri, prefix, suffix) last went out: one per cursor per TTL."""
        self.upstream_calls = 0
        """Fetches started (prefetches included): the cost side of the latency figures."""

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

    # -- what the editor tells us -------------------------------------------------------------

    def keystroke(self, uri: str) -> None:
        self.rhythm.keystroke(uri, self._clock())

    def closed(self, uri: str) -> None:
        self.rhythm.forget(uri)
        pending = self._pending_prefetch.pop(uri, None)
        if pending is not None:
            pending.cancel()
        for fetch in self._fetches.pop(uri, []):
            fetch.task.cancel()

    def close(self) -> None:
        """The session ended: every request and call of its own stops."""
        for task in self._requests.values():
            task.cancel()
        for uri in [*self._fetches, *self._pending_prefetch]:
            self.closed(uri)

    # -- requests -----------------------------------------------------------------------------

    async def complete(
        self, uri: str, position: Position, *, kind: str = "inline", invoked: bool = False
    ) -> Suggestion | None:
        """The suggestion at `position`. A newer request of the same kind for the same document
        answers this one with None (the upstream call it was waiting for goes on while it may
        still serve the newer one). `invoked`: the user asked, so no debounce."""
        key = (uri, kind)
        pending = self._pending_prefetch.pop(uri, None)
        if pending is not None:
            pending.cancel()  # a keystroke: the suggestion shown was not simply taken
        older = self._requests.get(key)
        if older is not None and not older.done():
            older.cancel()
        task = asyncio.ensure_future(self._request(uri, position, invoked))
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
        return await self.complete_context(self.context_at(doc, position), invoked=invoked)

    def context_at(self, doc: Document, position: Position) -> CompletionContext:
        return build_context(
            doc,
            position,
            max_prefix_chars=self.settings.max_prefix_chars,
            max_suffix_chars=self.settings.max_suffix_chars,
            path=self.workspace.relative_path(doc.uri),
        )

    def cached(
        self, ctx: CompletionContext, usable: list[str] | None = None
    ) -> CachedSuggestion | None:
        """A typed-through or exact hit; `usable`: the chain's usable providers, when the
        caller has them already (asking checks every sign-in)."""
        hit = self.cache.typed_through(ctx.prefix, ctx.suffix)
        if hit is not None:
            return hit
        for name in self.chain.usable(self.settings.providers) if usable is None else usable:
            if name == LOCAL:
                continue  # the offline engine's answers are not cached
            model = self.chain.providers[name].model_for("completion")
            found = self.cache.get((name, model, ctx.prefix, ctx.suffix))
            if found is not None:
                return found
        return None

    async def complete_context(
        self, ctx: CompletionContext, *, invoked: bool = True
    ) -> Suggestion | None:
        """Cache, then an earlier call that still agrees, then a call of our own."""
        if not self.policy.enabled(ctx.uri, ctx.language):
            return None  # suggestions are off here: nothing is asked, nothing is shown
        through = self.cache.typed_through(ctx.prefix, ctx.suffix)
        usable = self.chain.usable(self.settings.providers)
        hit = through or self.cached(ctx, usable)
        if hit is not None:
            found = Suggestion(hit.text, hit.provider, hit.model)
            # Typing it through is the user taking it: the next one is wanted now.
            self._prefetch_soon(ctx, found, now=through is not None)
            return found
        self.cache.miss()
        candidates = self._sort_fetches(ctx)
        waiting: dict[asyncio.Future[Suggestion | None], tuple[Fetch, str]] = {}
        for fetch, typed in candidates:
            waiting[self._wait(fetch)] = (fetch, typed)
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
                    hit = self.cached(ctx)  # an earlier call may have landed meanwhile
                    if hit is not None:
                        return Suggestion(hit.text, hit.provider, hit.model)
                    own = self._start(ctx)
                    waiting[self._wait(own)] = (own, "")
                for future in [f for f in waiting if f in done]:
                    fetch, typed = waiting.pop(future)
                    answer = future.result()
                    if answer is None:
                        continue
                    served = answer if fetch is own else rest_of(answer, typed)
                    if served is not None:
                        served_by_other = fetch is not own
                        self._prefetch_soon(ctx, served)
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

    def _sort_fetches(self, ctx: CompletionContext) -> list[tuple[Fetch, str]]:
        """Earlier calls that may serve `ctx` (with what was typed since each started); calls
        that can no longer serve this document's cursor are cancelled."""
        keep: list[Fetch] = []
        usable: list[tuple[Fetch, str]] = []
        for fetch in self._fetches.get(ctx.uri, []):
            where, text = fetch.usable_for(ctx)
            if where == "apart":
                fetch.task.cancel()
                continue
            keep.append(fetch)
            if where == "behind" and text is not None:
                usable.append((fetch, text))
        self._fetches[ctx.uri] = keep
        return usable

    def _start(self, ctx: CompletionContext, *, speculative: bool = False) -> Fetch:
        for fetch in self._fetches.get(ctx.uri, []):
            if fetch.context == ctx and not fetch.task.done():
                return fetch  # single flight: the same context shares one call
        fetch = Fetch(ctx, speculative=speculative)
        fetch.task = asyncio.ensure_future(self._fetch(fetch))
        fetches = self._fetches.setdefault(ctx.uri, [])
        fetches.append(fetch)
        if len(fetches) > MAX_FETCHES:
            fetches.pop(0).task.cancel()
        fetch.task.add_done_callback(lambda _: self._forget(fetch))
        self.upstream_calls += 1
        return fetch

    def _forget(self, fetch: Fetch) -> None:
        fetches = self._fetches.get(fetch.context.uri)
        if fetches and fetch in fetches:
            fetches.remove(fetch)
            if not fetches:
                del self._fetches[fetch.context.uri]
        if fetch.linger is not None:
            fetch.linger.cancel()

    def _wait(self, fetch: Fetch) -> asyncio.Future[Suggestion | None]:
        """A future for `fetch`'s answer that can be cancelled without cancelling the call; a
        call left without anyone waiting lingers a moment, then is cancelled."""
        fetch.waiters += 1
        if fetch.linger is not None:
            fetch.linger.cancel()
            fetch.linger = None
        waiter: asyncio.Future[Suggestion | None] = asyncio.get_running_loop().create_future()

        def settle(task: asyncio.Task[Suggestion | None]) -> None:
            if not waiter.done():
                failed = task.cancelled() or task.exception() is not None
                waiter.set_result(None if failed else task.result())

        def left(_: object) -> None:
            fetch.task.remove_done_callback(settle)
            fetch.waiters -= 1
            if fetch.waiters == 0 and not fetch.task.done() and not fetch.speculative:
                loop = asyncio.get_running_loop()
                fetch.linger = loop.call_later(LINGER, fetch.task.cancel)

        fetch.task.add_done_callback(settle)
        waiter.add_done_callback(left)
        return waiter

    async def _fetch(self, fetch: Fetch) -> Suggestion | None:
        try:
            return await self._ask(fetch)
        except Exception:  # a bug costs this suggestion, never the editor's patience
            log.exception("completion failed unexpectedly")
            return None

    def request_for(self, ctx: CompletionContext) -> tuple[CompletionRequest, Shaper]:
        """The request for `ctx` under this session's settings (its origin says whether it may
        leave the machine), and what shapes its answer."""
        multiline = wants_multiline(ctx, self.settings.multiline)
        snippets = self._related(ctx)
        origin = self.policy.origin("completion", ctx.uri, ctx.language, prefix=ctx.prefix,
                                    suffix=ctx.suffix, context=snippets)  # fmt: skip
        request = CompletionRequest(
            ctx,
            max_tokens=self.settings.max_tokens,
            multiline=multiline,
            stop=stop_sequences(ctx, multiline=multiline),
            snippets=snippets,
            editor=self.editor,
            origin=origin,
        )
        return request, Shaper(ctx, multiline)

    async def _ask(self, fetch: Fetch) -> Suggestion | None:
        ctx = fetch.context
        settings = self.settings
        request, shaper = self.request_for(ctx)
        private = request.origin.private
        if private and not self.policy.local_allowed:
            return None  # it stays on this machine, and the offline engine may not answer

        def progress(provider: str, partial: str) -> None:
            fetch.partials[provider] = partial

        result = await self.chain.complete(
            request,
            () if private else settings.providers,  # private: the offline engine only
            shaper,
            local=self.local,
            timeout=settings.timeout_ms / 1000,
            hedge=settings.hedge_ms / 1000,
            progress=progress,
        )
        suggestion = result.suggestion
        if suggestion is not None and suggestion.provider != LOCAL:
            self.cache.put(
                (suggestion.provider, suggestion.model, ctx.prefix, ctx.suffix),
                CachedSuggestion(suggestion.text, suggestion.provider, suggestion.model),
            )
        if suggestion is None:
            log.info(
                "no suggestion: %s",
                "; ".join(f"{a.provider}: {a.outcome}" for a in result.attempts),
            )
        return suggestion

    def _related(self, ctx: CompletionContext) -> tuple[ContextSnippet, ...]:
        """Snippets of the other open documents, when a provider that shows them may answer;
        never from a document that must stay on this machine."""
        if not SNIPPET_TAKERS.intersection(self.chain.usable(self.settings.providers)):
            return ()
        shown = [doc for doc in self.workspace.documents if not self.policy.excluded(doc.uri)]
        found = self._snippets.related(ctx, shown, self.workspace.relative_path)
        return tuple(ContextSnippet(s.filename, s.text) for s in found)

    def _prefetch_soon(
        self, ctx: CompletionContext, shown: Suggestion, *, now: bool = False
    ) -> None:
        """Prefetch after `shown` once the user has looked at it for a moment: a keystroke
        before then (typing on, not taking the suggestion) cancels it, so fast typing past
        suggestions costs no extra upstream calls."""
        pending = self._pending_prefetch.pop(ctx.uri, None)
        if pending is not None:
            pending.cancel()
        if now:
            self._prefetch(ctx, shown)
            return
        gap = self.rhythm.typical_gap(ctx.uri) or 0.0
        delay = min(PREFETCH_WAIT_MAX, max(PREFETCH_WAIT, 1.5 * gap))
        loop = asyncio.get_running_loop()
        self._pending_prefetch[ctx.uri] = loop.call_later(delay, self._prefetch, ctx, shown)

    def _prefetch(self, ctx: CompletionContext, shown: Suggestion) -> None:
        """Fetch the suggestion for the cursor after `shown`, typed or accepted."""
        if not self.settings.prefetch or shown.provider == LOCAL or not shown.text:
            return
        if not self.policy.enabled(ctx.uri, ctx.language):
            return  # switched off since it was shown: nothing more goes upstream
        after = CompletionContext(
            cut_prefix(ctx.prefix + shown.text, self.settings.max_prefix_chars),
            ctx.suffix,
            ctx.language,
            ctx.path,
            uri=ctx.uri,
            line=ctx.line + shown.text.count("\n") if ctx.line >= 0 else -1,
        )
        key = (after.uri, after.prefix, after.suffix)
        now = self._clock()
        if (
            self.cache.knows(after.prefix, after.suffix)
            or now - self._prefetched.get(key, -PREFETCH_TTL) < PREFETCH_TTL
        ):
            return  # answered already, or asked recently (perhaps with nothing to suggest)
        if len(self._prefetched) >= 64:
            self._prefetched.pop(next(iter(self._prefetched)))
        self._prefetched[key] = now
        with contextlib.suppress(RuntimeError):  # no running loop: nothing to prefetch into
            self._start(after, speculative=True)

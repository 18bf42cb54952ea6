"""How much prompt a provider's model takes: a budget in characters that shrinks when the server
says the prompt exceeds its context, and grows back slowly while prompts fit.

The context is cut to `max_prefix_chars`/`max_suffix_chars` once, for every provider, and
snippets of other files are added within `max_context_chars`; a small local model
(llama-server started with `--ctx-size 2048`, an Ollama model with a short context) may still
refuse the prompt on every keystroke. Each provider keeps one `PromptBudget` per model:

- a context-exceeded answer halves the budget (from the size that failed) and the request is
  tried again at once with the shorter prompt. Snippets go first: the code around the cursor
  matters more than code from elsewhere, so they are dropped (worst first) before the prefix
  and suffix are cut;
- the working size is remembered while the server runs, and after `GROW_EVERY` answers that fit
  it grows by a quarter, never back to a size known to fail, until `FORGET_AFTER` answers have
  fit (the server may have been restarted with a larger context by then).

Pure: no I/O and no clock; the provider decides what a "context exceeded" answer is.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import aclosing
from dataclasses import dataclass, field, replace
from typing import TypeVar

from reaper_lsp.core.types import CompletionContext, ContextSnippet

MIN_CHARS = 256
"""Below this a prompt says too little to be worth sending: the budget stops shrinking."""
GROW_EVERY = 20
"""Answers that fit before the budget grows by a quarter."""
FORGET_AFTER = 200
"""Answers that fit before the size that failed is forgotten and growth may reach it again."""
T = TypeVar("T")
SUFFIX_SHARE = 4
"""The suffix gets at most 1/SUFFIX_SHARE of a tight budget: the prefix matters more."""


def prompt_size(ctx: CompletionContext) -> int:
    return len(ctx.prefix) + len(ctx.suffix)


def snippet_size(snippet: ContextSnippet) -> int:
    """What a snippet adds to a prompt: its text and the line naming its file."""
    return len(snippet.filename) + len(snippet.text) + 1


@dataclass(frozen=True, slots=True)
class Prompt:
    """What a provider's prompt is built from: the code around the cursor and snippets of
    code from elsewhere (best first)."""

    context: CompletionContext
    snippets: tuple[ContextSnippet, ...] = ()

    @property
    def size(self) -> int:
        return prompt_size(self.context) + sum(map(snippet_size, self.snippets))


def trim(ctx: CompletionContext, limit: int) -> CompletionContext:
    """`ctx` cut to `limit` characters of prefix and suffix together: the end of the prefix and
    the start of the suffix are kept, cut at line boundaries where a line boundary is near."""
    if prompt_size(ctx) <= limit:
        return ctx
    suffix_keep = min(len(ctx.suffix), limit // SUFFIX_SHARE)
    prefix_keep = max(0, limit - suffix_keep)
    prefix = ctx.prefix[len(ctx.prefix) - prefix_keep :] if prefix_keep else ""
    if len(prefix) < len(ctx.prefix):
        # Start on a whole line (the cursor's line stays whole when it fits at all).
        newline = prefix.find("\n")
        if 0 <= newline < len(prefix) - len(ctx.line_prefix):
            prefix = prefix[newline + 1 :]
    suffix = ctx.suffix[:suffix_keep]
    if len(suffix) < len(ctx.suffix):
        newline = suffix.rfind("\n")
        if newline >= len(ctx.line_suffix):
            suffix = suffix[: newline + 1]
    return replace(ctx, prefix=prefix, suffix=suffix)


@dataclass(slots=True)
class PromptBudget:
    """The prompt size one provider+model is known to take."""

    limit: int | None = None
    """Characters of prompt (prefix, suffix and snippets) to send at most; None until the
    server refused one."""
    too_long: int | None = None
    """The smallest size the server refused (growth stays below it)."""
    fits: int = 0
    """Answers that fit since the budget last changed."""
    fits_since_failure: int = 0

    def fit(self, prompt: Prompt) -> Prompt:
        """`prompt` within the budget: the best snippets that fit beside the whole context,
        or the context alone cut to the budget."""
        if self.limit is None or prompt.size <= self.limit:
            return prompt
        room = self.limit - prompt_size(prompt.context)
        if room <= 0:
            return Prompt(trim(prompt.context, self.limit))
        kept = []
        for snippet in prompt.snippets:
            if snippet_size(snippet) <= room:
                kept.append(snippet)
                room -= snippet_size(snippet)
        return Prompt(prompt.context, tuple(kept))

    def exceeded(self, size: int) -> bool:
        """The server refused a prompt of `size` characters: halve the budget. False when it
        cannot shrink any further (the prompt was already at the minimum)."""
        self.too_long = size if self.too_long is None else min(self.too_long, size)
        self.fits = self.fits_since_failure = 0
        if size <= MIN_CHARS:
            return False
        self.limit = max(MIN_CHARS, size // 2)
        return True

    def succeeded(self) -> None:
        """A request at the current budget fit the model's context."""
        if self.limit is None:
            return
        self.fits += 1
        self.fits_since_failure += 1
        if self.too_long is not None and self.fits_since_failure >= FORGET_AFTER:
            self.too_long = None
        if self.fits < GROW_EVERY:
            return
        self.fits = 0
        grown = self.limit + self.limit // 4
        if self.too_long is not None:
            grown = min(grown, self.too_long - 1)
        self.limit = max(self.limit, grown)


@dataclass(slots=True)
class PromptBudgets:
    """One provider's budgets, by model, and whom to tell when one first shrinks."""

    provider: str
    by_model: dict[str, PromptBudget] = field(default_factory=dict)
    notify: Callable[[str, str], None] | None = None
    """`notify(cause, text)`: tell the user once per cause (the app wires its status events)."""

    def of(self, model: str) -> PromptBudget:
        return self.by_model.setdefault(model, PromptBudget())

    async def stream(
        self,
        model: str,
        prompt: Prompt,
        send: Callable[[Prompt], AsyncGenerator[T, None]],
        too_long: type[BaseException],
    ) -> AsyncIterator[T]:
        """Stream `send(prompt fitted to the budget)`; when it fails with `too_long` before any
        text, halve the budget and send once more at once. A second refusal is raised."""
        budget = self.of(model)
        fitted = budget.fit(prompt)
        started = False
        try:
            # aclosing: a caller that stops reading early closes the upstream stream at once.
            async with aclosing(send(fitted)) as pieces:
                async for piece in pieces:
                    started = True
                    yield piece
            budget.succeeded()
            return
        except too_long:
            if started or not budget.exceeded(fitted.size):
                raise
        self._tell(model, budget)
        async with aclosing(send(budget.fit(prompt))) as pieces:
            async for piece in pieces:
                yield piece
        budget.succeeded()

    def _tell(self, model: str, budget: PromptBudget) -> None:
        if self.notify is None:
            return
        shown = f" {model!r}" if model else ""
        self.notify(
            f"{self.provider}:context",
            f"{self.provider}: the prompt was too long for the model{shown}'s context; "
            f"sending at most {budget.limit} characters of code from now on (raise the "
            "server's context size to send more)",
        )

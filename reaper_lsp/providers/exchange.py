"""One upstream request's bookkeeping, for the HTTP base (`http.py`) where every request leaves:
refused before it is sent when its origin must stay on this machine or its provider's daily
token budget is spent; scrubbed of credential-shaped strings; what the answer said it cost
(noted by each provider's decoder on the open stream); and the `Exchange` the ledger records
once it ended — sizes, counts and outcome, never content."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping
from typing import cast

from reaper_lsp.core.scrub import scrub_json
from reaper_lsp.net.client import StreamContext
from reaper_lsp.providers.base import Exchange, Ledger, Origin
from reaper_lsp.providers.errors import ProviderError, QuotaExhausted, Withheld

CHARS_PER_TOKEN = 4
"""For budgets, a request whose provider reported no usage costs its characters over this."""
QUOTA_REST = 3600.0
"""Seconds a provider whose quota or credit is used up is skipped before it is asked again."""
INPUT, OUTPUT, CHARS = "input", "output", "chars"
"""Keys of `StreamContext.usage`."""


def admit(provider: str, origin: Origin, ledger: Ledger) -> None:
    """Raise `Withheld` when a request of `origin` may not be sent to `provider` now."""
    if origin.private:
        # The services never build such a request for a remote provider: this is the last
        # line of defence, should one ever slip through.
        raise Withheld(f"not sent: {origin.private}", provider=provider)
    hold = ledger.held(provider)
    if hold is not None:
        message = f"{provider}: {hold.reason}"
        raise Withheld(hold.reason, rest_for=hold.seconds, user_message=message, provider=provider)


def paused_on_quota(error: ProviderError) -> ProviderError:
    """A quota or credit error rests its provider a while, with one message to the user
    (unless the provider said more precisely what it means already)."""
    if isinstance(error, QuotaExhausted) and not error.rest_for:
        error.rest_for = QUOTA_REST
        error.user_message = error.user_message or (
            f"{error.provider}: quota or credit used up ({error.message}); the next provider "
            "in the chain answers for the next hour"
        )
    return error


def note_text(stream: StreamContext, text: str) -> None:
    """Count characters of answer text (the cost estimate when no usage is reported)."""
    stream.usage[CHARS] = stream.usage.get(CHARS, 0) + len(text)


def note_tokens(stream: StreamContext, *, prompt: object = None, output: object = None) -> None:
    """Tokens the provider reported so far (a later report replaces an earlier one: the
    figures providers stream are running totals)."""
    for key, value in ((INPUT, prompt), (OUTPUT, output)):
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            stream.usage[key] = value


def note_openai_usage(stream: StreamContext, payload: Mapping[str, object]) -> None:
    """OpenAI's `usage` (the last chunk of a stream that asked for it with `include_usage`)."""
    usage = payload.get("usage")
    if isinstance(usage, dict):
        note_tokens(
            stream, prompt=usage.get("prompt_tokens"), output=usage.get("completion_tokens")
        )


class Sending:
    """A request on its way: its body scrubbed, its size and start known; `finish` makes the
    record once it ended."""

    def __init__(self, provider: str, model: str, origin: Origin, body: dict[str, object]) -> None:
        scrubbed, self.scrubbed = scrub_json(body)
        self.body = cast(dict[str, object], scrubbed)
        self.provider = provider
        self.model = model
        self.origin = origin
        self.sent_bytes = len(json.dumps(self.body, ensure_ascii=False).encode())
        self.started = time.time()
        self._clock = time.perf_counter()

    def finish(self, usage: Mapping[str, int] | None, failure: BaseException | None) -> Exchange:
        """The record; `usage`: what the decoder noted, None when no answer came (a refused
        connection, an error status: nothing was spent, so nothing counts for budgets)."""
        tokens_in = tokens_out = None
        estimate = 0
        if usage is not None:
            tokens_in, tokens_out = usage.get(INPUT), usage.get(OUTPUT)
            prompt = self.sent_bytes // CHARS_PER_TOKEN if tokens_in is None else tokens_in
            answer = (
                -(-usage.get(CHARS, 0) // CHARS_PER_TOKEN) if tokens_out is None else tokens_out
            )
            estimate = prompt + answer
        return Exchange(
            provider=self.provider,
            model=self.model,
            origin=self.origin,
            started=self.started,
            sent_bytes=self.sent_bytes,
            scrubbed=self.scrubbed,
            tokens_in=tokens_in,
            tokens_out=tokens_out,
            estimated_tokens=estimate,
            latency_ms=round((time.perf_counter() - self._clock) * 1000, 1),
            outcome=outcome_of(failure),
        )


def outcome_of(failure: BaseException | None) -> str:
    """How a request ended, in words that carry no content (an error's message may quote the
    prompt back: only its kind and status are kept)."""
    if failure is None:
        return "ok"
    if isinstance(failure, GeneratorExit):
        return "stopped"  # the reader had what it needed and closed the stream
    if isinstance(failure, asyncio.CancelledError):
        return "cancelled"
    status = getattr(failure, "status", None)
    return f"error: {type(failure).__name__}" + (f" (HTTP {status})" if status else "")

"""The Provider protocol, the request types it takes (with their `Origin`), and what a provider
is built from — including the `Ledger` that hears of every upstream request."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Protocol, runtime_checkable

from reaper_lsp.core.types import CompletionContext, ContextSnippet

if TYPE_CHECKING:
    from reaper_lsp.auth.github import GitHubAuth
    from reaper_lsp.auth.google import GoogleAuth
    from reaper_lsp.net.client import Clients
    from reaper_lsp.net.metrics import Metrics
    from reaper_lsp.settings import Settings

LOCAL = "local"
"""The offline engine's name: always usable, always last, never rested."""
Role = Literal["system", "user", "assistant"]
Kind = Literal["completion", "chat"]
Purpose = Literal["completion", "chat", "next-edit", "action"]


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a request comes from, set by the service that makes it: what the privacy rules and
    the audit need to know about it, never its content."""

    purpose: Purpose = "completion"
    client: str = ""
    """The editor that asked (`name/version`)."""
    path: str = ""
    """The document, relative to its workspace root ("" when none)."""
    language: str = ""
    prefix_bytes: int = 0
    """UTF-8 bytes of the text before the cursor (for a chat: of the question and history)."""
    suffix_bytes: int = 0
    context_bytes: int = 0
    """Bytes of other code that went with it (snippets of other files, an attached file)."""
    context_files: tuple[str, ...] = ()
    """The other files that code came from."""
    private: str = ""
    """Why this request must not leave the machine ("" when it may): no remote provider sends
    it, whoever built it."""


@dataclass(frozen=True, slots=True)
class ChatMessage:
    role: Role
    content: str


@dataclass(frozen=True, slots=True)
class CompletionRequest:
    """One completion to produce at the cursor described by `context` (which knows its document
    and line). `stop` comes from `core.prompts.stop_sequences` and is sent to every provider that
    accepts stop sequences; `snippets` are code from other files (and distant parts of this
    one) the prompt shows, best first, each provider in its own way; `editor` is the asking
    editor's `name/version` (Copilot sends it as a header); `n`: how many alternatives the
    user asked for (providers that can give several implement `SeveralChoices`)."""

    context: CompletionContext
    max_tokens: int = 128
    multiline: bool = True
    stop: tuple[str, ...] = ()
    snippets: tuple[ContextSnippet, ...] = ()
    editor: str = ""
    origin: Origin = Origin()
    n: int = 1


@dataclass(frozen=True, slots=True)
class ChatRequest:
    messages: tuple[ChatMessage, ...]
    max_tokens: int = 2048
    editor: str = ""
    origin: Origin = Origin(purpose="chat")


@dataclass(frozen=True, slots=True)
class Exchange:
    """One upstream request once it ended, as the HTTP base reports it to the `Ledger`."""

    provider: str
    model: str
    origin: Origin
    started: float
    """Wall-clock time (seconds since the epoch) it was sent."""
    sent_bytes: int
    scrubbed: int
    """Credential-shaped strings replaced before it left."""
    tokens_in: int | None
    tokens_out: int | None
    """Tokens as the provider reported them; None when it did not."""
    estimated_tokens: int
    """What it cost, for budgets: the reported tokens, else an estimate from characters."""
    latency_ms: float
    outcome: str
    """"ok", "stopped" (read as far as needed), "cancelled", or "error: <kind> (HTTP n)"."""


@dataclass(frozen=True, slots=True)
class Hold:
    """Why a provider may not be asked now, and for how many more seconds."""

    reason: str
    seconds: float


class Ledger(Protocol):
    """What the App keeps of upstream requests: the audit log and the daily token budgets."""

    def held(self, provider: str) -> Hold | None:
        """Why `provider` may not be asked now (its daily token budget is spent), or None."""
        ...

    def record(self, exchange: Exchange) -> None:
        """Keep `exchange` (called once per upstream request, when it has ended)."""
        ...


class Unrecorded:
    """The ledger of providers built without an App (tests, tools): no limit, no record."""

    def held(self, provider: str) -> Hold | None:
        return None

    def record(self, exchange: Exchange) -> None:
        return None


@runtime_checkable
class Provider(Protocol):
    """A completion/chat back end. One instance per configured provider, long-lived, shared by
    every editor session (what differs per session travels in the request).

    Streams may raise anything: the chain treats every exception as a failed attempt. Providers
    raise `providers.errors.ProviderError` subclasses when they know what went wrong.
    """

    name: str

    def unusable_reason(self) -> str | None:
        """Why this provider cannot be used right now (no key, not signed in), or None."""
        ...

    def stream_completion(self, request: CompletionRequest) -> AsyncIterator[str]:
        """Yield the raw inserted text in pieces as they arrive."""
        ...

    def stream_chat(self, request: ChatRequest) -> AsyncIterator[str]:
        """Yield the answer text in pieces as they arrive."""
        ...

    def model_for(self, kind: Kind) -> str:
        """The model this provider uses for the kind of request (for cache keys and status)."""
        ...

    async def prewarm(self) -> None:
        """Open what the first request would wait for (a connection, a loaded model, a token),
        ahead of it. Failures are only logged."""
        ...

    async def keep_warm(self) -> None:
        """Called every few seconds while the editor is idle: keep that readiness."""
        ...

    async def aclose(self) -> None: ...


@runtime_checkable
class SeveralChoices(Protocol):
    """A provider that can answer one completion request with several alternatives."""

    def stream_alternatives(self, request: CompletionRequest) -> AsyncIterator[tuple[int, str]]:
        """Yield (alternative index, text piece) for up to `request.n` alternatives, index 0
        the provider's best, pieces of different alternatives interleaved as they arrive."""
        ...


@dataclass(frozen=True, slots=True)
class Parts:
    """What the registry builds providers from: the shared pieces of the App."""

    settings: Settings
    env: Mapping[str, str]
    clients: Clients
    metrics: Metrics
    github: Callable[[], GitHubAuth]
    google: Callable[[], GoogleAuth]
    tell: Callable[[str, str], None]
    """`tell(cause, text)`: tell the user once per cause."""
    ledger: Ledger = field(default_factory=Unrecorded)

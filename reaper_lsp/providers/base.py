"""The Provider protocol, the request types it takes, and what a provider is built from."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol, runtime_checkable

from reaper_lsp.core.types import CompletionContext, ContextSnippet

if TYPE_CHECKING:
    from reaper_lsp.auth.github import GitHubAuth
    from reaper_lsp.auth.google import GoogleAuth
    from reaper_lsp.net.client import Clients
    from reaper_lsp.net.metrics import Metrics
    from reaper_lsp.settings import Settings

Role = Literal["system", "user", "assistant"]
Kind = Literal["completion", "chat"]


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
    n: int = 1


@dataclass(frozen=True, slots=True)
class ChatRequest:
    messages: tuple[ChatMessage, ...]
    max_tokens: int = 2048
    editor: str = ""


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

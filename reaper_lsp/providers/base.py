"""The Provider protocol and the request types it takes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

from reaper_lsp.core.types import CompletionContext

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
    accepts stop sequences."""

    context: CompletionContext
    max_tokens: int = 128
    multiline: bool = True
    stop: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ChatRequest:
    messages: tuple[ChatMessage, ...]
    max_tokens: int = 2048


@runtime_checkable
class Provider(Protocol):
    """A completion/chat back end. One instance per configured provider, long-lived.

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

    async def aclose(self) -> None: ...

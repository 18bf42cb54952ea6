"""The Provider protocol, the request types it takes and the errors the chain decides on."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

from reaper_lsp.core.types import CompletionContext

Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True, slots=True)
class ChatMessage:
    role: Role
    content: str


@dataclass(frozen=True, slots=True)
class CompletionRequest:
    """One completion to produce at the cursor described by `context`."""

    context: CompletionContext
    max_tokens: int = 128
    multiline: bool = True
    stop: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ChatRequest:
    messages: tuple[ChatMessage, ...]
    max_tokens: int = 2048


@dataclass(slots=True)
class StreamStats:
    """Filled in by a provider while it streams; read by metrics and status."""

    model: str = ""
    finish_reason: str = ""
    input_tokens: int = 0
    output_tokens: int = 0
    extra: dict[str, str] = field(default_factory=dict)


class ProviderError(Exception):
    """Base of every error a provider raises. The message never contains a secret."""

    retryable: bool = False

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
        provider: str = "",
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.retry_after = retry_after
        """Seconds the server asked us to wait, when it said so."""
        self.provider = provider

    def __str__(self) -> str:
        prefix = f"{self.provider}: " if self.provider else ""
        status = f" (HTTP {self.status})" if self.status is not None else ""
        return f"{prefix}{self.message}{status}"


class NotConfigured(ProviderError):
    """The provider lacks what it needs (a key, a sign-in, a project): skipped at once."""


class ProviderUnavailable(ProviderError):
    """Connection refused, reset, timed out, or a 5xx/529/overloaded answer: try again or fall
    through."""

    retryable = True


class Unreachable(ProviderUnavailable):
    """Nothing answers at the provider's address (connection refused, DNS or TLS failure):
    retrying at once will not help, so the chain falls through and rests the provider a
    little while instead (a local Ollama that is not running costs nothing per keystroke)."""

    retryable = False


class RateLimited(ProviderUnavailable):
    """429 for throughput: wait `retry_after` (if any) or fall through."""


class AuthError(ProviderError):
    """401/403: the credential is wrong, expired or lacks access."""


class QuotaExhausted(ProviderError):
    """Quota, billing or spend cap reached: never retried."""


class BadRequest(ProviderError):
    """400/404/413/422 and friends: our request cannot succeed as sent."""


class ProtocolError(ProviderError):
    """The response did not follow the provider's wire format (garbage, wrong content type)."""

    retryable = True


@runtime_checkable
class Provider(Protocol):
    """A completion/chat back end. One instance per configured provider, long-lived."""

    name: str

    def unusable_reason(self) -> str | None:
        """Why this provider cannot be used right now (no key, not signed in), or None."""
        ...

    def stream_completion(
        self, request: CompletionRequest, stats: StreamStats
    ) -> AsyncIterator[str]:
        """Yield the raw inserted text in pieces as they arrive. Raise ProviderError."""
        ...

    def stream_chat(self, request: ChatRequest, stats: StreamStats) -> AsyncIterator[str]:
        """Yield the answer text in pieces as they arrive. Raise ProviderError."""
        ...

    def model_for(self, kind: Literal["completion", "chat"]) -> str:
        """The model this provider uses for the kind of request (for cache keys and status)."""
        ...

    async def aclose(self) -> None: ...


def join_stops(*groups: Sequence[str]) -> tuple[str, ...]:
    """Merge stop sequences keeping order and dropping duplicates and empties."""
    seen: dict[str, None] = {}
    for group in groups:
        for stop in group:
            if stop:
                seen.setdefault(stop, None)
    return tuple(seen)

"""The provider error tree, and how network failures and providers' error answers (HTTP status
+ headers + body, or an error event in the middle of a stream) map onto it, with a message that
is useful to the user and never carries a secret.

The chain decides on these classes alone: `retryable` (try the same provider again now),
`retry_after` (the server's wait), `rest_for` (skip the provider that long), and `user_message`
(what the user should be told once, when they must act).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping

from reaper_lsp import logs
from reaper_lsp.net.errors import (
    BadTLSSettings,
    ConnectFailed,
    HTTPStatusError,
    MalformedStream,
    NetError,
    StreamTooLarge,
    TimedOut,
)
from reaper_lsp.net.retry import parse_retry_after


class ProviderError(Exception):
    """Base of every error a provider raises. The message never contains a secret."""

    retryable: bool = False

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
        rest_for: float | None = None,
        user_message: str = "",
        provider: str = "",
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.retry_after = retry_after
        """Seconds the server asked us to wait, when it said so."""
        self.rest_for = rest_for
        """Seconds the chain should skip this provider (quota, outdated client, ...)."""
        self.user_message = user_message
        """Set when the user must act (sign in, fix a key, wait for a quota): told once."""
        self.provider = provider

    @property
    def detail(self) -> str:
        """The message without the provider's name: for where the name is said already (a
        provider's row, "ollama: resting: …"), so it is never said twice."""
        status = f" (HTTP {self.status})" if self.status is not None else ""
        return f"{self.message}{status}"

    def __str__(self) -> str:
        return f"{self.provider}: {self.detail}" if self.provider else self.detail


def detail(error: BaseException) -> str:
    """What went wrong, without the provider's name (see `ProviderError.detail`)."""
    if isinstance(error, ProviderError):
        return error.detail
    return str(error) or type(error).__name__


class NotConfigured(ProviderError):
    """The provider lacks what it needs (a key, a sign-in, a project): skipped at once."""


class ProviderUnavailable(ProviderError):
    """Connection reset, timed out, or a 5xx/529/overloaded answer: try again or fall through."""

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


class Withheld(ProviderError):
    """The request was not sent: what it carries must not leave the machine ([privacy]), or the
    provider's daily token budget is spent. Nothing reached the network."""


class BadRequest(ProviderError):
    """400/404/413/422 and friends: our request cannot succeed as sent."""


class ContextTooLong(BadRequest):
    """The prompt does not fit the model's context window: a shorter prompt may."""


class ProtocolError(ProviderError):
    """The response did not follow the provider's wire format (garbage, wrong content type,
    an event over the size limit)."""

    retryable = True


MAX_MESSAGE = 300

_QUOTA_MARKERS = (
    "insufficient_quota",
    "billing_error",
    "enforced_spend_limit_reached",
    "quota_exceeded",
    "free_quota_exceeded",
    "overage_limit_reached",
    "billing_not_configured",
    "credit balance",  # Anthropic: "Your credit balance is too low to access the Anthropic API"
)


def redact(text: str) -> str:
    """`text` with every registered secret and anything shaped like a key or token replaced by
    `***` (the process-wide redactor: one list of secrets and patterns)."""
    return logs.redact(text)


def _clip(text: str) -> str:
    text = " ".join(redact(text).split())
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 1] + "…"


def describe_payload(payload: object) -> tuple[str, str]:
    """(kind, message) from any provider's error JSON: OpenAI `{"error":{type,code,message}}`,
    Anthropic `{"type":"error","error":{type,message}}`, Ollama `{"error":"…"}`, Copilot
    top-level `{message, code}`. Kind joins type, code and details so callers can search it."""
    if not isinstance(payload, dict):
        return "", ""
    error = payload.get("error")
    if isinstance(error, str):
        return "", error
    source = error if isinstance(error, dict) else payload
    kinds: list[str] = []
    for key in ("type", "code"):
        value = source.get(key)
        if isinstance(value, str | int) and str(value) != "error":
            kinds.append(str(value))
    details = source.get("details")
    if isinstance(details, dict) and isinstance(details.get("error_code"), str):
        kinds.append(details["error_code"])
    message = source.get("message")
    return " ".join(kinds), message if isinstance(message, str) else ""


def _parse_body(body: bytes) -> object:
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None


def error_from_response(
    provider: str, status: int, headers: Mapping[str, str], body: bytes, now: float
) -> ProviderError:
    """The error for an HTTP answer with status ≥ 400."""
    kind, message = describe_payload(_parse_body(body))
    if not message:
        text = body.decode("utf-8", errors="replace").strip()
        message = text if text and not text.startswith("<") else f"HTTP {status}"
    message = _clip(message)
    retry_after = parse_retry_after(headers, now)
    lowered = kind.lower() + " " + message.lower()
    error = _classify(provider, status, lowered, message, retry_after)
    should_retry = {k.lower(): v for k, v in headers.items()}.get("x-should-retry")
    if should_retry in ("true", "false") and not isinstance(error, QuotaExhausted | AuthError):
        error.retryable = should_retry == "true"
    return error


def _classify(
    provider: str, status: int, lowered: str, message: str, retry_after: float | None
) -> ProviderError:
    cls: type[ProviderError]
    if status in (401, 403):
        cls = AuthError
    elif _context_exceeded(lowered):
        cls = ContextTooLong
    elif status == 402 or any(marker in lowered for marker in _QUOTA_MARKERS):
        cls = QuotaExhausted
    elif status == 413 or "request too large" in lowered or "request_too_large" in lowered:
        cls = BadRequest
    elif status == 429:
        cls = RateLimited
    elif status in (408, 409) or status >= 500 or "overloaded" in lowered:
        cls = ProviderUnavailable
    else:
        cls = BadRequest
    return cls(message, status=status, retry_after=retry_after, provider=provider)


_CONTEXT_MARKERS = (
    "context_length_exceeded",
    "exceed_context_size",
    "exceeds the available context size",
    "maximum context length",
    "context window",
    "prompt is too long",
    "input length",
)


def _context_exceeded(lowered: str) -> bool:
    return any(marker in lowered for marker in _CONTEXT_MARKERS)


def from_net_error(provider: str, exc: NetError) -> ProviderError:
    """The provider error for a network failure: the one boundary between `net` and providers."""
    if isinstance(exc, HTTPStatusError):
        return error_from_response(provider, exc.status, exc.headers, exc.body, time.time())
    if isinstance(exc, BadTLSSettings):
        return NotConfigured(str(exc), user_message=str(exc), provider=provider)
    if isinstance(exc, ConnectFailed):
        return Unreachable(str(exc), provider=provider)
    if isinstance(exc, TimedOut):
        return ProviderUnavailable(str(exc), provider=provider)
    if isinstance(exc, StreamTooLarge | MalformedStream):
        return ProtocolError(str(exc), provider=provider)
    return ProviderUnavailable(str(exc), provider=provider)


def error_from_stream_payload(provider: str, payload: object) -> ProviderError:
    """The error for an error event that arrived after a 200 (the stream had started)."""
    kind, message = describe_payload(payload)
    if not kind and not message:
        return ProtocolError("malformed error event in stream", provider=provider)
    message = _clip(message or kind)
    lowered = kind.lower() + " " + message.lower()
    if any(marker in lowered for marker in _QUOTA_MARKERS):
        return QuotaExhausted(message, provider=provider)
    if "authentication" in lowered or "permission" in lowered or "invalid_api_key" in lowered:
        return AuthError(message, provider=provider)
    if "rate_limit" in lowered:
        return RateLimited(message, provider=provider)
    if _context_exceeded(lowered):
        return ContextTooLong(message, provider=provider)
    if "invalid_request" in lowered or "not_found" in lowered or "does not support" in lowered:
        return BadRequest(message, provider=provider)
    return ProviderUnavailable(message, provider=provider)

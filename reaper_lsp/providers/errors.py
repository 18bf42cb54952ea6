"""Turn a provider's error answer (HTTP status + headers + body, or an error event in the
middle of a stream) into the error class the chain decides on, with a message that is useful
to the user and never carries a secret."""

from __future__ import annotations

import json
from collections.abc import Mapping

from reaper_lsp import logs
from reaper_lsp.net.retry import parse_retry_after
from reaper_lsp.providers.base import (
    AuthError,
    BadRequest,
    ProtocolError,
    ProviderError,
    ProviderUnavailable,
    QuotaExhausted,
    RateLimited,
)

MAX_MESSAGE = 300

_QUOTA_MARKERS = (
    "insufficient_quota",
    "billing_error",
    "enforced_spend_limit_reached",
    "quota_exceeded",
    "free_quota_exceeded",
    "overage_limit_reached",
    "billing_not_configured",
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
    if "invalid_request" in lowered or "not_found" in lowered or "does not support" in lowered:
        return BadRequest(message, provider=provider)
    return ProviderUnavailable(message, provider=provider)

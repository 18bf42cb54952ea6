"""Provider error answers → the error classes the chain decides on, without secrets."""

from __future__ import annotations

import json

from reaper_lsp.providers.errors import (
    AuthError,
    BadRequest,
    ProtocolError,
    ProviderUnavailable,
    QuotaExhausted,
    RateLimited,
    error_from_response,
    error_from_stream_payload,
    redact,
)


def response(status: int, payload: object, **headers: str):  # type: ignore[no-untyped-def]
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return error_from_response("openai", status, headers, body, 1_700_000_000.0)


def openai_error(message: str, type_: str, code: str | None = None) -> dict[str, object]:
    return {"error": {"message": message, "type": type_, "param": None, "code": code}}


def test_openai_rate_limit_carries_retry_after() -> None:
    err = response(
        429,
        openai_error("Rate limit reached", "tokens", "rate_limit_exceeded"),
        **{"retry-after-ms": "644"},
    )
    assert isinstance(err, RateLimited) and err.retryable
    assert err.retry_after == 0.644
    assert err.status == 429


def test_quota_and_too_large_429s_are_not_retryable() -> None:
    quota = response(
        429, openai_error("You exceeded your quota", "insufficient_quota", "insufficient_quota")
    )
    assert isinstance(quota, QuotaExhausted) and not quota.retryable
    large = response(
        429, openai_error("Request too large for gpt-4o", "tokens", "rate_limit_exceeded")
    )
    assert isinstance(large, BadRequest) and not large.retryable
    spend = response(
        429,
        {
            "type": "error",
            "error": {
                "type": "rate_limit_error",
                "message": "cap",
                "details": {"error_code": "enforced_spend_limit_reached"},
            },
        },
    )
    assert isinstance(spend, QuotaExhausted)


def test_anthropic_overloaded_and_server_errors_are_retryable() -> None:
    err = response(
        529, {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    )
    assert isinstance(err, ProviderUnavailable) and err.retryable
    assert "Overloaded" in str(err)
    assert isinstance(response(503, b"<html>bad gateway</html>"), ProviderUnavailable)


def test_auth_errors_hide_the_key_the_server_echoed() -> None:
    err = response(
        401,
        openai_error(
            "Incorrect API key provided: sk-wrong123456. Find yours.",
            "invalid_request_error",
            "invalid_api_key",
        ),
    )
    assert isinstance(err, AuthError) and not err.retryable
    assert "sk-wrong" not in str(err)


def test_x_should_retry_overrides_the_status() -> None:
    err = response(500, openai_error("boom", "server_error"), **{"x-should-retry": "false"})
    assert not err.retryable
    err = response(
        400, openai_error("try again", "invalid_request_error"), **{"x-should-retry": "true"}
    )
    assert err.retryable


def test_ollama_and_copilot_shapes() -> None:
    err = response(400, {"error": "qwen does not support insert"})
    assert isinstance(err, BadRequest) and "does not support insert" in str(err)
    err = response(402, {"message": "You have no quota", "code": "quota_exceeded"})
    assert isinstance(err, QuotaExhausted)


def test_mid_stream_errors() -> None:
    over = error_from_stream_payload(
        "claude", {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    )
    assert isinstance(over, ProviderUnavailable) and over.retryable
    assert isinstance(
        error_from_stream_payload("openai", {"error": {"message": "x", "type": "server_error"}}),
        ProviderUnavailable,
    )
    assert isinstance(
        error_from_stream_payload("ollama", {"error": "model does not support insert"}), BadRequest
    )
    assert isinstance(error_from_stream_payload("x", {"error": {}}), ProtocolError)


def test_redact_covers_every_token_shape() -> None:
    text = (
        "sk-ant-api03-abcdefgh ghu_abcdefghijklmnop ya29.a0AfH6SM Bearer xyz.123 "
        "tid=abc;exp=1 eyJhbGciOi.eyJzdWIi.sig github_pat_11ABCDEFG0123"
    )
    cleaned = redact(text)
    for secret in ("abcdefgh", "ghu_", "ya29", "xyz.123", "tid=", "eyJ", "github_pat"):
        assert secret not in cleaned

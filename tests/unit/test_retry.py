"""Retry policy and the parsing of servers' wait hints."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import format_datetime

from hypothesis import given
from hypothesis import strategies as st

from reaper_lsp.net.retry import RetryPolicy, parse_go_duration, parse_retry_after
from reaper_lsp.providers.errors import AuthError, ProviderUnavailable, QuotaExhausted, RateLimited

NOW = 1_700_000_000.0


def test_retry_after_ms_wins_over_retry_after() -> None:
    assert parse_retry_after({"retry-after-ms": "250", "retry-after": "9"}, NOW) == 0.25


def test_retry_after_seconds_and_http_date() -> None:
    assert parse_retry_after({"Retry-After": "2"}, NOW) == 2.0
    when = format_datetime(datetime.fromtimestamp(NOW + 30, UTC), usegmt=True)
    assert parse_retry_after({"retry-after": when}, NOW) == 30.0


def test_unusable_retry_after_values_are_ignored() -> None:
    for value in ("soon", "-1", "nan", "inf", ""):
        assert parse_retry_after({"retry-after": value}, NOW) is None
    assert parse_retry_after({}, NOW) is None


def test_go_durations() -> None:
    assert parse_go_duration("644ms") == 0.644
    assert parse_go_duration("1.574s") == 1.574
    assert parse_go_duration("6m0s") == 360.0
    assert parse_go_duration("1h2m3s") == 3723.0
    for bad in ("", "5", "5x", "s", "1s2"):
        assert parse_go_duration(bad) is None


def test_backoff_doubles_with_jitter_and_is_capped() -> None:
    policy = RetryPolicy(max_retries=10, base_backoff=0.1, cap=5.0)
    assert policy.delay(0, None, 1.0) == 0.1
    assert policy.delay(1, None, 1.0) == 0.2
    assert policy.delay(2, None, 0.0) == 0.4 * 0.75
    assert policy.delay(20, None, 1.0) == 5.0


def test_server_wait_is_honoured_unless_too_long() -> None:
    policy = RetryPolicy(max_retry_after=60)
    assert policy.delay(0, 3.0, 0.5) == 3.0
    assert policy.delay(0, 61.0, 0.5) is None


def test_only_retryable_errors_are_retried_and_only_max_retries_times() -> None:
    policy = RetryPolicy(max_retries=2)
    assert policy.should_retry(ProviderUnavailable("x"), 0)
    assert policy.should_retry(RateLimited("x"), 1)
    assert not policy.should_retry(ProviderUnavailable("x"), 2)
    assert not policy.should_retry(QuotaExhausted("x"), 0)
    assert not policy.should_retry(AuthError("x"), 0)


@given(
    attempt=st.integers(min_value=0, max_value=1000),
    rand=st.floats(min_value=0, max_value=1),
    base=st.floats(min_value=0.001, max_value=2),
)
def test_delay_is_always_within_bounds(attempt: int, rand: float, base: float) -> None:
    policy = RetryPolicy(base_backoff=base, cap=5.0)
    delay = policy.delay(attempt, None, rand)
    assert delay is not None
    assert 0 < delay <= 5.0

"""Retry delays for every outcome class (docs/concepts.md) and their attempt limits."""

from __future__ import annotations

import pytest

from apiwatch.domain import Outcome
from apiwatch.probe.retry import IMMEDIATE_RETRY, NO_RETRY, RetryPolicy

POLICY = RetryPolicy()


@pytest.mark.parametrize("outcome", [Outcome.TIMEOUT, Outcome.CONNECTION_ERROR])
def test_timeouts_and_connection_errors_retry_now_at_most_three_tries(outcome: Outcome) -> None:
    assert POLICY.delay_before_retry(outcome, 1) == 0.0
    assert POLICY.delay_before_retry(outcome, 2) == 0.0
    assert POLICY.delay_before_retry(outcome, 3) is None
    assert [POLICY.retry_now(outcome, n) for n in (1, 2, 3)] == [True, True, False]


def test_the_immediate_policy_raises_the_timeout_by_half() -> None:
    assert POLICY.next_timeout(10.0) == 15.0
    assert {Outcome.TIMEOUT, Outcome.CONNECTION_ERROR} == IMMEDIATE_RETRY


def test_rate_limited_waits_for_retry_after_plus_ten_seconds() -> None:
    assert POLICY.delay_before_retry(Outcome.RATE_LIMITED, 1, retry_after_s=30.0) == 40.0


def test_retry_after_wins_over_the_window_reset() -> None:
    delay = POLICY.delay_before_retry(
        Outcome.RATE_LIMITED, 1, retry_after_s=5.0, window_reset_in_s=50.0
    )
    assert delay == 15.0


def test_rate_limited_without_retry_after_waits_for_the_window_reset() -> None:
    assert POLICY.delay_before_retry(Outcome.RATE_LIMITED, 1, window_reset_in_s=42.0) == 52.0


def test_rate_limited_with_no_reset_known_waits_the_fallback_minute() -> None:
    assert POLICY.delay_before_retry(Outcome.RATE_LIMITED, 1) == 70.0
    assert POLICY.delay_before_retry(Outcome.RATE_LIMITED, 1, retry_after_s=float("nan")) == 70.0


def test_a_reset_already_past_still_waits_the_margin() -> None:
    assert POLICY.delay_before_retry(Outcome.RATE_LIMITED, 1, retry_after_s=-3.0) == 10.0


def test_rate_limited_is_uncapped_by_default_and_capped_when_configured() -> None:
    assert POLICY.delay_before_retry(Outcome.RATE_LIMITED, 50, retry_after_s=1.0) == 11.0
    capped = RetryPolicy(rate_limited_max_attempts=2)
    assert capped.delay_before_retry(Outcome.RATE_LIMITED, 1, retry_after_s=1.0) == 11.0
    assert capped.delay_before_retry(Outcome.RATE_LIMITED, 2, retry_after_s=1.0) is None


def test_server_errors_back_off_one_two_four_eight_minutes_then_give_up() -> None:
    delays = [POLICY.delay_before_retry(Outcome.SERVER_ERROR, n) for n in range(1, 7)]
    assert delays == [60.0, 120.0, 240.0, 480.0, None, None]


def test_backoff_numbers_are_policy_fields() -> None:
    policy = RetryPolicy(backoff_base_s=1.0, backoff_factor=3.0, server_error_max_attempts=3)
    delays = [policy.delay_before_retry(Outcome.SERVER_ERROR, n) for n in (1, 2, 3)]
    assert delays == [1.0, 3.0, None]
    margin = RetryPolicy(rate_limit_margin_s=0.5)
    assert margin.delay_before_retry(Outcome.RATE_LIMITED, 1, retry_after_s=2.0) == 2.5


@pytest.mark.parametrize(
    "outcome", [Outcome.AUTH_ERROR, Outcome.CLIENT_ERROR, Outcome.INVALID_PAYLOAD]
)
def test_auth_client_and_payload_errors_are_never_retried(outcome: Outcome) -> None:
    assert POLICY.delay_before_retry(outcome, 1, retry_after_s=5.0) is None
    assert not POLICY.retry_now(outcome, 1)


@pytest.mark.parametrize("outcome", [Outcome.OK, Outcome.SLOW, Outcome.SKIPPED])
def test_successes_and_skips_have_nothing_to_retry(outcome: Outcome) -> None:
    assert POLICY.delay_before_retry(outcome, 1) is None


@pytest.mark.parametrize("outcome", list(Outcome))
def test_no_retry_policy_retries_nothing_now_or_later(outcome: Outcome) -> None:
    assert not NO_RETRY.retry_now(outcome, 1)
    assert NO_RETRY.delay_before_retry(outcome, 1, retry_after_s=1.0) is None


def test_attempts_count_from_one() -> None:
    with pytest.raises(ValueError):
        POLICY.delay_before_retry(Outcome.SERVER_ERROR, 0)

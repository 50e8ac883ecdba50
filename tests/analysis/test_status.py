"""Status derivation (docs/concepts.md) and the tracker's state machine over time, hysteresis
included."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from apiwatch.analysis.status import consecutive_failures, derive_status
from apiwatch.domain import Outcome, ProbeResult, Status
from apiwatch.runtime.live_status import StatusTracker

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def results(*outcomes: Outcome) -> list[ProbeResult]:
    return [
        ProbeResult("p", "health", o, T0 + timedelta(seconds=i), reason=f"r{i}")
        for i, o in enumerate(outcomes)
    ]


OK, SLOW, TIMEOUT, RL, SKIP, ERR = (
    Outcome.OK,
    Outcome.SLOW,
    Outcome.TIMEOUT,
    Outcome.RATE_LIMITED,
    Outcome.SKIPPED,
    Outcome.SERVER_ERROR,
)


@pytest.mark.parametrize(
    ("outcomes", "status"),
    [
        ((), Status.UNKNOWN),
        ((SKIP, SKIP), Status.UNKNOWN),
        ((OK,), Status.ONLINE),
        ((OK, TIMEOUT), Status.DEGRADED),
        ((OK, TIMEOUT, ERR), Status.DEGRADED),
        ((OK, TIMEOUT, ERR, ERR), Status.OFFLINE),
        ((TIMEOUT, SKIP, ERR, SKIP, ERR), Status.OFFLINE),
        ((ERR, ERR, ERR, OK), Status.DEGRADED),  # recovered, but 75 % errors in the window
        ((OK,) * 9 + (ERR, ERR, ERR) + (OK,) * 30, Status.ONLINE),
        ((OK, RL), Status.DEGRADED),
        ((RL, RL, RL, RL), Status.DEGRADED),  # throttled is not down
        ((OK, SLOW), Status.DEGRADED),
    ],
)
def test_status_from_outcomes(outcomes: tuple[Outcome, ...], status: Status) -> None:
    assert derive_status(results(*outcomes))[0] is status


def test_error_rate_of_ten_percent_degrades_and_below_does_not() -> None:
    assert derive_status(results(*(OK,) * 8, ERR, OK))[0] is Status.DEGRADED  # 10 %
    assert derive_status(results(*(OK,) * 9, ERR, OK))[0] is Status.ONLINE  # 9.1 %


def test_open_breaker_and_stale_data_override() -> None:
    assert derive_status(results(OK), breaker_open=True) == (Status.OFFLINE, "circuit breaker open")
    assert derive_status(results(OK), stale=True)[0] is Status.DEGRADED


def test_offline_reason_names_the_count_and_the_last_failure() -> None:
    status, reason = derive_status(results(ERR, ERR, TIMEOUT))
    assert status is Status.OFFLINE
    assert reason == "3 consecutive failures; last: timeout (r2)"


def test_unknown_reason_says_why_it_was_not_probed() -> None:
    only_skipped = [ProbeResult("p", "health", SKIP, T0, reason="no_key")]
    assert derive_status(only_skipped) == (Status.UNKNOWN, "not probed: no_key")


def test_consecutive_failures_ignores_skipped_and_stops_at_success() -> None:
    assert consecutive_failures(results(ERR, OK, ERR, SKIP, TIMEOUT)) == 2


def test_tracker_emits_one_change_per_transition() -> None:
    tracker = StatusTracker(["p"], clock=lambda: T0)
    seen = [tracker.observe(r) for r in results(OK, OK, ERR, ERR, ERR, ERR, OK)]
    transitions = [(c.old, c.new) for c in seen if c is not None]
    assert transitions == [
        (Status.UNKNOWN, Status.ONLINE),
        (Status.ONLINE, Status.DEGRADED),
        (Status.DEGRADED, Status.OFFLINE),
        (Status.OFFLINE, Status.DEGRADED),  # one success, but the window is mostly errors
    ]
    state = tracker.state("p")
    assert state.status is Status.DEGRADED
    assert state.consecutive_failures == 0
    assert state.last_result is not None and state.last_result.outcome is OK


def test_tracker_window_forgets_old_failures() -> None:
    tracker = StatusTracker(["p"], window=5)
    for r in results(ERR, ERR, ERR, OK, OK, OK, OK, OK):
        tracker.observe(r)
    assert tracker.state("p").status is Status.ONLINE


def test_restored_status_is_kept_until_new_evidence() -> None:
    tracker = StatusTracker(["p"])
    tracker.restore("p", status=Status.OFFLINE, reason="restored", at=T0)
    assert tracker.state("p").status is Status.OFFLINE
    change = tracker.observe(results(OK)[0])
    assert change is not None and (change.old, change.new) == (Status.OFFLINE, Status.ONLINE)


@pytest.mark.parametrize(
    ("outcomes", "status"),
    [
        # Recovered from an outage: online after three good checks, not after the window.
        ((OK,) * 10 + (ERR,) * 5 + (OK, OK), Status.DEGRADED),
        ((OK,) * 10 + (ERR,) * 5 + (OK, OK, OK), Status.ONLINE),
        # Rate limiting is trouble too, and is forgotten the same way.
        ((OK,) * 15 + (RL, RL) + (OK, OK, OK), Status.ONLINE),
        # Skipped results (breaker open, keys resting) neither count nor break the run.
        ((ERR,) * 3 + (OK, SKIP, OK, SKIP, OK), Status.ONLINE),
        # A slow answer is not a good check: the run starts again after it.
        ((ERR,) * 3 + (OK, SLOW, OK, OK), Status.DEGRADED),
        # New trouble after a recovery counts again, against the results since then.
        ((ERR,) * 3 + (OK,) * 3 + (ERR, OK), Status.DEGRADED),
    ],
)
def test_recovery_hysteresis(outcomes: tuple[Outcome, ...], status: Status) -> None:
    assert derive_status(results(*outcomes))[0] is status


def test_a_provider_that_fails_often_stays_degraded_between_failures() -> None:
    # One failure in four: right after each failure the error rate keeps it degraded.
    pattern = (ERR, OK, OK, OK) * 5
    assert derive_status(results(*pattern[:-2]))[0] is Status.DEGRADED
    assert derive_status(results(*pattern[:-1]))[0] is Status.DEGRADED


def test_tracker_recovers_after_three_good_checks() -> None:
    tracker = StatusTracker(["p"], clock=lambda: T0)
    seen = [tracker.observe(r) for r in results(*(OK,) * 10, *(ERR,) * 5, OK, OK, OK)]
    transitions = [(c.old, c.new) for c in seen if c is not None]
    assert transitions[-2:] == [(Status.OFFLINE, Status.DEGRADED), (Status.DEGRADED, Status.ONLINE)]
    assert seen[-1] is not None and seen[-1].reason == "healthy"


@pytest.mark.parametrize("seed", range(5))
def test_the_tracker_agrees_with_derive_status_over_random_histories(seed: int) -> None:
    """The tracker decides an all-ok window without judging it again (a count of results
    that are not ok); every status it gives must be the one the window gives."""
    import random

    rng = random.Random(seed)
    choices = [Outcome.OK] * 12 + [
        Outcome.SLOW,
        Outcome.TIMEOUT,
        Outcome.SERVER_ERROR,
        Outcome.RATE_LIMITED,
        Outcome.SKIPPED,
    ]
    tracker = StatusTracker(["p"], window=5)
    window: list[ProbeResult] = []
    for n, outcome in enumerate(rng.choice(choices) for _ in range(400)):
        (result,) = results(outcome)
        result = dataclasses.replace(result, started_at=result.started_at + timedelta(seconds=n))
        breaker_open = rng.random() < 0.05
        tracker.observe(result, breaker_open=breaker_open)
        window = [*window, result][-5:]
        state = tracker.state("p")
        assert (state.status, state.reason) == derive_status(window, breaker_open=breaker_open)

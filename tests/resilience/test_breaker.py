"""The circuit breaker's state machine, driven by an injected unix clock."""

from __future__ import annotations

import json

import pytest

from apiwatch.domain import Outcome
from apiwatch.probe.breaker import BreakerTransition, CircuitBreaker, CircuitState

START = 1_700_000_000.0


class Clock:
    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def breaker(clock: Clock) -> CircuitBreaker:
    return CircuitBreaker(failure_threshold=3, cooldown_s=30.0, clock=clock)


def trip(breaker: CircuitBreaker, provider: str = "binance") -> BreakerTransition | None:
    transition = None
    for _ in range(breaker.failure_threshold):
        transition = breaker.record(provider, Outcome.SERVER_ERROR)
    return transition


def test_breaker_starts_closed_and_allows_requests(breaker: CircuitBreaker) -> None:
    state = breaker.state("binance")
    assert state.state is CircuitState.CLOSED
    assert state.consecutive_failures == 0
    assert state.opened_at is None and state.retry_at is None
    assert breaker.allow("binance")


def test_breaker_defaults_are_five_failures_and_thirty_seconds(clock: Clock) -> None:
    breaker = CircuitBreaker(clock=clock)
    assert (breaker.failure_threshold, breaker.cooldown_s) == (5, 30.0)
    for _ in range(4):
        assert breaker.record("kraken", Outcome.TIMEOUT) is None
    assert breaker.record("kraken", Outcome.TIMEOUT) is not None


def test_breaker_stays_closed_below_the_threshold(breaker: CircuitBreaker) -> None:
    assert breaker.record("binance", Outcome.TIMEOUT) is None
    assert breaker.record("binance", Outcome.CONNECTION_ERROR) is None
    assert breaker.state("binance").state is CircuitState.CLOSED
    assert breaker.state("binance").consecutive_failures == 2
    assert breaker.allow("binance")


def test_breaker_opens_after_threshold_consecutive_failures(
    breaker: CircuitBreaker, clock: Clock
) -> None:
    transition = trip(breaker)
    assert transition is not None
    assert (transition.old, transition.new) == (CircuitState.CLOSED, CircuitState.OPEN)
    assert transition.provider == "binance"
    assert transition.at == START
    assert "3 consecutive failures" in transition.reason
    state = breaker.state("binance")
    assert state.state is CircuitState.OPEN
    assert state.opened_at == START
    assert state.retry_at == START + 30.0
    assert not breaker.allow("binance")
    assert breaker.is_open("binance")


def test_a_success_resets_the_consecutive_failure_count(breaker: CircuitBreaker) -> None:
    breaker.record("binance", Outcome.SERVER_ERROR)
    breaker.record("binance", Outcome.SERVER_ERROR)
    breaker.record("binance", Outcome.SLOW)
    assert breaker.state("binance").consecutive_failures == 0
    breaker.record("binance", Outcome.SERVER_ERROR)
    breaker.record("binance", Outcome.SERVER_ERROR)
    assert breaker.state("binance").state is CircuitState.CLOSED


@pytest.mark.parametrize("neutral", [Outcome.RATE_LIMITED, Outcome.SKIPPED])
def test_rate_limited_and_skipped_neither_count_nor_reset_failures(
    breaker: CircuitBreaker, neutral: Outcome
) -> None:
    breaker.record("binance", Outcome.TIMEOUT)
    breaker.record("binance", Outcome.TIMEOUT)
    for _ in range(10):
        assert breaker.record("binance", neutral) is None
    assert breaker.state("binance").consecutive_failures == 2
    assert breaker.record("binance", Outcome.TIMEOUT) is not None


@pytest.mark.parametrize("failure", sorted(o for o in Outcome if o.is_failure))
def test_every_failure_outcome_counts_towards_opening(
    breaker: CircuitBreaker, failure: Outcome
) -> None:
    for _ in range(3):
        breaker.record("binance", failure)
    assert breaker.state("binance").state is CircuitState.OPEN


def test_breakers_are_per_provider(breaker: CircuitBreaker) -> None:
    trip(breaker, "binance")
    assert not breaker.allow("binance")
    assert breaker.allow("kraken")
    assert breaker.state("kraken").state is CircuitState.CLOSED


def test_breaker_stays_open_until_the_cooldown_has_passed(
    breaker: CircuitBreaker, clock: Clock
) -> None:
    trip(breaker)
    clock.advance(29.9)
    assert not breaker.allow("binance")
    assert breaker.state("binance").state is CircuitState.OPEN


def test_breaker_goes_half_open_after_the_cooldown_and_lets_one_trial_through(
    clock: Clock,
) -> None:
    heard: list[BreakerTransition] = []
    breaker = CircuitBreaker(failure_threshold=3, clock=clock, on_transition=heard.append)
    trip(breaker)
    clock.advance(30.0)
    assert breaker.allow("binance")
    assert breaker.state("binance").state is CircuitState.HALF_OPEN
    assert not breaker.allow("binance")
    assert not breaker.allow("binance")
    assert [(t.old, t.new) for t in heard] == [
        (CircuitState.CLOSED, CircuitState.OPEN),
        (CircuitState.OPEN, CircuitState.HALF_OPEN),
    ]
    assert heard[1].at == START + 30.0


def test_breaker_closes_when_the_half_open_trial_succeeds(
    breaker: CircuitBreaker, clock: Clock
) -> None:
    trip(breaker)
    clock.advance(30.0)
    assert breaker.allow("binance")
    transition = breaker.record("binance", Outcome.OK)
    assert transition is not None
    assert (transition.old, transition.new) == (CircuitState.HALF_OPEN, CircuitState.CLOSED)
    state = breaker.state("binance")
    assert state.state is CircuitState.CLOSED
    assert state.consecutive_failures == 0
    assert state.opened_at is None and state.retry_at is None
    assert breaker.allow("binance") and breaker.allow("binance")


def test_breaker_reopens_when_the_half_open_trial_fails(
    breaker: CircuitBreaker, clock: Clock
) -> None:
    trip(breaker)
    clock.advance(45.0)
    assert breaker.allow("binance")
    transition = breaker.record("binance", Outcome.SERVER_ERROR)
    assert transition is not None
    assert (transition.old, transition.new) == (CircuitState.HALF_OPEN, CircuitState.OPEN)
    assert "trial request failed" in transition.reason
    state = breaker.state("binance")
    assert state.state is CircuitState.OPEN
    assert state.opened_at == START + 45.0
    assert state.retry_at == START + 75.0  # a fresh cool-down from the failed trial
    clock.advance(29.0)
    assert not breaker.allow("binance")
    clock.advance(1.0)
    assert breaker.allow("binance")


@pytest.mark.parametrize("neutral", [Outcome.RATE_LIMITED, Outcome.SKIPPED])
def test_a_neutral_half_open_trial_frees_the_slot_for_another_trial(
    breaker: CircuitBreaker, clock: Clock, neutral: Outcome
) -> None:
    trip(breaker)
    clock.advance(30.0)
    assert breaker.allow("binance")
    assert breaker.record("binance", neutral) is None
    assert breaker.state("binance").state is CircuitState.HALF_OPEN
    assert breaker.allow("binance")


def test_a_lost_half_open_trial_is_given_up_after_the_trial_timeout(clock: Clock) -> None:
    breaker = CircuitBreaker(
        failure_threshold=1, cooldown_s=30.0, trial_timeout_s=60.0, clock=clock
    )
    breaker.record("binance", Outcome.TIMEOUT)
    clock.advance(30.0)
    assert breaker.allow("binance")  # this trial never reports back
    clock.advance(59.0)
    assert not breaker.allow("binance")
    clock.advance(1.0)
    assert breaker.allow("binance")


def test_failures_that_arrive_while_open_do_not_extend_the_cooldown(
    breaker: CircuitBreaker, clock: Clock
) -> None:
    trip(breaker)
    clock.advance(20.0)
    assert breaker.record("binance", Outcome.TIMEOUT) is None
    assert breaker.record("binance", Outcome.OK) is None
    assert breaker.state("binance").retry_at == START + 30.0
    clock.advance(10.0)
    assert breaker.allow("binance")


def test_snapshot_is_json_friendly(breaker: CircuitBreaker) -> None:
    trip(breaker, "binance")
    breaker.record("kraken", Outcome.TIMEOUT)
    snapshot = json.loads(json.dumps(breaker.snapshot()))
    assert snapshot == {
        "binance": {
            "state": "open",
            "consecutive_failures": 3,
            "opened_at": START,
            "retry_at": START + 30.0,
        },
        "kraken": {
            "state": "closed",
            "consecutive_failures": 1,
            "opened_at": None,
            "retry_at": None,
        },
    }


def test_restored_open_breaker_stays_open_until_its_cooldown_passes_on_the_wall_clock(
    breaker: CircuitBreaker, clock: Clock
) -> None:
    trip(breaker)
    saved = json.dumps(breaker.snapshot())
    # The process restarts 10 s later: a new breaker, a new clock reading the same wall time.
    later = Clock(START + 10.0)
    restarted = CircuitBreaker(failure_threshold=3, cooldown_s=30.0, clock=later)
    assert restarted.restore(json.loads(saved)) == []
    assert not restarted.allow("binance")
    state = restarted.state("binance")
    assert state.state is CircuitState.OPEN
    assert (state.opened_at, state.retry_at) == (START, START + 30.0)
    later.advance(19.9)
    assert not restarted.allow("binance")
    later.advance(0.1)
    assert restarted.allow("binance")
    assert not restarted.allow("binance")  # still only one trial at a time


def test_restored_open_breaker_whose_cooldown_passed_during_downtime_is_half_open() -> None:
    restarted = CircuitBreaker(clock=Clock(START + 3600))
    restarted.restore({"binance": {"state": "open", "opened_at": START}})
    assert restarted.state("binance").state is CircuitState.HALF_OPEN
    assert restarted.allow("binance")
    assert not restarted.allow("binance")


def test_restore_keeps_the_failure_count_of_a_closed_breaker(clock: Clock) -> None:
    breaker = CircuitBreaker(failure_threshold=3, clock=clock)
    breaker.restore({"binance": {"state": "closed", "consecutive_failures": 2}})
    assert breaker.record("binance", Outcome.TIMEOUT) is not None


def test_restore_skips_unreadable_entries_and_names_them(clock: Clock) -> None:
    breaker = CircuitBreaker(clock=clock)
    skipped = breaker.restore(
        {
            "binance": {"state": "sideways"},
            "kraken": {"state": "open"},  # neither opened_at nor retry_at
            "bybit": {"state": "open", "opened_at": "nan"},
            "okx": {"state": "open", "opened_at": START},
        }
    )
    assert sorted(skipped) == ["binance", "bybit", "kraken"]
    assert breaker.state("binance").state is CircuitState.CLOSED
    assert breaker.state("okx").state is CircuitState.OPEN


def test_transition_as_dict_names_from_and_to(breaker: CircuitBreaker) -> None:
    transition = trip(breaker)
    assert transition is not None
    assert transition.as_dict() == {
        "provider": "binance",
        "from": "closed",
        "to": "open",
        "at": START,
        "reason": transition.reason,
    }


@pytest.mark.parametrize(
    "kwargs", [{"failure_threshold": 0}, {"cooldown_s": -1.0}, {"trial_timeout_s": 0.0}]
)
def test_breaker_rejects_nonsense_settings(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        CircuitBreaker(clock=Clock(), **kwargs)  # type: ignore[arg-type]

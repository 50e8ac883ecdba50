"""The status tracker's compact window of recent results: what goes in comes back equal,
in order, and an ok result costs a few dozen bytes instead of a few hundred."""

from __future__ import annotations

import math
import random
import tracemalloc
from collections import deque
from datetime import UTC, datetime, timedelta, timezone

import pytest

from apiwatch.domain import NO_HEADERS, Outcome, ProbeResult
from apiwatch.runtime.result_window import ResultWindow

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def random_result(rng: random.Random, n: int) -> ProbeResult:
    outcome = rng.choice([Outcome.OK] * 8 + [Outcome.TIMEOUT, Outcome.SLOW, Outcome.SKIPPED])
    at = T0 + timedelta(seconds=n, microseconds=rng.randrange(1_000_000))
    if rng.random() < 0.05:
        at = at.astimezone(timezone(timedelta(hours=2)))  # equal instant, other zone
    return ProbeResult(
        provider="p",
        endpoint=rng.choice(["health", "health", "ticker"]),
        outcome=outcome,
        started_at=at,
        latency_ms=rng.choice([None, 0.0, rng.uniform(0.01, 9000.0), math.inf]),
        status_code=rng.choice([200, 200, 204, None]),
        reason=rng.choice(["", "", "slow answer"]),
        attempt=rng.choice([1, 1, 2]),
        final=rng.random() < 0.9,
        key_label=rng.choice([None, "pri…ab12"]),
        retry_after_s=rng.choice([None, None, 1.5]),
        response_bytes=rng.choice([None, 0, rng.randrange(10**6)]),
        location=rng.choice(["", "", "eu"]),
        payload={"n": n} if rng.random() < 0.5 else None,
        headers=NO_HEADERS if rng.random() < 0.9 else {"x-ratelimit-remaining": "4"},
    )


@pytest.mark.parametrize("size", [1, 5, 20])
@pytest.mark.parametrize("seed", range(3))
def test_the_window_gives_back_the_last_results_equal_and_in_order(size: int, seed: int) -> None:
    rng = random.Random(seed)
    window = ResultWindow(size)
    added: list[ProbeResult] = []
    for n in range(600):
        result = random_result(rng, n)
        left = window.append(result)
        expected_left = added[-size].outcome if len(added) >= size else None
        added.append(result)
        assert left == expected_left
        newest = added[-size:]
        kept = list(window)
        assert kept == newest
        assert [r.started_at.utcoffset() for r in kept] == [
            r.started_at.utcoffset() for r in newest
        ]
        assert kept[-1] is result and window.last is result
        assert len(window) == len(newest)
        judged = window.judged()
        assert [(r.outcome, r.reason) for r in judged] == [(r.outcome, r.reason) for r in newest]
        assert window.heartbeat() == [(r.outcome, r.started_at, r.latency_ms) for r in newest]


def test_an_ok_result_that_is_no_longer_the_newest_drops_its_body() -> None:
    window = ResultWindow(3)
    first = ProbeResult("p", "health", Outcome.OK, T0, latency_ms=3.5, payload={"big": 1})
    second = ProbeResult("p", "health", Outcome.OK, T0 + timedelta(seconds=1), latency_ms=4.0)
    failed = ProbeResult("p", "health", Outcome.TIMEOUT, T0, payload={"kept": True})
    window.append(first)
    assert next(iter(window)).payload == {"big": 1}  # the newest is kept as it came
    window.append(failed)
    window.append(second)
    old, kept_failed, _ = list(window)
    assert old == first and old.payload is None
    assert kept_failed is failed and kept_failed.payload == {"kept": True}


def test_times_a_float_cannot_hold_to_the_microsecond_are_kept_whole() -> None:
    """Past 2**53 microseconds (the year 2255): a wrong clock must not cost exactness, and
    the last representable moment must not overflow on the way back."""
    window = ResultWindow(4)
    far = [
        ProbeResult("p", "health", Outcome.OK, at, latency_ms=1.0)
        for at in (
            datetime(2300, 1, 1, 0, 0, 0, 1, tzinfo=UTC),
            datetime.max.replace(tzinfo=UTC),
            datetime(1969, 12, 31, 23, 59, 59, tzinfo=UTC),
            T0,
        )
    ]
    for result in far:
        window.append(result)
    assert list(window) == far
    assert [at for _, at, _ in window.heartbeat()] == [r.started_at for r in far]


def test_an_empty_window() -> None:
    window = ResultWindow(0)
    assert window.append(ProbeResult("p", "health", Outcome.OK, T0)) is None
    assert list(window) == [] and window.last is None and not window
    assert ResultWindow(5).heartbeat() == [] and ResultWindow(5).judged() == []


def test_ok_results_cost_a_few_dozen_bytes_each() -> None:
    """The reason this window exists: 1,000 providers' windows of 20 ok results, measured
    with tracemalloc against the same results kept in deques as objects."""

    def fill(make_window, append) -> int:  # type: ignore[no-untyped-def]
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            windows = [make_window() for _ in range(1000)]
            names = [f"p{i}" for i in range(1000)]  # a catalogue's ids, shared by results
            for second in range(20):
                for i, window in enumerate(windows):
                    result = ProbeResult(
                        names[i],
                        "health",
                        Outcome.OK,
                        datetime.now(UTC) + timedelta(seconds=second),
                        latency_ms=random.uniform(1.0, 50.0),
                        status_code=200,
                        response_bytes=random.randrange(100, 4000),
                    )
                    append(window, result)
            return tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()

    compact = fill(lambda: ResultWindow(20), ResultWindow.append) / 20_000
    objects = fill(lambda: deque(maxlen=20), deque.append) / 20_000
    assert compact < 80, f"{compact:.0f} bytes a result"
    assert compact < objects / 3, f"{compact:.0f} against {objects:.0f} bytes a result"

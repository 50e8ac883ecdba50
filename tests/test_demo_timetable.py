"""The demo's timetable injects an order-book integrity fault that a collection must see."""

from __future__ import annotations

from apiwatch.collection.model import DEFAULT_INTERVAL_S
from apiwatch.demo import CYCLE_S, TIMETABLE
from apiwatch.simulator.books import BOOK_SCENARIOS

BOOK_FAULTS = set(BOOK_SCENARIOS)


def test_the_timetable_is_in_order_and_inside_its_cycle() -> None:
    times = [step.at for step in TIMETABLE]
    assert times == sorted(times) and times[-1] < CYCLE_S


def test_a_book_fault_is_held_longer_than_a_market_collection_interval() -> None:
    faults = [
        (step.at, step.provider)
        for step in TIMETABLE
        if step.scenario is not None and step.scenario.name in BOOK_FAULTS
    ]
    assert faults, "the demo must inject at least one order-book integrity fault"
    for at, provider in faults:
        ends = [
            s.at for s in TIMETABLE if s.provider == provider and s.at > at and s.scenario is None
        ]
        held = (ends[0] if ends else CYCLE_S) - at
        assert held > DEFAULT_INTERVAL_S["market_data"], (provider, held)


def test_every_book_fault_promises_its_check_within_the_time_it_is_held() -> None:
    # The check each book fault of the demo trips (the ones tests/test_exchange_collection.py
    # shows the simulator's faults trip).
    trips = {"crossed_book": "crossed", "frozen_book": "update_id_frozen", "thin_book":
             "depth_collapse", "wide_spread": "wide_spread", "locked_book": "locked"}  # fmt: skip
    steps = [s for s in TIMETABLE if s.scenario is not None and s.scenario.name in BOOK_FAULTS]
    assert steps
    for step in steps:
        assert step.scenario is not None and step.book_check is not None, step.describe()
        check, within = step.book_check
        assert check == trips[step.scenario.name]
        ends = [
            s.at
            for s in TIMETABLE
            if s.provider == step.provider and s.at > step.at and s.scenario is None
        ]
        held = (ends[0] if ends else CYCLE_S) - step.at
        # A collection comes in time: the first within 5 s of the start (at or before the
        # fault), the second between half an interval and one and a half after it (the
        # scheduler's spread grid). And the promise falls due while the fault is still there.
        assert 5 + 1.5 * DEFAULT_INTERVAL_S["market_data"] < within <= held
        assert f"book check {check} failing within {within:g} s" in step.describe()

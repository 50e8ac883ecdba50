"""The interval scheduler: runs on a fixed grid, never overlaps a job, survives failures,
reports every planned slot (started or skipped) and lets a running job see its slot."""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from collections.abc import Callable
from datetime import timedelta

import pytest

from apiwatch.scheduler.loop import IntervalScheduler, Slot, current_slot
from tests.scheduler.clocks import Clocks

# Jobs every 30-50 ms on the real clock: beside the other test process on two cores a run
# can come a slot late (the grid then shortens the next gap). `make test` runs this module
# in its own pytest, without that competition; the assertions are unchanged.
pytestmark = pytest.mark.serial


def scheduler_with(clocks: Clocks, slots: list[Slot], **kwargs: object) -> IntervalScheduler:
    return IntervalScheduler(
        clock=clocks.mono, wall_clock=clocks.wall, on_slot=slots.append, **kwargs
    )


def seconds(delta: timedelta) -> float:
    return delta.total_seconds()


async def noop() -> None:
    return None


async def until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Wait for `condition`, failing after `timeout`: counts, not speed, are under test."""
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


async def test_jobs_run_on_their_interval_and_stop_cleanly() -> None:
    scheduler = IntervalScheduler()
    runs: list[float] = []

    async def job() -> None:
        runs.append(time.monotonic())

    scheduler.add("tick", 0.05, job, first_within=0.05)
    scheduler.start()
    await asyncio.sleep(0.28)
    await scheduler.stop()
    count = len(runs)
    assert 3 <= count <= 7
    gaps = [b - a for a, b in itertools.pairwise(runs)]
    # On a fixed grid: no run comes early, and lateness does not accumulate.
    assert all(0.03 < gap < 0.15 for gap in gaps), gaps
    assert runs[-1] - runs[0] < 0.05 * (count - 1) + 0.1
    await asyncio.sleep(0.1)
    assert len(runs) == count  # nothing runs after stop
    assert not scheduler.running


async def test_started_slots_lie_on_the_grid_and_report_their_lateness() -> None:
    clocks, slots = Clocks(), []
    scheduler = scheduler_with(clocks, slots)
    scheduler.add("tick", 0.04, noop, first_within=0.04)
    scheduler.start()
    await until(lambda: len(slots) >= 4)
    await scheduler.stop()
    assert all(slot.job == "tick" and slot.skipped is None for slot in slots)
    for slot in slots:
        assert slot.started_at is not None and slot.lateness_s is not None
        assert slot.lateness_s >= 0
        # Both wall times come from one anchor: their difference is the lateness itself.
        assert abs(seconds(slot.started_at - slot.planned_at) - slot.lateness_s) < 1e-5
    for a, b in itertools.pairwise(slots):
        assert abs(seconds(b.planned_at - a.planned_at) - 0.04) < 1e-5


async def test_a_running_job_sees_its_own_slot() -> None:
    clocks, slots = Clocks(), []
    scheduler = scheduler_with(clocks, slots)
    seen: list[Slot | None] = []

    async def job() -> None:
        seen.append(current_slot.get())

    scheduler.add("collect:binance", 60, job, first_within=0)
    scheduler.start()
    await asyncio.sleep(0.05)
    await scheduler.stop()
    assert seen == slots
    assert seen[0] is not None and seen[0].job == "collect:binance"
    assert current_slot.get() is None  # only inside a run


async def test_a_slot_waiting_for_a_free_place_is_late_by_the_wait() -> None:
    clocks, slots = Clocks(), []
    scheduler = scheduler_with(clocks, slots, concurrency=1)
    release = asyncio.Event()

    async def hog() -> None:
        await release.wait()

    scheduler.add("hog", 60, hog, first_within=0)
    scheduler.add("waiter", 60, noop, first_within=0)
    scheduler.start()
    await asyncio.sleep(0.02)
    assert [slot.job for slot in slots] == ["hog"]  # the waiter has not started yet
    clocks.shift(5.0)  # five seconds pass while the waiter holds no place
    release.set()
    await asyncio.sleep(0.02)
    await scheduler.stop()
    waiter = next(slot for slot in slots if slot.job == "waiter")
    assert waiter.skipped is None
    assert waiter.lateness_s is not None and waiter.lateness_s >= 5.0
    assert waiter.started_at is not None
    assert seconds(waiter.started_at - waiter.planned_at) >= 5.0


async def test_a_slow_job_is_not_started_twice_and_its_slots_are_skipped_as_overlap() -> None:
    clocks, slots = Clocks(), []
    scheduler = scheduler_with(clocks, slots)
    running = 0
    peak = 0

    async def slow() -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.12)
        running -= 1

    scheduler.add("slow", 0.03, slow, first_within=0.03)
    scheduler.start()
    await until(lambda: sum(slot.skipped == "overlap" for slot in slots) >= 3)
    await scheduler.stop()
    assert peak == 1
    overlaps = [slot for slot in slots if slot.skipped == "overlap"]
    assert scheduler.jobs()["slow"].overlaps == len(overlaps)
    assert all(slot.started_at is None and slot.lateness_s is None for slot in overlaps)
    # Every planned slot is reported exactly once, started or skipped, in grid order.
    for a, b in itertools.pairwise(slots):
        assert abs(seconds(b.planned_at - a.planned_at) - 0.03) < 1e-5


async def test_a_failing_job_keeps_its_schedule() -> None:
    scheduler = IntervalScheduler()
    calls = 0

    async def boom() -> None:
        nonlocal calls
        calls += 1
        raise RuntimeError("upstream garbage")

    scheduler.add("boom", 0.03, boom, first_within=0)
    scheduler.start()
    # Logged tracebacks are slow to format on a busy machine: wait for the count, whatever
    # it takes; what matters is that runs continue after failures.
    await until(lambda: calls >= 3)
    await scheduler.stop()
    assert calls >= 3


async def test_a_failing_slot_observer_does_not_stop_the_schedule() -> None:
    runs = 0

    def broken(slot: Slot) -> None:
        raise RuntimeError("observer bug")

    async def job() -> None:
        nonlocal runs
        runs += 1

    scheduler = IntervalScheduler(on_slot=broken)
    scheduler.add("j", 0.03, job, first_within=0)
    scheduler.start()
    await until(lambda: runs >= 3)
    await scheduler.stop()
    assert runs >= 3


async def test_first_runs_are_spread_evenly_within_the_window_from_start() -> None:
    clocks = Clocks()
    scheduler = IntervalScheduler(clock=clocks.mono, wall_clock=clocks.wall, rng=random.Random(7))
    for i in range(50):
        scheduler.add(f"j{i}", 60, noop, first_within=2.0)
    clocks.shift(100.0)  # a late start: first runs count from start(), not from add()
    scheduler.start()
    started = clocks.wall()
    offsets = sorted(seconds(scheduler.next_run(f"j{i}") - started) for i in range(50))
    await scheduler.stop()
    assert all(-0.01 <= offset <= 2.0 for offset in offsets)
    # Evenly: no gap much wider than the average of 2.0 / 50 = 0.04 s, unlike random draws.
    assert max(b - a for a, b in itertools.pairwise(offsets)) < 0.1
    assert offsets[-1] - offsets[0] > 1.8


async def test_after_a_quick_first_run_jobs_settle_onto_an_evenly_spread_grid() -> None:
    clocks, slots = Clocks(), []
    scheduler = scheduler_with(clocks, slots, rng=random.Random(3))
    for i in range(50):
        scheduler.add(f"j{i}", 1.0, noop, first_within=0.05)
    scheduler.start()
    await asyncio.sleep(0.1)
    assert len(slots) == 50  # every first run came within the short window
    first = {slot.job: slot.planned_at for slot in slots}
    following = {name: scheduler.next_run(name) for name in first}
    await scheduler.stop()
    assert all(0.5 <= seconds(following[name] - first[name]) < 1.5 for name in first)
    # Phases over the 1 s interval: even, where the first runs were all within 50 ms.
    phases = sorted(seconds(at - clocks.wall()) % 1.0 for at in following.values())
    gaps = [b - a for a, b in itertools.pairwise(phases)] + [1.0 - phases[-1] + phases[0]]
    assert max(gaps) < 0.1  # average 0.02


async def test_after_a_stall_missed_slots_are_skipped_not_burst() -> None:
    clocks, slots = Clocks(), []
    scheduler = scheduler_with(clocks, slots)
    running = 0
    peak = 0
    runs = 0

    async def job() -> None:
        nonlocal running, peak, runs
        runs += 1
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.01)
        running -= 1

    scheduler.add("j", 0.02, job, first_within=0)
    scheduler.start()
    await asyncio.sleep(0.05)
    time.sleep(0.2)  # block the loop: about ten slots go by unrun
    before = runs
    await asyncio.sleep(0.03)
    await scheduler.stop()
    assert peak == 1
    assert runs - before <= 2
    missed = [slot for slot in slots if slot.skipped == "missed"]
    assert len(missed) >= 8
    assert scheduler.jobs()["j"].missed == len(missed)


async def test_slots_missed_while_time_jumped_are_each_reported_on_the_grid() -> None:
    clocks, slots = Clocks(), []
    scheduler = scheduler_with(clocks, slots)
    scheduler.add("j", 0.05, noop, first_within=0.05)
    scheduler.start()
    while not slots:
        await asyncio.sleep(0.005)
    clocks.shift(1.0)  # twenty slots go by while the loop is elsewhere
    await asyncio.sleep(0.07)
    await scheduler.stop()
    first, *rest = slots
    assert first.skipped is None
    missed = [slot for slot in rest if slot.skipped == "missed"]
    assert 19 <= len(missed) <= 21
    # Each missed slot keeps its own planned time, and the run after them is on the grid,
    # late by less than one interval.
    for k, slot in enumerate(rest, start=1):
        assert abs(seconds(slot.planned_at - first.planned_at) - 0.05 * k) < 1e-5
    resumed = next(slot for slot in rest if slot.skipped is None)
    assert resumed.lateness_s is not None and 0 <= resumed.lateness_s < 0.05


async def test_reschedule_shorter_takes_effect_from_the_next_slot() -> None:
    clocks, slots = Clocks(), []
    scheduler = scheduler_with(clocks, slots)
    scheduler.add("j", 60, noop, first_within=0)
    scheduler.start()
    await asyncio.sleep(0.02)
    assert len(slots) == 1
    first = slots[0].planned_at
    scheduler.reschedule("j", 0.05)
    assert scheduler.next_run("j") == first + timedelta(seconds=0.05)
    assert scheduler.jobs()["j"].interval_s == 0.05
    await until(lambda: len(slots) >= 4)
    await scheduler.stop()
    for a, b in itertools.pairwise(slots):
        assert abs(seconds(b.planned_at - a.planned_at) - 0.05) < 1e-5


async def test_reschedule_longer_moves_the_next_slot_out() -> None:
    clocks, slots = Clocks(), []
    scheduler = scheduler_with(clocks, slots)
    next_runs = []

    async def job() -> None:
        if len(slots) == 3:  # rescheduled from its own third run, whose slot is known
            scheduler.reschedule("j", 60)
            next_runs.append(scheduler.next_run("j"))

    scheduler.add("j", 0.03, job, first_within=0.03)
    scheduler.start()
    await asyncio.sleep(0.25)
    await scheduler.stop()
    assert len(slots) == 3
    assert next_runs == [slots[2].planned_at + timedelta(seconds=60)]


async def test_a_removed_job_plans_no_more_slots_but_its_run_finishes() -> None:
    clocks, slots = Clocks(), []
    scheduler = scheduler_with(clocks, slots)
    finished = asyncio.Event()

    async def job() -> None:
        await asyncio.sleep(0.05)
        finished.set()

    scheduler.add("j", 0.03, job, first_within=0)
    scheduler.add("other", 60, noop, first_within=0)
    scheduler.start()
    await asyncio.sleep(0.01)
    assert scheduler.remove("j") is True
    assert scheduler.remove("j") is False
    count = len([slot for slot in slots if slot.job == "j"])
    await asyncio.wait_for(finished.wait(), 1)
    await asyncio.sleep(0.1)
    await scheduler.stop()
    assert set(scheduler.jobs()) == {"other"}
    assert scheduler.next_run("j") is None
    assert len([slot for slot in slots if slot.job == "j"]) == count


async def test_adding_an_existing_name_replaces_the_job() -> None:
    scheduler = IntervalScheduler()
    calls: list[str] = []

    async def old() -> None:
        calls.append("old")

    async def new() -> None:
        calls.append("new")

    scheduler.add("j", 0.03, old, first_within=0.5)
    scheduler.add("j", 0.03, new, first_within=0)
    scheduler.start()
    await asyncio.sleep(0.1)
    await scheduler.stop()
    assert calls and set(calls) == {"new"}


async def test_jobs_expose_interval_next_and_last_run_as_wall_times() -> None:
    clocks, slots = Clocks(), []
    scheduler = scheduler_with(clocks, slots)
    scheduler.add("j", 30, noop, first_within=0)
    assert scheduler.next_run("j") is None  # not running: nothing is planned
    assert scheduler.jobs()["j"].last_started_at is None
    scheduler.start()
    await asyncio.sleep(0.02)
    entry = scheduler.jobs()["j"]
    assert entry.interval_s == 30
    assert entry.last_started_at == slots[0].started_at
    # A quick first run, then the job's own grid: 15 to 45 s on.
    assert 15 <= seconds(entry.next_at - slots[0].planned_at) < 45
    assert scheduler.next_run("j") == entry.next_at
    assert scheduler.next_run("unknown") is None
    await scheduler.stop()


@pytest.mark.parametrize("batch_s", [0.0, 0.08])
async def test_jobs_due_within_the_batch_start_with_one_wake_up_never_late_by_it(
    batch_s: float,
) -> None:
    """Ten first runs due over 60 ms: without a batch each starts at its own time; with an
    80 ms batch the first wake-up starts them all, the later ones early (never by more
    than the batch), and their grids stay where they were planned."""
    clocks, slots = Clocks(), []
    scheduler = scheduler_with(clocks, slots, rng=random.Random(3), batch_s=batch_s)
    starts: list[float] = []

    async def job() -> None:
        starts.append(time.monotonic())

    for n in range(10):
        scheduler.add(f"job{n}", 10.0, job, first_within=0.06)
    planned = sorted(entry.due for entry in scheduler.jobs().values())
    assert planned[-1] - planned[0] > 0.04  # the first runs are spread over the window
    scheduler.start()
    await until(lambda: len(starts) == 10)
    await scheduler.stop()
    lateness = [slot.lateness_s for slot in slots if slot.lateness_s is not None]
    assert len(lateness) == 10
    if batch_s:
        assert max(starts) - min(starts) < 0.03  # one wake-up started them all
        assert min(lateness) < -0.02  # the later ones early...
        assert min(lateness) > -batch_s  # ...by no more than the batch
    else:
        assert max(starts) - min(starts) > 0.03
        assert min(lateness) >= 0

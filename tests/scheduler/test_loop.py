"""The interval scheduler: runs on a fixed grid, never overlaps a job, survives failures."""

from __future__ import annotations

import asyncio
import itertools
import time

from apiwatch.scheduler.loop import IntervalScheduler


async def test_jobs_run_on_their_interval_and_stop_cleanly() -> None:
    scheduler = IntervalScheduler()
    runs: list[float] = []

    async def job() -> None:
        runs.append(time.monotonic())

    scheduler.add("tick", 0.05, job, first_within=0)
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


async def test_a_slow_job_is_not_started_twice() -> None:
    scheduler = IntervalScheduler()
    running = 0
    peak = 0

    async def slow() -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.12)
        running -= 1

    scheduler.add("slow", 0.03, slow, first_within=0)
    scheduler.start()
    await asyncio.sleep(0.3)
    await scheduler.stop()
    assert peak == 1
    assert scheduler.jobs()["slow"].overlaps >= 3


async def test_a_failing_job_keeps_its_schedule() -> None:
    scheduler = IntervalScheduler()
    calls = 0

    async def boom() -> None:
        nonlocal calls
        calls += 1
        raise RuntimeError("upstream garbage")

    scheduler.add("boom", 0.03, boom, first_within=0)
    scheduler.start()
    # Long enough that the first logged traceback (slow to format the first time) cannot
    # starve the count: what matters is that runs continue after failures.
    await asyncio.sleep(0.6)
    await scheduler.stop()
    assert calls >= 3


async def test_first_runs_are_spread_within_the_window() -> None:
    scheduler = IntervalScheduler()

    async def noop() -> None:
        return None

    now = time.monotonic()
    for i in range(50):
        scheduler.add(f"j{i}", 60, noop, first_within=2.0)
    offsets = [job.next_at - now for job in scheduler.jobs().values()]
    assert all(-0.01 <= offset <= 2.01 for offset in offsets)
    assert max(offsets) - min(offsets) > 1.0  # spread, not one burst


async def test_after_a_stall_missed_slots_are_skipped_not_burst() -> None:
    scheduler = IntervalScheduler()
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
    assert scheduler.jobs()["j"].overlaps >= 8

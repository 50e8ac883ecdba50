"""The scheduler's run limit: a semaphore whose limit follows the event loop's lag, so an
overloaded process runs fewer slots at once (each measured honestly) and skips the rest."""

from __future__ import annotations

import asyncio
import time

import pytest

from apiwatch.scheduler.loop import SKIP_OVERLAP, IntervalScheduler
from apiwatch.scheduler.pacing import RunLimit


async def hold(limit: RunLimit, release: asyncio.Event, log: list[int]) -> None:
    async with limit:
        log.append(limit.active)
        await release.wait()


async def test_no_more_than_the_limit_run_at_once_and_waiters_go_in_order() -> None:
    limit = RunLimit(3, target_lag_s=0)
    release = asyncio.Event()
    seen: list[int] = []
    holders = [asyncio.create_task(hold(limit, release, seen)) for _ in range(3)]
    await asyncio.sleep(0)
    assert limit.active == 3
    order: list[int] = []

    async def waiter(n: int) -> None:
        async with limit:
            order.append(n)

    waiters = [asyncio.create_task(waiter(n)) for n in range(5)]
    await asyncio.sleep(0.01)
    assert (limit.active, limit.waiting, order) == (3, 5, [])
    release.set()
    await asyncio.gather(*holders, *waiters)
    assert order == [0, 1, 2, 3, 4]
    assert max(seen) == 3
    assert (limit.active, limit.waiting) == (0, 0)


async def test_a_cancelled_waiter_gives_up_its_place() -> None:
    limit = RunLimit(1, target_lag_s=0)
    await limit.acquire()
    first = asyncio.create_task(limit.acquire())
    second = asyncio.create_task(limit.acquire())
    await asyncio.sleep(0)
    first.cancel()
    limit.release()  # the place goes to `first`, cancelled meanwhile: it must pass it on
    await asyncio.wait_for(second, 1)
    assert first.cancelled()
    assert (limit.active, limit.waiting) == (1, 0)
    limit.release()
    assert limit.active == 0


def busy(limit: RunLimit, active: int) -> None:
    limit.active = active
    limit._peak_active = active  # as if `active` runs had held places all period


def test_lag_above_the_target_cuts_the_limit_while_runs_use_it_and_never_below_the_floor():
    limit = RunLimit(200, target_lag_s=0.01, floor=8)
    busy(limit, 200)
    limit.judge(0.07)
    assert limit.limit == 140
    assert limit.cuts == 1
    for _ in range(30):
        busy(limit, limit.limit)
        limit.judge(0.07)
    assert limit.limit == 8


def test_lag_that_runs_do_not_cause_cuts_nothing():
    # Three probes in flight of 50 allowed: a slow request elsewhere lags the loop, and
    # fewer places would not help.
    limit = RunLimit(50, target_lag_s=0.01)
    busy(limit, 3)
    limit.judge(0.2)
    assert limit.limit == 50


def test_the_limit_grows_back_once_the_lag_is_small_and_holds_in_between():
    limit = RunLimit(200, target_lag_s=0.01, floor=8)
    limit.limit = 8
    busy(limit, 8)
    limit.judge(0.007)  # between half the target and the target: hold
    assert limit.limit == 8
    steps = 0
    while limit.limit < 200:
        limit.judge(0.001)
        steps += 1
    assert limit.limit == 200
    assert steps <= 16  # a quarter more each second: from the floor in well under a minute


def test_without_a_target_the_limit_stays_at_the_ceiling():
    limit = RunLimit(50, target_lag_s=0)
    busy(limit, 50)
    limit.judge(5.0)
    assert limit.limit == 50
    assert limit.lag_s == 5.0


async def test_a_grown_limit_lets_waiters_in_at_once() -> None:
    limit = RunLimit(4, target_lag_s=0.01, floor=1)
    limit.limit = 1
    await limit.acquire()
    waiters = [asyncio.create_task(limit.acquire()) for _ in range(3)]
    await asyncio.sleep(0)
    assert limit.waiting == 3
    limit.judge(0.0)  # 1 -> 2
    limit.judge(0.0)  # 2 -> 3
    await asyncio.sleep(0)
    assert (limit.limit, limit.active, limit.waiting) == (3, 3, 1)
    for task in waiters:
        task.cancel()
    await asyncio.gather(*waiters, return_exceptions=True)


async def test_the_lag_readings_see_a_blocked_loop() -> None:
    limit = RunLimit(10, target_lag_s=0.01, sample_s=0.01, period_s=0.3)
    busy(limit, 10)
    limit.start()
    try:
        loop = asyncio.get_running_loop()
        end = loop.time() + 1.5
        while loop.time() < end:
            time.sleep(0.04)  # the loop's thread busy 40 ms at a time
            await asyncio.sleep(0)
            busy(limit, 10)
    finally:
        await limit.stop()
    assert limit.lag_s >= 0.02
    assert limit.limit < 10


@pytest.mark.serial
async def test_an_overloaded_scheduler_runs_fewer_at_once_and_skips_slots_as_overlaps() -> None:
    # 60 jobs every 100 ms, each holding the loop's thread 4 ms: 2.4 s of work a second
    # demanded of one thread. With the limit following the lag, fewer run at once, and the
    # slots their jobs cannot take are skipped and counted.
    scheduler = IntervalScheduler(concurrency=60, target_lag_s=0.01)
    scheduler.limit.sample_s = 0.01
    scheduler.limit.period_s = 0.2
    most = 0

    def job_for() -> object:
        async def job() -> None:
            nonlocal most
            most = max(most, scheduler.limit.active)
            for _ in range(2):
                time.sleep(0.002)
                await asyncio.sleep(0)

        return job

    for n in range(60):
        scheduler.add(f"job{n}", 0.1, job_for(), first_within=0.1)
    scheduler.start()
    try:
        await asyncio.sleep(3.0)
        limit_then = scheduler.limit.limit
    finally:
        await scheduler.stop()
    assert most > 40  # at first (nearly) every job ran at once
    assert limit_then < most
    assert scheduler.limit.cuts >= 1
    assert scheduler.skipped[SKIP_OVERLAP] > 0


def test_a_reading_is_kept_to_the_microsecond() -> None:
    limit = RunLimit(10, target_lag_s=0.01, period_s=0.0)
    limit.observe(1.8189616479702408e-13)  # what loop-clock arithmetic gives for "on time"
    assert limit.lag_s == 0.0
    limit.observe(0.0123456789)
    assert limit.lag_s == 0.012346

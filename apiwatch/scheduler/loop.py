"""A small asyncio interval scheduler: which job is due, and when it runs. Timing only.

Each job runs on a fixed grid (planned = previous planned + interval) so lateness does not
accumulate; a run that is still going when the next is due is not started twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import structlog

log = structlog.get_logger("apiwatch.scheduler")

Job = Callable[[], Awaitable[object]]


@dataclass
class ScheduledJob:
    name: str
    interval_s: float
    job: Job
    next_at: float
    last_started_at: float | None = None
    runs: int = 0
    overlaps: int = 0
    running: bool = False
    task: asyncio.Task[None] | None = field(default=None, repr=False)


class IntervalScheduler:
    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        concurrency: int = 50,
        jitter: float = 0.1,
        rng: random.Random | None = None,
    ) -> None:
        self._clock = clock
        self._jitter = jitter
        self._rng = rng or random.Random()
        self._limit = asyncio.Semaphore(concurrency)
        self._jobs: dict[str, ScheduledJob] = {}
        self._running = False

    def add(
        self, name: str, interval_s: float, job: Job, *, first_within: float | None = None
    ) -> None:
        """Schedule `job` every `interval_s`; the first run falls at random in a window.

        The window is `first_within` seconds, or the jitter fraction of the interval, so jobs
        added together are spread out rather than fired in one burst.
        """
        window = self._jitter * interval_s if first_within is None else first_within
        first_in = self._rng.uniform(0, window)
        entry = ScheduledJob(name, interval_s, job, self._clock() + first_in)
        self._jobs[name] = entry
        if self._running:
            entry.task = asyncio.create_task(self._loop(entry), name=f"job:{name}")

    def jobs(self) -> dict[str, ScheduledJob]:
        return dict(self._jobs)

    def start(self) -> None:
        self._running = True
        for entry in self._jobs.values():
            if entry.task is None:
                entry.task = asyncio.create_task(self._loop(entry), name=f"job:{entry.name}")

    async def stop(self) -> None:
        self._running = False
        tasks = [entry.task for entry in self._jobs.values() if entry.task is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for entry in self._jobs.values():
            entry.task = None

    async def _loop(self, entry: ScheduledJob) -> None:
        runs: set[asyncio.Task[None]] = set()
        try:
            while True:
                delay = entry.next_at - self._clock()
                if delay > 0:
                    await asyncio.sleep(delay)
                # After a stall, slots already missed are skipped, not run in a burst.
                missed = int((self._clock() - entry.next_at) // entry.interval_s)
                entry.next_at += (missed + 1) * entry.interval_s
                entry.overlaps += missed
                if entry.running:
                    entry.overlaps += 1
                    continue
                entry.running = True  # set before the task starts, so no slot can double it
                task = asyncio.create_task(self._run(entry))
                runs.add(task)
                task.add_done_callback(runs.discard)
        finally:
            for task in runs:
                task.cancel()

    async def _run(self, entry: ScheduledJob) -> None:
        try:
            async with self._limit:
                entry.last_started_at = self._clock()
                entry.runs += 1
                await entry.job()
        except Exception:  # a failing job must not stop the schedule
            log.exception("job_failed", job=entry.name)
        finally:
            entry.running = False

"""The interval scheduler: which job is due, when it runs, and how late. Timing only.

Each job runs on a fixed grid (next planned = previous planned + interval) so lateness does
not accumulate; a quick first run may come before the job settles onto its grid (see
`IntervalScheduler.add`). A slot that comes while the job's previous run is still going is skipped
("overlap"), and slots that went by while the event loop was stalled are skipped ("missed"),
not run in a burst. Every planned slot is reported once through `on_slot`: when its run
starts, or when it is skipped.

One timer task serves every job from a heap of due times, rather than one sleeping task per
job: at 10,000 jobs that is one wake-up per due instant instead of 10,000 sleeping tasks, and
due jobs start in planned order. With `batch_s`, a wake-up also starts the jobs due within
that long after it, up to `batch_s` early (an early start is on time): at a thousand probes a
second a wake-up then serves about ten probes instead of one, and what each wake-up of the
event loop costs (the timer, the poll; measured mostly as user time, not system calls) is
shared by them.

Each run is its own task, so a slow job only holds its own slot, and at most `concurrency`
run at once: a run waiting for a free place is late, and its lateness (start - planned) is
measured when its body actually starts. With `target_lag_s` that bound is lowered while the
event loop lags and raised again as it catches up (`apiwatch.scheduler.pacing`): an
overloaded process runs fewer slots, each measured honestly, and skips the rest as
overlaps, rather than running them all slowly.

Times are planned on the monotonic clock; wall-clock (UTC) times are derived from it, see
`apiwatch.scheduler.slots.WallTime`.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime

import structlog

from apiwatch.domain import utcnow
from apiwatch.scheduler.pacing import RunLimit
from apiwatch.scheduler.slots import SKIP_MISSED, SKIP_OVERLAP, Slot, WallTime, current_slot

__all__ = [
    "SKIP_MISSED",
    "SKIP_OVERLAP",
    "IntervalScheduler",
    "Job",
    "OnSlot",
    "ScheduledJob",
    "Slot",
    "current_slot",
]

log = structlog.get_logger("apiwatch.scheduler")

Job = Callable[[], Awaitable[object]]
OnSlot = Callable[[Slot], None]

# Successive first runs step through the window by the golden ratio (a low-discrepancy
# sequence): N jobs added together land about window/N apart, where uniform random draws
# clump, and each clump is a burst of requests that starts late.
_GOLDEN_STEP = (math.sqrt(5) - 1) / 2

# After a very long stall (a laptop suspended for a day with a 1 s job) reporting every
# missed slot would flood `on_slot`; past this many per stall only the count is kept.
_MAX_MISSED_REPORTED = 1000

_MIN_SLEEP_S = 0.001


@dataclass(eq=False)
class ScheduledJob:
    """A job as the scheduler holds it; live, so counters can be read while it runs.

    `due`, `last_planned` and `origin` (when the job was placed on a running scheduler) are
    monotonic readings; `next_at` and `last_started_at` are the same instants as UTC wall
    times. `phase` is where in its interval the job's grid lies, as a fraction.
    """

    name: str
    interval_s: float
    job: Job
    due: float
    first_in: float
    phase: float
    wall: WallTime = field(repr=False)
    last_planned: float | None = None
    last_started: float | None = None
    runs: int = 0
    overlaps: int = 0
    missed: int = 0
    running: bool = False
    origin: float | None = None
    token: int = field(default=-1, repr=False)

    @property
    def next_at(self) -> datetime:
        return self.wall.at(self.due)

    @property
    def last_started_at(self) -> datetime | None:
        return None if self.last_started is None else self.wall.at(self.last_started)


class IntervalScheduler:
    """Runs async jobs on fixed interval grids; see the module docstring.

    `clock` is monotonic seconds and must run at real speed (the timer sleeps on the event
    loop's clock); tests may shift it forward to stand for a stall. `wall_clock` gives UTC
    datetimes for reported times. `jitter` is the default first-run window as a fraction of
    the interval. `on_slot` must not block: it is called on the event loop for every slot.
    `target_lag_s` > 0 lets the number of runs at once follow the event loop's lag, up to
    `concurrency` (`limit` says where it stands). `skipped` counts skipped slots by reason.
    """

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], datetime] = utcnow,
        concurrency: int = 50,
        jitter: float = 0.1,
        rng: random.Random | None = None,
        on_slot: OnSlot | None = None,
        target_lag_s: float = 0.0,
        batch_s: float = 0.0,
    ) -> None:
        self._clock = clock
        # Jobs due within this long of a wake-up start with it (up to `batch_s` early).
        self._batch_s = batch_s
        self._wall = WallTime(clock=clock, wall_clock=wall_clock)
        self._jitter = jitter
        self._phase = (rng or random.Random()).random()
        self.limit = RunLimit(concurrency, target_lag_s=target_lag_s)
        self.skipped = {SKIP_OVERLAP: 0, SKIP_MISSED: 0}
        self._on_slot = on_slot
        self._jobs: dict[str, ScheduledJob] = {}
        self._heap: list[tuple[float, int, ScheduledJob]] = []
        self._tokens = itertools.count()
        self._timer: asyncio.Task[None] | None = None
        self._runs: set[asyncio.Task[None]] = set()
        self._wake: asyncio.Future[None] | None = None
        self._sleep_until = math.inf

    @property
    def running(self) -> bool:
        return self._timer is not None

    def add(
        self, name: str, interval_s: float, job: Job, *, first_within: float | None = None
    ) -> None:
        """Schedule `job` every `interval_s`; the first run falls within a window from now
        (from `start()` if not yet started).

        The window is `first_within` seconds, or the jitter fraction of the interval. Jobs
        added one after another are spread evenly over their windows, not fired in one
        burst. A window shorter than the interval gives a quick first run; from the second
        run on, the job's grid is spread evenly over the whole interval instead (the same
        fraction of the interval as of the window), so 10,000 jobs make a steady stream
        rather than a burst every interval. The second run comes between half an interval
        and one and a half after the first. Adding a name that exists replaces that job (a
        run in progress finishes).
        """
        if interval_s <= 0:
            raise ValueError(f"interval_s must be positive, got {interval_s}")
        window = self._jitter * interval_s if first_within is None else first_within
        self._phase = (self._phase + _GOLDEN_STEP) % 1.0
        first_in = min(max(0.0, window), interval_s) * self._phase
        old = self._jobs.get(name)
        if old is not None:
            old.token = -1
        now = self._clock()
        entry = ScheduledJob(
            name, interval_s, job, now + first_in, first_in, self._phase, self._wall
        )
        self._jobs[name] = entry
        if self.running:
            entry.origin = now
            self._push(entry)

    def reschedule(self, name: str, interval_s: float) -> None:
        """Change a job's interval from its next slot on.

        The next slot becomes the last planned slot + the new interval (or now, if that has
        passed), and the grid continues from there; a job whose first run is still pending
        keeps its first run time. Raises KeyError for an unknown job.
        """
        if interval_s <= 0:
            raise ValueError(f"interval_s must be positive, got {interval_s}")
        entry = self._jobs[name]
        entry.interval_s = interval_s
        if entry.last_planned is None:
            return
        entry.due = max(entry.last_planned + interval_s, self._clock())
        if self.running:
            self._push(entry)

    def remove(self, name: str) -> bool:
        """Stop planning `name`; a run in progress finishes. False if there was no such job."""
        entry = self._jobs.pop(name, None)
        if entry is None:
            return False
        entry.token = -1
        return True

    def jobs(self) -> dict[str, ScheduledJob]:
        return dict(self._jobs)

    def next_run(self, name: str) -> datetime | None:
        """When `name` runs next (UTC), or None if it is unknown or the scheduler is stopped."""
        entry = self._jobs.get(name)
        if entry is None or not self.running:
            return None
        return entry.next_at

    def start(self) -> None:
        if self._timer is not None:
            return
        now = self._clock()
        self._wall.resync()
        for entry in self._jobs.values():
            if entry.origin is None:
                entry.origin = now
                entry.due = now + entry.first_in
            elif entry.due < now:
                # Restarted after a stop: the stopped time was not planned, so nothing in it
                # counts as missed; the grid resumes at its next point.
                entry.due += math.ceil((now - entry.due) / entry.interval_s) * entry.interval_s
            self._push(entry)
        self._timer = asyncio.create_task(self._tick(), name="scheduler")
        self.limit.start()

    async def stop(self) -> None:
        """Stop planning and cancel runs in progress; the jobs stay, so `start()` resumes."""
        # A job may stop the scheduler it runs under; it cannot wait for itself.
        tasks = [task for task in self._runs if task is not asyncio.current_task()]
        if self._timer is not None:
            tasks.append(self._timer)
        self._timer = None
        await self.limit.stop()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._heap.clear()
        for entry in self._jobs.values():
            entry.running = False

    def _push(self, entry: ScheduledJob) -> None:
        entry.token = next(self._tokens)
        heapq.heappush(self._heap, (entry.due, entry.token, entry))
        if self._wake is not None and entry.due < self._sleep_until:
            _resolve(self._wake)

    async def _tick(self) -> None:
        loop = asyncio.get_running_loop()
        heap = self._heap
        while True:
            self._wall.resync()
            now = self._clock()
            horizon = now + self._batch_s
            while heap and heap[0][0] <= horizon:
                _, token, entry = heapq.heappop(heap)
                if entry.token == token:  # else replaced, rescheduled or removed since
                    self._fire(entry, now, loop)
            self._sleep_until = heap[0][0] if heap else math.inf
            wake: asyncio.Future[None] = loop.create_future()
            self._wake = wake
            handle = None
            if heap:
                # uvloop's timers have 1 ms granularity and may fire up to 1 ms early; a
                # shorter sleep would spin until the head is due (measured: ~35 wake-ups
                # per slot at 10,000 jobs). Sleeping at least 1 ms costs at most 1 ms.
                remaining = self._sleep_until - self._clock()
                delay = 0.0 if remaining <= 0 else max(remaining, _MIN_SLEEP_S)
                handle = loop.call_later(delay, _resolve, wake)
            try:
                await wake
            finally:
                self._wake = None
                if handle is not None:
                    handle.cancel()

    def _fire(self, entry: ScheduledJob, now: float, loop: asyncio.AbstractEventLoop) -> None:
        interval = entry.interval_s
        planned = entry.due
        if now - planned >= interval:
            # The loop stalled past whole slots: they are reported, not run in a burst; only
            # the latest passed slot runs.
            missed = int((now - planned) // interval)
            for k in range(min(missed, _MAX_MISSED_REPORTED)):
                self._emit(
                    Slot(entry.name, self._wall.at(planned + k * interval), skipped=SKIP_MISSED)
                )
            entry.missed += missed
            self.skipped[SKIP_MISSED] += missed
            planned += missed * interval
        entry.due = planned + interval
        grid_offset = entry.phase * interval
        if (
            entry.last_planned is None
            and entry.origin is not None
            and entry.first_in != grid_offset
        ):
            # After a quick first run the job moves onto its spread grid (origin + phase of
            # the interval, repeated): the first grid point at least half an interval on.
            grid = entry.origin + grid_offset
            entry.due = planned + interval / 2 + (grid - planned - interval / 2) % interval
        entry.last_planned = planned
        self._push(entry)
        if entry.running:
            entry.overlaps += 1
            self.skipped[SKIP_OVERLAP] += 1
            self._emit(Slot(entry.name, self._wall.at(planned), skipped=SKIP_OVERLAP))
            return
        entry.running = True  # set before the run starts, so no later slot can double it
        task = loop.create_task(self._run(entry, planned), name=f"job:{entry.name}")
        self._runs.add(task)
        task.add_done_callback(self._runs.discard)

    async def _run(self, entry: ScheduledJob, planned: float) -> None:
        try:
            async with self.limit:
                now = self._clock()
                slot = Slot(entry.name, self._wall.at(planned), self._wall.at(now), now - planned)
                entry.last_started = now
                entry.runs += 1
                self._emit(slot)
                # Each run is its own task with its own copy of the context: no reset needed.
                current_slot.set(slot)
                await entry.job()
        except Exception:  # a failing job must not stop the schedule
            log.exception("job_failed", job=entry.name)
        finally:
            entry.running = False

    def _emit(self, slot: Slot) -> None:
        if self._on_slot is None:
            return
        try:
            self._on_slot(slot)
        except Exception:  # a failing observer must not stop the schedule
            log.exception("on_slot_failed", job=slot.job)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)

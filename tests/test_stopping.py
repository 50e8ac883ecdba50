"""Stopping background tasks: a cancellation a library swallowed does not hang the stop."""

from __future__ import annotations

import asyncio

from structlog.testing import capture_logs

from apiwatch.stopping import stop_tasks


async def test_a_task_that_swallows_one_cancellation_is_cancelled_again_and_stops() -> None:
    wake = asyncio.Event()
    swallowed = 0

    async def loop() -> None:
        nonlocal swallowed
        while True:
            try:
                await asyncio.sleep(3600)  # a library's await that eats the cancellation
            except asyncio.CancelledError:
                swallowed += 1
                if swallowed > 1:
                    raise
                asyncio.current_task().uncancel()  # what swallowing looks like to asyncio
            await wake.wait()  # our own wait: a later cancellation comes through here

    task = asyncio.create_task(loop())
    await asyncio.sleep(0)
    await asyncio.wait_for(stop_tasks([task], wait_s=0.05), 2.0)
    assert task.cancelled()
    assert swallowed == 1  # the second cancellation reached `wake.wait()`, not the sleep


async def test_a_task_that_never_stops_is_left_behind_with_a_warning() -> None:
    stop = asyncio.Event()

    async def stubborn() -> None:
        while not stop.is_set():
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                asyncio.current_task().uncancel()

    task = asyncio.create_task(stubborn(), name="stubborn-loop")
    await asyncio.sleep(0)
    try:
        with capture_logs() as events:
            await asyncio.wait_for(stop_tasks([task], wait_s=0.02, tries=3), 2.0)
        assert not task.done()
        assert [(e["event"], e["tasks"], e["cancellations"]) for e in events] == [
            ("tasks_left_running", ["stubborn-loop"], 3)
        ]
    finally:
        stop.set()
        task.cancel()
        await asyncio.wait({task}, timeout=1.0)
    assert task.done()


async def test_finished_and_failed_tasks_do_not_raise_from_the_stop() -> None:
    async def fails() -> None:
        raise RuntimeError("broke while running")

    async def idle() -> None:
        await asyncio.sleep(3600)

    failed, waiting = asyncio.create_task(fails()), asyncio.create_task(idle())
    await asyncio.sleep(0.01)
    await stop_tasks([failed, waiting])
    assert failed.done() and isinstance(failed.exception(), RuntimeError)
    assert waiting.cancelled()

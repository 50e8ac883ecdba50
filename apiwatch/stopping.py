"""Stopping background tasks at shutdown, even when a library swallows the cancellation.

`task.cancel()` asks a task to stop by raising CancelledError at its next await; a library
that catches it at the wrong moment (redis-py's asyncio client has done so inside a command)
leaves the task running, waiting on its next `await` as if nothing happened, and a
shutdown that awaits it hangs for ever. So a task still running after a short wait is
cancelled again (it is then waiting on our own code, which lets the cancellation through),
and after a few tries it is left behind with a warning instead of holding the stop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

import structlog

log = structlog.get_logger("apiwatch.stopping")

WAIT_S = 1.0
TRIES = 5


async def stop_tasks(
    tasks: Iterable[asyncio.Task[Any]], *, wait_s: float = WAIT_S, tries: int = TRIES
) -> None:
    """Cancel the tasks and wait for them: re-cancelled every `wait_s` seconds while any
    runs, given up (logged) after `tries` cancellations. Their outcomes are not raised."""
    tasks = list(tasks)
    pending = {task for task in tasks if not task.done()}
    for _ in range(tries):
        if not pending:
            break
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=wait_s)
    if pending:
        log.warning(
            "tasks_left_running",
            tasks=sorted(task.get_name() for task in pending),
            cancellations=tries,
        )
    for task in tasks:
        if task.done() and not task.cancelled():
            task.exception()  # retrieved: a failure at shutdown is not an unhandled error

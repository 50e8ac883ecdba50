"""`make demo` keeps its word: the real demo (simulator, apiwatch, timetable, 5 s checks)
runs one cycle, and every expectation it prints ("degraded within 12 s", "online within
45 s", ...) is checked against the statuses its own API reports over that time."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest

from apiwatch.demo import DEMO_INTERVAL_S, TIMETABLE, demo_keys, run_demo
from apiwatch.settings import Settings
from tests.startup.support import free_port


@pytest.mark.slow(100)
async def test_every_printed_expectation_holds_within_its_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in demo_keys().items():
        monkeypatch.setenv(name, value)
    port, sim_port = free_port(), free_port()
    settings = Settings(
        _env_file=None,
        port=port,
        upstream_override=f"http://127.0.0.1:{sim_port}",
        health_interval_s=DEMO_INTERVAL_S,
        database_url=f"sqlite+aiosqlite:///{tmp_path}/demo.db",
        public_read=True,
        log_json=False,
    )
    said: list[tuple[float, str]] = []
    stop = asyncio.Event()
    demo = asyncio.create_task(
        run_demo(
            settings,
            sim_port=sim_port,
            say=lambda line: said.append((time.monotonic(), line)),
            stop=stop,
        )
    )
    # (step, expectation) → when it came true; every one must before its deadline. A step's
    # book check is its expectation number len(step.expect).
    pending = {
        (i, j)
        for i, step in enumerate(TIMETABLE)
        for j in range(len(step.expect) + (step.book_check is not None))
    }
    seen: dict[str, list[tuple[float, str]]] = {}
    problems: list[str] = []
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as http:
            while pending and not problems:
                await asyncio.sleep(0.25)
                assert not demo.done(), demo.exception()
                try:
                    providers = (await http.get("/api/providers")).json()
                except httpx.TransportError:
                    continue  # still starting
                now = time.monotonic()
                for provider in providers:
                    seen.setdefault(provider["id"], []).append((now, provider["status"]))
                for i, j in sorted(pending):
                    step = TIMETABLE[i]
                    printed = [at for at, line in said if line.endswith(step.describe())]
                    if not printed:
                        continue  # not announced yet
                    start = printed[0]
                    if j == len(step.expect):
                        assert step.book_check is not None
                        check, within = step.book_check
                        failing = await book_failures(http, step.provider)
                        alerted = await book_alerts(http, step.provider)
                        if check in failing and check in alerted:
                            pending.discard((i, j))
                        elif now > start + within:
                            problems.append(
                                f"{step.describe()}: {check} not failing and alerted within "
                                f"{within:g} s; failing {sorted(failing)}, alerted "
                                f"{sorted(alerted)}"
                            )
                        continue
                    status, within = step.expect[j]
                    if any(
                        start <= at <= start + within and value == status.value
                        for at, value in seen.get(step.provider, [])
                    ):
                        pending.discard((i, j))
                    elif now > start + within:
                        changes: list[tuple[float, str]] = []
                        for at, value in seen.get(step.provider, []):
                            if at >= start and (not changes or changes[-1][1] != value):
                                changes.append((round(at - start, 1), value))
                        problems.append(
                            f"{step.describe()}: not {status.value} within {within:g} s; "
                            f"seen (seconds after the step, status): {changes}"
                        )
    finally:
        stop.set()
        await asyncio.wait_for(demo, timeout=60)
    assert not problems, "\n".join(problems)
    assert not pending


async def book_failures(http: httpx.AsyncClient, provider: str) -> set[str]:
    """The checks GET /api/data/books lists as failing for the provider's books."""
    body = (await http.get("/api/data/books", params={"provider": provider})).json()
    return {
        check
        for row in body["books"]
        for check, verdict in row["checks"].items()
        if verdict == "failed"
    }


async def book_alerts(http: httpx.AsyncClient, provider: str) -> set[str]:
    """The checks of the provider's firing book_integrity alerts."""
    params = {"provider": provider, "rule": "book_integrity"}
    body = (await http.get("/api/alerts", params=params)).json()
    return {alert["labels"].get("check", "") for alert in body["alerts"]}

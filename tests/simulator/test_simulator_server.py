"""`run_simulator` as `apiwatch simulate` uses it: one line saying where it listens, serving
until Ctrl-C or SIGTERM, then a clean exit."""

from __future__ import annotations

import asyncio
import re
import signal
import sys

import aiohttp
import pytest

SCRIPT = (
    "from apiwatch.simulator import parse_scenario_arg, run_simulator\n"
    "provider, scenario = parse_scenario_arg('binance=down:status=502')\n"
    "run_simulator(host='127.0.0.1', port=0, scenarios={provider: scenario})\n"
)


def _ignore_sigint() -> None:
    # As in a job started in the background by a shell (`cmd &`, CI runners): SIGINT is
    # inherited as ignored, and Python then installs no KeyboardInterrupt handler of its own.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@pytest.mark.parametrize(
    ("stop_signal", "inherit_ignored_sigint"),
    [(signal.SIGINT, False), (signal.SIGINT, True), (signal.SIGTERM, False)],
    ids=["SIGINT", "SIGINT-inherited-as-ignored", "SIGTERM"],
)
async def test_run_simulator_prints_its_url_serves_and_exits_cleanly_on_signal(
    stop_signal: signal.Signals, inherit_ignored_sigint: bool
) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        SCRIPT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        preexec_fn=_ignore_sigint if inherit_ignored_sigint else None,
    )
    try:
        assert process.stdout is not None
        line = (await asyncio.wait_for(process.stdout.readline(), timeout=10)).decode()
        match = re.search(r"listening on (http://127\.0\.0\.1:\d+)", line)
        assert match, line
        url = match.group(1)
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{url}/_control/health") as response:
                assert await response.json() == {"ok": True}
            async with http.get(f"{url}/binance/api/v3/ping") as response:
                assert response.status == 502
        process.send_signal(stop_signal)
        _, stderr = await asyncio.wait_for(process.communicate(), timeout=10)
        assert process.returncode == 0, stderr.decode()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()

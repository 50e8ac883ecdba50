"""Keys in a query string never reach a log line in clear; a NUL byte in any query is a 400
(the status every operation declares), never a 500."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from apiwatch.logs import configure_logging
from apiwatch.settings import Settings
from apiwatch.simulator import Simulator
from tests.api.test_api import ADMIN_KEY, serve


@pytest.fixture
def logging_as_served() -> Iterator[None]:
    """`apiwatch serve`'s logging for one test; the previous setup is put back after."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    try:
        yield
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)


async def test_a_key_in_the_query_string_is_redacted_in_the_access_log(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], logging_as_served: None
) -> None:
    configure_logging(level="INFO", json=True)
    async with Simulator(port=0) as sim:
        settings = Settings(
            _env_file=None,
            database_url=f"sqlite+aiosqlite:///{tmp_path / 'small.db'}",
            upstream_override=sim.url,
            admin_key=ADMIN_KEY,
        )
        server, task, port = await serve(settings)
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
                refused = await client.get(
                    "/api/providers", params={"api_key": ADMIN_KEY, "token": "tok-123456"}
                )
                nul = {
                    path: (await client.get(path, params=params, headers={"X-API-Key": ADMIN_KEY}))
                    for path, params in (
                        ("/api/alerts", {"provider": "a\x00b"}),
                        ("/api/alerts", {"rule": "\x00"}),
                        ("/api/alerts/history", {"provider": "\x00"}),
                        ("/api/usage", {"route": "/x\x00"}),
                    )
                }
            await asyncio.sleep(0.1)
        finally:
            server.should_exit = True
            await task
    assert refused.status_code == 401  # a key in the query string is not accepted
    for path, response in nul.items():
        assert response.status_code == 400, (path, response.text)
        assert "NUL byte" in response.json()["detail"]
    log = capsys.readouterr().err
    assert "/api/providers?api_key=***&token=***" in log
    assert ADMIN_KEY not in log and "tok-123456" not in log

"""Refused requests are counted per minute, status and network, not stored one row each."""

from __future__ import annotations

from pathlib import Path

import httpx
from sqlalchemy import func, select

from apiwatch.inbound.refusal_counts import prefix
from apiwatch.settings import Settings
from apiwatch.simulator import Simulator
from apiwatch.storage.models import ApiRefusal, ApiUsage
from tests.api.test_api import ADMIN_KEY, serve


def test_prefixes_are_a_slash_24_or_a_slash_48() -> None:
    assert prefix("203.0.113.77") == "203.0.113.0/24"
    assert prefix("2001:db8:1:2::5") == "2001:db8:1::/48"
    assert prefix(None) == prefix("not an address") == "unknown"


async def test_a_flood_of_bad_keys_becomes_a_few_counted_rows(tmp_path: Path) -> None:
    async with Simulator(port=0) as sim:
        settings = Settings(
            _env_file=None,
            database_url=f"sqlite+aiosqlite:///{tmp_path / 'refusals.db'}",
            upstream_override=sim.url,
            admin_key=ADMIN_KEY,
            recorder_flush_ms=10,
        )
        server, task, port = await serve(settings)
        runtime = server.config.app.state.runtime
        try:
            async with httpx.AsyncClient(
                base_url=f"http://127.0.0.1:{port}", headers={"X-API-Key": "aw_bad"}
            ) as stranger:
                codes = {(await stranger.get("/api/providers")).status_code for _ in range(200)}
            assert codes == {401, 429}  # refused, then throttled
            runtime.access.flush_refusals(everything=True)
            await runtime.recorder.flush()
            async with runtime.sessions() as session:
                usage_rows = await session.scalar(select(func.count(ApiUsage.id)))
                refusal_rows = await session.scalar(select(func.count(ApiRefusal.id)))
                counted = await session.scalar(select(func.sum(ApiRefusal.count)))
                prefixes = set(await session.scalars(select(ApiRefusal.client_prefix)))
        finally:
            server.should_exit = True
            await task
    assert usage_rows == 0
    assert counted == 200
    assert refusal_rows <= 4  # two statuses, at most two minutes
    assert prefixes == {"127.0.0.0/24"}

"""A real server (uvicorn, scheduler running) whose catalogue files hold one provider,
`filed`, mirroring the simulator's Binance; providers added through the API point at the
simulator too, so nothing leaves 127.0.0.1."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from apiwatch.api.app import create_app
from apiwatch.catalogue.loader import load_catalogue
from apiwatch.settings import Settings
from apiwatch.simulator import Simulator
from tests.conftest import empty_tables

ADMIN = "aw_providers-api-tests-admin-key-000000000"


@dataclass
class Server:
    client: httpx.AsyncClient
    sim: Simulator
    app: Any

    @property
    def runtime(self) -> Any:
        return self.app.state.runtime


def binance_like(sim_url: str, provider_id: str, **fields: Any) -> dict[str, Any]:
    """A provider spec (as JSON) probing the simulator's Binance."""
    return {
        "id": provider_id,
        "name": f"Provider {provider_id}",
        "category": "market_data",
        "base_url": f"{sim_url}/binance",
        "health": {"path": "/api/v3/ping", "expect": [{"status": 200}]},
        **fields,
    }


def write_file_catalogue(directory: Path, sim_url: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "filed.yaml").write_text(
        "id: filed\nname: Filed\ncategory: market_data\n"
        f"base_url: {sim_url}/binance\nhealth:\n  path: /api/v3/ping\n",
        encoding="utf-8",
    )
    return directory


@pytest.fixture
def start_server(migrated_db_url: str, tmp_path: Path) -> Callable[..., Any]:
    """`async with start_server(**settings) as server`: a fresh server on the module's
    database (emptied first unless keep=True)."""

    @asynccontextmanager
    async def start(*, keep: bool = False, **overrides: Any) -> AsyncIterator[Server]:
        if not keep:
            await empty_tables(migrated_db_url)
        async with Simulator(port=0) as sim:
            files = load_catalogue(builtin_dir=write_file_catalogue(tmp_path / "cat", sim.url))
            options: dict[str, Any] = {
                "recorder_flush_ms": 10,
                "admin_key": ADMIN,
                "health_interval_s": 3600.0,
                "collection_enabled": False,
                **overrides,
            }
            settings = Settings(_env_file=None, database_url=migrated_db_url, **options)
            app = create_app(settings, catalogue=files, start_scheduler=True)
            config = uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None, lifespan="on")
            server = uvicorn.Server(config)
            task = asyncio.create_task(server.serve())
            while not server.started:
                if task.done():
                    task.result()
                await asyncio.sleep(0.01)
            port = server.servers[0].sockets[0].getsockname()[1]
            try:
                async with httpx.AsyncClient(
                    base_url=f"http://127.0.0.1:{port}", timeout=30, headers={"X-API-Key": ADMIN}
                ) as client:
                    yield Server(client, sim, app)
            finally:
                server.should_exit = True
                await task

    return start


async def wait_for(condition: Callable[[], Any], *, timeout: float = 15.0) -> Any:
    """Poll `condition` (sync or async) until it returns something truthy."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = condition()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)

"""Breaker persistence: one save in flight, later transitions gathered into the next one,
nothing cancelled mid-transaction at shutdown; and on a real SQLite database, many
transitions at once end with every breaker stored and the write lock free."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import text

from apiwatch.runtime.breaker_saves import BreakerSaves
from apiwatch.storage.db import create_engine, create_sessionmaker
from apiwatch.storage.migrate import upgrade
from apiwatch.storage.repositories.breakers import load_breakers, save_breakers


class HeldSaves:
    """A save function whose calls wait until released, remembering what each asked for."""

    def __init__(self) -> None:
        self.calls: list[set[str] | None] = []
        self.release = asyncio.Event()
        self.fail_next = False

    async def __call__(self, providers: set[str] | None) -> None:
        self.calls.append(None if providers is None else set(providers))
        await self.release.wait()
        if self.fail_next:
            self.fail_next = False
            raise RuntimeError("database is locked")


async def test_transitions_during_a_save_are_gathered_into_the_next_one() -> None:
    save = HeldSaves()
    saves = BreakerSaves(save)
    saves.changed("okx")
    await asyncio.sleep(0)
    for provider in ("bybit", "kraken", "bybit"):
        saves.changed(provider)
    await asyncio.sleep(0)
    assert save.calls == [{"okx"}]  # one in flight, the rest waiting
    save.release.set()
    await saves.flush()
    assert save.calls == [{"okx"}, {"bybit", "kraken"}]


async def test_close_waits_for_the_save_in_flight_then_saves_everything() -> None:
    save = HeldSaves()
    saves = BreakerSaves(save)
    saves.changed("okx")
    await asyncio.sleep(0)
    closing = asyncio.ensure_future(saves.close())
    await asyncio.sleep(0.01)
    assert not closing.done()  # not cancelled: waiting for the running save
    saves.changed("bybit")  # after close began: covered by the final full save
    save.release.set()
    await closing
    assert save.calls == [{"okx"}, None]


async def test_a_failed_save_keeps_its_providers_for_the_next() -> None:
    save = HeldSaves()
    save.fail_next = True
    save.release.set()
    saves = BreakerSaves(save)
    saves.changed("okx")
    await saves.flush()
    saves.changed("bybit")
    await saves.flush()
    assert save.calls == [{"okx"}, {"okx", "bybit"}]


@pytest.mark.parametrize("transitions", [200])
async def test_many_transitions_on_sqlite_leave_every_breaker_stored(
    tmp_path: Path, transitions: int
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'b.db'}"
    await upgrade(url)
    engine = create_engine(url)
    sessions = create_sessionmaker(engine)
    states: dict[str, dict[str, object]] = {}
    transactions = 0

    async def save(providers: set[str] | None) -> None:
        nonlocal transactions
        transactions += 1
        wanted = sorted(states) if providers is None else sorted(providers)
        async with sessions() as session:
            await save_breakers(session, snapshot={pid: states[pid] for pid in wanted})

    saves = BreakerSaves(save)
    try:
        for n in range(transitions):
            provider = f"p{n % 50}"
            states[provider] = {"state": "open", "consecutive_failures": n, "opened_at": 1.0}
            saves.changed(provider)
            if n % 7 == 0:
                await asyncio.sleep(0)
        await saves.close()
        assert transactions < transitions / 4  # gathered, not one transaction per transition
        async with sessions() as session:
            stored = await load_breakers(session)
            # The write lock is free: another writer gets in at once.
            await session.execute(text("DELETE FROM circuit_breakers WHERE provider = 'p0'"))
            await session.commit()
        assert len(stored) == 50
        assert all(
            stored[pid]["consecutive_failures"] == states[pid]["consecutive_failures"]
            for pid in states
        )
    finally:
        await engine.dispose()

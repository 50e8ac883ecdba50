"""After a restart without Redis, endpoint and key tiers get their current periods back
from the stored attempts, like the provider-wide one: an endpoint or a key whose own
window was full before the restart is still refused after it (SQLite and PostgreSQL)."""

from __future__ import annotations

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from structlog.testing import capture_logs

from apiwatch.budget.gate import BudgetGate
from apiwatch.catalogue.loader import load_catalogue
from apiwatch.domain import utcnow
from apiwatch.runtime.budget_restore import LOGGED_PROVIDERS, restore_budgets
from apiwatch.storage.models import TABLES


def attempt(endpoint: str, key_label: str | None, outcome: str = "ok") -> dict:
    return {
        "provider": "acme",
        "endpoint": endpoint,
        "outcome": outcome,
        "latency_ms": 10.0,
        "final": True,
        "key_label": key_label,
        "started_at": utcnow(),
    }


async def test_endpoint_and_key_windows_are_restored_from_the_attempts(
    db_sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    rows = [
        *[attempt("books", "ACME_KEY=ab…yz") for _ in range(3)],
        attempt("ticker", "ACME_KEY=ab…yz"),
        attempt("ticker", "ACME_KEY_2=cd…wx"),
        attempt("books", None, outcome="skipped"),  # never sent: counts nowhere
    ]
    async with db_sessionmaker() as session, session.begin():
        await session.execute(insert(TABLES["connection_attempts"]), rows)

    def fresh_gate() -> BudgetGate:  # what a restarted process starts with: nothing counted
        return BudgetGate(
            {"acme": {"day": 100}},
            endpoint_limits={"acme": {"books": {"day": 3}}},
            key_limits={"acme": {"day": 4}},
        )

    gate = fresh_gate()
    restored = await restore_budgets(gate, load_catalogue(), db_sessionmaker)
    assert restored["acme"]["day"] == 5  # provider-wide: every request sent
    # The endpoint's own day is full (3 of 3) ...
    refused = await gate.acquire("acme", endpoint="books", key="ACME_KEY_2")
    assert (refused.allowed, refused.tier, refused.scope) == (False, "endpoint", "books")
    # ... and so is the first key's (4 of 4), while the second key has room (1 of 4).
    by_key = await gate.acquire("acme", endpoint="ticker", key="ACME_KEY")
    assert (by_key.allowed, by_key.tier, by_key.scope) == (False, "key", "ACME_KEY")
    assert (await gate.acquire("acme", endpoint="ticker", key="ACME_KEY_2")).allowed

    # Without the restore the same gate would have granted both: the test's premise.
    unrestored = fresh_gate()
    assert (await unrestored.acquire("acme", endpoint="books", key="ACME_KEY")).allowed


async def test_the_start_up_line_names_the_busiest_providers_and_counts_the_rest(
    db_sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    many = LOGGED_PROVIDERS + 5
    rows = [
        {**attempt("ticker", None), "provider": f"p{i:02d}"}
        for i in range(many)
        for _ in range(1 + i % 3)  # p02, p05, ... sent three requests: the busiest
    ]
    async with db_sessionmaker() as session, session.begin():
        await session.execute(insert(TABLES["connection_attempts"]), rows)
    gate = BudgetGate({f"p{i:02d}": {"day": 100} for i in range(many)})
    with capture_logs() as events:
        restored = await restore_budgets(gate, load_catalogue(), db_sessionmaker)
    assert len(restored) == many
    [line] = [e for e in events if e["event"] == "budgets_restored"]
    assert len(line["providers"]) == LOGGED_PROVIDERS and line["not_shown"] == 5
    busiest = [f"p{i:02d}" for i in range(many) if i % 3 == 2]
    assert list(line["providers"])[: len(busiest)] == busiest
    assert all(line["providers"][p] == restored[p] for p in line["providers"])

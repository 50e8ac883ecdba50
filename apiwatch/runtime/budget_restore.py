"""Budgets after a restart: the in-process store starts empty, so each window's current
period is restored from what the database holds, the higher of two figures: the requests
stored as attempts since the period began (by endpoint weight), and the highest snapshot of
the window in the period (which includes what a provider itself reported). Endpoints and
keys with limits of their own get their tiers back too, from the attempts (snapshots are
provider-wide). A crash loop therefore never grants a fresh quota. With Redis the store
survives apiwatch and nothing is restored."""

from __future__ import annotations

import time
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from apiwatch.budget.gate import BudgetGate
from apiwatch.budget.windows import period, to_datetime
from apiwatch.catalogue.loader import Catalogue
from apiwatch.storage.repositories import attempts as attempt_repo
from apiwatch.storage.repositories import budgets as budget_repo

log = structlog.get_logger("apiwatch.runtime")

# The second's period is over before a restart is done.
RESTORED_WINDOWS = ("minute", "hour", "day", "month")
# The start-up log names this many providers' figures, the busiest first; the rest are
# counted. Every provider's in one line made a line of half a megabyte at 10,000 providers.
LOGGED_PROVIDERS = 20


async def restore_budgets(
    gate: BudgetGate, catalogue: Catalogue, sessions: async_sessionmaker[AsyncSession]
) -> dict[str, dict[str, int]]:
    """Restore every provider's windows, and those of its endpoints and keys that have
    limits of their own; returns the provider-wide figures restored (provider -> window ->
    used), empty when the store keeps its own counts."""
    now = time.time()
    # (provider, tier) -> window -> used; the tier is "" (provider-wide), ("endpoint", name)
    # or ("key", environment variable).
    figures: dict[tuple[str, Any], dict[str, int]] = {}
    async with sessions() as session:
        for window in RESTORED_WINDOWS:
            since = to_datetime(period(window, now).start)
            sent = await attempt_repo.sent_since(session, since=since)
            snapshots = await budget_repo.highest_used_since(session, window=window, since=since)
            counted: dict[tuple[str, Any], int] = {}
            for (provider, endpoint, label), count in sent.items():
                spec = catalogue.providers.get(provider)
                endpoints = spec.all_endpoints() if spec else {}
                weighted = count * (endpoints[endpoint].weight if endpoint in endpoints else 1)
                tiers: list[Any] = ["", ("endpoint", endpoint)]
                if label:  # "ENV_NAME=abcd…": the key's tier is named by its variable
                    tiers.append(("key", label.split("=", 1)[0]))
                for tier in tiers:
                    counted[provider, tier] = counted.get((provider, tier), 0) + weighted
            for provider, used in snapshots.items():  # snapshots are provider-wide
                counted[provider, ""] = max(counted.get((provider, ""), 0), used)
            for where, used in counted.items():
                if used:
                    figures.setdefault(where, {})[window] = used
    restored: dict[str, dict[str, int]] = {}
    tiers_restored = 0
    for (provider, tier), used in figures.items():
        endpoint = tier[1] if tier and tier[0] == "endpoint" else None
        key = tier[1] if tier and tier[0] == "key" else None
        if await gate.restore(provider, used, endpoint=endpoint, key=key):
            tiers_restored += 1
            if not tier:
                restored[provider] = used
    if restored:
        busiest = sorted(restored.items(), key=lambda item: (-max(item[1].values()), item[0]))
        log.info(
            "budgets_restored",
            providers=dict(busiest[:LOGGED_PROVIDERS]),
            not_shown=max(0, len(restored) - LOGGED_PROVIDERS),
            tiers=tiers_restored,
        )
    return restored

"""Health checks: probe every endpoint in scope of the given providers, concurrently."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Literal

from apiwatch.catalogue.schema import ProviderSpec
from apiwatch.domain import ProbeResult
from apiwatch.probe.engine import ProbeEngine

Scope = Literal["health", "all"]


def endpoint_names(spec: ProviderSpec, scope: Scope) -> list[str]:
    return ["health"] if scope == "health" else list(spec.all_endpoints())


async def run_checks(
    engine: ProbeEngine,
    providers: Iterable[ProviderSpec],
    *,
    scope: Scope = "health",
    concurrency: int = 50,
) -> list[ProbeResult]:
    """Probe every endpoint in scope of `providers` concurrently; every attempt, in order."""
    work = [(spec, name) for spec in providers for name in endpoint_names(spec, scope)]
    if len(work) == 1:
        # A provider's own health job probes one endpoint: awaited in the job's task, with
        # no semaphore, gather and second task per probe (a thousand a second at 1 s).
        spec, name = work[0]
        return list(await engine.probe(spec, name))
    limit = asyncio.Semaphore(concurrency)

    async def one(spec: ProviderSpec, name: str) -> list[ProbeResult]:
        async with limit:
            return await engine.probe(spec, name)

    batches = await asyncio.gather(*(one(spec, name) for spec, name in work))
    return [result for batch in batches for result in batch]

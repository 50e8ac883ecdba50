"""How the probe engine is built from settings: key pools from the environment, the budget
store (memory, or Redis when `REDIS_URL` is set), the breaker and the guard in front of it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import aiohttp

from apiwatch.budget.gate import BudgetGate
from apiwatch.budget.keys import KeyPool
from apiwatch.budget.shared import FallbackState, RedisState
from apiwatch.budget.stores import MemoryBudgetStore, RedisBudgetStore
from apiwatch.budget.stores.fallback import FallbackBudgetStore
from apiwatch.catalogue.loader import Catalogue
from apiwatch.catalogue.schema import ProviderSpec
from apiwatch.dependencies import Dependency
from apiwatch.domain import utcnow
from apiwatch.probe.breaker import CircuitBreaker
from apiwatch.probe.engine import ProbeEngine
from apiwatch.probe.guard import ProbeGuard
from apiwatch.probe.retry import RetryPolicy
from apiwatch.probe.tls import CertificateWatch
from apiwatch.settings import Settings

if TYPE_CHECKING:
    from redis.asyncio import Redis


def key_pools(catalogue: Catalogue, settings: Settings) -> dict[str, KeyPool]:
    names = [name for spec in catalogue.providers.values() for name in spec.auth.keys]
    values = settings.secrets(names)
    return {
        spec.id: KeyPool.from_env(spec.id, spec.auth.keys, values)
        for spec in catalogue.providers.values()
    }


def key_pool(spec: ProviderSpec, settings: Settings) -> KeyPool:
    """One provider's keys, read from the environment variables its spec names."""
    return KeyPool.from_env(spec.id, spec.auth.keys, settings.secrets(spec.auth.keys))


def provider_tiers(spec: ProviderSpec) -> dict[str, Any]:
    """One provider's tiers as `BudgetGate.configure` takes them (ValueError when a window
    is not one the gate knows)."""
    return {
        "limits": spec.rate_limits.windows(),
        "endpoint_limits": {
            name: windows
            for name, endpoint in spec.all_endpoints().items()
            if endpoint.rate_limits is not None and (windows := endpoint.rate_limits.windows())
        },
        "key_limits": spec.key_rate_limits.windows() if spec.key_rate_limits else None,
    }


def tier_limits(catalogue: Catalogue) -> dict[str, dict[str, Any]]:
    """The endpoint and key tiers of every provider, as `BudgetGate` takes them."""
    endpoint_limits = {
        spec.id: {
            name: windows
            for name, endpoint in spec.all_endpoints().items()
            if endpoint.rate_limits is not None and (windows := endpoint.rate_limits.windows())
        }
        for spec in catalogue.providers.values()
    }
    key_limits = {
        spec.id: windows
        for spec in catalogue.providers.values()
        if spec.key_rate_limits is not None and (windows := spec.key_rate_limits.windows())
    }
    return {
        "endpoint_limits": {pid: tiers for pid, tiers in endpoint_limits.items() if tiers},
        "key_limits": key_limits,
    }


def build_engine(
    settings: Settings,
    catalogue: Catalogue,
    http: aiohttp.ClientSession,
    *,
    redis_client: Redis | None = None,
    redis_health: Dependency | None = None,
    emit: Callable[[object], None] = lambda event: None,
) -> ProbeEngine:
    """The probe engine behind its guard: breaker, key pools and budget (Redis when given,
    with the local fallback of `FallbackBudgetStore` while `redis_health` says it is away)."""
    keys = key_pools(catalogue, settings)
    limits = {
        spec.id: windows
        for spec in catalogue.providers.values()
        if (windows := spec.rate_limits.windows())
    }
    prefix = settings.redis_prefix
    store: MemoryBudgetStore | FallbackBudgetStore = MemoryBudgetStore()
    shared: FallbackState | None = None
    if redis_client is not None:
        health = redis_health or redis_dependency(settings)
        store = FallbackBudgetStore(
            RedisBudgetStore(redis_client, prefix=f"{prefix}budget:"),
            health,
            share=settings.budget_local_share,
        )
        # Breakers are a location's own: one location failing must not stop another probing.
        where = f"{settings.location}:" if settings.location else ""
        shared = FallbackState(RedisState(redis_client, prefix=f"{prefix}state:{where}"), health)
    guard = ProbeGuard(
        gate=BudgetGate(
            limits,
            store,
            warn_at=settings.budget_warn_at,
            **tier_limits(catalogue),
        ),
        breaker=CircuitBreaker(
            failure_threshold=settings.breaker_failure_threshold,
            cooldown_s=settings.breaker_cooldown_s,
            on_transition=emit,
        ),
        keys=keys,
        emit=emit,
        shared=shared,
    )
    return ProbeEngine(
        session=http,
        keys=keys,
        upstream_override=settings.upstream_override,
        max_body_bytes=settings.max_body_bytes,
        # Rate-limited retries stop after 5 attempts: past that the next scheduled check is
        # the better probe, and a daily quota would otherwise be polled all day.
        retry=RetryPolicy(rate_limited_max_attempts=5),
        guard=guard,
        certificates=CertificateWatch(refresh_s=settings.tls_refresh_s, clock=utcnow),
    )


def redis_dependency(settings: Settings) -> Dependency:
    share = f"{settings.budget_local_share:.0%}"
    return Dependency("redis", fallback=f"budgets counted in this process, {share} of each window")


def redis_from_settings(settings: Settings) -> Redis | None:
    if not settings.redis_url:
        return None
    # Imported here: a process without Redis does without redis-py (about 8 MB resident).
    from redis.asyncio import BlockingConnectionPool, Redis

    # Short timeouts everywhere (connect, each reply, waiting for a pooled connection): a
    # hung Redis must cost a probe milliseconds, then the fallback takes over for a second.
    timeout = settings.redis_timeout_ms / 1000
    pool = BlockingConnectionPool.from_url(
        settings.redis_url,
        max_connections=64,
        timeout=timeout,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
    )
    return Redis(connection_pool=pool)

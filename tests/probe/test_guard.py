"""The guard in front of the probe, against the simulator: budgets, Retry-After, keys, breaker."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from apiwatch.budget.gate import BudgetGate
from apiwatch.budget.keys import Key, KeyPool
from apiwatch.catalogue.loader import load_catalogue
from apiwatch.catalogue.schema import ProviderSpec, RateLimits
from apiwatch.domain import Outcome
from apiwatch.probe.breaker import CircuitBreaker
from apiwatch.probe.client import create_session
from apiwatch.probe.engine import ProbeEngine
from apiwatch.probe.guard import ProbeGuard
from apiwatch.probe.retry import RetryPolicy
from apiwatch.simulator import Scenario, Simulator

CATALOGUE = load_catalogue()


def spec(provider: str, **limits: int) -> ProviderSpec:
    base = CATALOGUE.providers[provider]
    return base.model_copy(update={"rate_limits": RateLimits(**limits)}) if limits else base


class Rig:
    def __init__(self, sim: Simulator, engine: ProbeEngine, events: list[object]) -> None:
        self.sim, self.engine, self.events = sim, engine, events

    @property
    def guard(self) -> ProbeGuard:
        assert self.engine.guard is not None
        return self.engine.guard

    def sent(self, provider: str) -> int:
        return self.sim.stats()["providers"].get(provider, {}).get("requests", 0)

    async def probe(self, provider: ProviderSpec, endpoint: str = "health"):
        return (await self.engine.probe(provider, endpoint))[-1]


@pytest.fixture
async def rig_for() -> AsyncIterator:
    async with Simulator(port=0) as sim, create_session() as http:

        def build(*specs: ProviderSpec, threshold: int = 5) -> Rig:
            events: list[object] = []
            keys = {
                s.id: KeyPool(s.id, [Key(n, f"key-{n}-0123456789abcdef") for n in s.auth.keys])
                for s in specs
            }
            guard = ProbeGuard(
                gate=BudgetGate(
                    {s.id: s.rate_limits.windows() for s in specs if s.rate_limits.windows()}
                ),
                breaker=CircuitBreaker(failure_threshold=threshold, on_transition=events.append),
                keys=keys,
                emit=events.append,
            )
            return Rig(
                sim,
                ProbeEngine(
                    session=http,
                    keys=keys,
                    upstream_override=sim.url,
                    guard=guard,
                    retry=RetryPolicy(),
                ),
                events,
            )

        yield build


async def test_full_budget_skips_without_sending_and_warns_at_80_percent(rig_for) -> None:
    binance = spec("binance", per_minute=5)
    rig = rig_for(binance)
    results = [await rig.probe(binance) for _ in range(6)]
    assert [r.outcome for r in results] == [Outcome.OK] * 5 + [Outcome.SKIPPED]
    assert results[-1].reason.startswith("rate_limit_budget (minute window full) until ")
    assert rig.sent("binance") == 5
    warnings = [e for e in rig.events if type(e).__name__ == "BudgetWarning"]
    assert [(w.window, w.used, w.limit) for w in warnings] == [("minute", 4, 5)]


async def test_reported_weight_header_wins_over_counting(rig_for) -> None:
    binance = spec("binance")
    rig = rig_for(binance)
    await rig.probe(binance, "ticker_24hr")
    [minute] = await rig.guard.gate.snapshot("binance")
    assert (minute.window, minute.source, minute.limit) == ("minute", "reported", 6000)
    assert minute.used >= 2  # the simulator's own count of weight, as Binance reports it


async def test_retry_after_blocks_the_provider_until_it_passes(rig_for) -> None:
    binance = spec("binance")
    rig = rig_for(binance)
    rig.sim.set_scenario("binance", Scenario("rate_limited", {"retry_after": 60}))
    first = await rig.probe(binance)
    second = await rig.probe(binance)
    assert (first.outcome, first.retry_after_s) == (Outcome.RATE_LIMITED, 60.0)
    assert second.outcome is Outcome.SKIPPED
    assert second.reason.startswith("rate_limit_budget (Retry-After) until ")
    assert rig.sent("binance") == 1  # the 418 ban that a second request would earn never comes


async def test_rate_limited_key_rotates_to_the_backup(rig_for) -> None:
    etherscan = spec("etherscan")
    rig = rig_for(etherscan)
    rig.sim.set_scenario("etherscan", Scenario("rate_limited", {}))
    first = await rig.probe(etherscan)
    rig.sim.set_scenario("etherscan", Scenario("healthy", {}))
    second = await rig.probe(etherscan)
    assert first.key_label is not None and first.key_label.startswith("ETHERSCAN_KEY_1=")
    assert second.outcome is Outcome.OK
    assert second.key_label is not None and second.key_label.startswith("ETHERSCAN_KEY_2=")
    statuses = {s["env_name"]: s["status"] for s in rig.guard.keys["etherscan"].statuses()}
    assert statuses == {"ETHERSCAN_KEY_1": "rate_limited", "ETHERSCAN_KEY_2": "valid"}


async def test_breaker_opens_after_consecutive_failures_and_skips(rig_for) -> None:
    binance = spec("binance")
    rig = rig_for(binance, threshold=3)
    rig.sim.set_scenario("binance", Scenario("down", {"status": 503}))
    results = [await rig.probe(binance) for _ in range(4)]
    assert [r.outcome for r in results] == [Outcome.SERVER_ERROR] * 3 + [Outcome.SKIPPED]
    assert results[-1].reason.startswith("circuit_open; half-open trial after ")
    assert rig.sent("binance") == 3
    transitions = [e for e in rig.events if type(e).__name__ == "BreakerTransition"]
    assert [(t.old, t.new) for t in transitions] == [("closed", "open")]


async def test_key_status_is_shared_through_redis(rig_for, redis_client, redis_prefix) -> None:
    from apiwatch.budget.shared import RedisState

    etherscan = spec("etherscan")
    first, second = rig_for(etherscan), rig_for(etherscan)  # two "processes"
    first.guard.shared = RedisState(redis_client, redis_prefix)
    second.guard.shared = RedisState(redis_client, redis_prefix)
    first.sim.set_scenario("etherscan", Scenario("auth_failure", {}))
    rejected = await first.probe(etherscan)
    first.sim.set_scenario("etherscan", Scenario("healthy", {}))
    accepted = await second.probe(etherscan)
    assert rejected.outcome is Outcome.AUTH_ERROR
    assert rejected.key_label is not None and rejected.key_label.startswith("ETHERSCAN_KEY_1=")
    # The second process never tries the key the first one saw rejected.
    assert accepted.key_label is not None and accepted.key_label.startswith("ETHERSCAN_KEY_2=")


@pytest.mark.parametrize(
    ("provider", "endpoint", "window", "limit"),
    [
        ("coinmarketcap", "health", "month", 10000),
        ("coinmarketcap", "health", "minute", 30),
        ("etherscan", "api_limit", "day", 100000),
    ],
)
async def test_usage_endpoints_report_what_the_key_has_used(
    rig_for, provider: str, endpoint: str, window: str, limit: int
) -> None:
    chosen = spec(provider)
    rig = rig_for(chosen)
    for _ in range(2):
        result = await rig.probe(chosen, endpoint)
        assert result.outcome is Outcome.OK, result.reason
    windows = {w.window: w for w in await rig.guard.gate.snapshot(provider)}
    assert windows[window].source == "reported"
    assert windows[window].limit == limit
    assert windows[window].used >= 1  # the simulator's own count, as the provider reports it


def test_usage_parsers_ignore_surprising_shapes() -> None:
    from apiwatch.budget.usage import PARSERS

    for parser in PARSERS.values():
        for junk in (None, [], "x", {"data": "x"}, {"result": {"creditsUsed": True}}):
            assert parser(junk) == []


async def test_a_check_retried_at_once_is_one_failure_for_the_breaker(rig_for) -> None:
    tron = spec("tronscan")
    rig = rig_for(tron, threshold=2)
    rig.sim.set_scenario("tronscan", Scenario("reset", {}))
    attempts = await rig.engine.probe(tron, "health")
    assert [r.outcome for r in attempts] == [Outcome.CONNECTION_ERROR] * 3
    state = rig.guard.breaker.state("tronscan")
    assert (state.state, state.consecutive_failures) == ("closed", 1)


async def test_key_tests_never_move_the_breaker(rig_for) -> None:
    etherscan = spec("etherscan")
    rig = rig_for(etherscan, threshold=1)
    rig.sim.set_scenario("etherscan", Scenario("auth_failure", {}))
    backup = rig.guard.keys["etherscan"].keys[1]
    for _ in range(3):
        [result] = await rig.engine.probe(etherscan, "health", key=backup)
        assert result.outcome is Outcome.AUTH_ERROR
    assert rig.guard.breaker.state("etherscan").state == "closed"
    assert rig.guard.keys["etherscan"].status(backup) == "invalid"


async def test_a_skipped_half_open_trial_is_given_back(rig_for) -> None:
    import asyncio

    binance = spec("binance", per_minute=1)
    rig = rig_for(binance, threshold=1)
    rig.guard.breaker.cooldown_s = 0.05
    rig.sim.set_scenario("binance", Scenario("down", {"status": 503}))
    assert (await rig.probe(binance)).outcome is Outcome.SERVER_ERROR  # opens the breaker
    await asyncio.sleep(0.1)  # cool-down over: the next probe is the half-open trial
    second, third = await rig.probe(binance), await rig.probe(binance)
    # The trial was not sent (the minute's budget is spent), so it must not stay taken:
    # the next probe is refused by the budget again, not by a breaker stuck half-open.
    assert second.reason.startswith("rate_limit_budget (minute window full)")
    assert third.reason.startswith("rate_limit_budget (minute window full)")

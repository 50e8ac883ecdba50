"""The rule engine: alerts from results, status changes, events and inbound traffic, reported
as transitions only (firing when a condition starts or changes severity, resolved when it
clears, nothing while it stays)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from apiwatch.alerting.config import AlertSettings, load_alert_settings
from apiwatch.alerting.model import AlertNotice, AlertState
from apiwatch.alerting.rules import Request, RuleEngine
from apiwatch.analysis.failures import REMEDIATION
from apiwatch.domain import Outcome, ProbeResult, Severity, Status, StatusChange
from apiwatch.inbound.usage import UsageRecord

T0 = datetime(2025, 1, 1, 12, tzinfo=UTC)
CATEGORIES = {"coingecko": "market_data", "etherscan": "blockchain_explorers"}


def _engine(settings: AlertSettings | None = None) -> RuleEngine:
    return RuleEngine(settings or load_alert_settings(), categories=CATEGORIES)


def _result(
    outcome: Outcome = Outcome.OK,
    *,
    latency_ms: float | None = 200.0,
    at: datetime = T0,
    provider: str = "coingecko",
    endpoint: str = "ping",
    reason: str = "",
    final: bool = True,
    key_label: str | None = None,
) -> ProbeResult:
    return ProbeResult(
        provider=provider,
        endpoint=endpoint,
        outcome=outcome,
        started_at=at,
        latency_ms=latency_ms,
        reason=reason,
        final=final,
        key_label=key_label,
    )


def _states(notices: list[AlertNotice]) -> list[tuple[str, str, str]]:
    return [(n.rule, n.severity.value, n.state.value) for n in notices]


class Feed:
    """Feeds results one second apart and collects every notice."""

    def __init__(self, engine: RuleEngine) -> None:
        self.engine = engine
        self.now = T0
        self.notices: list[AlertNotice] = []

    def result(self, outcome: Outcome = Outcome.OK, **kwargs: object) -> list[AlertNotice]:
        self.now += timedelta(seconds=1)
        out = self.engine.on_result(_result(outcome, at=self.now, **kwargs), now=self.now)  # type: ignore[arg-type]
        self.notices += out
        return out


# -- response time --------------------------------------------------------------------------


def test_slow_responses_fire_warning_once_then_critical_then_resolve() -> None:
    feed = Feed(_engine())
    fired = [n for _ in range(5) for n in feed.result(latency_ms=1500)]
    assert _states(fired) == [("response_time", "warning", "firing")]
    assert fired[0].fingerprint == "response_time:coingecko:warning"
    assert fired[0].category == "market_data"
    assert fired[0].suggested_action == REMEDIATION[Outcome.SLOW]
    assert [n for _ in range(3) for n in feed.result(latency_ms=1600)] == []
    escalated = [n for _ in range(3) for n in feed.result(latency_ms=2500)]
    assert _states(escalated) == [
        ("response_time", "warning", "resolved"),
        ("response_time", "critical", "firing"),
    ]
    calm = [n for _ in range(5) for n in feed.result(latency_ms=200)]
    assert _states(calm) == [("response_time", "critical", "resolved")]
    assert calm[0].resolved_at is not None


def test_one_slow_outlier_among_fast_results_does_not_fire_response_time() -> None:
    feed = Feed(_engine())
    for latency in (200, 200, 5000, 200, 200):
        feed.result(latency_ms=latency)
    assert [n for n in feed.notices if n.rule == "response_time"] == []


# -- error rate -----------------------------------------------------------------------------


def test_error_rate_over_five_percent_warns_and_over_ten_percent_is_critical() -> None:
    feed = Feed(_engine())
    for _ in range(20):
        feed.result()
    assert feed.result(Outcome.TIMEOUT) == []  # 1 of 20 = 5 %: not over 5 %
    warned = feed.result(Outcome.TIMEOUT)  # 10 %
    assert _states(warned) == [("error_rate", "warning", "firing")]
    assert warned[0].labels["outcome"] == "timeout"
    assert warned[0].suggested_action == REMEDIATION[Outcome.TIMEOUT]
    critical = feed.result(Outcome.TIMEOUT)  # 15 %
    assert _states(critical) == [
        ("error_rate", "warning", "resolved"),
        ("error_rate", "critical", "firing"),
    ]
    assert critical[1].fingerprint == "error_rate:coingecko:critical"
    # Successes push the failures out of the 20-result window: 15 % → 10 % (holds: the
    # level clears below 9 %) → 5 % (down to warning) → 0 % (resolved).
    later = [n for _ in range(20) for n in feed.result()]
    assert _states(later) == [
        ("error_rate", "critical", "resolved"),
        ("error_rate", "warning", "firing"),
        ("error_rate", "warning", "resolved"),
    ]


def test_rate_limited_results_count_as_errors_with_their_own_remedy() -> None:
    feed = Feed(_engine())
    for _ in range(10):
        feed.result(Outcome.RATE_LIMITED, latency_ms=50)
    fired = [n for n in feed.notices if n.rule == "error_rate"]
    assert _states(fired) == [("error_rate", "critical", "firing")]
    assert fired[0].suggested_action == REMEDIATION[Outcome.RATE_LIMITED]


def test_error_rate_waits_for_the_minimum_sample_size() -> None:
    feed = Feed(_engine())
    for _ in range(9):
        feed.result(Outcome.SERVER_ERROR)
    assert [n for n in feed.notices if n.rule == "error_rate"] == []
    assert _states(feed.result(Outcome.SERVER_ERROR)) == [("error_rate", "critical", "firing")]


def test_attempts_retried_within_a_check_are_not_counted() -> None:
    feed = Feed(_engine())
    for _ in range(30):
        feed.result(Outcome.TIMEOUT, final=False)
    assert feed.notices == []


def test_disabled_rule_stays_silent() -> None:
    settings = load_alert_settings(patch={"rules": {"error_rate": {"enabled": False}}})
    feed = Feed(_engine(settings))
    for _ in range(20):
        feed.result(Outcome.SERVER_ERROR, latency_ms=10)
    assert [n for n in feed.notices if n.rule == "error_rate"] == []


# -- latency anomaly ------------------------------------------------------------------------


def test_latency_jump_after_50_steady_results_fires_an_anomaly_for_that_endpoint() -> None:
    engine = _engine()
    feed = Feed(engine)
    rng = random.Random(3)
    for _ in range(50):
        feed.result(latency_ms=300 + rng.uniform(-10, 10), endpoint="prices")
    assert feed.notices == []
    assert engine.anomaly_scores()["coingecko"] < 2.5
    fired = feed.result(latency_ms=900, endpoint="prices")
    assert _states(fired) == [("latency_anomaly", "warning", "firing")]
    assert fired[0].fingerprint == "latency_anomaly:coingecko:warning:prices"
    assert fired[0].labels["endpoint"] == "prices"
    assert fired[0].labels["z"] > 2.5
    assert engine.anomaly_scores()["coingecko"] > 2.5
    # Resolved after three ordinary results in a row, not at the first one.
    assert feed.result(latency_ms=300, endpoint="prices") == []
    assert feed.result(latency_ms=300, endpoint="prices") == []
    resolved = feed.result(latency_ms=300, endpoint="prices")
    assert _states(resolved) == [("latency_anomaly", "warning", "resolved")]
    assert engine.anomaly_scores()["coingecko"] < 2.5


def test_a_changed_deviation_floor_applies_to_endpoints_already_watched() -> None:
    engine = _engine()
    feed = Feed(engine)
    for _ in range(30):
        feed.result(latency_ms=1.0, endpoint="prices")
    assert feed.result(latency_ms=15.0, endpoint="prices") == []  # within the 10 ms floor
    engine.update_settings(
        load_alert_settings(patch={"rules": {"latency_anomaly": {"min_stddev_ms": 1.0}}})
    )
    fired = feed.result(latency_ms=15.0, endpoint="prices")
    assert _states(fired) == [("latency_anomaly", "warning", "firing")]


# -- budget blocked and keys ----------------------------------------------------------------


def test_budget_blocked_probes_fire_once_and_resolve_when_a_probe_goes_out() -> None:
    feed = Feed(_engine())
    reason = "rate_limit_budget (minute window full) until 2025-01-01T12:01:00+00:00"
    fired = feed.result(Outcome.SKIPPED, latency_ms=None, reason=reason)
    assert _states(fired) == [("rate_limit_blocked", "critical", "firing")]
    assert fired[0].labels["outcome"] == "rate_limited"
    assert feed.result(Outcome.SKIPPED, latency_ms=None, reason=reason) == []
    assert _states(feed.result()) == [("rate_limit_blocked", "critical", "resolved")]


def test_skips_for_other_reasons_are_not_budget_alerts() -> None:
    feed = Feed(_engine())
    feed.result(Outcome.SKIPPED, latency_ms=None, reason="circuit_open")
    feed.result(Outcome.SKIPPED, latency_ms=None, reason="no_key")
    assert feed.notices == []


def test_expired_key_is_critical_per_key_and_resolves_when_that_key_works() -> None:
    engine = _engine()
    data = {"provider": "etherscan", "env_name": "ETHERSCAN_KEY_2", "masked": "…wxyz"}
    fired = engine.on_event("key_expired", "etherscan", data, now=T0)
    assert _states(fired) == [("key_expired", "critical", "firing")]
    assert fired[0].fingerprint == "key_expired:etherscan:critical:ETHERSCAN_KEY_2"
    assert fired[0].suggested_action == REMEDIATION[Outcome.AUTH_ERROR]
    assert "…wxyz" in fired[0].message
    other = _result(provider="etherscan", key_label="ETHERSCAN_KEY_1=…abcd")
    assert engine.on_result(other, now=T0) == []
    same = _result(provider="etherscan", key_label="ETHERSCAN_KEY_2=…wxyz")
    assert _states(engine.on_result(same, now=T0)) == [("key_expired", "critical", "resolved")]


# -- status changes -------------------------------------------------------------------------


def _change(old: Status, new: Status, reason: str, seconds: int) -> StatusChange:
    return StatusChange("coingecko", old, new, reason, T0 + timedelta(seconds=seconds))


def test_status_changes_warn_on_degraded_page_on_offline_and_resolve_on_online() -> None:
    engine = _engine()
    degraded = engine.on_status_change(
        _change(Status.ONLINE, Status.DEGRADED, "1 consecutive failure; last: timeout", 0)
    )
    assert _states(degraded) == [("provider_status", "warning", "firing")]
    assert degraded[0].suggested_action == REMEDIATION[Outcome.TIMEOUT]
    offline = engine.on_status_change(
        _change(Status.DEGRADED, Status.OFFLINE, "3 consecutive failures; last: timeout", 60)
    )
    assert _states(offline) == [
        ("provider_status", "warning", "resolved"),
        ("provider_status", "critical", "firing"),
    ]
    assert offline[1].labels["status"] == "offline"
    assert engine.on_status_change(_change(Status.OFFLINE, Status.UNKNOWN, "?", 90)) == []
    back = engine.on_status_change(_change(Status.OFFLINE, Status.ONLINE, "healthy", 120))
    assert _states(back) == [("provider_status", "critical", "resolved")]
    assert back[0].resolved_at == T0 + timedelta(seconds=120)
    assert back[0].fired_at == T0 + timedelta(seconds=60)


# -- events ---------------------------------------------------------------------------------


def test_budget_warning_fires_per_window_and_clears_when_the_window_resets() -> None:
    engine = _engine()
    reset = T0 + timedelta(minutes=1)
    data = {
        "provider": "coingecko",
        "window": "minute",
        "used": 24,
        "limit": 30,
        "percent": 80.0,
        "reset_at": reset.isoformat(),
    }
    fired = engine.on_event("rate_limit_warning", "coingecko", data, now=T0)
    assert _states(fired) == [("rate_limit_warning", "warning", "firing")]
    assert fired[0].fingerprint == "rate_limit_warning:coingecko:warning:minute"
    assert "80% of the minute budget" in fired[0].message
    assert engine.on_event("rate_limit_warning", "coingecko", data, now=T0) == []
    assert engine.tick(now=reset - timedelta(seconds=1)) == []
    assert _states(engine.tick(now=reset)) == [("rate_limit_warning", "warning", "resolved")]


def test_breaker_open_is_critical_half_open_keeps_it_and_closed_resolves() -> None:
    engine = _engine()
    opened = engine.on_event(
        "breaker_transition",
        "coingecko",
        {"from": "closed", "to": "open", "reason": "5 failures"},
        now=T0,
    )
    assert _states(opened) == [("breaker_open", "critical", "firing")]
    assert engine.on_event("breaker_transition", "coingecko", {"to": "half_open"}, now=T0) == []
    closed = engine.on_event("breaker_transition", "coingecko", {"to": "closed"}, now=T0)
    assert _states(closed) == [("breaker_open", "critical", "resolved")]


def test_stale_data_warns_per_item_and_resolves_itself_after_its_period() -> None:
    engine = _engine()
    data = {
        "provider": "alternative_me",
        "category": "sentiment",
        "item": "fear_greed",
        "age_s": 200000.0,
        "ttl_s": 93600.0,
        "at": T0.isoformat(),
    }
    fired = engine.on_event("data_stale", None, data, now=T0)
    assert _states(fired) == [("data_stale", "warning", "firing")]
    assert fired[0].category == "sentiment"
    assert fired[0].fingerprint == "data_stale:alternative_me:warning:fear_greed"
    assert engine.tick(now=T0 + timedelta(minutes=59)) == []
    assert _states(engine.tick(now=T0 + timedelta(hours=1))) == [
        ("data_stale", "warning", "resolved")
    ]


def test_divergent_value_warns_with_the_median_in_the_message() -> None:
    engine = _engine()
    data = {
        "provider": "kraken",
        "category": "market_data",
        "item": "BTC-USD",
        "value": "70500.5",
        "median": "69000",
        "deviation_pct": 2.17,
        "threshold_pct": 1.0,
    }
    fired = engine.on_event("data_divergent", "kraken", data, now=T0)
    assert _states(fired) == [("data_divergent", "warning", "firing")]
    assert "69000" in fired[0].message and "70500.5" in fired[0].message


def test_unknown_event_kinds_are_ignored() -> None:
    assert _engine().on_event("schedule_interval_changed", "coingecko", {}, now=T0) == []


# -- inbound API ----------------------------------------------------------------------------


def test_more_than_five_rejected_requests_an_hour_from_one_address_warn() -> None:
    engine = _engine()
    rejected = [Request(None, "10.0.0.9", 401, T0 + timedelta(minutes=i)) for i in range(5)]
    assert engine.on_inbound(rejected, now=T0 + timedelta(minutes=5)) == []
    sixth = [Request(None, "10.0.0.9", 401, T0 + timedelta(minutes=6))]
    fired = engine.on_inbound(sixth, now=T0 + timedelta(minutes=6))
    assert _states(fired) == [("inbound_unauthorized", "warning", "firing")]
    assert fired[0].labels["subject"] == "address:10.0.0.9"
    assert fired[0].category == "inbound_api"
    assert fired[0].provider is None
    # Other addresses and keys are counted on their own.
    others = [Request(7, "10.0.0.1", 403, T0 + timedelta(minutes=7)) for _ in range(5)]
    assert engine.on_inbound(others, now=T0 + timedelta(minutes=7)) == []
    # An hour after the first attempts the count falls back under the threshold.
    cleared = engine.tick(now=T0 + timedelta(minutes=61))
    assert _states(cleared) == [("inbound_unauthorized", "warning", "resolved")]


def test_usage_spike_of_twice_the_normal_rate_warns_and_three_times_is_critical() -> None:
    engine = _engine()
    history = [
        Request(3, "10.0.0.5", 200, T0 + timedelta(minutes=m, seconds=s))
        for m in range(30)
        for s in range(0, 60, 6)
    ]  # 10 requests a minute for half an hour
    assert engine.on_inbound(history, now=T0 + timedelta(minutes=30)) == []
    now = T0 + timedelta(minutes=30, seconds=30)
    burst = [Request(3, "10.0.0.5", 200, now) for _ in range(25)]
    fired = engine.on_inbound(burst, now=now)
    assert _states(fired) == [("inbound_usage_spike", "warning", "firing")]
    assert fired[0].labels["subject"] == "key:3"
    more = engine.on_inbound([Request(3, "10.0.0.5", 200, now)] * 10, now=now)
    assert _states(more) == [
        ("inbound_usage_spike", "warning", "resolved"),
        ("inbound_usage_spike", "critical", "firing"),
    ]
    # Two quiet minutes later the burst minute has left the current window.
    calm = engine.tick(now=T0 + timedelta(minutes=32, seconds=1))
    assert _states(calm) == [("inbound_usage_spike", "critical", "resolved")]


def test_inbound_events_from_a_judging_middleware_fire_and_clear() -> None:
    engine = _engine()
    data = {"subject": "key:9", "severity": "critical", "message": "key 9: 5x usage"}
    fired = engine.on_event("inbound_usage_spike", None, data, now=T0)
    assert _states(fired) == [("inbound_usage_spike", "critical", "firing")]
    cleared = engine.on_event("inbound_usage_spike", None, {"subject": "key:9"}, now=T0)
    assert _states(cleared) == [("inbound_usage_spike", "critical", "resolved")]


def test_active_lists_what_is_firing_now() -> None:
    engine = _engine()
    engine.on_event("breaker_transition", "coingecko", {"to": "open"}, now=T0)
    engine.on_event("key_expired", "etherscan", {"env_name": "ETHERSCAN_KEY_1"}, now=T0)
    assert sorted(n.rule for n in engine.active()) == ["breaker_open", "key_expired"]
    assert all(n.state is AlertState.FIRING for n in engine.active())
    assert {n.severity for n in engine.active()} == {Severity.CRITICAL}


def test_inbound_usage_records_feed_the_unauthorized_rule_directly() -> None:
    records = [
        UsageRecord(
            key_id=None,
            key_name=None,
            route="/api/providers",
            method="GET",
            status=401,
            latency_ms=0.4,
            at=T0 + timedelta(seconds=i),
            client="192.0.2.7",
            authorized=False,
        )
        for i in range(6)
    ]
    fired = _engine().on_inbound(records, now=T0 + timedelta(seconds=10))
    assert _states(fired) == [("inbound_unauthorized", "warning", "firing")]
    assert fired[0].labels["subject"] == "address:192.0.2.7"


def test_new_thresholds_apply_from_the_next_result() -> None:
    engine = _engine()
    feed = Feed(engine)
    for _ in range(5):
        feed.result(latency_ms=600)
    assert feed.notices == []
    engine.update_settings(
        load_alert_settings(patch={"rules": {"response_time": {"warning_s": 0.5}}})
    )
    assert _states(feed.result(latency_ms=600)) == [("response_time", "warning", "firing")]


def test_naive_event_times_are_taken_as_utc() -> None:
    engine = _engine()
    data = {"window": "day", "percent": 85, "reset_at": "2025-01-01T13:00:00"}
    engine.on_event("rate_limit_warning", "coingecko", data, now=T0)
    assert _states(engine.tick(now=T0 + timedelta(hours=1))) == [
        ("rate_limit_warning", "warning", "resolved")
    ]


def test_all_keys_resting_after_429s_counts_as_blocked_by_rate_limits() -> None:
    engine = _engine()
    notices = engine.on_result(
        _result(Outcome.SKIPPED, reason="no_key (all_keys_rate_limited)", latency_ms=None),
        now=T0,
    )
    assert _states(notices) == [("rate_limit_blocked", "critical", "firing")]
    # A provider without any key configured is not "blocked by its limits".
    other = engine.on_result(
        _result(Outcome.SKIPPED, reason="no_key", provider="etherscan", latency_ms=None), now=T0
    )
    assert other == []


def test_a_firing_error_rate_clears_even_when_checks_are_sparse() -> None:
    engine = _engine()
    fired = []
    for i in range(10):
        fired += engine.on_result(
            _result(Outcome.SERVER_ERROR, at=T0 + timedelta(seconds=i)),
            now=T0 + timedelta(seconds=i),
        )
    assert ("error_rate", "critical", "firing") in _states(fired)
    # Then one OK check every ten minutes for six hours: the failures age out of the window.
    resolved = []
    for step in range(1, 37):
        moment = T0 + timedelta(minutes=10 * step)
        resolved += engine.on_result(_result(Outcome.OK, at=moment), now=moment)
    assert ("error_rate", "critical", "resolved") in _states(resolved)
    assert not [n for n in resolved if n.state is AlertState.FIRING]


def test_error_rate_does_not_open_an_alert_on_a_success() -> None:
    engine = _engine()
    moment = T0
    out = []
    # Two failures, then successes: the rate crosses 10 % only when judged on a success.
    for outcome in [Outcome.SERVER_ERROR] * 2 + [Outcome.OK] * 8:
        out += engine.on_result(_result(outcome, at=moment), now=moment)
        moment += timedelta(seconds=1)
    assert [n for n in out if n.rule == "error_rate"] == []


def test_a_full_per_second_window_is_not_a_blocked_alert() -> None:
    engine = _engine()
    reason = "rate_limit_budget (second window full) until 2025-01-01T12:00:01+00:00"
    notices = engine.on_result(_result(Outcome.SKIPPED, reason=reason, latency_ms=None), now=T0)
    assert notices == []
    minute = reason.replace("second", "minute")
    notices = engine.on_result(_result(Outcome.SKIPPED, reason=minute, latency_ms=None), now=T0)
    assert _states(notices) == [("rate_limit_blocked", "critical", "firing")]


def test_rejected_ipv6_requests_are_counted_per_64_and_subjects_are_capped() -> None:
    from apiwatch.alerting import rules_inbound

    assert rules_inbound.address_bucket("2001:db8:1:2:aaaa::1") == "2001:db8:1:2::/64"
    assert rules_inbound.address_bucket("203.0.113.7") == "203.0.113.7"
    engine = _engine()
    records = [
        Request(key_id=None, client=f"2001:db8:1:2::{i:x}", status=401, at=T0) for i in range(6)
    ]
    notices = engine.on_inbound(records, now=T0)
    # Six misses from one /64 in an hour: over the 5 an hour threshold.
    assert _states(notices) == [("inbound_unauthorized", "warning", "firing")]
    watch = rules_inbound.InboundWatch(
        spike=load_alert_settings().rules.inbound_usage_spike,
        unauthorized=load_alert_settings().rules.inbound_unauthorized,
    )
    watch.add(
        Request(
            key_id=None, client=f"10.{i // 65536}.{i // 256 % 256}.{i % 256}", status=401, at=T0
        )
        for i in range(rules_inbound.MAX_SUBJECTS + 50)
    )
    assert len(watch._rejected) == rules_inbound.MAX_SUBJECTS + 1  # the cap plus the shared bucket


def test_a_result_expires_only_its_own_providers_timed_alerts() -> None:
    """Alerts that end by time are looked up per provider: a result from one provider
    clears that provider's expired budget warning and leaves another's to its own result
    or to the clock's tick; one that ends later is left firing."""
    engine = _engine()
    reset = T0 + timedelta(minutes=1)
    for provider, ends in (
        ("coingecko", reset),
        ("etherscan", reset),
        ("binance", T0 + timedelta(hours=1)),
    ):
        data = {
            "provider": provider,
            "window": "minute",
            "used": 24,
            "limit": 30,
            "percent": 80.0,
            "reset_at": ends.isoformat(),
        }
        engine.on_event("rate_limit_warning", provider, data, now=T0)
    after = reset + timedelta(seconds=1)
    cleared = engine.on_result(_result(at=after), now=after)
    assert [(n.provider, n.state.value) for n in cleared] == [("coingecko", "resolved")]
    assert sorted(n.provider for n in engine.active()) == ["binance", "etherscan"]
    assert [(n.provider, n.state.value) for n in engine.tick(now=after)] == [
        ("etherscan", "resolved")
    ]
    assert [n.provider for n in engine.active()] == ["binance"]


def test_forgetting_a_provider_resolves_its_alerts_and_drops_its_windows() -> None:
    """A provider removed or disabled gets no more results: its firing alerts are resolved
    with the reason, and nothing of it is kept; another provider is untouched."""
    feed = Feed(_engine())
    for _ in range(30):
        feed.result(latency_ms=1500)  # coingecko: slow
        feed.result(Outcome.TIMEOUT, provider="etherscan", latency_ms=None)
        feed.result(provider="etherscan", endpoint="other", latency_ms=100.0)
    assert {n.provider for n in feed.engine.active()} == {"coingecko", "etherscan"}
    assert set(feed.engine.anomaly_scores()) == {"coingecko", "etherscan"}

    resolved = feed.engine.forget("etherscan", now=feed.now, reason="removed from the catalogue")
    assert resolved and all(n.state is AlertState.RESOLVED for n in resolved)
    assert {n.provider for n in resolved} == {"etherscan"}
    assert all(n.message == "etherscan: removed from the catalogue" for n in resolved)
    assert {n.provider for n in feed.engine.active()} == {"coingecko"}
    assert set(feed.engine.anomaly_scores()) == {"coingecko"}
    assert feed.engine.forget("etherscan", now=feed.now, reason="again") == []

    # Back in the catalogue later, it starts afresh: one failure is not yet an error rate.
    assert feed.result(Outcome.TIMEOUT, provider="etherscan", latency_ms=None) == []

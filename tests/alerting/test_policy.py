"""The alert policy: dedup, repeat, acknowledge, silences, grouping, resolves; every decision
with its named reason; and a storm that must not become a storm of notifications."""

from __future__ import annotations

import gc
import tracemalloc
from collections import Counter
from datetime import UTC, datetime, timedelta

from apiwatch.alerting.config import AlertSettings, load_alert_settings
from apiwatch.alerting.model import AlertNotice, AlertState, DecisionReason, Notification
from apiwatch.alerting.policy import AlertPolicy, Decision
from apiwatch.alerting.rules import RuleEngine
from apiwatch.alerting.silences import Silence
from apiwatch.domain import Outcome, ProbeResult, Severity
from apiwatch.runtime.live_status import StatusTracker

T0 = datetime(2025, 1, 1, 12, tzinfo=UTC)
R = DecisionReason


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


def _notice(
    rule: str = "error_rate",
    *,
    provider: str | None = "coingecko",
    severity: Severity = Severity.WARNING,
    state: AlertState = AlertState.FIRING,
    item: str | None = None,
    alert_id: int | None = None,
) -> AlertNotice:
    fingerprint = f"{rule}:{provider or '-'}:{severity.value}" + (f":{item}" if item else "")
    return AlertNotice(
        rule=rule,
        severity=severity,
        state=state,
        message=f"{provider} {rule} {item or ''}",
        fired_at=T0,
        fingerprint=fingerprint,
        provider=provider,
        category="market_data",
        alert_id=alert_id,
        resolved_at=T0 if state is AlertState.RESOLVED else None,
    )


def _resolved(notice: AlertNotice) -> AlertNotice:
    return AlertNotice(**{**notice.__dict__, "state": AlertState.RESOLVED})


def _policy(settings: AlertSettings | None = None) -> tuple[AlertPolicy, Clock]:
    clock = Clock()
    return AlertPolicy(settings or load_alert_settings(), clock=clock), clock


def _sent(policy: AlertPolicy, clock: Clock, notice: AlertNotice) -> Notification:
    """Submit and flush past the group window; the alert's one notification."""
    decision = policy.submit(notice)
    assert decision.send
    [notification] = policy.flush(clock.advance(5))
    return notification


# -- first notification, dedup, repeat --------------------------------------------------------


def test_first_alert_waits_for_the_group_window_then_goes_as_first_notification() -> None:
    policy, clock = _policy()
    decision = policy.submit(_notice())
    assert decision == Decision(True, R.FIRST_NOTIFICATION, "coingecko:warning")
    assert policy.flush(clock.advance(4.9)) == []
    [notification] = policy.flush(clock.advance(0.1))
    assert notification.reason is R.FIRST_NOTIFICATION
    assert notification.state is AlertState.FIRING
    assert notification.title == "coingecko: warning error_rate"
    assert notification.group_key == "coingecko:warning"
    assert [a.fingerprint for a in notification.alerts] == ["error_rate:coingecko:warning"]
    assert policy.flush(clock.advance(60)) == []


def test_same_alert_within_the_dedup_window_is_held_as_duplicate() -> None:
    policy, clock = _policy()
    policy.submit(_notice())
    assert policy.submit(_notice()) == Decision(
        False, R.DUPLICATE_WITHIN_WINDOW, "coingecko:warning"
    )
    policy.flush(clock.advance(5))
    clock.advance(290)
    assert policy.submit(_notice()).reason is R.DUPLICATE_WITHIN_WINDOW
    assert policy.flush(clock.advance(5)) == []
    [alert] = policy.active()
    assert alert.reason is R.DUPLICATE_WITHIN_WINDOW
    assert alert.notifications == 1


def test_same_alert_after_the_dedup_window_is_sent_again_as_repeat() -> None:
    policy, clock = _policy()
    _sent(policy, clock, _notice())
    clock.advance(300)
    decision = policy.submit(_notice())
    assert decision == Decision(True, R.REPEAT_INTERVAL_ELAPSED, "coingecko:warning")
    [notification] = policy.flush(clock.advance(5))
    assert notification.reason is R.REPEAT_INTERVAL_ELAPSED
    assert notification.title.endswith("(still firing)")
    assert policy.active()[0].notifications == 2


def test_active_alert_is_reminded_every_repeat_interval_without_new_reports() -> None:
    policy, clock = _policy(load_alert_settings(patch={"repeat_interval_s": 600}))
    _sent(policy, clock, _notice())
    assert policy.flush(clock.advance(599)) == []
    assert policy.flush(clock.advance(1)) == []  # 600 s since it was sent: queued as reminder
    [reminder] = policy.flush(clock.advance(5))
    assert reminder.reason is R.REPEAT_INTERVAL_ELAPSED
    assert policy.flush(clock.advance(590)) == []


def test_acknowledged_alert_stops_repeating_until_it_resolves() -> None:
    policy, clock = _policy(load_alert_settings(patch={"repeat_interval_s": 600}))
    notice = _notice()
    _sent(policy, clock, notice)
    policy.bind(notice.fingerprint, 42)
    acked = policy.acknowledge(42, by="alice", now=clock.advance(10))
    assert acked is not None and acked.acknowledged_by == "alice"
    assert acked.acknowledged_at == clock.now
    clock.advance(400)
    assert policy.submit(notice) == Decision(False, R.ACKNOWLEDGED, "coingecko:warning")
    assert policy.flush(clock.advance(3600)) == []
    # Its resolve still goes out: someone is waiting to hear it is over.
    assert policy.submit(_resolved(notice)).reason is R.RESOLVED
    [resolved] = policy.flush(clock.advance(5))
    assert resolved.state is AlertState.RESOLVED
    assert resolved.alerts[0].alert_id == 42


def test_acknowledging_an_unknown_alert_returns_none() -> None:
    policy, _ = _policy()
    assert policy.acknowledge("nope", by="bob") is None
    assert policy.acknowledge(7, by="bob") is None


# -- silences -------------------------------------------------------------------------------


def _silence(**matchers: str) -> Silence:
    return Silence(
        id=None,
        matchers=matchers,
        starts_at=T0,
        ends_at=T0 + timedelta(hours=1),
        created_by="ops",
        comment="maintenance",
    )


def test_silenced_alert_is_held_and_its_resolve_is_not_sent() -> None:
    policy, clock = _policy()
    policy.silences.add(_silence(provider="coin*"))
    notice = _notice()
    assert policy.submit(notice) == Decision(False, R.SILENCED, "coingecko:warning")
    assert policy.submit(_notice(provider="kraken")).send is True
    sent = policy.flush(clock.advance(5))
    assert [n.provider for n in sent] == ["kraken"]
    assert policy.submit(_resolved(notice)) == Decision(False, R.SILENCED, "coingecko:warning")
    assert policy.flush(clock.advance(5)) == []


def test_alert_still_firing_when_its_silence_ends_is_sent_then() -> None:
    policy, clock = _policy()
    policy.silences.add(_silence(rule="error_rate"))
    policy.submit(_notice())
    assert policy.flush(clock.advance(1800)) == []
    policy.flush(clock.advance(1800))  # the silence has ended: queued
    [notification] = policy.flush(clock.advance(5))
    assert notification.reason is R.FIRST_NOTIFICATION


def test_silence_started_after_sending_holds_repeats() -> None:
    policy, clock = _policy()
    _sent(policy, clock, _notice())
    policy.silences.add(_silence(severity="warning"))
    clock.advance(400)
    assert policy.submit(_notice()).reason is R.SILENCED


# -- resolves -------------------------------------------------------------------------------


def test_resolve_of_a_sent_alert_is_sent_in_the_same_group() -> None:
    policy, clock = _policy()
    firing = _sent(policy, clock, _notice())
    clock.advance(30)
    assert policy.submit(_resolved(_notice())) == Decision(True, R.RESOLVED, "coingecko:warning")
    [resolved] = policy.flush(clock.advance(5))
    assert resolved.state is AlertState.RESOLVED
    assert resolved.reason is R.RESOLVED
    assert resolved.dedup_key == firing.dedup_key
    assert resolved.title == "coingecko: warning error_rate resolved"
    assert policy.active() == []


def test_alert_resolved_within_its_group_window_is_never_sent() -> None:
    policy, clock = _policy()
    policy.submit(_notice())
    clock.advance(2)
    assert policy.submit(_resolved(_notice())) == Decision(False, R.RESOLVED, "coingecko:warning")
    assert policy.pending() == []
    assert policy.flush(clock.advance(10)) == []


def test_resolve_of_an_unknown_alert_is_not_sent() -> None:
    policy, clock = _policy()
    assert policy.submit(_resolved(_notice())).send is False
    assert policy.flush(clock.advance(10)) == []


# -- grouping -------------------------------------------------------------------------------


def test_alerts_are_grouped_per_provider_and_severity() -> None:
    policy, clock = _policy()
    for provider in ("coingecko", "kraken"):
        for severity in (Severity.WARNING, Severity.CRITICAL):
            for rule in ("error_rate", "response_time", "provider_status"):
                policy.submit(_notice(rule, provider=provider, severity=severity))
    notifications = policy.flush(clock.advance(5))
    assert sorted(n.group_key for n in notifications) == [
        "coingecko:critical",
        "coingecko:warning",
        "kraken:critical",
        "kraken:warning",
    ]
    assert all(len(n.alerts) == 3 for n in notifications)
    titles = {n.title for n in notifications}
    assert "coingecko: 3 warning alerts" in titles


def test_new_alert_in_a_group_notified_within_its_interval_waits_and_is_named_so() -> None:
    policy, clock = _policy()
    _sent(policy, clock, _notice("error_rate"))
    clock.advance(10)
    decision = policy.submit(_notice("response_time"))
    assert decision == Decision(True, R.NEW_ALERTS_IN_GROUP, "coingecko:warning")
    assert policy.flush(clock.advance(5)) == []  # the group interval (60 s) has not passed
    [pending] = policy.pending()
    assert pending.due_at == T0 + timedelta(seconds=65)
    [notification] = policy.flush(clock.advance(45))
    assert notification.reason is R.NEW_ALERTS_IN_GROUP
    assert [a.rule for a in notification.alerts] == ["response_time"]


def test_a_full_batch_of_50_goes_at_once_and_the_rest_follow_a_group_interval_later() -> None:
    policy, clock = _policy()
    for i in range(120):
        policy.submit(_notice(item=f"item{i}"))
    [first] = policy.flush(clock.now)  # full: no need to wait for the group window
    assert len(first.alerts) == 50
    assert first.reason is R.FIRST_NOTIFICATION
    assert first.title == "coingecko: 120 warning alerts (70 more to follow)"
    assert policy.flush(clock.advance(5)) == []
    [second] = policy.flush(clock.advance(55))
    assert (len(second.alerts), second.reason) == (50, R.NEW_ALERTS_IN_GROUP)
    [third] = policy.flush(clock.advance(60))
    assert len(third.alerts) == 20
    sent = {a.fingerprint for n in (first, second, third) for a in n.alerts}
    assert len(sent) == 120


def test_notifications_carry_the_stored_alert_ids_bound_after_submit() -> None:
    policy, clock = _policy()
    notice = _notice()
    policy.submit(notice)
    policy.bind(notice.fingerprint, 7)
    [notification] = policy.flush(clock.advance(5))
    assert notification.alerts[0].alert_id == 7
    assert policy.get(7) is policy.get(notice.fingerprint)


def test_force_flush_releases_everything_pending() -> None:
    policy, clock = _policy()
    policy.submit(_notice())
    assert len(policy.flush(clock.now, force=True)) == 1
    assert policy.pending() == []


def test_restored_alerts_keep_their_dedup_and_acknowledgement() -> None:
    policy, clock = _policy()
    sent = _notice("error_rate")
    acked = _notice("provider_status")
    policy.restore(sent, sent_at=T0 - timedelta(seconds=60))
    policy.restore(acked, sent_at=T0 - timedelta(seconds=600), acked=True)
    assert policy.submit(sent).reason is R.DUPLICATE_WITHIN_WINDOW
    assert policy.submit(acked).reason is R.ACKNOWLEDGED
    assert policy.submit(_resolved(sent)).reason is R.RESOLVED
    assert policy.flush(clock.advance(5))[0].state is AlertState.RESOLVED


# -- the storm ------------------------------------------------------------------------------

PROVIDERS = ["coingecko", "coinmarketcap", "binance", "kraken", "etherscan"]


def test_storm_of_1000_rate_limit_failures_across_5_providers_in_60_s() -> None:
    """1,000 rate-limited results across 5 providers in 60 s, through the real tracker, rule
    engine and policy, flushed every second; then the providers recover."""
    clock = Clock()
    settings = load_alert_settings()
    tracker = StatusTracker(PROVIDERS, clock=clock)
    rules = RuleEngine(settings, categories=dict.fromkeys(PROVIDERS, "market_data"))
    policy = AlertPolicy(settings, clock=clock)
    sent: list[tuple[datetime, Notification]] = []
    decisions: Counter[DecisionReason] = Counter()

    def feed(result: ProbeResult) -> None:
        notices = rules.on_result(result, now=clock.now)
        change = tracker.observe(result)
        if change is not None:
            notices += rules.on_status_change(change)
        for notice in notices:
            decisions[policy.submit(notice).reason] += 1

    def run(outcome: Outcome, count: int, seconds: float) -> None:
        step = seconds / count
        next_flush = clock.now + timedelta(seconds=1)
        for i in range(count):
            clock.advance(step)
            feed(
                ProbeResult(
                    provider=PROVIDERS[i % len(PROVIDERS)],
                    endpoint="prices",
                    outcome=outcome,
                    started_at=clock.now,
                    latency_ms=120.0,
                    status_code=429 if outcome is Outcome.RATE_LIMITED else 200,
                )
            )
            if clock.now >= next_flush:
                sent.extend((clock.now, n) for n in policy.flush())
                next_flush += timedelta(seconds=1)

    run(Outcome.OK, 25, 5)  # every provider online before the storm
    storm_start = clock.now
    run(Outcome.RATE_LIMITED, 1000, 60)
    for _ in range(10):
        sent.extend((clock.now, n) for n in policy.flush(clock.advance(1)))
    storm = [n for _, n in sent]
    firing = [n for n in storm if n.state is AlertState.FIRING]
    # One notification per provider per severity: the status (degraded: warning) and the
    # error rate (critical), however many results kept confirming them.
    assert Counter((n.provider, n.severity) for n in firing) == {
        (p, s): 1 for p in PROVIDERS for s in (Severity.WARNING, Severity.CRITICAL)
    }
    assert all(n.reason is R.FIRST_NOTIFICATION for n in firing)
    assert all(at - storm_start <= timedelta(seconds=10) for at, n in sent)
    assert len(storm) == 10

    run(Outcome.OK, 5 * 25, 25)  # recovery
    for _ in range(10):
        sent.extend((clock.now, n) for n in policy.flush(clock.advance(1)))
    resolved = [n for _, n in sent if n.state is AlertState.RESOLVED]
    assert Counter((n.provider, n.severity) for n in resolved) == {
        (p, s): 1 for p in PROVIDERS for s in (Severity.WARNING, Severity.CRITICAL)
    }
    assert len(sent) == 20  # 10 firing + 10 resolved for 1,000 failures
    assert policy.active() == []
    # Transitions only: a handful of notices reached the policy, not a thousand.
    assert sum(decisions.values()) < 50


def test_storm_of_1000_distinct_alerts_sends_one_notification_per_provider_per_window() -> None:
    """The policy alone, fed 1,000 different rate-limit alerts (one per failing request,
    as a naive rule would emit them) across 5 providers in 60 s."""
    policy, clock = _policy()
    sent: list[tuple[float, Notification]] = []
    for i in range(1000):
        clock.advance(0.06)
        provider = PROVIDERS[i % 5]
        policy.submit(_notice("rate_limited", provider=provider, item=f"req{i}"))
        if i % 16 == 15:  # about once a second
            elapsed = (clock.now - T0).total_seconds()
            sent.extend((elapsed, n) for n in policy.flush())
    in_window = [n for at, n in sent if at < 60]
    assert Counter(n.provider for n in in_window) == dict.fromkeys(PROVIDERS, 1)
    assert all(len(n.alerts) <= 50 for _, n in sent)
    # Nothing is lost: later rounds, one per provider per interval, carry the rest.
    while policy.pending():
        sent.extend((0, n) for n in policy.flush(clock.advance(60)))
    delivered = Counter(a.fingerprint for _, n in sent for a in n.alerts)
    assert len(delivered) == 1000 and max(delivered.values()) == 1


def test_silence_created_while_an_alert_waits_in_its_batch_holds_it() -> None:
    policy, clock = _policy()
    policy.submit(_notice())
    policy.submit(_notice(provider="kraken"))
    policy.silences.add(_silence(provider="coingecko"))
    sent = policy.flush(clock.advance(5))
    assert [n.provider for n in sent] == ["kraken"]
    [held] = [a for a in policy.active() if a.notice.provider == "coingecko"]
    assert held.reason is R.SILENCED


def test_a_group_notified_once_is_forgotten_after_its_interval() -> None:
    """Thousands of providers that alerted once and recovered leave nothing behind once
    their group interval has passed: a monitor of 10,000 providers runs for months."""
    settings = load_alert_settings(patch={"group_interval_s": 60, "repeat_interval_s": None})

    def alert_and_recover(policy: AlertPolicy, clock: Clock, providers: range) -> None:
        for n in providers:
            _sent(policy, clock, _notice(provider=f"p{n:05d}"))
            policy.submit(_resolved(_notice(provider=f"p{n:05d}")))
            policy.flush(clock.advance(5))

    policy, clock = _policy(settings)
    alert_and_recover(policy, clock, range(10))  # settle what is made once
    policy.flush(clock.advance(61))
    gc.collect()
    tracing = tracemalloc.is_tracing()
    if not tracing:
        tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        alert_and_recover(policy, clock, range(10, 2_010))
        policy.flush(clock.advance(61))
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        if not tracing:
            tracemalloc.stop()
    assert (after - before) / 2_000 < 20, f"{(after - before) / 2_000:.0f} bytes a provider kept"


def test_forgetting_old_groups_keeps_a_group_inside_its_interval() -> None:
    """A sweep that forgets one group keeps another whose interval still runs: an alert
    after it still waits for that interval's end."""
    settings = load_alert_settings(patch={"group_interval_s": 60})
    policy, clock = _policy(settings)
    _sent(policy, clock, _notice(provider="binance"))  # notified at T0 + 5; a sweep
    clock.advance(25)
    _sent(policy, clock, _notice())  # coingecko notified at T0 + 35
    policy.flush(clock.advance(30))  # the next sweep, T0 + 65: binance's time is a minute old
    decision = policy.submit(_notice("latency_anomaly"))
    assert decision.reason is R.NEW_ALERTS_IN_GROUP
    assert policy.flush(clock.advance(29)) == []  # T0 + 94
    [later] = policy.flush(clock.advance(2))  # T0 + 96
    assert later.reason is R.NEW_ALERTS_IN_GROUP
    assert later.group_key == "coingecko:warning"


def test_a_longer_group_interval_set_later_counts_a_notification_still_inside_the_old_one() -> None:
    """The interval is raised while a group's time still counts: later sweeps keep it for
    the longer interval (a time forgotten under the shorter one before the change stays
    forgotten: it would have been a new first notification under the old settings too)."""
    policy, clock = _policy(load_alert_settings(patch={"group_interval_s": 60}))
    _sent(policy, clock, _notice())  # notified at T0 + 5
    clock.advance(25)
    policy.update_settings(load_alert_settings(patch={"group_interval_s": 600}))
    policy.flush(clock.advance(40))  # a sweep at T0 + 70: 65 s old, inside the 600
    decision = policy.submit(_notice("latency_anomaly"))
    assert decision.reason is R.NEW_ALERTS_IN_GROUP
    assert policy.flush(clock.advance(530)) == []  # T0 + 600
    [later] = policy.flush(clock.advance(6))  # T0 + 606
    assert later.reason is R.NEW_ALERTS_IN_GROUP

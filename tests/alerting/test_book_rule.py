"""The `book_integrity` rule: one alert per venue, book and check, carrying the check's
reason, resolved when the check passes again; off when disabled."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

from apiwatch.alerting.config import load_alert_settings
from apiwatch.alerting.model import AlertState
from apiwatch.alerting.rule_kinds import ACTIONS
from apiwatch.alerting.rules import RuleEngine
from apiwatch.domain import BookIntegrity, Severity

T0 = datetime(2026, 3, 14, 12, 0, tzinfo=UTC)
CROSSED = "book_integrity: crossed: best bid 65492.02 above best ask 65486.13"


def event(check: str = "crossed", reason: str = CROSSED, **extra: object) -> dict:
    fields = dataclasses.asdict(BookIntegrity("bybit", "book:BTC-USDT", check, reason, T0))
    fields.update(extra)
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in fields.items()}


def test_a_failed_check_fires_a_critical_alert_naming_the_check_and_its_reason() -> None:
    engine = RuleEngine(load_alert_settings(), categories={"bybit": "market_data"})
    [notice] = engine.on_event("book_integrity", "bybit", event(), now=T0)
    assert (notice.rule, notice.severity, notice.state) == (
        "book_integrity",
        Severity.CRITICAL,
        AlertState.FIRING,
    )
    assert notice.provider == "bybit" and notice.category == "market_data"
    assert notice.suggested_action == ACTIONS["book_integrity"]
    assert CROSSED in notice.message
    assert notice.labels["check"] == "crossed"
    assert notice.labels["outcome"] == "invalid_payload"
    # The same episode again raises nothing new; another check of the same book does.
    assert engine.on_event("book_integrity", "bybit", event(), now=T0) == []
    stale = "book_integrity: stale: the book's own time is 45.0 s old, over the 10 s TTL"
    [other] = engine.on_event("book_integrity", "bybit", event("stale", stale), now=T0)
    assert other.fingerprint != notice.fingerprint
    later = T0 + timedelta(minutes=1)
    [resolved] = engine.on_event(
        "book_integrity", "bybit", event(cleared=True, reason="passes again"), now=later
    )
    assert resolved.state is AlertState.RESOLVED and resolved.fingerprint == notice.fingerprint


def test_the_rule_can_be_switched_off() -> None:
    settings = load_alert_settings(patch={"rules": {"book_integrity": {"enabled": False}}})
    engine = RuleEngine(settings, categories={})
    assert engine.on_event("book_integrity", "bybit", event(), now=T0) == []

"""The `tls_certificate` alert rule: warning at 21 days left, critical at 7, critical at once
for a certificate that does not verify or cover the host name, resolved by a renewal; the
thresholds come from the alert settings file. Readings reach the rule as the bus and the
relay to the leader deliver them (`tls_certificate` events with plain fields)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from apiwatch.alerting.config import AlertConfigError, load_alert_settings
from apiwatch.alerting.model import AlertNotice, AlertState
from apiwatch.alerting.rules import RuleEngine
from apiwatch.domain import CertificateSeen, Severity
from apiwatch.runtime.alert_relay import decode, encode
from apiwatch.runtime.announce import EVENT_KINDS

NOW = datetime(2026, 12, 4, 12, tzinfo=UTC)


def reading(days_left: float, **extra: Any) -> CertificateSeen:
    fields: dict[str, Any] = {
        "provider": "coingecko",
        "host": "api.coingecko.com",
        "port": 443,
        "at": NOW,
        "verified": True,
        "host_matches": True,
        "not_after": NOW + timedelta(days=days_left + 30),
        "chain_not_after": NOW + timedelta(days=days_left),
    } | extra
    return CertificateSeen(**fields)


def judge(engine: RuleEngine, seen: CertificateSeen) -> list[AlertNotice]:
    # Through the relay's encoding: what a leader receives from a worker.
    relayed = decode(encode(seen))  # type: ignore[arg-type]
    kind = EVENT_KINDS[relayed.type_name]  # type: ignore[attr-defined]
    data = relayed.as_dict()  # type: ignore[attr-defined]
    return engine.on_event(kind, data["provider"], data, now=NOW)


def states(notices: list[AlertNotice]) -> list[tuple[str, str]]:
    return [(n.state.value, n.severity.value) for n in notices]


def test_days_left_warn_at_21_and_page_at_7_then_a_renewal_resolves() -> None:
    engine = RuleEngine(load_alert_settings())
    assert judge(engine, reading(40)) == []
    [warning] = judge(engine, reading(20))
    assert (warning.rule, warning.severity, warning.state) == (
        "tls_certificate",
        Severity.WARNING,
        AlertState.FIRING,
    )
    assert "expires in 20.0 days" in warning.message
    assert warning.labels["item"] == "api.coingecko.com:443"
    assert judge(engine, reading(19)) == []  # same severity: nothing new
    assert states(judge(engine, reading(5))) == [("resolved", "warning"), ("firing", "critical")]
    [resolved] = judge(engine, reading(90))
    assert resolved.state is AlertState.RESOLVED
    assert "valid certificate until" in resolved.message


@pytest.mark.parametrize(
    ("host_matches", "words"),
    [(False, "does not cover the host name"), (None, "does not verify")],
)
def test_a_certificate_that_does_not_verify_pages_at_once(
    host_matches: bool | None, words: str
) -> None:
    engine = RuleEngine(load_alert_settings())
    bad = reading(80, verified=False, host_matches=host_matches, error="IP address mismatch")
    [notice] = judge(engine, bad)
    assert notice.severity is Severity.CRITICAL
    assert words in notice.message and "IP address mismatch" in notice.message
    assert states(judge(engine, reading(80))) == [("resolved", "critical")]


def test_thresholds_come_from_the_settings_file(tmp_path: Path) -> None:
    path = tmp_path / "alerts.yaml"
    path.write_text(
        "rules:\n  tls_certificate: {warning_days: 30, critical_days: 10, invalid: warning}\n"
    )
    engine = RuleEngine(load_alert_settings(user_path=path))
    assert states(judge(engine, reading(25))) == [("firing", "warning")]
    assert states(judge(engine, reading(9))) == [("resolved", "warning"), ("firing", "critical")]
    other = reading(80, host="other.example", verified=False, error="self-signed certificate")
    assert states(judge(engine, other)) == [("firing", "warning")]


def test_critical_days_above_warning_days_is_refused_with_the_file_named(tmp_path: Path) -> None:
    path = tmp_path / "alerts.yaml"
    path.write_text("rules:\n  tls_certificate: {warning_days: 5, critical_days: 10}\n")
    with pytest.raises(AlertConfigError) as error:
        load_alert_settings(user_path=path)
    assert "alerts.yaml" in str(error.value)
    assert "critical_days" in str(error.value)

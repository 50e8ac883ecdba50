"""Rule-based triage: escalation, whether a person must act, what to do, and the report."""

from __future__ import annotations

from datetime import UTC, datetime

from apiwatch.alerting.model import AlertNotice, AlertState
from apiwatch.alerting.triage import NETWORK_ACTION, triage
from apiwatch.analysis.failures import REMEDIATION
from apiwatch.domain import Outcome, Severity

T0 = datetime(2025, 1, 1, 12, tzinfo=UTC)


def _notice(
    rule: str = "error_rate",
    *,
    provider: str | None = "coingecko",
    severity: Severity = Severity.WARNING,
    outcome: Outcome | None = None,
    state: AlertState = AlertState.FIRING,
    **labels: object,
) -> AlertNotice:
    if outcome is not None:
        labels["outcome"] = outcome.value
    return AlertNotice(
        rule=rule,
        severity=severity,
        state=state,
        message=f"{provider}: {rule} ({outcome.value if outcome else '-'})",
        fired_at=T0,
        fingerprint=f"{rule}:{provider}:{severity.value}",
        provider=provider,
        labels=labels,
    )


def test_warnings_that_heal_themselves_are_low_and_need_no_human() -> None:
    verdict = triage([_notice(outcome=Outcome.RATE_LIMITED), _notice("response_time")])
    assert verdict.escalation == "low"
    assert verdict.needs_human is False
    assert verdict.failure_class in ("rate_limited", "slow")


def test_critical_rate_limiting_is_high_with_the_rate_limit_remedy() -> None:
    verdict = triage([_notice(severity=Severity.CRITICAL, outcome=Outcome.RATE_LIMITED)])
    assert verdict.escalation == "high"
    assert verdict.needs_human is False
    assert verdict.suggested_action == REMEDIATION[Outcome.RATE_LIMITED]
    assert "rate limited" in verdict.report


def test_expired_key_pages_a_human_with_the_auth_remedy() -> None:
    verdict = triage([_notice("key_expired", severity=Severity.CRITICAL)])
    assert verdict.escalation == "page"
    assert verdict.needs_human is True
    assert verdict.suggested_action == REMEDIATION[Outcome.AUTH_ERROR]


def test_a_warning_no_retry_can_fix_is_high_and_needs_a_human() -> None:
    verdict = triage([_notice(outcome=Outcome.CLIENT_ERROR)])
    assert verdict.escalation == "high"
    assert verdict.needs_human is True
    assert verdict.suggested_action == REMEDIATION[Outcome.CLIENT_ERROR]


def test_offline_provider_pages() -> None:
    notice = _notice(
        "provider_status",
        severity=Severity.CRITICAL,
        outcome=Outcome.SERVER_ERROR,
        status="offline",
    )
    assert triage([notice]).escalation == "page"
    critical_rate = _notice(severity=Severity.CRITICAL, outcome=Outcome.SERVER_ERROR)
    assert triage([critical_rate]).escalation == "high"
    assert triage([critical_rate], statuses={"coingecko": "offline"}).escalation == "page"


def test_connection_failures_at_several_providers_point_at_our_network() -> None:
    notices = [
        _notice(provider=p, severity=Severity.CRITICAL, outcome=Outcome.CONNECTION_ERROR)
        for p in ("coingecko", "kraken", "binance")
    ]
    verdict = triage(notices)
    assert verdict.escalation == "page"
    assert verdict.suggested_action == NETWORK_ACTION
    assert "likely our network" in verdict.report


def test_report_says_what_cause_and_what_to_do_and_lists_alerts() -> None:
    notices = [
        _notice(provider="coingecko", severity=Severity.CRITICAL, outcome=Outcome.TIMEOUT),
        _notice("response_time", provider="kraken"),
    ] + [_notice("latency_anomaly", provider=f"p{i}") for i in range(6)]
    report = triage(notices).report
    lines = report.splitlines()
    assert lines[0].startswith("What: 1 critical, 7 warning alerts on ")
    assert lines[1].startswith("Likely cause:")
    assert lines[2].startswith("What to do:")
    assert lines[3].startswith("Escalation:")
    assert lines[4].startswith("- [critical] coingecko")  # critical first
    assert lines[-1] == "- … and 3 more"


def test_resolved_only_batch_needs_nothing() -> None:
    verdict = triage([_notice(state=AlertState.RESOLVED)])
    assert verdict.escalation == "none"
    assert verdict.needs_human is False
    assert verdict.report.startswith("Resolved: 1 alert on coingecko")


def test_empty_batch_is_no_alerts() -> None:
    assert triage([]).escalation == "none"

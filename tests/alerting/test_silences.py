"""Silences: matchers (exact or glob) over rule, provider, severity, category, in a time window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from apiwatch.alerting.model import AlertNotice, AlertState
from apiwatch.alerting.silences import Silence, SilenceError, SilenceSet, matches
from apiwatch.domain import Severity

T0 = datetime(2025, 1, 1, 12, tzinfo=UTC)


def _notice(
    rule: str = "error_rate",
    provider: str | None = "coingecko",
    severity: Severity = Severity.WARNING,
    category: str | None = "market_data",
) -> AlertNotice:
    return AlertNotice(
        rule=rule,
        severity=severity,
        state=AlertState.FIRING,
        message="m",
        fired_at=T0,
        fingerprint=f"{rule}:{provider}:{severity.value}",
        provider=provider,
        category=category,
    )


def _silence(matchers: dict[str, str], *, hours: float = 1, sid: int | None = None) -> Silence:
    return Silence(
        id=sid,
        matchers=matchers,
        starts_at=T0,
        ends_at=T0 + timedelta(hours=hours),
        created_by="ops",
        comment="maintenance",
    )


def test_exact_matchers_must_all_hold() -> None:
    silence = _silence({"provider": "coingecko", "severity": "warning"})
    assert matches(silence, _notice(), T0)
    assert not matches(silence, _notice(severity=Severity.CRITICAL), T0)
    assert not matches(silence, _notice(provider="kraken"), T0)


def test_glob_matchers_match_families_of_rules_and_providers() -> None:
    silence = _silence({"rule": "rate_limit_*", "provider": "coin*"})
    assert matches(silence, _notice(rule="rate_limit_warning", provider="coinmarketcap"), T0)
    assert not matches(silence, _notice(rule="error_rate", provider="coingecko"), T0)


def test_silence_applies_only_between_its_start_and_end() -> None:
    silence = _silence({"category": "market_data"}, hours=2)
    assert not matches(silence, _notice(), T0 - timedelta(seconds=1))
    assert matches(silence, _notice(), T0 + timedelta(hours=1))
    assert not matches(silence, _notice(), T0 + timedelta(hours=2))


def test_missing_field_matches_only_a_star() -> None:
    inbound = _notice(rule="inbound_unauthorized", provider=None, category="inbound_api")
    assert not matches(_silence({"provider": "coin*"}), inbound, T0)
    assert matches(_silence({"provider": "*", "rule": "inbound_*"}), inbound, T0)


@pytest.mark.parametrize(
    ("matchers", "ends", "message"),
    [
        ({}, 1, "at least one matcher"),
        ({"team": "x"}, 1, "unknown field 'team'"),
        ({"provider": ""}, 1, "matchers.provider"),
        ({"provider": "x"}, -1, "ends_at: must be after starts_at"),
    ],
)
def test_invalid_silences_are_refused_with_the_field(
    matchers: dict[str, str], ends: float, message: str
) -> None:
    with pytest.raises(SilenceError, match=message):
        _silence(matchers, hours=ends)


def test_silence_set_adds_with_ids_lists_active_and_removes() -> None:
    silences = SilenceSet()
    first = silences.add(_silence({"provider": "coingecko"}))
    later = silences.add(
        Silence(
            id=None,
            matchers={"provider": "kraken"},
            starts_at=T0 + timedelta(hours=5),
            ends_at=T0 + timedelta(hours=6),
            created_by="ops",
        )
    )
    assert (first.id, later.id) == (1, 2)
    assert silences.active(T0) == [first]
    assert silences.matching(_notice(), T0) == first
    assert silences.matching(_notice(provider="kraken"), T0) is None
    assert silences.remove(1) is True
    assert silences.remove(1) is False
    assert silences.matching(_notice(), T0) is None
    assert silences.prune(T0 + timedelta(hours=7)) == 1
    assert silences.all() == []


def test_stored_ids_are_kept_and_new_ids_follow_them() -> None:
    silences = SilenceSet([_silence({"provider": "a"}, sid=41)])
    assert silences.add(_silence({"provider": "b"})).id == 42

"""The pure SLO computation: event rules, budgets, burn-rate conditions, maintenance
windows, incidents from status changes, MTTR/MTBF, ranking and the poor-SLA flag."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from apiwatch.analysis import incidents as inc
from apiwatch.analysis import scorecard as sc
from apiwatch.analysis import slo as calc
from apiwatch.domain import Outcome, Severity

T = datetime(2026, 11, 1, tzinfo=UTC)
H = timedelta(hours=1)


def test_event_rules() -> None:
    assert [calc.classify(o.value) for o in Outcome] == [
        {"ok": "good", "slow": "good", "rate_limited": "throttled", "skipped": None}.get(
            o.value, "bad"
        )
        for o in Outcome
    ]
    assert calc.classify("server_error", final=False) is None


def test_budget_and_burn_rate_of_known_counts() -> None:
    objective = calc.Objective(target=0.995, window=timedelta(days=30))
    counts = calc.Counts(good=9_990, bad=10)
    budget = calc.budget(counts, objective)
    assert budget.allowed_bad == pytest.approx(50)
    assert budget.spent == pytest.approx(0.2)
    assert budget.remaining == pytest.approx(0.8)
    assert budget.total_s == pytest.approx(0.005 * 30 * 86_400)  # 3.6 h
    assert budget.remaining_s == pytest.approx(0.8 * 12_960)
    assert budget.burn_rate == pytest.approx(0.2)
    overspent = calc.budget(calc.Counts(good=900, bad=100), objective)
    assert overspent.remaining == pytest.approx(-19.0) and overspent.remaining_s < 0
    empty = calc.budget(calc.Counts(), objective)
    assert (empty.spent, empty.burn_rate, empty.remaining_s) == (None, None, None)
    with pytest.raises(ValueError, match="target"):
        calc.Objective(target=99.5)


def test_summary_flags_target_latency_and_sla() -> None:
    hist = calc.LADDER.histogram([100.0] * 90 + [900.0] * 10)
    counts = calc.Counts(good=995, bad=5, throttled=10, hist=hist)
    objective = calc.Objective(latency_p95_ms=500, sla=0.999)
    figures = calc.summary(counts, objective)
    assert figures["uptime"] == 0.995 and figures["meets_target"] is True
    assert figures["meets_sla"] is False
    assert figures["meets_latency"] is False  # p95 lies in the 900 ms bucket
    assert figures["throttled_share"] == pytest.approx(10 / 1010, abs=1e-6)


def burns(**rates: float) -> dict[timedelta, float]:
    spans = {"m5": 300, "m30": 1800, "h1": 3600, "h6": 21_600, "d3": 259_200}
    return {timedelta(seconds=spans[k]): v for k, v in rates.items()}


@pytest.mark.parametrize(
    ("rates", "expected"),
    [
        (burns(m5=20, h1=15, m30=0, h6=0, d3=0), "page_fast"),
        (burns(m5=0, h1=15, m30=7, h6=7, d3=2), "page_slow"),  # the 5 min are clean
        (burns(m5=20, h1=14, m30=7, h6=7, d3=2), "page_slow"),  # 1 h below 14.4
        (burns(m5=0, h1=0, m30=0, h6=1.5, d3=1.2), "ticket"),
        (burns(m5=50, h1=50, m30=50, h6=0.9, d3=0.5), "page_fast"),
        (burns(m5=0, h1=0, m30=0, h6=0.9, d3=1.2), None),
    ],
)
def test_both_windows_must_burn_and_the_most_severe_condition_wins(rates, expected) -> None:
    held = calc.judge_burn(rates, calc.DEFAULT_BURN_CONDITIONS)
    assert (held.name if held else None) == expected


def test_a_missing_burn_rate_means_no_events_and_holds_nothing() -> None:
    assert calc.judge_burn({}, calc.DEFAULT_BURN_CONDITIONS) is None
    assert calc.burn_windows(calc.DEFAULT_BURN_CONDITIONS)[0] == timedelta(minutes=5)
    assert calc.DEFAULT_BURN_CONDITIONS[0].severity is Severity.CRITICAL


def test_maintenance_windows_are_provider_or_category_silences_only() -> None:
    silences = [
        {"matchers": {"provider": "bin*"}, "starts_at": T, "ends_at": T + H},
        {"matchers": {"category": "market_data"}, "starts_at": T + H / 2, "ends_at": T + 2 * H},
        {"matchers": {"provider": "binance", "rule": "error_rate"}, "starts_at": T + 5 * H,
         "ends_at": T + 6 * H},
        {"matchers": {"provider": "coingecko"}, "starts_at": T + 7 * H, "ends_at": T + 8 * H},
    ]  # fmt: skip
    windows = calc.maintenance_windows(silences, provider="binance", category="market_data")
    assert windows == [calc.Window(T, T + 2 * H)]  # the first two, merged
    assert calc.maintenance_windows(silences, provider="etherscan", category="explorers") == []


def change(at: datetime, new: str, reason: str = "") -> dict:
    return {"new_status": new, "reason": reason, "changed_at": at}


def test_incidents_from_status_changes() -> None:
    changes = [
        change(T, "online", "healthy"),
        change(T + H, "degraded", "1 consecutive failure; last: timeout (10 s)"),
        change(T + 2 * H, "offline", "3 consecutive failures; last: server_error (503)"),
        change(T + 3 * H, "unknown", "not probed: circuit_open"),  # does not end it
        change(T + 4 * H, "online", "healthy"),
        change(T + 10 * H, "offline", "circuit breaker open"),
    ]
    first, second = inc.incidents_from_changes("binance", changes)
    assert (first.start, first.end, first.worst.value) == (T + H, T + 4 * H, "offline")
    assert first.cause == "timeout"
    assert second.end is None and second.cause == "circuit_open"
    assert second.duration_s(T + 12 * H) == 7200
    assert inc.cause_of("rate limited") is None
    assert inc.cause_of("3 consecutive failures; last: invalid_payload") == "invalid_payload"


def test_mttr_and_mtbf_over_a_window_clip_and_count_open_incidents() -> None:
    found = inc.incidents_from_changes(
        "x",
        [
            change(T - H, "offline"),  # began before the window
            change(T + H, "online"),
            change(T + 5 * H, "degraded"),
            change(T + 5.5 * H, "online"),
            change(T + 20 * H, "offline"),  # still open at now
        ],
    )
    now = T + 22 * H
    rel = inc.reliability(found, start=T, end=T + 24 * H, now=now)
    assert (rel.incidents, rel.started, rel.ended) == (3, 2, 2)
    assert rel.downtime_s == pytest.approx((1 + 0.5 + 2) * 3600)
    assert rel.mttr_s == pytest.approx((2 + 0.5) * 3600 / 2)  # whole durations of the ended
    # The window is judged up to now (22 h), minus 3.5 h of incidents, over 2 that began.
    assert rel.mtbf_s == pytest.approx((22 - 3.5) * 3600 / 2)
    quiet = inc.reliability([], start=T, end=T + H, now=now)
    assert (quiet.mttr_s, quiet.mtbf_s, quiet.downtime_s) == (None, None, 0)


def test_alerts_are_attached_to_the_incident_they_fired_in() -> None:
    [incident] = inc.incidents_from_changes(
        "binance", [change(T, "offline"), change(T + H, "online")]
    )
    inc.attach_alerts(
        [incident],
        [
            {"id": 1, "provider": "binance", "rule": "provider_status", "fired_at": T},
            {"id": 2, "provider": "binance", "rule": "error_rate", "fired_at": T + 2 * H},
            {"id": 3, "provider": "etherscan", "rule": "error_rate", "fired_at": T},
        ],
    )
    assert [a["id"] for a in incident.alerts] == [1]


def row(provider: str, uptime: float | None, spent: float | None, **extra) -> sc.ScoreRow:
    return sc.ScoreRow(
        provider=provider, name=provider, window="30d", events=0 if uptime is None else 1000,
        uptime=uptime, target=0.995, sla=extra.pop("sla", None), p95_ms=extra.pop("p95", 100.0),
        latency_p95_ms=extra.pop("latency", None), budget_spent=spent,
        budget_remaining_s=None, incidents=extra.pop("incidents", 0), mttr_s=None,
        mtbf_s=None, throttled=0, throttled_share=0.0, stale=0, divergent=0,
        missed_history=extra.pop("history", []),
    )  # fmt: skip


def test_ranking_puts_missed_objectives_and_spent_budgets_last_and_unjudged_after() -> None:
    rows = [
        row("flapping", 0.97, 6.0, incidents=40),
        row("fine", 1.0, 0.0),
        row("nodata", None, None),
        row("burnt", 0.996, 0.8, incidents=2),
        row("slower", 1.0, 0.0, p95=900.0),
    ]
    ranked = sc.rank(rows)
    assert [r.provider for r in ranked] == ["fine", "slower", "burnt", "flapping", "nodata"]
    assert [r.rank for r in ranked] == [1, 2, 3, 4, None]


def test_poor_sla_flag_needs_a_missed_sla_or_n_missed_windows() -> None:
    below_sla = row("a", 0.998, 0.4, sla=0.999)
    sc.flag_poor_sla(below_sla, poor_after=3)
    assert below_sla.poor_sla
    assert below_sla.reasons == ["uptime 99.800% over 30d is below its published SLA of 99.9%"]
    three = row("b", 0.99, 2.0, history=[True, True, True])
    sc.flag_poor_sla(three, poor_after=3)
    assert three.reasons == ["missed its objective (99.5%) in each of the last 3 30d windows"]
    two = row("c", 0.99, 2.0, history=[True, True, None])  # no data in the oldest window
    sc.flag_poor_sla(two, poor_after=3)
    assert not two.poor_sla and two.reasons == []
    assert sc.objective_missed(0.999, 0.995, 900.0, 800.0) is True  # too slow
    assert sc.objective_missed(None, 0.995, None, None) is None

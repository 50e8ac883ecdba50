"""Schedule compliance judgements (pure)."""

from datetime import UTC, datetime, timedelta

from apiwatch.analysis.compliance import compliance_pct, judge_start, tolerance_s

PLANNED = datetime(2026, 1, 1, tzinfo=UTC)


def test_tolerance_is_five_seconds_or_ten_percent_whichever_is_smaller() -> None:
    assert tolerance_s(60) == 5.0
    assert tolerance_s(30) == 3.0
    assert tolerance_s(30, max_s=2) == 2.0


def test_a_start_within_tolerance_is_on_time_and_beyond_it_late() -> None:
    assert judge_start(PLANNED, PLANNED + timedelta(seconds=2.9), interval_s=30, tolerance=3) == (
        "on_time",
        2900.0,
    )
    result, lateness = judge_start(
        PLANNED, PLANNED + timedelta(seconds=3.5), interval_s=30, tolerance=3
    )
    assert result == "late" and lateness == 3500.0


def test_an_early_start_is_on_time_with_no_lateness() -> None:
    assert judge_start(PLANNED, PLANNED - timedelta(seconds=1), interval_s=60, tolerance=5) == (
        "on_time",
        0.0,
    )


def test_compliance_pct_is_none_without_planned_runs() -> None:
    assert compliance_pct(0, 0) is None
    assert compliance_pct(2, 3) == 66.67

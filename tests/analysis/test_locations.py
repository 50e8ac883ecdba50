"""A provider's status from several locations (`analysis.locations.combine`) and the tracker
judging each location on its own window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from apiwatch.analysis.locations import combine, needed
from apiwatch.analysis.status import derive_status
from apiwatch.domain import Outcome, ProbeResult, Status
from apiwatch.runtime.live_status import StatusTracker

T0 = datetime(2026, 1, 1, tzinfo=UTC)
ON, DEG, OFF, UNK = Status.ONLINE, Status.DEGRADED, Status.OFFLINE, Status.UNKNOWN


def result(location: str, outcome: Outcome, second: int) -> ProbeResult:
    return ProbeResult(
        "p", "health", outcome, T0 + timedelta(seconds=second), reason="503", location=location
    )


@pytest.mark.parametrize(
    ("locations", "quorum", "wanted"),
    [(1, 0, 1), (2, 0, 2), (3, 0, 2), (4, 0, 3), (5, 0, 3), (3, 1, 1), (3, 3, 3), (2, 5, 2)],
)
def test_offline_needs_a_majority_or_the_quorum_set(
    locations: int, quorum: int, wanted: int
) -> None:
    assert needed(locations, quorum) == wanted


def test_one_location_is_passed_through_word_for_word() -> None:
    for status, reason in [(OFF, "3 consecutive failures; last: x"), (DEG, "slow: 2.1 s")]:
        assert combine({"eu": (status, reason)}) == (status, reason)
        assert combine({"": (status, reason)}) == (status, reason)


def test_some_locations_failing_is_degraded_naming_them() -> None:
    status, reason = combine({"eu": (OFF, "3 consecutive failures"), "us": (ON, "healthy")})
    assert status is DEG
    assert reason.startswith("offline from eu (1 of 2 locations, 2 needed)"), reason
    assert reason.endswith("eu: 3 consecutive failures")
    status, reason = combine(
        {"ap": (ON, "healthy"), "eu": (DEG, "slow: 3 s"), "us": (OFF, "timeout")}
    )
    assert status is DEG
    assert reason.startswith("offline from us (1 of 3 locations, 2 needed); degraded from eu")


def test_a_quorum_of_locations_failing_is_offline() -> None:
    statuses = {"ap": (ON, "healthy"), "eu": (OFF, "timeout"), "us": (OFF, "503")}
    status, reason = combine(statuses)
    assert status is OFF
    assert reason == "offline from eu, us (2 of 3 locations); eu: timeout"
    # Asking for all three keeps it degraded; asking for one makes one enough.
    assert combine(statuses, quorum=3)[0] is DEG
    assert combine({"eu": (OFF, "x"), "us": (ON, "healthy")}, quorum=1)[0] is OFF


def test_locations_without_results_count_but_never_fail() -> None:
    assert combine({"eu": (UNK, "no results yet"), "us": (UNK, "no results yet")})[0] is UNK
    assert combine({"eu": (ON, "healthy"), "us": (UNK, "no results yet")}) == (ON, "healthy")
    # One of two offline and the other silent: not a majority of the two.
    assert combine({"eu": (OFF, "x"), "us": (UNK, "no results yet")})[0] is DEG


def test_tracker_judges_each_location_on_its_own_results() -> None:
    tracker = StatusTracker(["p"], clock=lambda: T0)
    tracker.expected = lambda provider: ("eu", "us")
    changes = []
    for second in range(4):
        changes.append(tracker.observe(result("us", Outcome.OK, 2 * second)))
        changes.append(tracker.observe(result("eu", Outcome.SERVER_ERROR, 2 * second + 1)))
    # eu's failures and us's successes interleave; neither spoils the other's window.
    assert tracker.locations("p") == {
        "eu": derive_status([result("eu", Outcome.SERVER_ERROR, s) for s in range(4)]),
        "us": (ON, "healthy"),
    }
    state = tracker.state("p")
    assert state.status is DEG and state.reason.startswith("offline from eu (1 of 2")
    assert [(c.old, c.new) for c in changes if c is not None] == [(UNK, ON), (ON, DEG)]
    for second in range(8, 11):
        tracker.observe(result("us", Outcome.TIMEOUT, second))
    assert tracker.state("p").status is OFF
    assert tracker.state("p").reason.startswith("offline from eu, us (2 of 2 locations)")


def test_tracker_without_locations_judges_as_it_always_did() -> None:
    """One window over every result, the status and reason `derive_status` gives it."""
    outcomes = [Outcome.OK, Outcome.SERVER_ERROR, Outcome.SERVER_ERROR, Outcome.TIMEOUT]
    tracker = StatusTracker(["p"])
    for second, outcome in enumerate(outcomes):
        tracker.observe(result("", outcome, second))
        so_far = [result("", o, s) for s, o in enumerate(outcomes[: second + 1])]
        state = tracker.state("p")
        assert (state.status, state.reason) == derive_status(so_far)
    assert tracker.state("p").status is OFF


def test_seeded_results_are_split_by_location() -> None:
    tracker = StatusTracker(["p"])
    tracker.expected = lambda provider: ("eu", "us")
    seed = [result("eu", Outcome.SERVER_ERROR, s) for s in range(3)]
    seed += [result("us", Outcome.OK, s) for s in range(3, 6)]
    tracker.seed("p", seed)
    assert {k: v[0] for k, v in tracker.locations("p").items()} == {"eu": OFF, "us": ON}
    change = tracker.observe(result("us", Outcome.OK, 7))
    assert change is not None and change.new is DEG


def test_the_window_shown_holds_every_location_in_arrival_order() -> None:
    # One location's results first (kept once, as that location's window), then a second
    # location joins: the window shown goes on from the first one's, in arrival order.
    tracker = StatusTracker(["p"], window=5)
    arrived = [result("eu", Outcome.OK, s) for s in range(4)]
    for item in arrived:
        tracker.observe(item)
    assert tracker.recent("p") == arrived
    for s, location in enumerate(["us", "eu", "us"], start=4):
        item = result(location, Outcome.SERVER_ERROR, s)
        arrived.append(item)
        tracker.observe(item)
    assert tracker.recent("p") == arrived[-5:]
    assert [r.location for r in tracker.recent("p")] == ["eu", "eu", "us", "eu", "us"]
    assert tracker.state("p").last_result == arrived[-1]
    tracker.seed("p", arrived[:2])  # taken over afresh: one location again
    assert tracker.recent("p") == arrived[:2]


def test_the_status_view_reads_the_current_status_of_each_provider() -> None:
    tracker = StatusTracker(["p", "q"])
    view = tracker.statuses()
    assert dict(view) == {"p": "unknown", "q": "unknown"}
    tracker.observe(result("", Outcome.OK, 0))
    # A view, not a copy: what triage reads is the status now.
    assert view["p"] == "online"
    assert view.get("nobody") is None
    assert dict(view) == {pid: s.status.value for pid, s in tracker.states().items()}

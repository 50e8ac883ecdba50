"""The result rules' per-provider windows: a ring of (time, value) pairs."""

from __future__ import annotations

from apiwatch.alerting.windows import TimedWindow


def test_the_window_keeps_the_newest_pairs_oldest_first() -> None:
    window = TimedWindow(3)
    for second in range(1, 6):
        window.append(float(second), second * 10.0)
    assert len(window) == 3
    assert window.since(0.0) == [30.0, 40.0, 50.0]


def test_since_leaves_out_pairs_before_the_cutoff() -> None:
    window = TimedWindow(5)
    for second in (1.0, 2.0, 3.0, 4.0):
        window.append(second, second)
    assert window.since(2.5) == [3.0, 4.0]
    assert window.since(3.0) == [3.0, 4.0]  # at the cut-off counts
    assert window.since(9.0) == []


def test_resizing_keeps_the_newest_pairs_that_fit() -> None:
    window = TimedWindow(4)
    for second in range(1, 7):  # wrapped: 3, 4, 5, 6
        window.append(float(second), float(second))
    smaller = window.resized(2)
    assert (smaller.size, smaller.since(0.0)) == (2, [5.0, 6.0])
    larger = window.resized(6)
    assert larger.since(0.0) == [3.0, 4.0, 5.0, 6.0]
    larger.append(7.0, 7.0)
    assert larger.since(0.0) == [3.0, 4.0, 5.0, 6.0, 7.0]

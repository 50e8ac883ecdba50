"""Simulated order books for the exchanges, and the integrity faults they can carry.

A healthy book sits around the shared price table's BTC-USDT price with a one-basis-point
spread, levels half a basis point apart and an update id that grows with the data clock
(twenty updates a second), so every venue's book agrees with every other within the price
jitter. The book scenarios break exactly one thing each:

- `crossed_book`: the best bid is above the best ask;
- `frozen_book`: the update id stops where it was while the timestamp keeps moving;
- `thin_book`: every size shrinks to 1 % (depth near the mid collapses);
- `wide_spread`: the spread opens to `bps` basis points;
- `locked_book`: the best bid equals the best ask;
- `one_sided_book`: the asks are missing (an empty side);
- `non_positive_book`: one bid has a size of zero and one ask a negative size;
- `duplicate_level_book`: one bid level is listed twice;
- `unordered_book`: two ask levels are swapped;
- `rewound_book`: each update id is lower than the one before (a replayed snapshot);
- `unreadable_book`: one size is `NaN`, which no collector can read.

`ticker_outside` moves a ticker's last price `bps` beyond its own best ask
(`ticker_last`).

`stale` (old timestamps) and `divergent` (skewed prices) come from the view, as for every
other provider.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from apiwatch.simulator.market import View
from apiwatch.simulator.scenarios import Scenario

UPDATES_PER_S = 20
_STEP_BPS = 0.5
_HEALTHY_SPREAD_BPS = 1.0


@dataclass
class Book:
    bids: list[tuple[float, float]]
    asks: list[tuple[float, float]]
    update_id: int


# Every scenario that changes a book, for the simulator's docs and tests.
BOOK_SCENARIOS = (
    "crossed_book",
    "frozen_book",
    "thin_book",
    "wide_spread",
    "locked_book",
    "one_sided_book",
    "non_positive_book",
    "duplicate_level_book",
    "unordered_book",
    "rewound_book",
    "unreadable_book",
)


class BookMaker:
    """One venue's books; remembers where a frozen book froze and the last id it served."""

    def __init__(self) -> None:
        self._frozen_at: int | None = None
        self._last_id: int | None = None

    def make(self, view: View, scenario: Scenario, *, depth: int, mid: float) -> Book:
        depth = max(1, min(depth, 200))
        spread_bps = _HEALTHY_SPREAD_BPS
        if scenario.name == "wide_spread":
            spread_bps = float(scenario.params["bps"])
        half = mid * spread_bps / 20_000
        step = mid * _STEP_BPS / 10_000
        size_factor = 0.01 if scenario.name == "thin_book" else 1.0
        bids = [
            (mid - half - i * step, random.uniform(0.2, 2.5) * size_factor) for i in range(depth)
        ]
        asks = [
            (mid + half + i * step, random.uniform(0.2, 2.5) * size_factor) for i in range(depth)
        ]
        bids, asks = _fault(scenario.name, bids, asks, half=half, step=step)
        update_id = int(view.data_time * UPDATES_PER_S)
        if scenario.name == "frozen_book":
            if self._frozen_at is None:
                self._frozen_at = update_id
            update_id = self._frozen_at
        else:
            self._frozen_at = None
        if scenario.name == "rewound_book" and self._last_id is not None:
            # Five seconds of updates back from the last book served, every time.
            update_id = self._last_id - 5 * UPDATES_PER_S
        self._last_id = update_id
        return Book(bids=bids, asks=asks, update_id=update_id)


Levels = list[tuple[float, float]]


def _fault(
    name: str, bids: Levels, asks: Levels, *, half: float, step: float
) -> tuple[Levels, Levels]:
    """The book with the scenario's one fault; healthy levels for any other scenario."""
    if name == "crossed_book":
        # The bid side shifted up past the asks, as a book that missed deletes looks.
        shift = 2 * half + step
        bids = [(price + shift, size) for price, size in bids]
    elif name == "locked_book":
        # Priced down from the best ask itself, so rounding cannot leave a gap.
        bids = [(asks[0][0] - i * step, size) for i, (_, size) in enumerate(bids)]
    elif name == "one_sided_book":
        asks = []
    elif name == "non_positive_book" and len(bids) > 1 and len(asks) > 2:
        bids[1] = (bids[1][0], 0.0)
        asks[2] = (asks[2][0], -asks[2][1])
    elif name == "duplicate_level_book" and len(bids) > 2:
        bids.insert(2, bids[1])
        bids.pop()
    elif name == "unordered_book" and len(asks) > 3:
        asks[2], asks[3] = asks[3], asks[2]
    elif name == "unreadable_book":
        bids[0] = (bids[0][0], math.nan)
    return bids, asks


def ticker_last(price: float, scenario: Scenario) -> float:
    """A ticker's last trade: `price`, or `bps` above it under `ticker_outside` (its best
    bid and ask stay around `price`)."""
    if scenario.name == "ticker_outside":
        return price * (1 + float(scenario.params["bps"]) / 10_000)
    return price


def levels(
    rows: list[tuple[float, float]], *, price_places: int, size_places: int
) -> list[list[str]]:
    """Levels as exchanges send them: `[["65485.47", "47.081829"], …]`, numbers as strings."""
    return [
        [f"{price:.{price_places}f}", "NaN" if math.isnan(size) else f"{size:.{size_places}f}"]
        for price, size in rows
    ]

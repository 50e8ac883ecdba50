"""Order-book and ticker integrity: what a 200 OK with a plausible body can still get wrong.
Exact decimals for prices and sizes; floats only for the statistics of spreads. No clocks:
callers pass the time.

One book at a time (`static_checks`):
- `empty_side`: no bids or no asks;
- `non_positive`: a zero or negative price or size;
- `duplicate_level`: the same price twice on one side;
- `unordered`: bids not strictly descending or asks not strictly ascending;
- `crossed` / `locked`: best bid above / equal to the best ask.

Against the venue's recent books (`BookTracker.judge`):
- `stale`: the book's own time older than the order-book TTL;
- `update_id_backwards`: the update id smaller than the last one;
- `update_id_frozen`: the same update id while the book's time (or, for a venue whose book
  carries none, our fetch time) moved on by `frozen_after_s` or more;
- `wide_spread`: spread above `max_spread_bps`;
- `spread_anomaly`: spread's z-score against the recent spreads above `spread_z`;
- `depth_collapse`: depth within ±`depth_band_pct` of the mid below (100 -
  `depth_collapse_pct`) % of its recent median.
Only books that passed every check join the history, so a fault does not become normal.

A ticker (`ticker_check`): `last_outside_book`, the last price beyond its own best bid or
ask by more than `last_outside_bps`.
"""

from __future__ import annotations

import statistics
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, localcontext
from typing import Any

from apiwatch.analysis.anomalies import mean_stddev, z_score

BPS = Decimal(10_000)
# A steady spread has a standard deviation near 0; without a floor one tick of change would
# be "infinitely" anomalous.
MIN_SPREAD_STDDEV_BPS = 0.5
MIN_SPREAD_STDDEV_RATIO = 0.25


@dataclass(frozen=True)
class Thresholds:
    """The checks' settings; the catalogue's `book_checks` gives them per provider."""

    ttl_s: float = 10.0
    max_spread_bps: float = 50.0
    spread_z: float = 6.0
    depth_band_pct: float = 1.0
    depth_collapse_pct: float = 80.0
    last_outside_bps: float = 25.0
    frozen_after_s: float = 5.0
    min_history: int = 10
    history: int = 60


@dataclass(frozen=True)
class Failure:
    check: str
    detail: str

    def reason(self) -> str:
        return f"book_integrity: {self.check}: {self.detail}"


@dataclass(frozen=True)
class Book:
    """A normalised book: levels as the venue sent them, best first."""

    bids: tuple[tuple[Decimal, Decimal], ...]
    asks: tuple[tuple[Decimal, Decimal], ...]
    update_id: int | None = None
    timestamp: datetime | None = None

    @classmethod
    def from_values(cls, values: Mapping[str, Any], timestamp: datetime | None) -> Book:
        """From a book point's `values` (exact decimal strings, as the collectors store)."""

        def side(rows: Sequence[Sequence[str]]) -> tuple[tuple[Decimal, Decimal], ...]:
            return tuple((Decimal(price), Decimal(size)) for price, size in rows)

        return cls(
            bids=side(values.get("bids") or ()),
            asks=side(values.get("asks") or ()),
            update_id=values.get("update_id"),
            timestamp=timestamp,
        )


@dataclass(frozen=True)
class Summary:
    best_bid: Decimal | None
    best_ask: Decimal | None
    mid: Decimal | None
    spread_bps: Decimal | None
    depth: Decimal  # quote notional (price x size) within the band around the mid
    levels: int

    def as_dict(self) -> dict[str, str | int | None]:
        def text(value: Decimal | None) -> str | None:
            return None if value is None else format(value, "f")

        return {
            "best_bid": text(self.best_bid),
            "best_ask": text(self.best_ask),
            "mid": text(self.mid),
            "spread_bps": text(self.spread_bps),
            "depth": text(self.depth),
            "levels": self.levels,
        }


def summarize(book: Book, *, band_pct: float = 1.0) -> Summary:
    """Best bid and ask, mid, spread in bps and depth within ±`band_pct` % of the mid."""
    bid = book.bids[0][0] if book.bids else None
    ask = book.asks[0][0] if book.asks else None
    levels = len(book.bids) + len(book.asks)
    if bid is None or ask is None:
        return Summary(bid, ask, None, None, Decimal(0), levels)
    with localcontext() as context:
        context.prec = 50
        mid = (bid + ask) / 2
        spread = ((ask - bid) / mid * BPS).quantize(Decimal("0.0001")) if mid > 0 else None
        band = mid * Decimal(str(band_pct)) / 100
        depth = sum(
            (
                price * size
                for price, size in (*book.bids, *book.asks)
                if size > 0 and abs(price - mid) <= band
            ),
            Decimal(0),
        )
    return Summary(bid, ask, mid, spread, depth, levels)


def _first_repeat(prices: Sequence[Decimal]) -> Decimal | None:
    seen: set[Decimal] = set()
    for price in prices:
        if price in seen:
            return price
        seen.add(price)
    return None


def _side_failures(
    name: str, rows: Sequence[tuple[Decimal, Decimal]], descending: bool
) -> list[Failure]:
    failures = []
    for index, (price, size) in enumerate(rows):
        if price <= 0 or size <= 0:
            what = "price" if price <= 0 else "size"
            failures.append(
                Failure(
                    "non_positive",
                    f"{name}[{index}] has a {what} of {format(price if price <= 0 else size, 'f')}",
                )
            )
            break
    prices = [price for price, _ in rows]
    repeated = _first_repeat(prices)
    if repeated is not None:
        failures.append(
            Failure("duplicate_level", f"{name} list price {format(repeated, 'f')} twice")
        )
    else:
        for index in range(1, len(prices)):
            ahead, here = prices[index - 1], prices[index]
            if (here >= ahead) if descending else (here <= ahead):
                order = "descending" if descending else "ascending"
                failures.append(
                    Failure("unordered", f"{name} not strictly {order} at level {index}")
                )
                break
    return failures


def static_checks(book: Book) -> list[Failure]:
    """What is wrong with this book on its own; empty when nothing is."""
    if not book.bids or not book.asks:
        missing = " and ".join(
            s for s, rows in (("bids", book.bids), ("asks", book.asks)) if not rows
        )
        return [Failure("empty_side", f"no {missing}")]
    failures = _side_failures("bids", book.bids, True) + _side_failures("asks", book.asks, False)
    bid, ask = book.bids[0][0], book.asks[0][0]
    if bid > ask:
        failures.append(
            Failure("crossed", f"best bid {format(bid, 'f')} above best ask {format(ask, 'f')}")
        )
    elif bid == ask:
        failures.append(Failure("locked", f"best bid equals best ask at {format(bid, 'f')}"))
    return failures


def ticker_check(
    last: Decimal, bid: Decimal | None, ask: Decimal | None, *, tolerance_bps: float
) -> Failure | None:
    """The last trade beyond the ticker's own best bid or ask by more than the tolerance."""
    if bid is None or ask is None:
        return None
    slack = Decimal(str(tolerance_bps)) / BPS
    if last < bid * (1 - slack):
        side, edge = "below the best bid", bid
    elif last > ask * (1 + slack):
        side, edge = "above the best ask", ask
    else:
        return None
    return Failure(
        "last_outside_book",
        f"last {format(last, 'f')} is {side} {format(edge, 'f')} "
        f"by more than {tolerance_bps:g} bps",
    )


@dataclass
class _History:
    update_id: int | None = None
    # When the current update id was first seen: the book's time, or our fetch time.
    moment: datetime | None = None
    spreads: deque[float] = field(default_factory=deque)
    depths: deque[Decimal] = field(default_factory=deque)


class BookTracker:
    """The recent books of each venue and item, for the checks that need a past."""

    def __init__(self) -> None:
        self._history: dict[tuple[str, str], _History] = {}

    def history_size(self, provider: str, item: str) -> int:
        """How many passed books the baselines of this venue's item hold."""
        history = self._history.get((provider, item))
        return 0 if history is None else len(history.spreads)

    def judge(
        self,
        provider: str,
        item: str,
        book: Book,
        *,
        now: datetime,
        thresholds: Thresholds,
    ) -> tuple[Summary, list[Failure]]:
        """Every check on this book; a book that passes all of them joins the history."""
        summary = summarize(book, band_pct=thresholds.depth_band_pct)
        failures = static_checks(book)
        history = self._history.setdefault((provider, item), _History())
        failures += self._sequence(book, history, now=now, thresholds=thresholds)
        if summary.spread_bps is not None and not failures:
            failures += _spread(float(summary.spread_bps), history, thresholds)
            failures += _depth(summary.depth, history, thresholds)
        backwards = any(f.check == "update_id_backwards" for f in failures)
        if book.update_id is not None and not backwards and book.update_id != history.update_id:
            # `moment` is when this id was first seen: a frozen id is judged from there.
            history.update_id = book.update_id
            history.moment = book.timestamp or now
        if not failures and summary.spread_bps is not None:
            _push(history.spreads, float(summary.spread_bps), thresholds.history)
            _push(history.depths, summary.depth, thresholds.history)
        return summary, failures

    @staticmethod
    def _sequence(
        book: Book, history: _History, *, now: datetime, thresholds: Thresholds
    ) -> list[Failure]:
        ttl_s = thresholds.ttl_s
        failures = []
        if book.timestamp is not None:
            age = (now - book.timestamp).total_seconds()
            if age > ttl_s:
                failures.append(
                    Failure(
                        "stale", f"the book's own time is {age:.1f} s old, over the {ttl_s:g} s TTL"
                    )
                )
        moment = book.timestamp or now
        if book.update_id is not None and history.update_id is not None:
            if book.update_id < history.update_id:
                failures.append(
                    Failure(
                        "update_id_backwards",
                        f"update id went back from {history.update_id} to {book.update_id}",
                    )
                )
            elif (
                book.update_id == history.update_id
                and history.moment is not None
                and (moment - history.moment).total_seconds() >= thresholds.frozen_after_s
            ):
                moved = (moment - history.moment).total_seconds()
                failures.append(
                    Failure(
                        "update_id_frozen",
                        f"update id stood at {book.update_id} while time moved {moved:.1f} s",
                    )
                )
        return failures


def _push(values: deque[Any], value: Any, size: int) -> None:
    values.append(value)
    while len(values) > size:
        values.popleft()


def _spread(spread_bps: float, history: _History, thresholds: Thresholds) -> list[Failure]:
    if spread_bps > thresholds.max_spread_bps:
        return [
            Failure(
                "wide_spread",
                f"spread {spread_bps:.2f} bps is over {thresholds.max_spread_bps:g} bps",
            )
        ]
    if len(history.spreads) < thresholds.min_history:
        return []
    mean, stddev = mean_stddev(history.spreads)
    z = z_score(
        spread_bps,
        mean=mean,
        stddev=stddev,
        min_stddev=MIN_SPREAD_STDDEV_BPS,
        min_stddev_ratio=MIN_SPREAD_STDDEV_RATIO,
    )
    if z > thresholds.spread_z:
        return [
            Failure(
                "spread_anomaly",
                f"spread {spread_bps:.2f} bps is {z:.1f} deviations above "
                f"its recent {mean:.2f} bps",
            )
        ]
    return []


def _depth(depth: Decimal, history: _History, thresholds: Thresholds) -> list[Failure]:
    if len(history.depths) < thresholds.min_history:
        return []
    baseline = statistics.median(history.depths)
    floor = baseline * (100 - Decimal(str(thresholds.depth_collapse_pct))) / 100
    if depth < floor:
        dropped = (1 - depth / baseline) * 100 if baseline > 0 else Decimal(100)
        return [
            Failure(
                "depth_collapse",
                f"depth within ±{thresholds.depth_band_pct:g} % of mid fell "
                f"{dropped:.0f} % below its recent median",
            )
        ]
    return []

"""Integrity of exchange data as it is collected: each order book and ticker is judged
(analysis/books.py) before its probe result is handled, so a failed check turns that 200 OK
into `invalid_payload` with the check's name in the reason, recorded, counted towards the
provider's status and alerted like any other failure. The venues' book mids are then held
against each other (the consensus that already compares prices); a divergent venue is a
`cross_venue` failure of its book, announced and alerted but, like a price divergence,
never turned into `invalid_payload`: a venue apart from the others may be quoting its own
market faithfully, against books fetched up to an interval earlier, so it is no proof that
this response was garbage.

Each check's episode is announced once (`BookIntegrity`) and once more when it passes
again. The latest summary per venue and book is kept for `GET /api/data/books`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

from apiwatch.analysis.books import Book, BookTracker, Failure, Thresholds, ticker_check
from apiwatch.catalogue.schema import ProviderSpec
from apiwatch.collectors.base import DataPoint
from apiwatch.domain import BookIntegrity

BOOK_PREFIX = "book:"
# Every check a book goes through, in the order /api/data/books lists them.
BOOK_CHECKS = (
    "empty_side",
    "non_positive",
    "duplicate_level",
    "unordered",
    "crossed",
    "locked",
    "stale",
    "update_id_backwards",
    "update_id_frozen",
    "wide_spread",
    "spread_anomaly",
    "depth_collapse",
    "cross_venue",
)


def thresholds_for(spec: ProviderSpec, ttl_s: float) -> Thresholds:
    return Thresholds(ttl_s=ttl_s, **spec.book_checks.model_dump())


class Integrity:
    """Book and ticker checks, mixed into `Collection` (which owns the state)."""

    books: dict[tuple[str, str], dict[str, Any]]
    _book_tracker: BookTracker
    _failing: set[tuple[str, str, str]]
    _announce: Callable[[object], None]
    ttl_for: Callable[[str], float]  # from Judgements

    def judge_integrity(
        self, spec: ProviderSpec, points: list[DataPoint], *, now: datetime
    ) -> tuple[list[DataPoint], list[Failure]]:
        """The points as they are stored (books as summaries) and every failed check."""
        thresholds = thresholds_for(spec, self.ttl_for("order_book"))
        out: list[DataPoint] = []
        failed: list[Failure] = []
        for point in points:
            values = point.values or {}
            if values.get("kind") == "book":
                point, failures = self._judge_book(point, thresholds, now=now)
            elif "bid" in values and "ask" in values:
                failures = _ticker_failures(point, thresholds)
                self._episodes(point.provider, point.item, ("last_outside_book",), failures, now)
            else:
                failures = []
            failed += failures
            out.append(point)
        return out, failed

    def _judge_book(
        self, point: DataPoint, thresholds: Thresholds, *, now: datetime
    ) -> tuple[DataPoint, list[Failure]]:
        values = point.values or {}
        book = Book.from_values(values, point.data_timestamp)
        summary, failures = self._book_tracker.judge(
            point.provider, point.item, book, now=now, thresholds=thresholds
        )
        failed = {f.check: f.detail for f in failures}
        age = None if book.timestamp is None else round((now - book.timestamp).total_seconds(), 3)
        stored = {
            "kind": "book",
            "symbol": values.get("symbol"),
            "update_id": book.update_id,
            **summary.as_dict(),
            "age_s": age,
            "failed": failed,
        }
        self.books[(point.provider, point.item)] = {
            "provider": point.provider,
            "item": point.item,
            **stored,
            "data_time": book.timestamp,
            "fetched_at": now,
            "checks": {
                check: "failed"
                if check in failed
                else self._verdict(point, book, check, thresholds)
                for check in BOOK_CHECKS
            },
        }
        self._episodes(point.provider, point.item, BOOK_CHECKS[:-1], failures, now)
        # A failed book does not vote in the venues' consensus on the mid.
        replaced = dataclasses.replace(
            point,
            value=None if failures else summary.mid,
            text=failures[0].reason()[:300] if failures else None,
            values=stored,
        )
        if replaced.value is None and replaced.text is None:
            replaced = dataclasses.replace(replaced, text="a side of the book is empty")
        return replaced, failures

    def _verdict(self, point: DataPoint, book: Book, check: str, thresholds: Thresholds) -> str:
        """`ok`, or `not_judged` when the book gives the check nothing to go on."""
        if check == "stale" and book.timestamp is None:
            return "not_judged"
        if check.startswith("update_id") and book.update_id is None:
            return "not_judged"
        history = self._book_tracker.history_size(point.provider, point.item)
        if check in ("spread_anomaly", "depth_collapse") and history < thresholds.min_history:
            return "not_judged"
        if check == "cross_venue":
            return "not_judged"  # set by judge_cross_venue once the venues are compared
        return "ok"

    def judge_cross_venue(self, views: dict[str, dict[str, Any]], *, now: datetime) -> None:
        """Each venue's book mid against the median of the others (from `consensus_view`)."""
        for item, view in views.items():
            if not item.startswith(BOOK_PREFIX):
                continue
            quorum = len(view["providers"]) >= 3
            for provider, entry in view["providers"].items():
                summary = self.books.get((provider, item))
                failures = []
                if entry["divergent"] and quorum:
                    failures = [
                        Failure(
                            "cross_venue",
                            f"mid {format(entry['value'], 'f')} is {entry['deviation_pct']:+.3f} %"
                            f" from the venues' median {format(view['median'], 'f')}"
                            f" (threshold {view['threshold_pct']:g} %)",
                        )
                    ]
                if summary is not None:
                    verdict = "failed" if failures else ("ok" if quorum else "not_judged")
                    summary["checks"]["cross_venue"] = verdict
                    if failures:
                        summary["failed"]["cross_venue"] = failures[0].detail
                    else:
                        summary["failed"].pop("cross_venue", None)
                self._episodes(provider, item, ("cross_venue",), failures, now)

    def _episodes(
        self,
        provider: str,
        item: str,
        checks: tuple[str, ...],
        failures: list[Failure],
        now: datetime,
    ) -> None:
        failed = {f.check: f for f in failures}
        for check in checks:
            key = (provider, item, check)
            if check in failed and key not in self._failing:
                self._failing.add(key)
                self._announce(BookIntegrity(provider, item, check, failed[check].reason(), now))
            elif check not in failed and key in self._failing:
                self._failing.discard(key)
                self._announce(
                    BookIntegrity(
                        provider, item, check, f"book_integrity: {check}: passes again", now, True
                    )
                )

    def books_view(self) -> list[dict[str, Any]]:
        """The latest book summary per venue and book (GET /api/data/books)."""
        return [self.books[key] for key in sorted(self.books)]


def _ticker_failures(point: DataPoint, thresholds: Thresholds) -> list[Failure]:
    values = point.values or {}
    if point.value is None or "bid" not in values or "ask" not in values:
        return []
    failure = ticker_check(
        point.value,
        Decimal(values["bid"]),
        Decimal(values["ask"]),
        tolerance_bps=thresholds.last_outside_bps,
    )
    return [] if failure is None else [failure]

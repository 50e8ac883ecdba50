"""A provider's recent probe results, kept small: what the status tracker judges its status
on and the dashboard's heartbeat shows.

A monitor keeps the last 20 results of every provider, 200,000 of them at 10,000
providers. Kept as objects, each is a `ProbeResult` with a datetime and a float of its own,
about 230 bytes. Here an `ok` result is three numbers in an array of floats (when it
started, its latency, its response size) and a reference to a *shape*: the result with those
three taken out, shared by the ok results before it that differ only in them: 32 bytes a
result. With what a window holds besides (the newest result whole, the shape, the list and
the array), a provider's 20 ok results take about 1.4 KB instead of about 6 KB. Results
that are not `ok` (judging reads their reasons) and the newest result are kept as they came.

Reading gives back results equal to those added, except that an ok result that is no
longer the newest has dropped its parsed body, response headers and certificate (none of
which take part in a result's equality): the window does not keep a body alive that
nothing reads again.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from apiwatch.domain import NO_HEADERS, Outcome, ProbeResult

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_NAN = math.nan
_NO_SIZE = -1.0
# Microseconds since the epoch and response sizes are exact in a float up to 2**53: the year
# 2255 and 9 petabytes. A result beyond (a wrong clock, bad stored data) is kept whole.
_EXACT = 2**53
_LATEST = _EPOCH + _EXACT * _MICROSECOND


def _same_shape(shape: ProbeResult, result: ProbeResult) -> bool:
    """Whether `result` differs from `shape` only where a compact slot keeps its own."""
    return (
        shape.provider == result.provider
        and shape.endpoint == result.endpoint
        and shape.status_code == result.status_code
        and shape.reason == result.reason
        and shape.attempt == result.attempt
        and shape.final == result.final
        and shape.key_label == result.key_label
        and shape.retry_after_s == result.retry_after_s
        and shape.location == result.location
    )


def _compact(result: ProbeResult) -> bool:
    """Whether `result` can go into the numbers and come back equal."""
    latency, size = result.latency_ms, result.response_bytes
    return (
        result.outcome is Outcome.OK
        and result.started_at.tzinfo is UTC
        and _EPOCH <= result.started_at < _LATEST
        and (latency is None or (type(latency) is float and not math.isnan(latency)))
        and (size is None or (type(size) is int and 0 <= size < _EXACT))
    )


class ResultWindow:
    """The last `maxlen` results, oldest first: a ring over a list and an array of floats
    (three a slot: start in microseconds, NaN for a result kept whole; latency, NaN for
    none; response size, -1 for none)."""

    __slots__ = ("_count", "_kept", "_last", "_numbers", "_shape", "_start", "maxlen")

    def __init__(self, maxlen: int) -> None:
        self.maxlen = maxlen
        # Made full size at the first result: a window fills within minutes and stays full,
        # and lists and arrays grown one item at a time keep spare room.
        self._kept: list[ProbeResult | None] = []  # per slot: the result, or its shape
        self._numbers = array("d")
        self._count = 0
        self._start = 0  # the oldest slot, once the ring is full
        self._shape: ProbeResult | None = None  # the newest shape, for the next ok result
        self._last: ProbeResult | None = None

    def append(self, result: ProbeResult) -> Outcome | None:
        """Add the newest result; the outcome of the one that left, if one did."""
        maxlen = self.maxlen
        if not maxlen:
            return None
        if not self._kept:
            self._kept = [None] * maxlen
            self._numbers = array("d", (_NAN,)) * (3 * maxlen)
        if self._count < maxlen:
            i = self._count
            self._count += 1
            left = None
        else:
            i = self._start
            self._start = (i + 1) % maxlen
            left = self._kept[i].outcome  # type: ignore[union-attr]
        numbers, n = self._numbers, 3 * i
        if _compact(result):
            shape = self._shape
            if shape is None or not _same_shape(shape, result):
                shape = self._shape = replace(
                    result,
                    started_at=_EPOCH,
                    latency_ms=None,
                    response_bytes=None,
                    payload=None,
                    headers=NO_HEADERS,
                    certificate=None,
                )
            latency, size = result.latency_ms, result.response_bytes
            self._kept[i] = shape
            numbers[n] = (result.started_at - _EPOCH) // _MICROSECOND
            numbers[n + 1] = _NAN if latency is None else latency
            numbers[n + 2] = _NO_SIZE if size is None else size
        else:
            self._kept[i] = result
            numbers[n] = _NAN
        self._last = result
        return left

    def _order(self) -> list[int]:
        start, count = self._start, self._count
        return [*range(start, count), *range(start)]

    def _unpacked(self, i: int) -> tuple[datetime, float | None, int | None] | None:
        """A compact slot's start, latency and size; None for a result kept whole."""
        numbers, n = self._numbers, 3 * i
        at = numbers[n]
        if math.isnan(at):
            return None
        latency, size = numbers[n + 1], numbers[n + 2]
        return (
            _EPOCH + int(at) * _MICROSECOND,
            None if math.isnan(latency) else latency,
            None if size == _NO_SIZE else int(size),
        )

    def _result(self, i: int) -> ProbeResult:
        kept = self._kept[i]
        unpacked = self._unpacked(i)
        if unpacked is None:
            return kept  # type: ignore[return-value]
        at, latency, size = unpacked
        return replace(kept, started_at=at, latency_ms=latency, response_bytes=size)  # type: ignore[arg-type]

    def __iter__(self) -> Iterator[ProbeResult]:
        order = self._order()
        for i in order[:-1]:
            yield self._result(i)
        if order:
            yield self._last  # type: ignore[misc]

    def __len__(self) -> int:
        return self._count

    def __bool__(self) -> bool:
        return self._count > 0

    @property
    def last(self) -> ProbeResult | None:
        """The newest result, as it was added."""
        return self._last

    def judged(self) -> list[ProbeResult]:
        """The results for judging, oldest first: an ok result may stand as its shape (its
        outcome and reason are the result's; its time, latency and size are not)."""
        kept = self._kept
        return [kept[i] for i in self._order()]  # type: ignore[misc]

    def heartbeat(self) -> list[tuple[Outcome, datetime, float | None]]:
        """(outcome, started at, latency) of each result, oldest first, without rebuilding
        the results: what the dashboard draws for every provider."""
        beats = []
        for i in self._order():
            unpacked = self._unpacked(i)
            if unpacked is None:
                result = self._kept[i]
                beats.append((result.outcome, result.started_at, result.latency_ms))  # type: ignore[union-attr]
            else:
                beats.append((Outcome.OK, unpacked[0], unpacked[1]))
        return beats

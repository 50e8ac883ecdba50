"""Consensus across providers for one item (e.g. `BTC-USD`): the median price, each
provider's deviation from it, and who diverges by more than a threshold. Pure, exact
(Decimal throughout).

A provider is `divergent` when |its price - median| / median exceeds the threshold (in
percent; default 1 %). Deviations are signed: +5 means 5 % above the median.

Few providers:
- One: the median is its price, deviation 0, nothing can diverge (`quorum` False).
- Two: the median is their mean, and both deviate from it by the same amount, half their
  gap. Nothing tells which one is wrong, so when that exceeds the threshold BOTH are
  flagged; `quorum` False tells readers that a divergence names a disagreement, not a
  culprit. (Their gap is then more than twice the threshold.)
- Three or more (`quorum` True): the median belongs to the majority, so an outlier is
  flagged alone, with roughly its own skew as deviation.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Context, Decimal, localcontext

# Enough digits that a mean of two 28-digit prices and a percentage of it stay exact in
# every digit a price has.
_PRECISION = 50
_REPORTED = Context(prec=28)


@dataclass(frozen=True)
class ProviderDeviation:
    value: Decimal
    deviation_pct: Decimal  # signed, (value - median) / median * 100
    divergent: bool


@dataclass(frozen=True)
class Consensus:
    item: str
    median: Decimal
    providers: dict[str, ProviderDeviation]
    divergent: list[str]  # provider ids, sorted
    threshold_pct: Decimal
    # Three or more providers: a divergence then singles out an outlier.
    quorum: bool = field(default=False)


def median(values: list[Decimal]) -> Decimal:
    """The middle value; with an even count, the mean of the middle two (exact)."""
    if not values:
        raise ValueError("median of no values")
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    with localcontext() as context:
        context.prec = _PRECISION
        return (ordered[middle - 1] + ordered[middle]) / 2


def consensus(
    prices: Mapping[str, Decimal],
    *,
    threshold_pct: Decimal = Decimal("1"),
    item: str = "",
) -> Consensus:
    """Median and per-provider deviation for one item's prices by provider id.

    Raises ValueError for no prices, a price that is not a positive finite Decimal, or a
    negative threshold: callers pass collected values, which are checked already, so this
    is a programming error, not an upstream's.
    """
    if not prices:
        raise ValueError("consensus needs at least one price")
    threshold = Decimal(threshold_pct)
    if not threshold.is_finite() or threshold < 0:
        raise ValueError(f"threshold_pct must be a finite percentage ≥ 0, got {threshold_pct}")
    for provider, price in prices.items():
        if not isinstance(price, Decimal) or not price.is_finite() or price <= 0:
            raise ValueError(f"price from {provider!r} must be a positive finite Decimal")
    mid = median(list(prices.values()))
    deviations = {}
    with localcontext() as context:
        context.prec = _PRECISION
        for provider, price in sorted(prices.items()):
            pct = (price - mid) / mid * 100
            deviations[provider] = ProviderDeviation(
                value=price,
                # Judged on every digit, reported with Decimal's usual 28.
                deviation_pct=_REPORTED.plus(pct),
                divergent=abs(pct) > threshold,
            )
    return Consensus(
        item=item,
        median=mid,
        providers=deviations,
        divergent=[p for p, d in deviations.items() if d.divergent],
        threshold_pct=threshold,
        quorum=len(prices) >= 3,
    )

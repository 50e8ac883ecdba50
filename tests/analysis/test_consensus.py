"""Consensus across providers (pure): median, signed deviations, who is flagged."""

from __future__ import annotations

from decimal import Decimal

import pytest

from apiwatch.analysis.consensus import consensus, median

D = Decimal


def test_one_provider_is_its_own_median_and_never_divergent() -> None:
    result = consensus({"binance": D("67000.12")}, item="BTC-USD")
    assert result.item == "BTC-USD" and result.median == D("67000.12")
    assert result.providers["binance"].deviation_pct == 0
    assert result.divergent == [] and not result.quorum


def test_three_providers_flag_only_the_outlier_with_its_signed_deviation() -> None:
    result = consensus({"a": D("100"), "b": D("100.5"), "c": D("105")})
    assert result.median == D("100.5") and result.quorum
    assert result.divergent == ["c"]
    assert result.providers["c"].deviation_pct == D("450") / D("100.5")  # ≈ +4.48 %
    assert result.providers["a"].deviation_pct < 0
    assert not result.providers["a"].divergent


def test_a_price_below_the_median_is_flagged_too() -> None:
    result = consensus({"a": D("100"), "b": D("100"), "c": D("90")})
    assert result.divergent == ["c"]
    assert result.providers["c"].deviation_pct == D("-10")


def test_two_providers_deviate_equally_from_their_mean_and_both_are_flagged() -> None:
    result = consensus({"x": D("100"), "y": D("104")})
    assert result.median == D("102") and not result.quorum
    assert result.providers["x"].deviation_pct == -result.providers["y"].deviation_pct
    assert result.divergent == ["x", "y"]


def test_two_providers_within_twice_the_threshold_of_each_other_are_not_flagged() -> None:
    # A 1.9 % gap is 0.95 % from the mean for each: within the default 1 %.
    result = consensus({"x": D("100"), "y": D("101.9")})
    assert result.divergent == []


def test_a_deviation_exactly_at_the_threshold_is_not_divergent() -> None:
    result = consensus({"a": D("100"), "b": D("100"), "c": D("101")}, threshold_pct=D("1"))
    assert result.providers["c"].deviation_pct == D("1")
    assert result.divergent == []
    assert consensus({"a": D("100"), "b": D("100"), "c": D("101.0001")}).divergent == ["c"]


def test_the_threshold_is_configurable() -> None:
    prices = {"a": D("100"), "b": D("100"), "c": D("100.6")}
    assert consensus(prices, threshold_pct=D("0.5")).divergent == ["c"]
    assert consensus(prices, threshold_pct=D("1")).divergent == []


def test_median_of_an_even_count_is_the_exact_mean_of_the_middle_two() -> None:
    assert median([D("0.1"), D("0.2")]) == D("0.15")
    assert median([D("4"), D("1"), D("3"), D("2")]) == D("2.5")
    # 28+ significant digits survive the mean (the default context would round them).
    big = [D("1234567890123456789012345.67"), D("1234567890123456789012345.68")]
    assert median(big) == D("1234567890123456789012345.675")


def test_consensus_of_decimal_string_prices_is_exact() -> None:
    result = consensus({"a": D("0.1"), "b": D("0.2"), "c": D("0.3")})
    assert result.median == D("0.2")
    assert result.providers["c"].deviation_pct == D("50")


def test_divergent_providers_are_listed_sorted() -> None:
    result = consensus({"z": D("200"), "m": D("100"), "a": D("50"), "k": D("100"), "b": D("100")})
    assert result.divergent == ["a", "z"]
    assert list(result.providers) == sorted(result.providers)


@pytest.mark.parametrize(
    "prices",
    [{}, {"a": D("0")}, {"a": D("-1")}, {"a": D("NaN")}, {"a": D("Infinity")}, {"a": 1.5}],
)
def test_no_prices_or_impossible_prices_are_a_programming_error(prices: dict) -> None:
    with pytest.raises(ValueError):
        consensus(prices)


def test_a_negative_threshold_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="threshold"):
        consensus({"a": D("1")}, threshold_pct=D("-1"))

"""Payload checks and timestamp extraction, one unit and type per provider style."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from apiwatch.catalogue.schema import Check, TimestampSpec
from apiwatch.probe.assertions import check_failure, extract_timestamp


def fails(check: Check, document: object) -> str | None:
    return check_failure(check, status=200, document=document, body_is_json=True, latency_ms=1)


def test_not_equals_holds_for_an_absent_field_but_equals_does_not() -> None:
    assert fails(Check(json="$.Response", not_equals="Error"), {"RAW": {}}) is None
    assert fails(Check(json="$.Response", not_equals="Error"), {"Response": "Error"}) is not None
    assert fails(Check(json="$.status", equals="1"), {}) == "$.status is missing"


def test_type_checks_do_not_take_booleans_for_numbers() -> None:
    assert fails(Check(json="$.v", type="integer"), {"v": True}) is not None
    assert fails(Check(json="$.v", type="number"), {"v": 1.5}) is None
    assert fails(Check(json="$.v", type="null"), {"v": None}) is None


@pytest.mark.parametrize(
    ("document", "spec"),
    [
        (
            {"bitcoin": {"last_updated_at": 1_700_000_000}},
            {"json": "$.*.last_updated_at", "unit": "s"},
        ),
        (
            {"result": {"ethusd_timestamp": "1700000000"}},
            {"json": "$.result.ethusd_timestamp", "unit": "s"},
        ),
        ({"serverTime": 1_700_000_000_000}, {"json": "$.serverTime", "unit": "ms"}),
        ({"data": [{"ts": "1700000000000"}]}, {"json": "$.data[0].ts", "unit": "ms"}),
        ({"a": [{"t": "2023-11-14T22:13:20Z"}]}, {"json": "$.a[*].t", "unit": "iso8601"}),
        ({"a": [{"t": "2023-11-14T22:13:20.000+00:00"}]}, {"json": "$.a[*].t", "unit": "iso8601"}),
    ],
)
def test_timestamps_in_every_provider_unit_and_type(document: object, spec: dict) -> None:
    assert extract_timestamp(TimestampSpec(**spec), document) == datetime.fromtimestamp(
        1_700_000_000, tz=UTC
    )


def test_timestamp_picks_the_newest_and_ignores_garbage() -> None:
    spec = TimestampSpec(json="$.items[*].t", unit="s")
    assert extract_timestamp(spec, {"items": [{"t": 5}, {"t": "x"}, {"t": 9}, {"t": None}]}) == (
        datetime.fromtimestamp(9, tz=UTC)
    )
    assert extract_timestamp(spec, {"items": []}) is None
    assert extract_timestamp(spec, "not a document") is None

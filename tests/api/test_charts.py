"""The chart endpoints through the real application (`create_app` with its runtime, lifespan
and middleware) on SQLite and PostgreSQL, over known rows: rolled-up hours, the live
current hour, validation of range and bucket."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
import pytest
from sqlalchemy import delete, insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from apiwatch.analysis.rollups import LADDER
from apiwatch.api.app import create_app
from apiwatch.domain import Outcome, utcnow
from apiwatch.settings import Settings
from apiwatch.storage.models import TABLES
from apiwatch.storage.repositories import rollups
from tests.api.in_process import in_process
from tests.conftest import empty_tables

HOUR = timedelta(hours=1)
ATTEMPTS = TABLES["connection_attempts"]


@dataclass
class Charts:
    client: httpx.AsyncClient
    sessions: async_sessionmaker[AsyncSession]


@pytest.fixture
async def app(migrated_db_url: str) -> AsyncIterator[Charts]:
    await empty_tables(migrated_db_url)
    settings = Settings(_env_file=None, database_url=migrated_db_url, public_read=True)
    application = create_app(settings, start_scheduler=False)
    async with in_process(application, migrated_db_url) as (client, sessions):
        yield Charts(client, sessions)


def attempt(provider: str, outcome: Outcome, at: datetime, latency: float) -> dict:
    return {
        "provider": provider,
        "endpoint": "health",
        "outcome": outcome.value,
        "latency_ms": latency,
        "final": True,
        "started_at": at,
    }


async def insert_rows(app: Charts, table: str, rows: list[dict]) -> None:
    async with app.sessions() as session, session.begin():
        await session.execute(insert(TABLES[table]), rows)


def floor_hour(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


async def test_health_history_shows_rolled_up_hours_and_the_live_current_hour(app: Charts) -> None:
    now = utcnow()
    past = floor_hour(now) - 3 * HOUR
    rows = [attempt("binance", Outcome.OK, past + timedelta(minutes=i), 100.0) for i in range(4)]
    rows.append(attempt("binance", Outcome.SERVER_ERROR, past + timedelta(minutes=9), 900.0))
    rows.append(attempt("etherscan", Outcome.OK, past, 40.0))
    await insert_rows(app, "connection_attempts", rows)
    async with app.sessions() as session:
        await rollups.roll_up(
            session, kind="probe", start=past, end=past + HOUR, ladder=LADDER, now=now
        )
        # The rolled hour must be read from its roll-up, not from raw rows.
        await session.execute(delete(ATTEMPTS))
        await session.commit()
    just_now = now - timedelta(seconds=1)
    await insert_rows(
        app,
        "connection_attempts",
        [
            attempt("binance", Outcome.OK, just_now, 250.0),
            attempt("binance", Outcome.TIMEOUT, just_now, 30_000.0),
            attempt("binance", Outcome.SKIPPED, just_now, 0.0),
        ],
    )

    response = await app.client.get("/api/charts/health-history", params={"range": "24h"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["bucket"] == "1h"
    buckets = [datetime.fromisoformat(b) for b in body["buckets"]]
    assert buckets[0] <= datetime.fromisoformat(body["start"]) < buckets[0] + HOUR
    assert buckets[-1] <= datetime.fromisoformat(body["end"]) < buckets[-1] + HOUR
    assert all(b - a == HOUR for a, b in itertools.pairwise(buckets))

    series = {s["provider"]: s["points"] for s in body["series"]}
    assert set(series) == {"binance", "etherscan"}
    rolled, live = series["binance"]
    assert datetime.fromisoformat(rolled["t"]) == past
    assert (rolled["requests"], rolled["errors"], rolled["success_rate"]) == (5, 1, 0.8)
    # Rank 3 of 5 is the 3rd of the four in (75, 100], interpolated: 75 + 25 * 3/4.
    assert rolled["p50_ms"] == pytest.approx(93.75)
    assert 750 <= rolled["p95_ms"] <= 1000
    assert datetime.fromisoformat(live["t"]) == floor_hour(just_now)
    assert (live["requests"], live["errors"], live["success_rate"]) == (2, 1, 0.5)
    assert 250 <= live["p95_ms"] <= 30_000


async def test_health_history_filters_providers_and_rejects_unknown_ones(app: Charts) -> None:
    now = utcnow() - timedelta(seconds=1)
    rows = [attempt(p, Outcome.OK, now, 10.0) for p in ("binance", "etherscan", "coingecko")]
    await insert_rows(app, "connection_attempts", rows)
    response = await app.client.get(
        "/api/charts/health-history",
        params=[("range", "2d"), ("bucket", "1d"), ("provider", "binance"), ("provider", "kraken")],
    )
    assert response.status_code == 404
    assert "kraken" in response.json()["detail"]

    response = await app.client.get(
        "/api/charts/health-history",
        params=[
            ("range", "2d"),
            ("bucket", "1d"),
            ("provider", "binance"),
            ("provider", "newsapi"),
        ],
    )
    assert response.status_code == 200, response.text
    series = {s["provider"]: s["points"] for s in response.json()["series"]}
    # A requested provider without data still gets its (empty) series.
    assert set(series) == {"binance", "newsapi"}
    assert series["newsapi"] == []
    assert [p["requests"] for p in series["binance"]] == [1]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"range": "yesterday"}, "such as 24h or 7d"),
        ({"range": "91d"}, "between 1h and 90d"),
        ({"range": "0h"}, "between 1h and 90d"),
        ({"bucket": "30m"}, "such as 24h or 7d"),
    ],
)
async def test_health_history_rejects_bad_range_or_bucket_with_a_useful_422(
    app: Charts, params: dict[str, str], message: str
) -> None:
    response = await app.client.get("/api/charts/health-history", params=params)
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert message in error["msg"] and error["loc"] == ["query", next(iter(params))]


async def test_a_bucket_longer_than_the_range_is_a_400(app: Charts) -> None:
    # Each is valid alone (the schema allows both); together they contradict each other.
    response = await app.client.get(
        "/api/charts/health-history", params={"range": "6h", "bucket": "1d"}
    )
    assert response.status_code == 400
    assert "must not be longer than range" in response.json()["detail"]


def planned_run(category: str, planned: datetime, result: str) -> dict:
    return {
        "provider": "coingecko",
        "category": category,
        "planned_at": planned,
        "started_at": None if result == "skipped" else planned,
        "lateness_ms": None,
        "result": result,
        "reason": "rate_limit_budget" if result == "skipped" else "",
    }


async def test_compliance_gives_percent_on_time_per_category_and_bucket(app: Charts) -> None:
    hour = floor_hour(utcnow()) - 2 * HOUR
    rows = [planned_run("market_data", hour + timedelta(minutes=i), "on_time") for i in range(3)]
    rows.append(planned_run("market_data", hour + timedelta(minutes=5), "skipped"))
    rows.append(planned_run("news", hour, "late"))
    await insert_rows(app, "schedule_compliance", rows)

    response = await app.client.get(
        "/api/charts/compliance", params={"range": "24h", "bucket": "hour"}
    )
    assert response.status_code == 200, response.text
    series = {s["category"]: s["points"] for s in response.json()["series"]}
    assert [
        (p["planned"], p["on_time"], p["skipped"], p["compliance_pct"])
        for p in series["market_data"]
    ] == [(4, 3, 1, 75.0)]
    assert datetime.fromisoformat(series["market_data"][0]["t"]) == hour
    assert [p["compliance_pct"] for p in series["news"]] == [0.0]

    response = await app.client.get(
        "/api/charts/compliance", params={"range": "7d", "bucket": "day", "category": "news"}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert len(body["buckets"]) in (7, 8)
    assert [s["category"] for s in body["series"]] == ["news"]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"bucket": "week"}, "hour"),
        ({"category": "weather"}, "market_data"),
        ({"range": "100d"}, "between 1h and 90d"),
    ],
)
async def test_compliance_rejects_bad_parameters_with_422(
    app: Charts, params: dict[str, str], message: str
) -> None:
    response = await app.client.get("/api/charts/compliance", params=params)
    assert response.status_code == 422
    assert message in str(response.json()["detail"])


async def test_compliance_per_provider_gives_one_series_per_named_schedule(app: Charts) -> None:
    hour = floor_hour(utcnow()) - 3 * HOUR
    rows = [planned_run("market_data", hour + timedelta(minutes=i), "on_time") for i in range(3)]
    rows.append({**planned_run("market_data", hour, "late"), "provider": "binance"})
    await insert_rows(app, "schedule_compliance", rows)

    response = await app.client.get(
        "/api/charts/compliance",
        params={"range": "24h", "bucket": "day", "provider": ["binance", "okx"]},
    )
    assert response.status_code == 200, response.text
    series = {s["provider"]: s for s in response.json()["series"]}
    # coingecko's runs are left out; okx has no run but still has its (empty) series.
    assert set(series) == {"binance", "okx"}
    assert [
        (p["planned"], p["late"], p["compliance_pct"]) for p in series["binance"]["points"]
    ] == [(1, 1, 0.0)]
    assert series["binance"]["category"] == "market_data"
    assert series["okx"]["points"] == []

    response = await app.client.get("/api/charts/compliance", params={"range": "24h"})
    assert all(s["provider"] is None for s in response.json()["series"])


async def test_compliance_for_an_unknown_provider_is_a_404(app: Charts) -> None:
    response = await app.client.get("/api/charts/compliance", params={"provider": "nope"})
    assert response.status_code == 404
    assert "unknown provider 'nope'" in response.json()["detail"]

"""`GET /api/providers/{id}/outcomes` over 7 d and 30 d through the real application on
SQLite and PostgreSQL: checks per outcome per bucket from the roll-ups and the live hours,
the same points the 24 h range counts from raw rows, and older roll-ups without outcomes
shown as ok/error requests."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import pytest
from sqlalchemy import delete, insert

from apiwatch.analysis.rollups import LADDER
from apiwatch.api.app import create_app
from apiwatch.domain import Outcome, utcnow
from apiwatch.settings import Settings
from apiwatch.storage.models import TABLES
from apiwatch.storage.repositories import rollups
from tests.api.in_process import in_process
from tests.api.test_charts import Charts, floor_hour, insert_rows
from tests.conftest import empty_tables

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
ATTEMPTS = TABLES["connection_attempts"]


@pytest.fixture
async def app(migrated_db_url: str) -> AsyncIterator[Charts]:
    await empty_tables(migrated_db_url)
    settings = Settings(_env_file=None, database_url=migrated_db_url, public_read=True)
    application = create_app(settings, start_scheduler=False)
    async with in_process(application, migrated_db_url) as (client, sessions):
        yield Charts(client, sessions)


def check(provider: str, outcome: Outcome, at: datetime, *, final: bool = True) -> dict:
    return {
        "provider": provider,
        "endpoint": "health",
        "outcome": outcome.value,
        "latency_ms": 100.0,
        "final": final,
        "started_at": at,
    }


# Hours before the current one (kept clear of the previous hour, which is read live until
# its roll-up settles) and binance's attempts in each: (outcome, final) pairs.
HOURS: dict[int, list[tuple[Outcome, bool]]] = {
    30: [(Outcome.OK, True)] * 3 + [(Outcome.RATE_LIMITED, True), (Outcome.TIMEOUT, False)],
    5: [
        (Outcome.OK, True),
        (Outcome.SLOW, True),
        (Outcome.TIMEOUT, True),
        (Outcome.CONNECTION_ERROR, True),
        (Outcome.SKIPPED, True),
    ],
    4: [(Outcome.SERVER_ERROR, True)] * 2 + [(Outcome.AUTH_ERROR, True)],
    3: [(Outcome.INVALID_PAYLOAD, True), (Outcome.OK, True), (Outcome.SERVER_ERROR, False)],
}
# What a check is: a final attempt that was sent.
EXPECTED = {
    ago: Counter(o.value for o, final in rows if final and o is not Outcome.SKIPPED)
    for ago, rows in HOURS.items()
}


async def store_and_roll_up(app: Charts, now: datetime) -> datetime:
    current = floor_hour(now)
    rows = [
        check("binance", outcome, current - ago * HOUR + timedelta(minutes=i), final=final)
        for ago, attempts in HOURS.items()
        for i, (outcome, final) in enumerate(attempts)
    ]
    rows.append(check("etherscan", Outcome.SERVER_ERROR, current - 4 * HOUR))
    await insert_rows(app, "connection_attempts", rows)
    async with app.sessions() as session:
        await rollups.roll_up(
            session, kind="probe", start=current - 31 * HOUR, end=current - HOUR, ladder=LADDER
        )
    return current


def by_bucket(body: dict) -> dict[datetime, dict[str, int]]:
    out: dict[datetime, dict[str, int]] = {}
    for point in body["points"]:
        out.setdefault(datetime.fromisoformat(point["bucket_start"]), {})[point["outcome"]] = point[
            "count"
        ]
    return out


async def outcomes(app: Charts, range_: str) -> dict:
    response = await app.client.get("/api/providers/binance/outcomes", params={"range": range_})
    assert response.status_code == 200, response.text
    return response.json()


async def test_7d_and_30d_give_every_outcome_per_bucket_from_the_roll_ups(app: Charts) -> None:
    now = utcnow()
    current = await store_and_roll_up(app, now)
    day_before = (await outcomes(app, "24h"))["points"]
    # Retention removed the rolled hours' raw rows: 7 d and 30 d must read the roll-ups.
    async with app.sessions() as session, session.begin():
        await session.execute(delete(ATTEMPTS))
    live = [
        check("binance", Outcome.OK, current),
        check("binance", Outcome.CLIENT_ERROR, current),
        check("binance", Outcome.SKIPPED, current),
    ]
    await insert_rows(app, "connection_attempts", live)

    week = await outcomes(app, "7d")
    assert (week["bucket"], week["counted"]) == ("hour", "checks")
    expected = {current - ago * HOUR: dict(counts) for ago, counts in EXPECTED.items()}
    expected[current] = {"ok": 1, "client_error": 1}
    assert by_bucket(week) == expected
    points = [(p["bucket_start"], p["outcome"]) for p in week["points"]]
    assert points == sorted(points)
    # The hours the 24 h range counted from raw rows, now from roll-ups: the same points.
    recent = [
        p
        for p in week["points"]
        if current - 23 * HOUR <= datetime.fromisoformat(p["bucket_start"]) < current
    ]
    assert recent == day_before and len(day_before) == 8

    month = await outcomes(app, "30d")
    assert (month["bucket"], month["counted"]) == ("day", "checks")
    days: dict[datetime, Counter] = {}
    for hour, counts in expected.items():
        days.setdefault(hour.replace(hour=0), Counter()).update(counts)
    assert by_bucket(month) == {day: dict(counts) for day, counts in days.items()}


async def test_hours_rolled_up_before_outcomes_were_kept_show_as_ok_and_error(app: Charts) -> None:
    now = utcnow()
    current = await store_and_roll_up(app, now)
    old = current - 2 * DAY
    async with app.sessions() as session, session.begin():
        await session.execute(
            insert(TABLES["hourly_rollups"]),
            [
                {
                    "kind": "probe",
                    "subject": "binance",
                    "detail": "",
                    "hour": old,
                    "count": 7,
                    "errors": 2,
                    "latency_ms_sum": 700.0,
                    "latency_hist": LADDER.histogram([100.0] * 7),
                    "p50_ms": 100.0,
                    "p95_ms": 100.0,
                    "updated_at": old + HOUR,
                }
            ],
        )
    week = await outcomes(app, "7d")
    assert week["counted"] == "requests"  # some bars are ok/error requests
    got = by_bucket(week)
    assert got[old] == {"ok": 5, "error": 2}
    assert got[current - 5 * HOUR] == dict(EXPECTED[5])
    assert (await outcomes(app, "24h"))["counted"] == "checks"

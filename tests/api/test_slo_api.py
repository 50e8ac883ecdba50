"""The SLO endpoints and the vendor report through the real application (`create_app`, its
runtime, lifespan and middleware) on SQLite and PostgreSQL, over histories written straight
into the database: figures, CSV, bad input, the printable report (and its PDF, printed by
headless Chromium) and the `apiwatch report` command."""

from __future__ import annotations

import asyncio
import csv
import io
import os
import re
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from apiwatch.analysis.rollups import LADDER
from apiwatch.analysis.scorecard import CSV_COLUMNS
from apiwatch.api.app import create_app
from apiwatch.catalogue.loader import Catalogue
from apiwatch.catalogue.schema import ObjectiveSpec
from apiwatch.domain import utcnow
from apiwatch.settings import Settings
from apiwatch.storage.db import create_engine, create_sessionmaker
from apiwatch.storage.models import TABLES
from apiwatch.storage.repositories import rollups
from apiwatch.storage.repositories.raw_summary import HOUR, floor_to
from tests.api.in_process import in_process
from tests.conftest import empty_tables
from tests.storage import slo_history as h

# Whole-file wall clock for the test processes' ordering (tests/conftest.py).
pytestmark = pytest.mark.slow(22)

DAY = timedelta(days=1)
ADMIN = "aw_slo-tests-admin-key-000000000000000000"


@dataclass
class Slo:
    client: httpx.AsyncClient
    sessions: async_sessionmaker[AsyncSession]
    url: str


@pytest.fixture
async def slo(migrated_db_url: str) -> AsyncIterator[Slo]:
    await empty_tables(migrated_db_url)
    settings = Settings(
        _env_file=None,
        database_url=migrated_db_url,
        public_read=True,
        scheduler_enabled=False,
        admin_key=ADMIN,
    )
    # binance publishes an SLA of 99.9 % here (the built-in catalogue states none).
    application = create_app(settings, catalogue=h.catalogue(), start_scheduler=False)
    async with in_process(application, migrated_db_url) as (client, sessions):
        yield Slo(client, sessions, migrated_db_url)


def recent_history() -> tuple[h.History, tuple]:
    """The last 3 days, a check every 10 minutes: binance down for one hour two days ago
    (status changes to match), etherscan failing one check in four, coingecko fine."""
    now = utcnow()
    history = h.History()
    outage_start = floor_to(now - 2 * DAY, HOUR)
    outage = (outage_start, outage_start + HOUR)
    at, n = floor_to(now - 3 * DAY, HOUR), 0
    while at < now - timedelta(minutes=1):
        down = h.inside(at, outage)
        history.add("binance", at, "server_error" if down else "ok", 900.0 if down else 80.0)
        history.add("etherscan", at, "timeout" if n % 4 == 0 else "ok", 300.0)
        history.add("coingecko", at, "ok", 50.0)
        at += timedelta(minutes=10)
        n += 1
    history.change("binance", outage[0], "online", "offline", "3 consecutive failures")
    history.change("binance", outage[1], "offline", "online", "healthy")
    return history, outage


async def store(slo: Slo, history: h.History) -> None:
    async with slo.sessions() as session, session.begin():
        await session.execute(insert(TABLES["connection_attempts"]), history.attempts)
        await session.execute(insert(TABLES["status_changes"]), history.changes)
    async with slo.sessions() as session:
        for kind in ("check", "throttle"):
            await rollups.roll_up(
                session, kind=kind, start=utcnow() - 100 * DAY, end=utcnow(), ladder=LADDER
            )


async def test_slo_overview_and_one_provider(slo: Slo) -> None:
    history, _ = recent_history()
    await store(slo, history)
    body = (await slo.client.get("/api/slo")).json()
    providers = {p["provider"]: p for p in body["providers"]}
    assert body["windows"] == ["1h", "24h", "7d", "30d", "90d"]
    week = providers["binance"]["windows"]["7d"]
    at = utcnow()
    expected = h.oracle(history, "binance", at - 7 * DAY, at)
    assert (week["good"], week["bad"]) == (expected["good"], expected["bad"])
    assert week["bad"] == 6
    assert providers["coingecko"]["windows"]["7d"]["uptime_pct"] == 100.0
    assert providers["alternative_me"]["windows"]["7d"]["uptime"] is None

    one = (await slo.client.get("/api/slo/binance")).json()
    assert set(one["endpoints"]) == {"health", "server_time", "ticker_24hr", "depth"}
    assert one["endpoints"]["health"]["bad"] == 6
    assert set(one["burn_rates"]) == {"5m", "30m", "1h", "6h", "3d"}
    assert one["burn_alert"] is None  # the outage was two days ago: nothing burns now
    assert one["burn_rates"]["3d"] == pytest.approx(
        6 / (expected["good"] + expected["bad"]) / 0.005, rel=0.05
    )
    [incident] = one["incidents"]
    assert incident["duration_s"] == 3600.0 and incident["worst_status"] == "offline"
    assert one["reliability"]["mttr_s"] == 3600.0


async def test_incidents_and_scorecard_json_and_csv(slo: Slo) -> None:
    history, outage = recent_history()
    await store(slo, history)
    body = (await slo.client.get("/api/incidents", params={"window": "7d"})).json()
    [incident] = body["incidents"]
    assert incident["provider"] == "binance"
    assert incident["start"].startswith(outage[0].isoformat()[:19])
    assert body["providers"]["binance"]["mttr_s"] == 3600.0
    assert body["providers"]["coingecko"]["incidents"] == 0

    card = (await slo.client.get("/api/scorecard", params={"window": "7d"})).json()
    ranked = [r["provider"] for r in card["providers"] if r["rank"] is not None]
    # etherscan fails a quarter of its checks: last; binance's hour cost it its budget.
    assert ranked == ["coingecko", "binance", "etherscan"]
    etherscan = card["providers"][2]
    assert etherscan["poor_sla"] is False  # one window of data, no published SLA
    assert card["providers"][1]["poor_sla"] is True  # binance: below its 99.9 % SLA
    assert etherscan["uptime_pct"] == pytest.approx(75.0, abs=0.5)

    response = await slo.client.get("/api/scorecard", params={"window": "7d", "format": "csv"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert list(rows[0]) == list(CSV_COLUMNS)
    assert [r["provider"] for r in rows[:3]] == ranked
    assert float(rows[2]["uptime_pct"]) == etherscan["uptime_pct"]


async def test_a_provider_without_its_own_objective_gets_the_configured_one(
    migrated_db_url: str,
) -> None:
    # APIWATCH_SLO_TARGET / _WINDOW_DAYS: 99 % over 7 days for everyone; coingecko states
    # 99.9 % of its own (and inherits the window), binance only a published SLA.
    await empty_tables(migrated_db_url)
    base = h.catalogue()
    coingecko = base.providers["coingecko"].model_copy(
        update={"objectives": ObjectiveSpec(target=99.9)}
    )
    catalogue = Catalogue(
        providers={**base.providers, "coingecko": coingecko}, sources=base.sources
    )
    settings = Settings(
        _env_file=None,
        database_url=migrated_db_url,
        public_read=True,
        scheduler_enabled=False,
        slo_target=99.0,
        slo_window_days=7,
    )
    application = create_app(settings, catalogue=catalogue, start_scheduler=False)
    engine = create_engine(migrated_db_url)
    try:
        async with application.router.lifespan_context(application):
            transport = httpx.ASGITransport(app=application)
            async with httpx.AsyncClient(transport=transport, base_url="http://apiwatch") as c:
                slo = Slo(c, create_sessionmaker(engine), migrated_db_url)
                history, _ = recent_history()
                await store(slo, history)
                body = (await c.get("/api/slo")).json()
                one = (await c.get("/api/slo/etherscan")).json()
    finally:
        await engine.dispose()
    providers = {p["provider"]: p for p in body["providers"]}
    objectives = {pid: p["objective"] for pid, p in providers.items()}
    assert objectives["etherscan"]["target_pct"] == 99.0
    assert objectives["etherscan"]["window_days"] == 7
    assert objectives["binance"]["target_pct"] == 99.0
    assert objectives["binance"]["sla_pct"] == 99.9
    assert objectives["coingecko"]["target_pct"] == 99.9
    assert objectives["coingecko"]["window_days"] == 7
    assert one["objective"]["target_pct"] == 99.0
    # The figures use it: the budget is the one of the 7-day window at 99 %.
    etherscan = providers["etherscan"]
    week = etherscan["windows"]["7d"]
    assert etherscan["budget"] == week["budget"]
    assert week["budget"]["total_s"] == pytest.approx(0.01 * 7 * 86400)
    assert week["budget"]["allowed_bad_events"] == pytest.approx(0.01 * week["events"], abs=1e-3)


async def test_ending_maintenance_early_keeps_the_past_excluded(slo: Slo) -> None:
    # A maintenance silence on binance from the start of its outage, planned to run on for
    # another day, is ended now: the time it covered stays out of the figures.
    history, outage = recent_history()
    await store(slo, history)
    admin = {"X-API-Key": ADMIN}
    created = await slo.client.post(
        "/api/silences",
        headers=admin,
        json={
            "matchers": {"provider": "binance"},
            "starts_at": outage[0].isoformat(),
            "ends_at": (utcnow() + DAY).isoformat(),
            "comment": "vendor maintenance",
        },
    )
    assert created.status_code == 201, created.text
    silence_id = created.json()["id"]

    def binance(body: dict) -> dict:
        [row] = [p for p in body["providers"] if p["provider"] == "binance"]
        return {w: row["windows"][w] for w in ("7d", "30d")}

    before = binance((await slo.client.get("/api/slo")).json())
    assert before["7d"]["bad"] == 0  # the outage hour is inside the maintenance
    ended_at = utcnow()
    response = await slo.client.delete(f"/api/silences/{silence_id}", headers=admin)
    assert response.status_code == 204, response.text

    after = binance((await slo.client.get("/api/slo")).json())
    for window in ("7d", "30d"):
        for figure in ("good", "bad", "events", "uptime_pct"):
            assert after[window][figure] == before[window][figure], (window, figure)
    [listed] = (await slo.client.get("/api/silences", headers=admin)).json()["silences"]
    assert listed["id"] == silence_id and listed["active"] is False
    ends = datetime.fromisoformat(listed["ends_at"])
    assert abs(ends - ended_at) < timedelta(seconds=30)
    assert datetime.fromisoformat(listed["starts_at"]) == outage[0]
    again = await slo.client.delete(f"/api/silences/{silence_id}", headers=admin)
    assert again.status_code == 404 and "already ended" in again.text


BAD_INPUT = [
    ("/api/scorecard", {"window": "abc"}, 422, "window must be"),
    ("/api/scorecard", {"window": "120d"}, 422, "between 1h and 90d"),
    ("/api/scorecard", {"format": "xml"}, 422, "format"),
    ("/api/incidents", {"provider": "nope"}, 404, "unknown provider"),
    ("/api/slo/nope", {}, 404, "unknown provider"),
    ("/reports/vendors", {"month": "2026-13"}, 422, "month must look like"),
    ("/reports/vendors", {"month": "november"}, 422, "month must look like"),
    ("/reports/vendors", {"month": "2999-01"}, 404, "has not begun"),
]


async def test_bad_input_gets_a_4xx_that_says_why(slo: Slo) -> None:
    for path, params, status, says in BAD_INPUT:
        response = await slo.client.get(path, params=params)
        assert response.status_code == status, (path, params, response.text)
        assert says in response.text, (path, params)


def expected_month_uptime() -> float:
    month = h.oracle(h.HISTORY, "binance", *_november())
    return 100 * month["good"] / (month["good"] + month["bad"])


def _november():
    from apiwatch.runtime.slo import month_span

    return month_span("2026-11")


async def test_monthly_vendor_report_is_self_contained_and_shows_the_figures(
    slo: Slo, tmp_path: Path
) -> None:
    await h.store(slo.sessions, h.HISTORY)
    response = await slo.client.get("/reports/vendors", params={"month": "2026-11"})
    assert response.status_code == 200, response.text
    page = response.text
    assert "Vendor report — 2026-11" in page
    assert f"{expected_month_uptime():.3f} %" in page
    # binance's incidents in November: 2 h (Nov 20) and 45 min (Nov 25).
    assert "2 h 00 min" in page and "45 min 00 s" in page
    assert "poor SLA" in page and "below its published SLA of 99.9%" in page
    assert "server_error" in page and "provider_status (critical)" in page
    # Nothing is fetched from anywhere: no scripts, links, images or remote fonts.
    assert not re.search(r"<script|<link|<img|src=|url\(|@import|https?://", page)
    (tmp_path / "report.html").write_text(page, encoding="utf-8")
    print_to_pdf(tmp_path / "report.html", tmp_path / "report.pdf")

    # The command, as a user runs it (a process of its own, on the same database).
    result = await cli(
        "report", "--month", "2026-11", "--out", str(tmp_path / "cli.html"), url=slo.url
    )
    assert result.returncode == 0, result.stderr
    written = (tmp_path / "cli.html").read_text(encoding="utf-8")
    assert f"{expected_month_uptime():.3f} %" in written and "2 h 00 min" in written
    bad = await cli("report", "--month", "2026-1x", "--out", str(tmp_path / "x.html"), url=slo.url)
    assert bad.returncode == 2 and "month must look like" in bad.stderr


async def cli(*args: str, url: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "APIWATCH_DATABASE_URL": url, "APIWATCH_LOG_JSON": "false"}
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "apiwatch.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def print_to_pdf(html: Path, pdf: Path) -> None:
    """Print with headless Chromium and check a PDF of a page or two came out."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is missing (CI=true: the report must be printed)")
        pytest.skip("chromium is not installed: the PDF print is not checked")
    subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-pdf-header-footer",
            f"--user-data-dir={pdf.parent / 'chromium-profile'}",
            f"--print-to-pdf={pdf}",
            html.as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF")
    pages = len(re.findall(rb"/Type\s*/Page[^s]", data))
    assert 1 <= pages <= 3, pages

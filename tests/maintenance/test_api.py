"""The maintenance API through the real application on SQLite and PostgreSQL: CRUD, the
maintenance file's read-only windows, bad input naming its field, SLO figures leaving the
windows' time out, and the public status page's notices."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from apiwatch.api.app import create_app
from apiwatch.domain import utcnow
from apiwatch.settings import Settings
from tests.api.in_process import in_process
from tests.api.test_slo_api import recent_history, store
from tests.conftest import empty_tables
from tests.storage import slo_history as h

ADMIN = "aw_maint-tests-admin-key-0000000000000000"
ADMIN_H = {"X-API-Key": ADMIN}

# A daily 15-minute window twelve hours from now (see `nightly_file`), so it is never
# active while a test runs, whatever the time of day.
FILE = """\
windows:
  nightly:
    title: Nightly index rebuild
    message: Explorer data may lag.
    matchers: {{provider: etherscan}}
    timezone: Europe/Berlin
    recurrence: {{every: daily, at: "{at}"}}
    duration_s: 900
"""


def nightly_file() -> str:
    at = datetime.now(ZoneInfo("Europe/Berlin")) + timedelta(hours=12)
    return FILE.format(at=at.strftime("%H:00"))


@dataclass
class Stack:
    client: httpx.AsyncClient
    sessions: async_sessionmaker[AsyncSession]
    file: Path


@pytest.fixture
async def stack(migrated_db_url: str, tmp_path: Path) -> AsyncIterator[Stack]:
    await empty_tables(migrated_db_url)
    path = tmp_path / "maintenance.yaml"
    path.write_text(nightly_file())
    settings = Settings(
        _env_file=None,
        database_url=migrated_db_url,
        public_read=True,
        scheduler_enabled=False,
        admin_key=ADMIN,
        maintenance_file=path,
    )
    application = create_app(settings, catalogue=h.catalogue(), start_scheduler=False)
    async with in_process(application, migrated_db_url) as (client, sessions):
        yield Stack(client, sessions, path)


def one_off(**extra: object) -> dict:
    start = utcnow() + timedelta(days=2)
    return {
        "title": "Binance wallet upgrade",
        "message": "Withdrawals paused.",
        "matchers": {"provider": "binance"},
        "starts_at": start.isoformat(),
        "duration_s": 7200,
    } | extra


async def test_create_list_read_change_and_delete(stack: Stack) -> None:
    c = stack.client
    created = await c.post("/api/maintenance", json=one_off(), headers=ADMIN_H)
    assert created.status_code == 201, created.text
    window = created.json()
    wid = window["id"]
    assert window["source"] == "api" and window["active"] is False and window["upcoming"] is True
    assert window["next"]["starts_at"] == window["starts_at"]

    listed = (await c.get("/api/maintenance")).json()
    by_id = {w["id"]: w for w in listed["windows"]}
    assert set(by_id) == {"file:nightly", wid}
    assert by_id["file:nightly"]["source"] == "file"
    assert by_id["file:nightly"]["origin"] == f"{stack.file}:2"
    assert wid in listed["upcoming"] and "file:nightly" in listed["upcoming"]
    assert listed["active"] == []
    assert (await c.get(f"/api/maintenance/{wid}")).json()["title"] == "Binance wallet upgrade"

    patched = await c.patch(
        f"/api/maintenance/{wid}",
        json={"recurrence": {"every": "weekly", "at": "01:00", "weekdays": ["sun"]}},
        headers=ADMIN_H,
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["recurrence"]["weekdays"] == ["sun"]
    assert patched.json()["message"] == "Withdrawals paused."  # untouched fields stay
    replaced = await c.put(
        f"/api/maintenance/{wid}",
        json={
            "title": "Now",
            "matchers": {"provider": "binance"},
            "starts_at": (utcnow() - timedelta(minutes=1)).isoformat(),
            "duration_s": 600,
        },
        headers=ADMIN_H,
    )
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["message"] == "" and replaced.json()["active"] is True
    assert (await c.get("/api/maintenance")).json()["active"] == [wid]

    assert (await c.delete(f"/api/maintenance/{wid}", headers=ADMIN_H)).status_code == 204
    assert (await c.get(f"/api/maintenance/{wid}")).status_code == 404
    assert (await c.delete(f"/api/maintenance/{wid}", headers=ADMIN_H)).status_code == 404
    assert (await c.get("/api/maintenance/424242")).status_code == 404


async def test_file_windows_are_read_only_and_writes_need_the_admin_key(stack: Stack) -> None:
    c = stack.client
    for method, body in (("put", one_off()), ("patch", {"title": "x"}), ("delete", None)):
        response = await c.request(
            method, "/api/maintenance/file:nightly", json=body, headers=ADMIN_H
        )
        assert response.status_code == 409, (method, response.text)
        assert str(stack.file) in response.json()["detail"]
    assert (await c.post("/api/maintenance", json=one_off())).status_code == 401


@pytest.mark.parametrize(
    ("body", "status", "where"),
    [
        (one_off(timezone="Mars/Olympus"), 422, "timezone"),
        (one_off(duration_s=0), 422, "duration_s"),
        (
            one_off(recurrence={"every": "cron", "cron": "61 * * * *"}),
            422,
            "cron",
        ),
        (one_off(recurrence={"every": "daily", "at": "25:00"}), 422, "at"),
        (
            one_off(
                duration_s=None,
                ends_at=(utcnow() - timedelta(days=1)).isoformat(),
            ),
            400,
            "ends_at",
        ),
        (one_off(recurrence={"every": "cron", "cron": "0 0 30 2 *"}), 400, "recurrence.cron"),
    ],
)
async def test_bad_input_names_the_field(stack: Stack, body: dict, status: int, where: str) -> None:
    body = {k: v for k, v in body.items() if v is not None}
    response = await stack.client.post("/api/maintenance", json=body, headers=ADMIN_H)
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    if status == 422:
        assert any(where in [str(part) for part in error["loc"]] for error in detail), detail
    else:
        assert detail.startswith(f"{where}:"), detail
    assert (await stack.client.get("/api/maintenance")).json()["windows"][1:] == []


async def test_time_inside_a_window_is_left_out_of_the_slo_figures(stack: Stack) -> None:
    history, outage = recent_history()
    await store(stack, history)  # type: ignore[arg-type]

    def week(body: dict) -> dict:
        [row] = [p for p in body["providers"] if p["provider"] == "binance"]
        return row["windows"]["7d"]

    before = week((await stack.client.get("/api/slo")).json())
    assert before["bad"] > 0
    created = await stack.client.post(
        "/api/maintenance",
        json={
            "title": "Binance upgrade",
            "matchers": {"provider": "binance"},
            "starts_at": outage[0].isoformat(),
            "ends_at": outage[1].isoformat(),
        },
        headers=ADMIN_H,
    )
    assert created.status_code == 201, created.text
    after = week((await stack.client.get("/api/slo")).json())
    assert after["bad"] == 0 and after["events"] < before["events"]
    assert after["uptime_pct"] == 100


async def test_the_status_page_shows_active_and_upcoming_windows_and_nothing_internal(
    stack: Stack,
) -> None:
    now = utcnow()
    for body in (
        one_off(starts_at=(now - timedelta(minutes=5)).isoformat(), title="Upgrade now"),
        one_off(starts_at=(now + timedelta(days=3)).isoformat(), title="Soon"),
        one_off(starts_at=(now + timedelta(days=20)).isoformat(), title="Much later"),
        one_off(matchers={"rule": "data_stale"}, title="Noise only"),
    ):
        created = await stack.client.post("/api/maintenance", json=body, headers=ADMIN_H)
        assert created.status_code == 201, created.text
    page = (await stack.client.get("/status.json")).json()
    notices = {n["title"]: n for n in page["notices"] if n.get("title")}
    assert set(notices) == {"Upgrade now", "Soon", "Nightly index rebuild"}
    assert notices["Upgrade now"]["state"] == "active"
    assert notices["Soon"]["state"] == "upcoming"
    assert notices["Upgrade now"]["providers"] == [{"id": "binance", "name": "Binance"}]
    assert notices["Upgrade now"]["message"] == "Withdrawals paused."
    text = str(page["notices"])
    for internal in ("matchers", "created_by", "source", "origin", str(stack.file), "file:"):
        assert internal not in text


async def test_the_openapi_document_states_the_routes_truthfully(stack: Stack) -> None:
    document = (await stack.client.get("/openapi.json")).json()
    paths = document["paths"]
    assert set(paths["/api/maintenance"]) == {"get", "post"}
    assert set(paths["/api/maintenance/{window_id}"]) == {"get", "put", "patch", "delete"}
    created = paths["/api/maintenance"]["post"]["responses"]
    assert {"201", "400", "422"} <= set(created)
    targets = {link["operationId"] for link in created["201"]["links"].values()}
    assert targets == {
        "get_maintenance_window",
        "replace_maintenance_window",
        "patch_maintenance_window",
        "delete_maintenance_window",
    }
    assert "409" in paths["/api/maintenance/{window_id}"]["delete"]["responses"]
    schemas = document["components"]["schemas"]
    assert "Europe/Berlin" in schemas["WindowIn"]["properties"]["timezone"]["enum"]
    assert schemas["Cron"]["properties"]["cron"]["pattern"].startswith("^")
    assert schemas["WindowPatch"]["minProperties"] == 1

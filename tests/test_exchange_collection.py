"""Exchange collection through the composed runtime, against the simulator: a frozen update
id, a stale book and each of the simulator's other book and ticker faults turn the probe
into `invalid_payload` with the check named, each episode is announced once and cleared
once, and stored book rows hold the summary, not the levels. A body the collector cannot
read is an `invalid_payload` too; a venue apart from the others (`cross_venue`) is flagged
without failing its probe; Bybit's codes inside a 200 are read as the catalogue says."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest

from apiwatch.catalogue.loader import BUILTIN_DIR
from apiwatch.domain import BookIntegrity, Outcome, ProbeResult, Status
from apiwatch.simulator import Scenario, Simulator
from apiwatch.simulator.providers.exchanges import BYBIT_MESSAGES
from apiwatch.storage.models import Alert, ConnectionAttempt, DataCollection
from tests.test_collection import open_for, rows, sim  # noqa: F401


async def test_a_frozen_update_id_fails_once_its_time_moves_and_clears_when_healthy(
    tmp_path: Path,
    sim: Simulator,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Bybit's own file with a short freeze threshold, so the test waits 0.3 s, not 5.
    catalogue = tmp_path / "catalogue"
    catalogue.mkdir()
    text = (BUILTIN_DIR / "bybit.yaml").read_text()
    (catalogue / "bybit.yaml").write_text(text + "book_checks: {frozen_after_s: 0.3}\n")
    async with await open_for(tmp_path, sim, monkeypatch, catalogue_dir=catalogue) as runtime:
        seen: list[object] = []
        runtime.bus.add_listener(seen.append)
        await runtime.collection.collect("bybit")
        await asyncio.sleep(0.1)  # past the simulator's 50 ms update tick
        sim.set_scenario("bybit", Scenario("frozen_book"))
        first = await runtime.collection.collect("bybit")
        await asyncio.sleep(0.4)
        second = await runtime.collection.collect("bybit")
        await asyncio.sleep(0.1)
        third = await runtime.collection.collect("bybit")
        sim.set_scenario("bybit", Scenario("healthy"))
        healthy = await runtime.collection.collect("bybit")
        stored = [r for r in await rows(runtime, DataCollection) if r.item == "book:BTC-USDT"]
    assert first["errors"] == []  # the freeze starts here: one book says nothing yet
    [error] = second["errors"]
    assert error["endpoint"] == "orderbook"
    assert error["error"].startswith("book_integrity: update_id_frozen: update id stood at ")
    assert third["errors"] and healthy["errors"] == []
    books = [e for e in seen if isinstance(e, BookIntegrity)]
    assert [(e.check, e.cleared) for e in books] == [
        ("update_id_frozen", False),
        ("update_id_frozen", True),
    ]
    results = [
        e for e in seen if isinstance(e, ProbeResult) and e.endpoint == "orderbook" and e.final
    ]
    assert [r.outcome for r in results] == [
        Outcome.OK,
        Outcome.OK,
        Outcome.INVALID_PAYLOAD,
        Outcome.INVALID_PAYLOAD,
        Outcome.OK,
    ]
    # Stored rows carry the summary and the verdicts; the levels stay out of the database.
    assert len(stored) == 5
    assert all("bids" not in (r.values or {}) for r in stored)
    assert stored[2].value is None and "update_id_frozen" in stored[2].values["failed"]
    assert stored[0].value is not None and stored[0].values["failed"] == {}


async def test_a_stale_book_fails_stale_on_its_own_time(
    tmp_path: Path,
    sim: Simulator,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with await open_for(tmp_path, sim, monkeypatch) as runtime:
        sim.set_scenario("okx", Scenario("stale", {"age_s": 60}))
        run = await runtime.collection.collect("okx")
        [book] = runtime.collection.books_view()
    errors = {e["endpoint"]: e["error"] for e in run["errors"]}
    assert errors["books"].startswith("book_integrity: stale: the book's own time is 6")
    assert book["checks"]["stale"] == "failed" and book["age_s"] >= 60


async def test_an_unreadable_book_in_a_200_is_an_invalid_payload_that_moves_the_status(
    tmp_path: Path,
    sim: Simulator,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # HTTP 200, retCode 0, and a size of "NaN": the probe passes, the collector cannot read it.
    async with await open_for(tmp_path, sim, monkeypatch) as runtime:
        seen: list[object] = []
        runtime.bus.add_listener(seen.append)
        sim.set_scenario("bybit", Scenario("unreadable_book"))
        run = await runtime.collection.collect("bybit")
        state = runtime.tracker.state("bybit")
        stored = await rows(runtime, ConnectionAttempt)
        for _ in range(100):  # the alert is stored by the alerting task, a moment later
            alerts = await rows(runtime, Alert)
            if alerts:
                break
            await asyncio.sleep(0.05)
    errors = {e["endpoint"]: e["error"] for e in run["errors"]}
    assert errors.keys() == {"orderbook"}
    assert errors["orderbook"].startswith("unreadable payload: $.result.b[0][1] should be a number")
    finals = {e.endpoint: e for e in seen if isinstance(e, ProbeResult) and e.final}
    assert finals["tickers"].outcome is Outcome.OK
    assert finals["orderbook"].outcome is Outcome.INVALID_PAYLOAD
    assert finals["orderbook"].status_code == 200
    assert state.status is Status.DEGRADED and "unreadable payload" in state.reason
    [attempt] = [a for a in stored if a.endpoint == "orderbook"]
    assert attempt.outcome == "invalid_payload" and attempt.reason == errors["orderbook"]
    [alert] = alerts
    assert alert.provider == "bybit" and "unreadable payload" in alert.message


async def test_a_venue_off_the_others_is_flagged_cross_venue_but_its_probe_stays_ok(
    tmp_path: Path,
    sim: Simulator,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A self-consistent book 3 % from the other venues: flagged and alerted, never called
    # garbage (docs/exchanges.md says why).
    async with await open_for(tmp_path, sim, monkeypatch) as runtime:
        seen: list[object] = []
        runtime.bus.add_listener(seen.append)
        sim.set_scenario("okx", Scenario("divergent", {"pct": 3}))
        runs = [await runtime.collection.collect(p) for p in ("binance", "bybit", "okx")]
        books = {row["provider"]: row for row in runtime.collection.books_view()}
        status = runtime.tracker.state("okx").status
    assert books["okx"]["checks"]["cross_venue"] == "failed"
    assert books["bybit"]["checks"]["cross_venue"] == "ok"
    flagged = [e for e in seen if isinstance(e, BookIntegrity)]
    assert [(e.provider, e.check, e.cleared) for e in flagged] == [("okx", "cross_venue", False)]
    okx_books = [
        e
        for e in seen
        if isinstance(e, ProbeResult) and e.provider == "okx" and e.endpoint == "books"
    ]
    assert [r.outcome for r in okx_books] == [Outcome.OK]
    assert all(run["errors"] == [] for run in runs) and status is Status.ONLINE


BOOK_ENDPOINT = {"binance": "depth", "bybit": "orderbook", "okx": "books"}
TICKER_ENDPOINT = {"binance": "ticker_24hr", "bybit": "tickers", "okx": "ticker"}
# Each simulator fault and the one check that must name it.
FAULTS = [
    ("locked_book", "locked"),
    ("one_sided_book", "empty_side"),
    ("non_positive_book", "non_positive"),
    ("duplicate_level_book", "duplicate_level"),
    ("unordered_book", "unordered"),
    ("crossed_book", "crossed"),
    ("rewound_book", "update_id_backwards"),  # after the books above, each a newer id
]


@pytest.mark.parametrize("provider", ["binance", "bybit", "okx"])
@pytest.mark.slow(20)
async def test_each_simulated_book_fault_is_caught_by_its_own_check(
    tmp_path: Path,
    sim: Simulator,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    provider: str,
) -> None:
    async with await open_for(tmp_path, sim, monkeypatch) as runtime:
        seen: list[object] = []
        runtime.bus.add_listener(seen.append)
        healthy = await runtime.collection.collect(provider)
        caught = {}
        for scenario, check in FAULTS:
            sim.set_scenario(provider, Scenario(scenario))
            run = await runtime.collection.collect(provider)
            [book] = runtime.collection.books_view()
            caught[scenario] = (run["errors"], set(book["failed"]), check)
        sim.set_scenario(provider, Scenario("ticker_outside"))
        ticker_run = await runtime.collection.collect(provider)
    assert healthy["errors"] == []
    for scenario, (errors, failed, check) in caught.items():
        assert [e["endpoint"] for e in errors] == [BOOK_ENDPOINT[provider]], scenario
        assert errors[0]["error"].startswith(f"book_integrity: {check}: "), scenario
        assert failed == {check}, scenario
    announced = {e.check for e in seen if isinstance(e, BookIntegrity) and not e.cleared}
    assert {check for _, check in FAULTS} <= announced
    # The ticker's last price 60 bps above its own best ask: only the ticker fails.
    [ticker_error] = ticker_run["errors"]
    assert ticker_error["endpoint"] == TICKER_ENDPOINT[provider]
    assert ticker_error["error"].startswith("book_integrity: last_outside_book: last ")
    assert "above the best ask" in ticker_error["error"]
    outcomes = {
        (e.endpoint, e.outcome)
        for e in seen
        if isinstance(e, ProbeResult) and e.final and e.endpoint == TICKER_ENDPOINT[provider]
    }
    assert (TICKER_ENDPOINT[provider], Outcome.INVALID_PAYLOAD) in outcomes


@pytest.mark.parametrize(
    ("code", "outcome"),
    [(10018, Outcome.RATE_LIMITED), (10016, Outcome.SERVER_ERROR), (10006, Outcome.RATE_LIMITED)],
)
async def test_bybit_codes_inside_a_200_are_read_as_the_catalogue_says(
    tmp_path: Path,
    sim: Simulator,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    code: int,
    outcome: Outcome,
) -> None:
    async with await open_for(tmp_path, sim, monkeypatch) as runtime:
        seen: list[object] = []
        runtime.bus.add_listener(seen.append)
        sim.set_scenario("bybit", Scenario("error_code", {"code": code}))
        await runtime.collection.collect("bybit")
    [first] = [e for e in seen if isinstance(e, ProbeResult) and e.endpoint == "tickers"][:1]
    assert (first.status_code, first.outcome) == (200, outcome)
    assert BYBIT_MESSAGES[code] in first.reason


async def test_a_healthy_book_stays_fresh_until_its_next_collection_is_overdue(
    tmp_path: Path,
    sim: Simulator,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The book TTL is 10 s but books are collected every 60 s (+ 5 s tolerance): between
    # two collections on time the book must not read as aging or stale.
    async with await open_for(tmp_path, sim, monkeypatch) as runtime:
        await runtime.collection.collect("bybit")
        fetched = runtime.collection.latest[("bybit", "book:BTC-USDT")].fetched_at

        def status_at(seconds: float) -> dict[str, str]:
            rows = runtime.collection.freshness(now=fetched + timedelta(seconds=seconds))
            return {r["item"]: r["status"] for r in rows if r["provider"] == "bybit"}

        statuses = {s: status_at(s) for s in (0, 30, 59, 90, 200)}
        [book_row] = [r for r in runtime.collection.freshness() if r["item"] == "book:BTC-USDT"]
        sim.set_scenario("bybit", Scenario("stale", {"age_s": 60}))
        await runtime.collection.collect("bybit")
        stale_now = status_at(0)["book:BTC-USDT"]
    book = {s: row["book:BTC-USDT"] for s, row in statuses.items()}
    assert book == {0: "fresh", 30: "fresh", 59: "fresh", 90: "aging", 200: "stale"}
    assert statuses[30]["BTC-USD"] == "fresh"  # tickers keep the 5 min market TTL
    assert book_row["ttl_s"] == 10 and "65 s to the next one" in book_row["note"]
    # A book already a minute old when fetched is stale at once, as its `stale` check says.
    assert stale_now == "stale"

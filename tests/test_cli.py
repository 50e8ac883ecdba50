"""The `apiwatch` command as a user runs it: a real subprocess against the simulator."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import pytest

from apiwatch.catalogue.loader import load_catalogue
from apiwatch.simulator import Scenario, Simulator

# Whole-file wall clock for the test processes' ordering (tests/conftest.py).
pytestmark = pytest.mark.slow(58)

SECRET = "CLISECRET-0123456789abcdef"


async def apiwatch(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """Run the CLI without blocking the loop that serves the in-process simulator."""
    full_env = {k: v for k, v in os.environ.items() if not k.endswith(("_KEY", "_KEY_1", "_KEY_2"))}
    full_env.update(env or {})
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "apiwatch.cli",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=full_env,
        cwd=Path(__file__).parent,  # away from any .env in the checkout
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    return proc.returncode or 0, out.decode(), err.decode()


def keys() -> dict[str, str]:
    return {
        name: f"{SECRET}-{name}"
        for spec in load_catalogue().providers.values()
        for name in spec.auth.keys
    }


async def test_check_all_json_prints_one_object_per_result() -> None:
    async with Simulator(port=0) as sim:
        sim.set_scenario("binance", Scenario("down", {"status": 503}))
        code, out, err = await apiwatch(
            "check",
            "--all",
            "--json",
            env={"APIWATCH_UPSTREAM_OVERRIDE": sim.url, **keys()},
        )
    rows = [json.loads(line) for line in out.splitlines()]
    assert code == 1, err  # binance failed
    expected = {
        (spec.id, name) for spec in load_catalogue().enabled() for name in spec.all_endpoints()
    }
    assert {(r["provider"], r["endpoint"]) for r in rows} == expected
    for row in rows:
        assert {"provider", "endpoint", "outcome", "status_code", "latency_ms", "reason"} <= set(
            row
        )
    outcomes = {(r["provider"], r["endpoint"]): r["outcome"] for r in rows}
    assert outcomes[("binance", "health")] == "server_error"
    assert outcomes[("coingecko", "health")] == "ok"
    assert SECRET not in out + err


async def test_check_one_provider_prints_a_table_and_skips_without_key() -> None:
    async with Simulator(port=0) as sim:
        code, out, err = await apiwatch(
            "check", "etherscan", env={"APIWATCH_UPSTREAM_OVERRIDE": sim.url, "COLUMNS": "200"}
        )
    assert code == 0, err
    assert "etherscan" in out and "gas_oracle" in out
    assert out.count("skipped") == len(load_catalogue().providers["etherscan"].all_endpoints())
    assert "no_key" in out


async def test_table_at_80_columns_shows_whole_outcome_names() -> None:
    async with Simulator(port=0) as sim:
        sim.set_scenario("tronscan", Scenario("reset", {}))
        sim.set_scenario("cryptocompare", Scenario("garbage", {}))
        sim.set_scenario("binance", Scenario("rate_limited", {}))
        code, out, err = await apiwatch(
            "check",
            "--all",
            "--health-only",
            env={"APIWATCH_UPSTREAM_OVERRIDE": sim.url, "COLUMNS": "80", **keys()},
        )
    assert code == 1, err
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= 80
    rows = {}
    for line in lines:
        words = line.split()
        if len(words) >= 3 and words[0] in load_catalogue().providers:
            rows.setdefault(words[0], set()).add(words[2])
    assert rows["tronscan"] == {"connection_error"}
    assert rows["cryptocompare"] == {"invalid_payload"}
    assert rows["binance"] == {"rate_limited"}
    assert "…" not in out.split("reason")[0]  # headers whole too


async def test_check_without_internet_is_connection_error_with_retries() -> None:
    code, out, _ = await apiwatch(
        "check",
        "binance",
        "--json",
        "--health-only",
        env={"APIWATCH_UPSTREAM_OVERRIDE": "http://127.0.0.1:9"},
    )
    rows = [json.loads(line) for line in out.splitlines()]
    assert code == 1
    assert [r["outcome"] for r in rows] == ["connection_error"] * 3
    assert [r["attempt"] for r in rows] == [1, 2, 3]


async def test_bad_catalogue_file_stops_with_file_line_and_field(tmp_path: Path) -> None:
    (tmp_path / "acme.yaml").write_text(
        "id: acme\nname: Acme\ncategory: market_data\nbase_url: https://a.test\n"
        "health:\n  path: /ping\n  timeout_s: fast\n"
    )
    code, _, err = await apiwatch("check", "acme", env={"APIWATCH_CATALOGUE_DIR": str(tmp_path)})
    assert code == 2
    assert f"{tmp_path / 'acme.yaml'}:7: health.timeout_s:" in err
    assert "number" in err


async def test_unknown_provider_and_bad_arguments_exit_2() -> None:
    code, _, err = await apiwatch("check", "nope")
    assert code == 2 and "unknown provider 'nope'" in err
    code, _, err = await apiwatch("check")
    assert code == 2 and "--all" in err
    code, _, err = await apiwatch("simulate", "--scenario", "binance=explode")
    assert code == 2 and "explode" in err


async def test_db_upgrade_creates_the_schema(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}"
    code, _, err = await apiwatch("db", "upgrade", env={"DATABASE_URL": url})
    assert code == 0, err
    assert (tmp_path / "db.sqlite").stat().st_size > 0
    code, _, err = await apiwatch("db", "upgrade", env={"DATABASE_URL": url})
    assert code == 0, err  # idempotent


async def test_bad_alerts_file_stops_serve_with_file_line_and_field(tmp_path: Path) -> None:
    path = tmp_path / "alerts.yaml"
    path.write_text("dedup_window_s: 60\nrules:\n  error_rate:\n    warning_pct: lots\n")
    code, _, err = await apiwatch("serve", env={"APIWATCH_ALERTS_FILE": str(path)})
    assert code == 2
    assert f"{path}:4: rules.error_rate.warning_pct" in err


async def test_keys_create_prints_the_key_once_and_list_shows_it_masked(tmp_path: Path) -> None:
    env = {"DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'keys.db'}"}
    code, out, err = await apiwatch(
        "keys", "create", "--name", "grafana", "--minute", "20", env=env
    )
    assert code == 0, err
    key = out.strip()
    assert key.startswith("aw_") and len(key) > 30 and "grafana" in err
    code, out, err = await apiwatch("keys", "list", env=env)
    assert code == 0, err
    assert "grafana" in out and "read" in out and key not in out and key[:6] in out
    code, _, err = await apiwatch("keys", "create", "--name", "x", "--scope", "root", env=env)
    assert code == 2 and "read or admin" in err

"""`apiwatch providers export`: the running catalogue (files and database) as YAML files
that load back to the same providers, keys never written."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from apiwatch.catalogue.export import export_specs
from apiwatch.catalogue.loader import load_catalogue
from apiwatch.cli_providers import running_catalogue
from apiwatch.settings import Settings
from tests.providers_api.conftest import binance_like
from tests.startup.support import run_cli

RICH = {
    "auth": {"in": "header", "name": "X-Key", "keys": ["EXPORTED_KEY_1"], "required": True},
    "rate_limits": {"per_minute": 30, "every": {"2": 5}},
    "key_rate_limits": {"per_day": 1000},
    "health_interval_s": 90,
    "rate_limited_when": [{"json": "$.code", "equals": None}],
    "endpoints": {
        "ticker": {
            "path": "/api/v3/ticker/price",
            "params": {"symbol": "BTCUSDT"},
            "expect": [{"status": 200}, {"json": "$.price", "type": "string"}],
            "rate_limits": {"per_second": 2},
        }
    },
}


def test_every_builtin_provider_survives_the_round_trip(tmp_path: Path) -> None:
    builtin = load_catalogue()
    export_specs(builtin.providers.values(), tmp_path)
    again = load_catalogue(builtin_dir=tmp_path)
    assert again.providers == builtin.providers


async def test_export_writes_the_running_catalogue_and_it_loads_back(
    start_server: Any, migrated_db_url: str, tmp_path: Path, monkeypatch: Any
) -> None:
    monkeypatch.setenv("EXPORTED_KEY_1", "TOPSECRET-exported-key-value")
    async with start_server() as server:
        spec = binance_like(server.sim.url, "exported", **RICH)
        created = await server.client.post("/api/providers", json=spec)
        assert created.status_code == 201, created.text
        running = dict(server.runtime.catalogue.providers)
    settings = Settings(_env_file=None, database_url=migrated_db_url)
    catalogue, sources = await running_catalogue(settings)
    assert sources["exported"].value == "api" and sources["binance"].value == "builtin"
    assert catalogue.providers["exported"] == running["exported"]

    out = tmp_path / "export"
    if migrated_db_url.startswith("sqlite"):  # the command as a user runs it
        result = run_cli(
            "providers",
            "export",
            "--dir",
            str(out),
            cwd=tmp_path,
            env={"DATABASE_URL": migrated_db_url},
        )
        assert result.returncode == 0, result.stderr
        assert f"to {out}" in result.stderr
    else:
        export_specs(catalogue.providers.values(), out)
    again = load_catalogue(user_dir=out)
    assert again.providers == catalogue.providers
    text = (out / "exported.yaml").read_text()
    assert "TOPSECRET" not in text and "EXPORTED_KEY_1" in text
    assert yaml.safe_load(text)["auth"]["in"] == "header"

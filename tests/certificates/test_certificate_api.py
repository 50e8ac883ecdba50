"""`GET /api/certificates`, the `certificate` of `GET /api/providers/{id}` and the expiry gauge
on /metrics, over a real server whose providers live on local TLS servers (expired, five
days left, wrong host name, valid). On SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from apiwatch.settings import Settings
from tests.api.test_api import ADMIN_KEY, serve
from tests.certificates.conftest import ServeTls, TlsServer, write_provider
from tests.conftest import empty_tables

# provider id -> the kind of certificate its server presents
PROVIDERS = {
    "tls_expired": "expired",
    "tls_soon": "expiring",
    "tls_wrong": "wrong_host",
    "tls_valid": "valid",
}


@dataclass
class CertApi:
    client: httpx.AsyncClient
    servers: dict[str, TlsServer]


@pytest.fixture
async def cert_api(
    migrated_db_url: str, serve_tls: ServeTls, ca_file: Path, tmp_path: Path
) -> AsyncIterator[CertApi]:
    await empty_tables(migrated_db_url)
    catalogue = tmp_path / "catalogue"
    async with AsyncExitStack() as stack:
        servers = {
            pid: await stack.enter_async_context(serve_tls(kind)) for pid, kind in PROVIDERS.items()
        }
        for pid, server in servers.items():
            write_provider(catalogue, pid, server.url)
        settings = Settings(
            _env_file=None,
            database_url=migrated_db_url,
            catalogue_dir=catalogue,
            tls_ca_file=ca_file,
            recorder_flush_ms=10,
            admin_key=ADMIN_KEY,
        )
        server, task, port = await serve(settings)
        try:
            async with httpx.AsyncClient(
                base_url=f"http://127.0.0.1:{port}", timeout=30, headers={"X-API-Key": ADMIN_KEY}
            ) as client:
                for pid in PROVIDERS:
                    ran = await client.post("/api/schedule/trigger", json={"provider": pid})
                    assert ran.status_code == 200, ran.text
                yield CertApi(client, servers)
        finally:
            server.should_exit = True
            await task


async def certificates(api: CertApi, count: int) -> list[dict[str, Any]]:
    """The list once `count` readings are stored (they are saved off the probe's path)."""
    deadline = time.monotonic() + 10
    while True:
        response = await api.client.get("/api/certificates")
        assert response.status_code == 200, response.text
        rows = response.json()
        if len(rows) >= count or time.monotonic() > deadline:
            return rows
        await asyncio.sleep(0.05)


async def test_certificates_are_listed_soonest_expiry_first_with_their_state(
    cert_api: CertApi,
) -> None:
    rows = await certificates(cert_api, len(PROVIDERS))
    assert [r["provider"] for r in rows] == ["tls_expired", "tls_soon", "tls_wrong", "tls_valid"]
    by_id = {r["provider"]: r for r in rows}
    assert [by_id[p]["state"] for p in PROVIDERS] == ["invalid", "critical", "invalid", "ok"]
    soon = by_id["tls_soon"]
    assert 4.9 < soon["days_left"] <= 5.0 and soon["verified"] is True
    assert soon["host"] == "127.0.0.1" and soon["port"] == cert_api.servers["tls_soon"].port
    assert soon["chain_source"] == "verified" and "127.0.0.1" in soon["names"]
    expired = by_id["tls_expired"]
    assert expired["days_left"] < 0 and "certificate has expired" in expired["error"]
    wrong = by_id["tls_wrong"]
    assert wrong["host_matches"] is False and wrong["names"] == ["wrong.example"]
    assert by_id["tls_valid"]["error"] == "" and by_id["tls_valid"]["days_left"] > 89


async def test_the_provider_view_has_its_certificate(cert_api: CertApi) -> None:
    await certificates(cert_api, len(PROVIDERS))
    soon = (await cert_api.client.get("/api/providers/tls_soon")).json()["certificate"]
    assert soon["state"] == "critical"
    assert soon["not_after"].startswith(cert_api.servers["tls_soon"].not_after.date().isoformat())
    wrong = (await cert_api.client.get("/api/providers/tls_wrong")).json()["certificate"]
    assert (wrong["state"], wrong["host_matches"], wrong["verified"]) == ("invalid", False, False)
    # A provider whose certificate was never read says so with null.
    other = (await cert_api.client.get("/api/providers/binance")).json()
    assert other["certificate"] is None


async def test_filter_by_provider_unknown_provider_and_missing_key(cert_api: CertApi) -> None:
    await certificates(cert_api, len(PROVIDERS))
    one = await cert_api.client.get("/api/certificates", params={"provider": "tls_wrong"})
    assert [r["provider"] for r in one.json()] == ["tls_wrong"]
    unknown = await cert_api.client.get("/api/certificates", params={"provider": "nope"})
    assert unknown.status_code == 404 and "unknown provider" in unknown.json()["detail"]
    anonymous = await cert_api.client.get("/api/certificates", headers={"X-API-Key": ""})
    assert anonymous.status_code == 401


async def test_metrics_export_the_earliest_expiry_per_provider_and_host(cert_api: CertApi) -> None:
    rows = await certificates(cert_api, len(PROVIDERS))
    text = (await cert_api.client.get("/metrics")).text
    families = {f.name: f for f in text_string_to_metric_families(text)}
    expiry = {
        s.labels["provider"]: (s.labels["host"], s.value)
        for s in families["apiwatch_tls_cert_expiry_timestamp_seconds"].samples
    }
    for row in rows:
        server = cert_api.servers[row["provider"]]
        assert expiry[row["provider"]] == (
            f"127.0.0.1:{server.port}",
            server.not_after.timestamp(),
        )
    verified = {
        s.labels["provider"]: s.value for s in families["apiwatch_tls_cert_verified"].samples
    }
    assert verified == {"tls_expired": 0.0, "tls_soon": 1.0, "tls_wrong": 0.0, "tls_valid": 1.0}
    promtool = shutil.which("promtool")
    if promtool is not None:  # the exposition stays valid with the new families
        checked = subprocess.run(
            [promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60
        )
        assert checked.returncode == 0, checked.stdout + checked.stderr

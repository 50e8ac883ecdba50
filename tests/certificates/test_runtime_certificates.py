"""The composed monitor with probes to local TLS servers: a reading is stored once per
refresh interval, announced as an event, alerted on, and survives a restart without a new
reading. On SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from sqlalchemy import select

from apiwatch.runtime import open_runtime
from apiwatch.settings import Settings
from apiwatch.storage.models import Alert, EventRow, TlsCertificate
from tests.certificates.conftest import ServeTls, write_provider
from tests.conftest import empty_tables


def settings_for(url: str, catalogue: Path, ca_file: Path) -> Settings:
    return Settings(
        _env_file=None,
        database_url=url,
        catalogue_dir=catalogue,
        tls_ca_file=ca_file,
        scheduler_enabled=False,
        recorder_flush_ms=10,
    )


async def wait_for_alert(runtime, rule: str) -> list[Alert]:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + 10
    while True:
        async with runtime.sessions() as session:
            alerts = list((await session.scalars(select(Alert).where(Alert.rule == rule))).all())
        if alerts or time.monotonic() > deadline:
            return alerts
        await asyncio.sleep(0.05)


async def test_a_reading_is_stored_once_per_interval_alerted_and_kept_over_a_restart(
    migrated_db_url: str, serve_tls: ServeTls, ca_file: Path, tmp_path: Path
) -> None:
    await empty_tables(migrated_db_url)
    catalogue = tmp_path / "catalogue"
    async with serve_tls("expiring") as server:
        write_provider(catalogue, "tls_soon", server.url)
        settings = settings_for(migrated_db_url, catalogue, ca_file)
        async with open_runtime(settings) as runtime:
            [first] = await runtime.check(provider_ids=["tls_soon"])
            assert first.certificate is not None and first.certificate.verified
            await runtime.certificates.drain()
            async with runtime.sessions() as session:
                row = (await session.scalars(select(TlsCertificate))).one()
            assert (row.provider, row.host, row.port) == ("tls_soon", "127.0.0.1", server.port)
            assert row.not_after == server.not_after and row.verified
            stored_at = row.updated_at

            # Within the refresh interval: no reading, nothing stored again.
            [second] = await runtime.check(provider_ids=["tls_soon"])
            assert second.certificate is None
            await runtime.certificates.drain()
            async with runtime.sessions() as session:
                again = (await session.scalars(select(TlsCertificate))).one()
            assert again.updated_at == stored_at

            # Five days left: the critical alert, from the announced reading.
            [alert] = await wait_for_alert(runtime, "tls_certificate")
            assert alert.severity == "critical" and alert.provider == "tls_soon"
            assert f"127.0.0.1:{server.port}" in alert.message
            key = ("tls_soon", "127.0.0.1", server.port)
            assert runtime.certificates.readings[key].not_after == server.not_after

        async with runtime.sessions() as session:
            kinds = (await session.scalars(select(EventRow.kind))).all()
        assert list(kinds).count("tls_certificate") == 1

        # A restart takes the reading back and does not read the certificate again.
        async with open_runtime(settings) as runtime:
            assert runtime.certificates.readings[key].not_after == server.not_after
            [after] = await runtime.check(provider_ids=["tls_soon"])
            assert after.certificate is None
            await runtime.certificates.drain()
            async with runtime.sessions() as session:
                kept = (await session.scalars(select(TlsCertificate))).one()
            assert kept.updated_at == stored_at

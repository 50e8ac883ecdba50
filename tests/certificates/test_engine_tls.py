"""The probe engine reads the certificate of the connection it makes, through real TLS
servers on 127.0.0.1: what each kind of certificate gives, and how often it is read."""

from __future__ import annotations

import asyncio
import ssl
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from apiwatch.catalogue.loader import load_catalogue
from apiwatch.domain import CertificateSeen, Outcome, ProbeResult
from apiwatch.probe.client import create_session
from apiwatch.probe.engine import ProbeEngine
from apiwatch.probe.tls import CertificateWatch, Target, verified_reading
from tests.certificates.conftest import ServeTls

CATALOGUE = load_catalogue()
PROVIDER = "coingecko"  # keyless: every probe is sent


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


async def probe(
    url: str, ca_file: Path | None, watch: CertificateWatch, clock: Clock, times: int = 1
) -> list[ProbeResult]:
    spec = CATALOGUE.providers[PROVIDER]
    out: list[ProbeResult] = []
    async with create_session(ca_file=ca_file) as http:
        engine = ProbeEngine(
            session=http, keys={}, upstream_override=url, clock=clock, certificates=watch
        )
        for _ in range(times):
            out += await engine.probe(spec, "health")
    return out


def only_reading(results: list[ProbeResult]) -> CertificateSeen:
    readings = [r.certificate for r in results if r.certificate is not None]
    assert len(readings) == 1, readings
    return readings[0]


async def test_valid_certificate_is_read_from_the_probe_connection(
    serve_tls: ServeTls, ca_file: Path
) -> None:
    clock = Clock()
    watch = CertificateWatch(refresh_s=3600, clock=clock)
    async with serve_tls("valid") as server:
        results = await probe(server.url, ca_file, watch, clock)
    reading = only_reading(results)
    assert results[-1].outcome is not Outcome.CONNECTION_ERROR
    assert (reading.provider, reading.host, reading.port) == (PROVIDER, "127.0.0.1", server.port)
    assert reading.verified and reading.host_matches is True
    assert reading.not_after == server.not_after
    assert reading.chain_source == "verified"
    # The verified chain ends in the test CA, which outlives the leaf.
    assert reading.chain_not_after == server.not_after
    assert "127.0.0.1" in reading.names
    assert "Testing CA" in reading.issuer
    assert reading.error == ""


async def test_certificate_expiring_in_five_days_verifies_with_five_days_left(
    serve_tls: ServeTls, ca_file: Path
) -> None:
    clock = Clock()
    async with serve_tls("expiring") as server:
        results = await probe(
            server.url, ca_file, CertificateWatch(refresh_s=60, clock=clock), clock
        )
    reading = only_reading(results)
    assert reading.verified
    days = reading.days_left(clock.now)
    assert days is not None and 4.9 < days <= 5.0


@pytest.mark.parametrize(
    ("kind", "reason", "host_matches"),
    [
        ("expired", "certificate has expired", None),
        ("wrong_host", "IP address mismatch", False),
        ("self_signed", "self-signed certificate", None),
    ],
)
async def test_certificate_that_does_not_verify_fails_the_probe_and_is_read_once_more(
    serve_tls: ServeTls, ca_file: Path, kind: str, reason: str, host_matches: bool | None
) -> None:
    clock = Clock()
    async with serve_tls(kind) as server:
        results = await probe(
            server.url, ca_file, CertificateWatch(refresh_s=60, clock=clock), clock
        )
    assert results[-1].outcome is Outcome.CONNECTION_ERROR
    reading = only_reading(results)
    assert not reading.verified
    assert reason in reading.error
    assert reading.host_matches is host_matches
    # The extra connection (verification off) read the certificate itself.
    assert reading.not_after == server.not_after
    assert reading.chain_source == "presented"


async def test_a_reading_is_taken_once_per_refresh_interval(
    serve_tls: ServeTls, ca_file: Path
) -> None:
    clock = Clock()
    watch = CertificateWatch(refresh_s=3600, clock=clock)
    async with serve_tls("valid") as server:
        first = await probe(server.url, ca_file, watch, clock, times=3)
        clock.now += timedelta(seconds=3599)
        within = await probe(server.url, ca_file, watch, clock)
        clock.now += timedelta(seconds=1)
        after = await probe(server.url, ca_file, watch, clock)
    only_reading(first)
    assert all(r.certificate is None for r in within)
    assert only_reading(after).at == clock.now


async def test_an_engine_without_a_watch_reads_nothing(serve_tls: ServeTls, ca_file: Path) -> None:
    async with serve_tls("valid") as server:
        spec = CATALOGUE.providers[PROVIDER]
        async with create_session(ca_file=ca_file) as http:
            engine = ProbeEngine(session=http, keys={}, upstream_override=server.url)
            results = await engine.probe(spec, "health")
    assert results[-1].outcome is not Outcome.CONNECTION_ERROR
    assert results[-1].certificate is None


class LeafOnly:
    """A TLS connection as Python's public API shows it before 3.13: the leaf alone (no
    `_sslobj` chain methods), to check the fallback."""

    def __init__(self, ssl_object: ssl.SSLObject) -> None:
        self.context = ssl_object.context
        self.getpeercert = ssl_object.getpeercert


async def test_without_the_chain_api_the_leaf_alone_is_read(
    serve_tls: ServeTls, ca_file: Path
) -> None:
    context = ssl.create_default_context(cafile=str(ca_file))
    async with serve_tls("expiring") as server:
        _, writer = await asyncio.open_connection("127.0.0.1", server.port, ssl=context)
        try:
            ssl_object = writer.get_extra_info("ssl_object")
            target = Target(PROVIDER, "127.0.0.1", server.port)
            now = datetime.now(UTC)
            full = verified_reading(target, ssl_object, at=now)
            leaf = verified_reading(target, LeafOnly(ssl_object), at=now)
        finally:
            writer.close()
            await writer.wait_closed()
    assert full.chain_source == "verified"
    assert (leaf.chain_source, leaf.verified, leaf.host_matches) == ("leaf", True, True)
    assert leaf.not_after == leaf.chain_not_after == server.not_after
    assert leaf.issuer == full.issuer and leaf.names == full.names

"""What the runtime does with the TLS certificate readings probes bring back: keep the newest
per provider and host in memory (for /metrics), announce each one (bus, `events` row, log;
the alert rule reads it there) and save it to `tls_certificates`, off the probe's path.

At start the stored readings come back, and the engine's watch is told when each was taken,
so a restart does not read every certificate again at once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import structlog
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from apiwatch.domain import CertificateSeen
from apiwatch.probe.tls import CertificateWatch, Target
from apiwatch.storage.repositories import certificates as cert_repo

log = structlog.get_logger("apiwatch.runtime")

Key = tuple[str, str, int]


class CertificateBook:
    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        announce: Callable[[object], None],
        watch: CertificateWatch | None,
    ) -> None:
        self._sessions = sessions
        self._announce = announce
        self._watch = watch
        self.readings: dict[Key, CertificateSeen] = {}
        self._saving: set[asyncio.Task[None]] = set()
        self._loaded_at = 0.0

    def seen(self, reading: CertificateSeen) -> None:
        """A probe read a certificate: remember, announce and (in the background) save it."""
        self._keep(reading)
        self._announce(reading)
        task = asyncio.get_running_loop().create_task(self._save(reading))
        self._saving.add(task)
        task.add_done_callback(self._saving.discard)

    def _keep(self, reading: CertificateSeen) -> None:
        key = (reading.provider, reading.host, reading.port)
        held = self.readings.get(key)
        if held is None or held.at <= reading.at:
            self.readings[key] = reading

    async def _save(self, reading: CertificateSeen) -> None:
        try:
            async with self._sessions() as session:
                await cert_repo.save_reading(session, reading=reading)
        except (DBAPIError, OSError, TimeoutError) as error:
            # The next reading (one refresh interval on) tries again; memory holds this one.
            log.warning("certificate_not_saved", provider=reading.provider, error=str(error))

    async def drain(self) -> None:
        """Wait for the readings being saved (shutdown, tests)."""
        if self._saving:
            await asyncio.gather(*tuple(self._saving), return_exceptions=True)

    async def load(self, *, max_age_s: float = 0.0) -> None:
        """Take the stored readings (every process's), unless loaded within `max_age_s`;
        the watch learns when each was taken."""
        if max_age_s and time.monotonic() - self._loaded_at < max_age_s:
            return
        self._loaded_at = time.monotonic()
        try:
            async with self._sessions() as session:
                rows = await cert_repo.list_certificates(session)
        except (DBAPIError, OSError, TimeoutError) as error:
            log.warning("certificates_not_loaded", error=str(error))
            return
        for row in rows:
            reading = cert_repo.as_reading(row)
            self._keep(reading)
            if self._watch is not None:
                self._watch.mark(Target(reading.provider, reading.host, reading.port), reading.at)

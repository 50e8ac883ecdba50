"""The TLS certificates probes meet: when a host is due for a reading, and what is read.

A reading comes from the connection the probe already made (its SSL object), at most once
per refresh interval per provider and host (`CertificateWatch`). When verification fails
the request never gets a connection to read from; then the failure's reason is what is
known, and `fetch_presented` may open one extra connection with verification off to see the
certificate itself, which the engine does only in that case and only when a reading is due.

The whole chain is reached through the SSL object's private `_sslobj.get_verified_chain()`
(or `get_unverified_chain()`), present in CPython since 3.10 and public from 3.13. When
neither answers, the reading falls back to the leaf alone (`chain_source="leaf"`).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.x509.oid import ExtensionOID

from apiwatch.domain import CertificateSeen

# OpenSSL's X509_V_ERR_HOSTNAME_MISMATCH and X509_V_ERR_IP_ADDRESS_MISMATCH.
_NAME_MISMATCH_CODES = frozenset({62, 64})
_DER = 2  # ssl's ENCODING_DER, for the chain's `public_bytes`
_MAX_NAMES = 20


@dataclass(frozen=True, slots=True)
class Target:
    """Which certificate a reading is of: the provider's and the connected host's."""

    provider: str
    host: str
    port: int


class CertificateWatch:
    """Which provider and host are due for a certificate reading (in memory, per process).

    `mark` is called with the time of each reading; the runtime also marks the readings it
    restores from the database, so a restart does not read every host again at once.
    """

    def __init__(self, *, refresh_s: float, clock: Callable[[], datetime]) -> None:
        self.refresh = timedelta(seconds=refresh_s)
        self._clock = clock
        self._read_at: dict[Target, datetime] = {}

    def due(self, target: Target) -> bool:
        last = self._read_at.get(target)
        return last is None or self._clock() - last >= self.refresh

    def mark(self, target: Target, at: datetime | None = None) -> None:
        when = at or self._clock()
        last = self._read_at.get(target)
        if last is None or when > last:
            self._read_at[target] = when


def _names(cert: x509.Certificate) -> tuple[str, ...]:
    try:
        san = cert.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_ALTERNATIVE_NAME)
    except (x509.ExtensionNotFound, ValueError):
        return ()
    names = [str(n) for n in san.value.get_values_for_type(x509.DNSName)]
    names += [str(a) for a in san.value.get_values_for_type(x509.IPAddress)]
    return tuple(names[:_MAX_NAMES])


def _chain(ssl_object: Any, *, verified_first: bool) -> tuple[list[bytes], str]:
    """The chain's DER certificates, leaf first, and which chain it is."""
    inner = getattr(ssl_object, "_sslobj", None)
    methods = [("get_verified_chain", "verified")] if verified_first else []
    methods.append(("get_unverified_chain", "presented"))
    for method, source in methods:
        # Public on SSLObject from Python 3.13; private on the inner object before.
        get = getattr(ssl_object, method, None) or getattr(inner, method, None)
        if get is None:
            continue
        ders: list[bytes] = []
        # A private API before 3.13: any surprise means "use the leaf".
        with contextlib.suppress(Exception):
            ders = [c if isinstance(c, bytes) else c.public_bytes(_DER) for c in get() or ()]
        if ders:
            return ders, source
    leaf = ssl_object.getpeercert(binary_form=True)
    return ([leaf] if leaf else []), "leaf"


def reading(
    target: Target,
    ssl_object: Any,
    *,
    at: datetime,
    verified: bool,
    host_matches: bool | None,
    error: str = "",
) -> CertificateSeen:
    """What the connection's certificates say; a certificate that cannot be parsed leaves the
    dates empty and says so in `error`, never raises."""

    def unread(why: str) -> CertificateSeen:
        return CertificateSeen(
            provider=target.provider,
            host=target.host,
            port=target.port,
            at=at,
            verified=verified,
            host_matches=host_matches,
            error=error or why,
        )

    try:
        ders, source = _chain(ssl_object, verified_first=verified)
        certs = [x509.load_der_x509_certificate(der) for der in ders]
    except Exception as exc:  # a garbled certificate is a finding, not a crash
        return unread(f"certificate could not be read: {type(exc).__name__}")
    if not certs:
        return unread("no certificate presented")
    leaf = certs[0]
    return CertificateSeen(
        provider=target.provider,
        host=target.host,
        port=target.port,
        at=at,
        verified=verified,
        not_after=leaf.not_valid_after_utc,
        not_before=leaf.not_valid_before_utc,
        chain_not_after=min(c.not_valid_after_utc for c in certs),
        subject=leaf.subject.rfc4514_string(),
        issuer=leaf.issuer.rfc4514_string(),
        names=_names(leaf),
        chain_source=source,
        host_matches=host_matches,
        error=error,
    )


def verified_reading(target: Target, ssl_object: Any, *, at: datetime) -> CertificateSeen:
    """A reading of a connection the request made: verified when its context verified."""
    context = getattr(ssl_object, "context", None)
    checked = context is not None and context.verify_mode == ssl.CERT_REQUIRED
    host_checked = checked and bool(context.check_hostname)
    return reading(
        target,
        ssl_object,
        at=at,
        verified=checked,
        host_matches=True if host_checked else None,
        error="" if checked else "verification is off for this connection",
    )


def verification_failure(exc: BaseException) -> tuple[str, bool | None] | None:
    """(reason, host_matches) when `exc` (or its cause) is a certificate verification
    failure; None for any other error."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        inner = getattr(current, "certificate_error", None)  # aiohttp's wrapper
        if isinstance(inner, ssl.SSLCertVerificationError):
            current = inner
        if isinstance(current, ssl.SSLCertVerificationError):
            code = getattr(current, "verify_code", None)
            message = getattr(current, "verify_message", None) or str(current)
            return str(message), False if code in _NAME_MISMATCH_CODES else None
        current = current.__cause__ or current.__context__
    return None


async def fetch_presented(
    target: Target,
    *,
    timeout_s: float,
    at: datetime,
    reason: str,
    host_matches: bool | None,
) -> CertificateSeen:
    """One extra connection with verification off, to read a certificate that failed
    verification; the reason of the failure is kept. Never raises."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    writer: asyncio.StreamWriter | None = None
    try:
        async with asyncio.timeout(timeout_s):
            _, writer = await asyncio.open_connection(
                target.host, target.port, ssl=context, server_hostname=target.host
            )
        ssl_object = writer.get_extra_info("ssl_object")
        return reading(
            target, ssl_object, at=at, verified=False, host_matches=host_matches, error=reason
        )
    except Exception as exc:  # the probe's own verdict stands either way
        return CertificateSeen(
            provider=target.provider,
            host=target.host,
            port=target.port,
            at=at,
            verified=False,
            host_matches=host_matches,
            error=f"{reason} (certificate not read: {type(exc).__name__})",
        )
    finally:
        if writer is not None:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

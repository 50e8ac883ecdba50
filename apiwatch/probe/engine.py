"""Probes one endpoint of one provider and returns one ProbeResult per attempt.

Nothing an upstream sends can escape this module as an exception: every failure becomes an
Outcome. Keys are attached here and scrubbed from anything that leaves (reasons, logs).
"""

from __future__ import annotations

import dataclasses
import functools
import re
import time
from collections.abc import Callable
from datetime import datetime
from urllib.parse import quote, quote_plus, urlsplit

import aiohttp
from yarl import URL

from apiwatch.budget.keys import Key, KeyPool
from apiwatch.catalogue.schema import EndpointSpec, ProviderSpec
from apiwatch.domain import (
    NO_HEADERS,
    CertificateSeen,
    Outcome,
    ProbeResult,
    SkipReason,
    utcnow,
)
from apiwatch.probe.classify import Classified, classify_exception, classify_response
from apiwatch.probe.client import connection_ssl_object, read_bounded, upstream_status
from apiwatch.probe.guard import ProbeGuard
from apiwatch.probe.retry import NO_RETRY, RetryPolicy
from apiwatch.probe.tls import (
    CertificateWatch,
    Target,
    fetch_presented,
    verification_failure,
    verified_reading,
)

# Response headers worth keeping for budgets (rate-limit reports, Retry-After).
_KEPT_HEADERS = ("retry-after", "x-mbx-used-weight", "x-bapi-limit", "x-ratelimit", "ratelimit")


def build_url(provider: ProviderSpec, endpoint: EndpointSpec, override: str | None) -> str:
    """The endpoint's URL, or its mirror `OVERRIDE/<id><base path><path>` under an override."""
    return _target(provider.id, provider.base_url, endpoint.path, override).url


@dataclasses.dataclass(frozen=True, slots=True)
class _Target:
    """What an endpoint's address comes to, worked out once (not per probe)."""

    url: str
    parsed: URL | str
    # (host, port) when the address is https: whose certificate a probe may read.
    tls: tuple[str, int] | None


@functools.lru_cache(maxsize=65536)
def _target(provider_id: str, base_url: str, path: str, override: str | None) -> _Target:
    if override is None:
        url = base_url + path
    else:
        base_path = urlsplit(base_url).path.rstrip("/")
        url = f"{override}/{provider_id}{base_path}{path}"
    parts = urlsplit(url)
    tls = None
    if parts.scheme == "https" and parts.hostname:
        try:
            tls = (parts.hostname, parts.port or 443)
        except ValueError:  # a port that is not a number: no certificate to read
            tls = None
    try:
        parsed: URL | str = URL(url)
    except ValueError:  # left to the request, which fails inside the probe's own handling
        parsed = url
    return _Target(url=url, parsed=parsed, tls=tls)


@functools.lru_cache(maxsize=256)
def _timeout(total_s: float) -> aiohttp.ClientTimeout:
    return aiohttp.ClientTimeout(total=total_s)


def clean_reason(text: str, secrets: list[str], *, query_param: str | None = None) -> str:
    """A reason safe to store, log and show: no key in any encoding, no NUL, valid UTF-8.

    Upstreams echo requests back (URL-encoded keys) and send bytes PostgreSQL refuses
    (NUL) or Python cannot encode (lone surrogates); none of that may leave the probe.
    """
    if not secrets and not query_param and text.isascii() and "\x00" not in text:
        return text  # nothing to scrub: the common case, decided without copying
    for secret in secrets:
        if secret:
            for form in {secret, quote(secret, safe=""), quote(secret), quote_plus(secret)}:
                text = text.replace(form, "***")
    if query_param:
        # Whatever encoding an upstream echoed the URL in, the parameter's value goes.
        text = re.sub(rf"(?i)([?&]{re.escape(query_param)}=)[^&\s\"'<>]*", r"\1***", text)
    text = text.replace("\x00", "")
    return text.encode("utf-8", "replace").decode("utf-8")


class ProbeEngine:
    def __init__(
        self,
        *,
        session: aiohttp.ClientSession,
        keys: dict[str, KeyPool],
        upstream_override: str | None = None,
        max_body_bytes: int = 2 * 1024 * 1024,
        retry: RetryPolicy = NO_RETRY,
        clock: Callable[[], datetime] = utcnow,
        guard: ProbeGuard | None = None,
        certificates: CertificateWatch | None = None,
    ) -> None:
        self._session = session
        self._keys = keys
        self._override = upstream_override
        self._max_body = max_body_bytes
        self._retry = retry
        self._clock = clock
        self.guard = guard
        # Which hosts are due for a TLS certificate reading; None reads none.
        self.certificates = certificates

    def key_for(self, provider: ProviderSpec) -> Key | None:
        pool = self._keys.get(provider.id)
        return pool.current() if pool else None

    def key_count(self, provider_id: str) -> int:
        pool = self._keys.get(provider_id)
        return len(pool.keys) if pool else 0

    @property
    def retry_policy(self) -> RetryPolicy:
        return self._retry

    async def probe(
        self,
        provider: ProviderSpec,
        endpoint_name: str,
        *,
        first_attempt: int = 1,
        key: Key | None = None,
    ) -> list[ProbeResult]:
        """Probe once, retrying at once on timeout/connection errors per the policy.

        Returns every attempt, oldest first; the last one is the verdict.
        """
        endpoint = provider.all_endpoints()[endpoint_name]
        timeout_s = endpoint.timeout_s or provider.timeout_s
        results: list[ProbeResult] = []
        attempt = first_attempt
        pinned = key
        while True:
            # Every attempt passes the guard: a retry spends budget like any request.
            if self.guard is not None:
                admission = await self.guard.admit(
                    provider, endpoint, key=pinned, endpoint_name=endpoint_name
                )
                key, skip, detail = admission.key, admission.skip, admission.detail
            else:
                key = pinned or self.key_for(provider)
                needs = key is None and provider.endpoint_needs_key(endpoint)
                skip = SkipReason.NO_KEY if needs else None
                detail = SkipReason.NO_KEY.value
            if skip is not None:
                results.append(self._skipped(provider, endpoint_name, detail, attempt))
                return results
            result = await self._attempt(provider, endpoint_name, endpoint, key, timeout_s, attempt)
            # Immediate retries are counted within this call; a scheduled retry continues the
            # numbering but starts a fresh run of at-once tries.
            final = not self._retry.retry_now(result.outcome, attempt - first_attempt + 1)
            if self.guard is not None:
                await self.guard.settle(
                    provider, key, result, endpoint, final=final, key_test=pinned is not None
                )
            if final:
                results.append(result)
                return results
            results.append(dataclasses.replace(result, final=False))
            attempt += 1
            timeout_s = self._retry.next_timeout(timeout_s)

    def _skipped(
        self, provider: ProviderSpec, endpoint_name: str, reason: str, attempt: int
    ) -> ProbeResult:
        return ProbeResult(
            provider=provider.id,
            endpoint=endpoint_name,
            outcome=Outcome.SKIPPED,
            started_at=self._clock(),
            reason=reason,
            attempt=attempt,
        )

    async def _attempt(
        self,
        provider: ProviderSpec,
        endpoint_name: str,
        endpoint: EndpointSpec,
        key: Key | None,
        timeout_s: float,
        attempt: int,
    ) -> ProbeResult:
        params = {k: _param(v) for k, v in endpoint.params.items()} if endpoint.params else {}
        headers = endpoint.headers
        auth = provider.auth
        if key is not None and auth.location == "query" and auth.name:
            params[auth.name] = key.value
        elif key is not None and auth.location == "header" and auth.name:
            headers = {**headers, auth.name: auth.prefix + key.value}
        secrets = [key.value] if key else []
        target = _target(provider.id, provider.base_url, endpoint.path, self._override)
        started_at = self._clock()
        start = time.perf_counter()
        status: int | None = None
        size: int | None = None
        kept: dict[str, str] = {}
        location = ""
        tls = self._tls_target(provider.id, target)
        tls_object: object = None  # the connection's SSL object, when a reading is due
        try:
            async with self._session.request(
                endpoint.method,
                target.parsed,
                params=params or None,
                headers=headers,
                timeout=_timeout(timeout_s),
                # A redirect could carry header keys to another host; report it instead.
                allow_redirects=False,
            ) as response:
                if tls is not None:
                    tls_object = connection_ssl_object(response)
                status = response.status
                location = response.headers.get("location", "")
                kept = {
                    name.lower(): value
                    for name, value in response.headers.items()
                    if name.lower().startswith(_KEPT_HEADERS)
                }
                body, truncated = await read_bounded(response, self._max_body)
            latency_ms = (time.perf_counter() - start) * 1000
            size = len(body)
        except Exception as exc:  # everything an upstream can do ends as an Outcome
            latency_ms = (time.perf_counter() - start) * 1000
            verdict = classify_exception(exc)
            if status is None:  # a status line came, then something that is not HTTP
                status = upstream_status(exc)
            if status is not None and verdict.outcome is Outcome.TIMEOUT:
                verdict = Classified(Outcome.TIMEOUT, f"HTTP {status} headers came, body did not")
            if tls is not None and tls_object is None:
                tls_object = await self._read_failure(tls, exc, timeout_s)
        else:
            verdict = classify_response(
                provider=provider,
                endpoint=endpoint,
                status=status,
                body=body,
                headers=kept or NO_HEADERS,
                latency_ms=latency_ms,
                truncated_at=self._max_body if truncated else None,
                location=location,
            )
        # Parsed after the latency was taken: reading a certificate is not the upstream's time.
        certificate = self._reading(tls, tls_object)
        return ProbeResult(
            provider=provider.id,
            endpoint=endpoint_name,
            outcome=verdict.outcome,
            started_at=started_at,
            latency_ms=latency_ms,
            status_code=status,
            reason=clean_reason(
                verdict.reason,
                secrets,
                query_param=auth.name if auth.location == "query" else None,
            ),
            attempt=attempt,
            key_label=key.label if key else None,
            retry_after_s=verdict.retry_after_s,
            response_bytes=size,
            payload=verdict.payload,
            headers=kept or NO_HEADERS,
            certificate=certificate,
        )

    # -- TLS certificates (probe/tls.py) -----------------------------------------------------

    def _tls_target(self, provider_id: str, address: _Target) -> Target | None:
        """The host whose certificate this attempt should read, when one is due."""
        if self.certificates is None or address.tls is None:
            return None
        target = Target(provider_id, *address.tls)
        return target if self.certificates.due(target) else None

    def _reading(self, target: Target | None, found: object) -> CertificateSeen | None:
        """The reading of this attempt: from its own connection's SSL object, or the one
        `_read_failure` made; None when nothing was due or there was nothing to read."""
        if target is None or found is None or self.certificates is None:
            return None
        if isinstance(found, CertificateSeen):
            return found
        now = self._clock()
        self.certificates.mark(target, now)
        return verified_reading(target, found, at=now)

    async def _read_failure(
        self, target: Target, exc: BaseException, timeout_s: float
    ) -> CertificateSeen | None:
        """A failed verification, with the certificate read over one extra connection
        (verification off), which happens only here and once per refresh interval."""
        failure = verification_failure(exc)
        if failure is None or self.certificates is None:
            return None
        reason, host_matches = failure
        now = self._clock()
        self.certificates.mark(target, now)
        return await fetch_presented(
            target, timeout_s=timeout_s, at=now, reason=reason, host_matches=host_matches
        )


def _param(value: str | int | float | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)

"""Derives a provider's Status from its recent probe results (DESIGN.md §3). Pure."""

from __future__ import annotations

from collections.abc import Sequence

from apiwatch.domain import Outcome, ProbeResult, Status

OFFLINE_AFTER = 3
ERROR_RATE_DEGRADED = 0.10


def consecutive_failures(results: Sequence[ProbeResult]) -> int:
    """Failures at the newest end of `results` (skipped results are not evidence)."""
    count = 0
    for result in reversed(results):
        if result.outcome is Outcome.SKIPPED:
            continue
        if not result.outcome.is_failure:
            break
        count += 1
    return count


def derive_status(
    results: Sequence[ProbeResult],
    *,
    breaker_open: bool = False,
    stale: bool = False,
    offline_after: int = OFFLINE_AFTER,
    error_rate_degraded: float = ERROR_RATE_DEGRADED,
) -> tuple[Status, str]:
    """(status, reason) from results ordered oldest → newest."""
    if breaker_open:
        return Status.OFFLINE, "circuit breaker open"
    evidence = [r for r in results if r.outcome is not Outcome.SKIPPED]
    if not evidence:
        skipped = [r for r in results if r.outcome is Outcome.SKIPPED]
        if skipped:
            return Status.UNKNOWN, f"not probed: {skipped[-1].reason}"
        return Status.UNKNOWN, "no results yet"
    last = evidence[-1]
    failures = consecutive_failures(evidence)
    if failures >= offline_after:
        return Status.OFFLINE, f"{failures} consecutive failures; last: {_describe(last)}"
    if failures:
        plural = "failure" if failures == 1 else "failures"
        return Status.DEGRADED, f"{failures} consecutive {plural}; last: {_describe(last)}"
    if last.outcome is Outcome.RATE_LIMITED:
        return Status.DEGRADED, last.reason or "rate limited"
    if last.outcome is Outcome.SLOW:
        return Status.DEGRADED, f"slow: {last.reason}"
    failed = sum(1 for r in evidence if r.outcome.is_failure or r.outcome is Outcome.RATE_LIMITED)
    rate = failed / len(evidence)
    if rate >= error_rate_degraded:
        return Status.DEGRADED, f"error rate {rate:.0%} over the last {len(evidence)} results"
    if stale:
        return Status.DEGRADED, "data is stale"
    return Status.ONLINE, "healthy"


def _describe(result: ProbeResult) -> str:
    return f"{result.outcome.value} ({result.reason})" if result.reason else result.outcome.value

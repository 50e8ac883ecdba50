"""Derives a provider's Status from its recent probe results (docs/concepts.md). Pure.

Hysteresis: trouble (failed or rate-limited results) followed by `RECOVERED_AFTER`
consecutive `ok` results is over. The results up to the end of the trouble no longer count,
so a recovered provider is `online` after three good checks (final attempts) instead of
staying `degraded` until its whole window of 20 has been flushed. Until those three, the
error rate over the window still decides, so a provider that fails often stays `degraded`.
"""

from __future__ import annotations

from collections.abc import Sequence

from apiwatch.domain import Outcome, ProbeResult, Status

OFFLINE_AFTER = 3
RECOVERED_AFTER = 3
ERROR_RATE_DEGRADED = 0.10
HEALTHY = "healthy"


def _troubled(result: ProbeResult) -> bool:
    return result.outcome.is_failure or result.outcome is Outcome.RATE_LIMITED


def since_recovery(
    evidence: Sequence[ProbeResult], *, recovered_after: int = RECOVERED_AFTER
) -> Sequence[ProbeResult]:
    """`evidence` (no skipped results) without everything before the last run of
    `recovered_after` consecutive ok results that ended some trouble."""
    cut = 0
    successes = 0
    troubled = False
    for index, result in enumerate(evidence):
        if _troubled(result):
            troubled, successes = True, 0
            continue
        successes = successes + 1 if result.outcome is Outcome.OK else 0
        if troubled and successes >= recovered_after:
            cut, troubled = index - recovered_after + 1, False
    return evidence[cut:]


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
    evidence = list(since_recovery(evidence))
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
    failed = sum(1 for r in evidence if _troubled(r))
    rate = failed / len(evidence)
    if rate >= error_rate_degraded:
        return Status.DEGRADED, f"error rate {rate:.0%} over the last {len(evidence)} results"
    if stale:
        return Status.DEGRADED, "data is stale"
    return Status.ONLINE, HEALTHY


def _describe(result: ProbeResult) -> str:
    return f"{result.outcome.value} ({result.reason})" if result.reason else result.outcome.value


# Weights of the health score: a degraded provider counts half.
SCORE_WEIGHTS = {Status.ONLINE: 100.0, Status.DEGRADED: 50.0, Status.OFFLINE: 0.0}


def health_score(statuses: Sequence[Status]) -> float | None:
    """Mean of 100 (online), 50 (degraded), 0 (offline) over providers with a known status."""
    known = [SCORE_WEIGHTS[s] for s in statuses if s in SCORE_WEIGHTS]
    return round(sum(known) / len(known), 1) if known else None


def status_counts(statuses: Sequence[Status]) -> dict[Status, int]:
    """How many providers have each status (every status present, zero included)."""
    counts = dict.fromkeys(Status, 0)
    for status in statuses:
        counts[status] += 1
    return counts

"""Rules for the product's own API: usage spikes per key, rejected requests per key or address.

Requests come in as simple records (`InboundRecord`; `apiwatch.inbound`'s UsageRecord fits).
A key's rate is judged per minute against its normal rate, the median minute of the
trailing hour (`analysis.anomalies.RateBaseline`); rejected requests (401/403) are counted
over a sliding hour per key, or per client address when no valid key was presented.
`InboundWatch.judge` says what level each subject is at; `RuleEngine` turns that into alerts.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from apiwatch.alerting.rule_settings import UnauthorizedRule, UsageSpikeRule
from apiwatch.analysis.anomalies import RateBaseline, SlidingCount
from apiwatch.domain import Severity

USAGE_SPIKE = "inbound_usage_spike"
UNAUTHORIZED = "inbound_unauthorized"
REJECTED_STATUSES = frozenset({401, 403})


class InboundRecord(Protocol):
    """One request to the product's own API."""

    @property
    def key_id(self) -> Any: ...  # None when no valid key was presented
    @property
    def client(self) -> str | None: ...
    @property
    def status(self) -> int: ...
    @property
    def at(self) -> datetime: ...


@dataclass(frozen=True, slots=True)
class Request:
    """The minimal `InboundRecord`, for callers without a UsageRecord at hand."""

    key_id: Any
    client: str | None
    status: int
    at: datetime


@dataclass(frozen=True, slots=True)
class InboundJudgement:
    rule: str
    subject: str
    level: Severity | None
    message: str
    labels: dict[str, Any] = field(default_factory=dict)


# Subjects tracked at once: rotating addresses must not grow memory without bound; past
# this, new addresses share one bucket (which still alerts).
MAX_SUBJECTS = 10_000


def address_bucket(client: str | None) -> str:
    """An IPv4 address as is, an IPv6 address by its /64 (one host owns a whole /64, as the
    middleware's failed-auth throttle also assumes)."""
    if not client:
        return "unknown"
    try:
        address = ipaddress.ip_address(client)
    except ValueError:
        return client[:64]
    if address.version == 6:
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


def rejected_subject(record: InboundRecord) -> str:
    if record.key_id is not None:
        return f"key:{record.key_id}"
    return f"address:{address_bucket(record.client)}"


def usage_subject(record: InboundRecord) -> str:
    return "anonymous" if record.key_id is None else f"key:{record.key_id}"


class InboundWatch:
    def __init__(self, *, spike: UsageSpikeRule, unauthorized: UnauthorizedRule) -> None:
        self.spike = spike
        self.unauthorized = unauthorized
        self._usage: dict[str, RateBaseline] = {}
        self._rejected: dict[str, SlidingCount] = {}

    def add(self, records: Iterable[InboundRecord]) -> None:
        for record in records:
            if record.status in REJECTED_STATUSES:
                # Rejected requests are the other rule's business, not usage.
                if self.unauthorized.enabled:
                    self._counter(rejected_subject(record)).add(record.at)
            elif self.spike.enabled:
                self._baseline(usage_subject(record)).add(record.at)

    def _counter(self, subject: str) -> SlidingCount:
        counter = self._rejected.get(subject)
        if counter is None:
            if len(self._rejected) >= MAX_SUBJECTS:
                subject = "address:(many)"
                counter = self._rejected.get(subject)
                if counter is not None:
                    return counter
            counter = self._rejected[subject] = SlidingCount(window_s=self.unauthorized.window_s)
        return counter

    def _baseline(self, subject: str) -> RateBaseline:
        baseline = self._usage.get(subject)
        if baseline is None:
            if len(self._usage) >= MAX_SUBJECTS:  # keys are few; this is a safety net
                subject = "key:(many)"
                baseline = self._usage.get(subject)
                if baseline is not None:
                    return baseline
            baseline = self._usage[subject] = RateBaseline(
                baseline_minutes=self.spike.baseline_minutes,
                min_history_minutes=self.spike.min_history_minutes,
                floor=self.spike.min_normal_per_minute,
            )
        return baseline

    def judge(self, now: datetime) -> list[InboundJudgement]:
        """The level of every subject seen (None: normal); forgets subjects gone quiet."""
        return self._judge_usage(now) + self._judge_rejected(now)

    def _judge_usage(self, now: datetime) -> list[InboundJudgement]:
        spike = self.spike
        out = []
        for subject, baseline in list(self._usage.items()):
            judged = baseline.judge(now)
            level = None
            if judged.ratio is not None and judged.current >= spike.min_requests_per_minute:
                if judged.ratio >= spike.critical_ratio:
                    level = Severity.CRITICAL
                elif judged.ratio >= spike.warning_ratio:
                    level = Severity.WARNING
            normal = judged.normal or 0.0
            message = (
                f"inbound API {subject}: {judged.current} requests/min, "
                f"{judged.ratio or 0:.1f} times its normal {normal:.1f}/min"
            )
            labels = {"rate_per_min": judged.current, "normal_per_min": normal}
            out.append(InboundJudgement(USAGE_SPIKE, subject, level, message, labels))
            if baseline.empty:
                del self._usage[subject]
        return out

    def _judge_rejected(self, now: datetime) -> list[InboundJudgement]:
        rule = self.unauthorized
        out = []
        for subject, counter in list(self._rejected.items()):
            count = counter.count(now)
            level = None
            if rule.critical_per_hour is not None and count > rule.critical_per_hour:
                level = Severity.CRITICAL
            elif count > rule.warning_per_hour:
                level = Severity.WARNING
            message = (
                f"inbound API {subject}: {count} rejected requests (401/403) in the last "
                f"{rule.window_s / 3600:g} h"
            )
            out.append(InboundJudgement(UNAUTHORIZED, subject, level, message, {"count": count}))
            if count == 0:
                del self._rejected[subject]
        return out

"""Alert rules: turn probe results, status changes, events and inbound traffic into alerts.

The engine keeps one state per (rule, provider, item) and reports transitions only: a
FIRING notice when a condition starts or changes severity (the old severity is RESOLVED in
the same breath, since severity is part of the fingerprint), a RESOLVED notice when it
clears, and nothing while it stays as it is. Dedup, grouping and silences are the policy's
business, not this module's. No clock: every call carries `now`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from apiwatch.alerting.config import AlertSettings
from apiwatch.alerting.model import AlertNotice, AlertState
from apiwatch.alerting.rule_kinds import (
    ACTIONS,
    INBOUND_CATEGORY,
    RULE_OUTCOMES,
    Firing,
    Rule,
    fingerprint,
)
from apiwatch.alerting.rules_events import EventRules
from apiwatch.alerting.rules_inbound import InboundRecord, InboundWatch, Request
from apiwatch.alerting.rules_results import ResultRules
from apiwatch.alerting.windows import TimedWindow
from apiwatch.analysis.anomalies import AnomalyDetector
from apiwatch.analysis.failures import remediation_for
from apiwatch.domain import Outcome, Severity

AlertKey = tuple[str, str | None, str | None]  # (rule, provider, item)


class RuleEngine(ResultRules, EventRules):
    def __init__(
        self, settings: AlertSettings, *, categories: Mapping[str, str] | None = None
    ) -> None:
        self.categories = dict(categories or {})
        self._firing: dict[AlertKey, Firing] = {}
        # The firing alerts that end by time, by provider: every result looks at its own
        # provider's, not at every firing alert (thousands in a storm).
        self._expiring: dict[str | None, dict[AlertKey, None]] = {}
        self._latencies: dict[str, TimedWindow] = {}  # per provider: (time, latency s)
        self._evidence: dict[str, TimedWindow] = {}  # per provider: (time, outcome code)
        self._calm: dict[tuple[str, str], int] = {}  # ordinary latencies since an anomaly
        self._last_failure: dict[str, Outcome] = {}
        self.settings = settings
        self._detector = self._new_detector()
        self._inbound = InboundWatch(
            spike=settings.rules.inbound_usage_spike,
            unauthorized=settings.rules.inbound_unauthorized,
        )

    def update_settings(self, settings: AlertSettings) -> None:
        """New thresholds apply from the next observation; history is kept where it fits."""
        old = self.settings.rules.latency_anomaly
        self.settings = settings
        new = settings.rules.latency_anomaly
        self._inbound.spike = settings.rules.inbound_usage_spike
        self._inbound.unauthorized = settings.rules.inbound_unauthorized
        if (old.window, old.min_samples) != (new.window, new.min_samples):
            self._detector = self._new_detector()
        else:
            self._detector.threshold = new.z_threshold
            self._detector.slower_only = new.direction == "slower"
            self._detector.set_floors(
                min_stddev=new.min_stddev_ms, min_stddev_ratio=new.min_stddev_ratio
            )

    def _new_detector(self) -> AnomalyDetector:
        rule = self.settings.rules.latency_anomaly
        return AnomalyDetector(
            size=rule.window,
            min_samples=rule.min_samples,
            threshold=rule.z_threshold,
            slower_only=rule.direction == "slower",
            min_stddev=rule.min_stddev_ms,
            min_stddev_ratio=rule.min_stddev_ratio,
        )

    # -- views ------------------------------------------------------------------------------

    def active(self) -> list[AlertNotice]:
        return [f.notice for f in self._firing.values()]

    def anomaly_scores(self) -> dict[str, float]:
        """Latency anomaly score per provider (largest |z| of its endpoints' newest results)."""
        return self._detector.scores()

    # -- the state machine ------------------------------------------------------------------

    def _set(
        self,
        rule: str,
        provider: str | None,
        item: str | None,
        severity: Severity | None,
        *,
        now: datetime,
        message: str = "",
        outcome: Outcome | None = None,
        labels: Mapping[str, Any] | None = None,
        category: str | None = None,
        expires_at: datetime | None = None,
        resolved_message: str | None = None,
    ) -> list[AlertNotice]:
        key = (rule, provider, item)
        current = self._firing.get(key)
        if severity is None:
            if current is None:
                return []
            del self._firing[key]
            self._track_expiry(key, None)
            return [self._resolve(current.notice, now, resolved_message)]
        if current is not None and current.notice.severity is severity:
            current.expires_at = expires_at or current.expires_at
            self._track_expiry(key, current.expires_at)
            return []
        out = []
        if current is not None:
            out.append(self._resolve(current.notice, now, f"now {severity.value}: {message}"))
        outcome = outcome or RULE_OUTCOMES.get(rule)
        action = remediation_for(outcome) if outcome else ACTIONS.get(rule)
        all_labels = {**(labels or {}), **({"outcome": outcome.value} if outcome else {})}
        if item:
            all_labels.setdefault("item", item)
        notice = AlertNotice(
            rule=str(rule),
            severity=severity,
            state=AlertState.FIRING,
            message=message,
            fired_at=now,
            fingerprint=fingerprint(rule, provider, severity, item),
            provider=provider,
            category=category or (self.categories.get(provider) if provider else None),
            suggested_action=action,
            labels=all_labels,
        )
        self._firing[key] = Firing(notice, expires_at)
        self._track_expiry(key, expires_at)
        out.append(notice)
        return out

    def forget(
        self,
        provider: str,
        *,
        now: datetime,
        reason: str,
        also: Iterable[AlertNotice] = (),
    ) -> list[AlertNotice]:
        """Resolve the provider's firing alerts (`reason` says why) and drop everything kept
        for it: a provider removed or disabled gets no more results, so nothing else would
        ever resolve them, and they would be repeated for good. `also`: firing alerts held
        elsewhere (the policy's) that may not be keyed here, resolved too."""
        message = f"{provider}: {reason}"
        out = []
        for rule, _, item in [key for key in self._firing if key[1] == provider]:
            out += self._set(rule, provider, item, None, now=now, resolved_message=message)
        done = {notice.fingerprint for notice in out}
        out += [
            self._resolve(notice, now, message)
            for notice in also
            if notice.fingerprint not in done and notice.state is AlertState.FIRING
        ]
        self._latencies.pop(provider, None)
        self._evidence.pop(provider, None)
        self._last_failure.pop(provider, None)
        for key in [key for key in self._calm if key[0] == provider]:
            del self._calm[key]
        self._detector.forget(provider)
        return out

    def _track_expiry(self, key: AlertKey, expires_at: datetime | None) -> None:
        provider = key[1]
        if expires_at is not None:
            self._expiring.setdefault(provider, {})[key] = None
            return
        keys = self._expiring.get(provider)
        if keys is not None:
            keys.pop(key, None)
            if not keys:
                del self._expiring[provider]

    @staticmethod
    def _resolve(notice: AlertNotice, now: datetime, message: str | None) -> AlertNotice:
        return replace(
            notice,
            state=AlertState.RESOLVED,
            resolved_at=now,
            message=message or f"resolved: {notice.message}",
        )

    def restore(self, notice: AlertNotice, *, now: datetime) -> None:
        """Take back a firing alert from storage after a restart, so the condition clearing
        resolves it. Alerts resolved only by time get their expiry again: from `fired_at`
        (`auto_resolve_s`), or an hour from now for budget alerts whose window is unknown."""
        item = notice.labels.get("item")
        config = getattr(self.settings.rules, notice.rule, None)
        auto = getattr(config, "auto_resolve_s", None)
        expires: datetime | None = None
        if auto:
            expires = notice.fired_at + timedelta(seconds=auto)
        elif notice.rule in (Rule.RATE_LIMIT_WARNING, Rule.RATE_LIMIT_BLOCKED):
            expires = now + timedelta(hours=1)
        key = (notice.rule, notice.provider, item)
        self._firing[key] = Firing(notice, expires)
        self._track_expiry(key, expires)

    def tick(self, *, now: datetime) -> list[AlertNotice]:
        """Time-driven changes: expiring alerts, and inbound windows sliding on. Call it
        every few seconds (or with each inbound batch)."""
        return self._expire(now) + self._judge_inbound(now)

    def _expire(self, now: datetime, provider: str | None = None) -> list[AlertNotice]:
        out: list[AlertNotice] = []
        if provider is not None:
            keys = list(self._expiring.get(provider, ()))
        else:
            keys = [key for per_provider in self._expiring.values() for key in per_provider]
        for key in keys:
            firing = self._firing[key]
            if firing.expires_at is None or firing.expires_at > now:
                continue
            out += self._set(
                *key, None, now=now, resolved_message=f"cleared: {firing.notice.message}"
            )
        return out

    # -- probe results ----------------------------------------------------------------------

    def _severity(self, rule: str, provider: str | None, item: str | None) -> Severity | None:
        firing = self._firing.get((rule, provider, item))
        return firing.notice.severity if firing else None

    def on_inbound(self, records: Iterable[InboundRecord], *, now: datetime) -> list[AlertNotice]:
        """Feed a batch of inbound requests (any size, even empty) and judge every key and
        address seen: usage spikes per key, rejected requests per key or address."""
        self._inbound.add(records)
        return self._judge_inbound(now)

    def _judge_inbound(self, now: datetime) -> list[AlertNotice]:
        out: list[AlertNotice] = []
        for judged in self._inbound.judge(now):
            out += self._inbound_set(
                judged.rule, judged.subject, judged.level, now, judged.message, judged.labels
            )
        return out

    def _inbound_set(
        self,
        rule: str,
        subject: str,
        level: Severity | None,
        now: datetime,
        message: str,
        labels: Mapping[str, Any],
    ) -> list[AlertNotice]:
        return self._set(
            rule,
            None,
            subject,
            level,
            now=now,
            message=message,
            category=INBOUND_CATEGORY,
            labels={"subject": subject, **labels},
            resolved_message=f"back to normal: {message}",
        )

    def _inbound_event(
        self, kind: str, data: Mapping[str, Any], now: datetime
    ) -> list[AlertNotice]:
        """The same alerts from an inbound component that judges traffic itself:
        data = {subject, severity (absent or null to clear), message?}."""
        rule = getattr(self.settings.rules, kind)
        subject = str(data.get("subject") or data.get("key_id") or data.get("client") or "")
        if not rule.enabled or not subject:
            return []
        raw = data.get("severity")
        level = Severity(raw) if raw in tuple(Severity) else None
        message = str(data.get("message") or f"inbound API {subject}: {kind}")
        extra = {k: v for k, v in data.items() if k not in ("subject", "severity", "message")}
        return self._inbound_set(kind, subject, level, now, message, extra)


__all__ = ["InboundRecord", "Request", "Rule", "RuleEngine", "fingerprint"]

"""Alert rules: turn probe results, status changes, events and inbound traffic into alerts.

The engine keeps one state per (rule, provider, item) and reports transitions only: a
FIRING notice when a condition starts or changes severity (the old severity is RESOLVED in
the same breath, since severity is part of the fingerprint), a RESOLVED notice when it
clears, and nothing while it stays as it is. Dedup, grouping and silences are the policy's
business, not this module's. No clock: every call carries `now`.
"""

from __future__ import annotations

import statistics
from collections import Counter, deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from apiwatch.alerting.config import AlertSettings
from apiwatch.alerting.model import AlertNotice, AlertState
from apiwatch.alerting.rules_inbound import InboundRecord, InboundWatch, Request
from apiwatch.analysis.anomalies import AnomalyDetector
from apiwatch.analysis.failures import remediation_for
from apiwatch.domain import Outcome, ProbeResult, Severity, SkipReason, Status, StatusChange


class Rule(StrEnum):
    RESPONSE_TIME = "response_time"
    ERROR_RATE = "error_rate"
    LATENCY_ANOMALY = "latency_anomaly"
    PROVIDER_STATUS = "provider_status"
    RATE_LIMIT_WARNING = "rate_limit_warning"
    RATE_LIMIT_BLOCKED = "rate_limit_blocked"
    KEY_EXPIRED = "key_expired"
    BREAKER_OPEN = "breaker_open"
    DATA_STALE = "data_stale"
    DATA_DIVERGENT = "data_divergent"
    INBOUND_USAGE_SPIKE = "inbound_usage_spike"
    INBOUND_UNAUTHORIZED = "inbound_unauthorized"


INBOUND_CATEGORY = "inbound_api"

# The failure class behind each rule that has one; the remediation table says what to do.
RULE_OUTCOMES: dict[str, Outcome] = {
    Rule.RESPONSE_TIME: Outcome.SLOW,
    Rule.LATENCY_ANOMALY: Outcome.SLOW,
    Rule.RATE_LIMIT_WARNING: Outcome.RATE_LIMITED,
    Rule.RATE_LIMIT_BLOCKED: Outcome.RATE_LIMITED,
    Rule.KEY_EXPIRED: Outcome.AUTH_ERROR,
}

ACTIONS: dict[str, str] = {
    Rule.BREAKER_OPEN: (
        "apiwatch stopped probing this provider after repeated failures and tries again after "
        "the cooldown. Check the provider's status page and the last failures' reasons."
    ),
    Rule.DATA_STALE: (
        "The provider answers on time but serves old data. Check its status page; prefer "
        "another provider for this item until it catches up."
    ),
    Rule.DATA_DIVERGENT: (
        "This provider's value strays from the other providers' median. Check the item's "
        "mapping (symbol, unit, quote currency) and the provider's status."
    ),
    Rule.INBOUND_USAGE_SPIKE: (
        "A client calls the API far above its usual rate. Check who owns the key and whether "
        "the traffic is expected; lower its limit or revoke the key if not."
    ),
    Rule.INBOUND_UNAUTHORIZED: (
        "Repeated rejected requests: a client with a wrong or revoked key, or someone probing. "
        "Contact the key's owner, or block the address."
    ),
}

_KNOWN_OUTCOMES = sorted(Outcome, key=lambda o: -len(o.value))


@dataclass
class _Firing:
    notice: AlertNotice
    expires_at: datetime | None = None


def fingerprint(rule: str, provider: str | None, severity: Severity, item: str | None) -> str:
    base = f"{rule}:{provider or '-'}:{severity.value}"
    return f"{base}:{item}" if item else base


def _level(
    value: float, *, warning: float, critical: float, current: Severity | None, clear: float
) -> Severity | None:
    """Severity for `value`; a level already firing holds until value < threshold * clear,
    so a value hovering at a threshold does not flap."""
    if value > critical or (current is Severity.CRITICAL and value > critical * clear):
        return Severity.CRITICAL
    if value > warning or (current is not None and value > warning * clear):
        return Severity.WARNING
    return None


def _parse_time(value: Any) -> datetime | None:
    """An event's time (a datetime or ISO text); naive times are taken as UTC."""
    moment = value if isinstance(value, datetime) else None
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return None
    if moment is not None and moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment


class RuleEngine:
    def __init__(
        self, settings: AlertSettings, *, categories: Mapping[str, str] | None = None
    ) -> None:
        self.categories = dict(categories or {})
        self._firing: dict[tuple[str, str | None, str | None], _Firing] = {}
        self._latencies: dict[str, deque[tuple[datetime, float]]] = {}
        self._evidence: dict[str, deque[tuple[datetime, Outcome]]] = {}
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
            self._detector.min_stddev = new.min_stddev_ms
            self._detector.min_stddev_ratio = new.min_stddev_ratio

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
            return [self._resolve(current.notice, now, resolved_message)]
        if current is not None and current.notice.severity is severity:
            current.expires_at = expires_at or current.expires_at
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
        self._firing[key] = _Firing(notice, expires_at)
        out.append(notice)
        return out

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
        self._firing[(notice.rule, notice.provider, item)] = _Firing(notice, expires)

    def tick(self, *, now: datetime) -> list[AlertNotice]:
        """Time-driven changes: expiring alerts, and inbound windows sliding on. Call it
        every few seconds (or with each inbound batch)."""
        return self._expire(now) + self._judge_inbound(now)

    def _expire(self, now: datetime, provider: str | None = None) -> list[AlertNotice]:
        out: list[AlertNotice] = []
        for key, firing in list(self._firing.items()):
            if firing.expires_at is None or firing.expires_at > now:
                continue
            if provider is not None and key[1] != provider:
                continue
            out += self._set(
                *key, None, now=now, resolved_message=f"cleared: {firing.notice.message}"
            )
        return out

    # -- probe results ----------------------------------------------------------------------

    def on_result(self, result: ProbeResult, *, now: datetime) -> list[AlertNotice]:
        provider = result.provider
        out = self._expire(now, provider)
        rules = self.settings.rules
        if result.outcome is Outcome.SKIPPED:
            # Held back by the budget, or every key resting after 429s: either way the
            # provider's limits are stopping us.
            blocked = (
                result.reason.startswith(SkipReason.RATE_LIMIT_BUDGET.value)
                # A full per-second window empties itself within the second: no alert.
                and "(second window full)" not in result.reason
            ) or (
                result.reason.startswith(SkipReason.NO_KEY.value)
                and "rate_limited" in result.reason
            )
            if blocked and rules.rate_limit_blocked.enabled:
                out += self._set(
                    Rule.RATE_LIMIT_BLOCKED,
                    provider,
                    None,
                    rules.rate_limit_blocked.severity,
                    now=now,
                    message=f"{provider}: probes held back by its rate limits ({result.reason})",
                )
            return out
        # A probe went out, so the budget let it through.
        out += self._set(Rule.RATE_LIMIT_BLOCKED, provider, None, None, now=now)
        if result.outcome.is_success and result.key_label:
            env_name = result.key_label.split("=", 1)[0]
            out += self._set(Rule.KEY_EXPIRED, provider, env_name, None, now=now)
        if not result.final:
            return out
        if result.outcome.is_failure or result.outcome is Outcome.RATE_LIMITED:
            self._last_failure[provider] = result.outcome
        if rules.response_time.enabled:
            out += self._response_time(result, now)
        if rules.error_rate.enabled:
            out += self._error_rate(result, now)
        if rules.latency_anomaly.enabled:
            out += self._anomaly(result, now)
        return out

    def _response_time(self, result: ProbeResult, now: datetime) -> list[AlertNotice]:
        rule = self.settings.rules.response_time
        answered = result.outcome.is_success or result.outcome is Outcome.TIMEOUT
        window = self._latencies.setdefault(result.provider, deque(maxlen=rule.window_results))
        if window.maxlen != rule.window_results:
            window = self._latencies[result.provider] = deque(window, rule.window_results)
        if answered and result.latency_ms is not None:
            window.append((result.started_at, result.latency_ms / 1000))
        recent = [s for at, s in window if (now - at).total_seconds() <= rule.window_s]
        current = self._severity(Rule.RESPONSE_TIME, result.provider, None)
        if len(recent) < rule.min_samples and (current is None or not recent):
            return []  # a firing alert is judged on what there is (sparse checks)
        median = statistics.median(recent)
        level = _level(
            median,
            warning=rule.warning_s,
            critical=rule.critical_s,
            current=current,
            clear=rule.clear_ratio,
        )
        provider = result.provider
        return self._set(
            Rule.RESPONSE_TIME,
            provider,
            None,
            level,
            now=now,
            message=f"{provider}: median response time {median:.2f} s over the last "
            f"{len(recent)} results (warning > {rule.warning_s:g} s, "
            f"critical > {rule.critical_s:g} s)",
            labels={"value_s": round(median, 3)},
            resolved_message=f"{provider}: response time back to {median:.2f} s",
        )

    def _error_rate(self, result: ProbeResult, now: datetime) -> list[AlertNotice]:
        rule = self.settings.rules.error_rate
        window = self._evidence.setdefault(result.provider, deque(maxlen=rule.window_results))
        if window.maxlen != rule.window_results:
            window = self._evidence[result.provider] = deque(window, rule.window_results)
        window.append((result.started_at, result.outcome))
        recent = [o for at, o in window if (now - at).total_seconds() <= rule.max_age_s]
        current = self._severity(Rule.ERROR_RATE, result.provider, None)
        # Too few recent results to judge a new alert; a firing one is judged on what there
        # is, so sparse checks (a 10-minute schedule) still let it clear.
        if len(recent) < rule.min_samples and current is None:
            return []
        failed = Counter(o for o in recent if o.is_failure or o is Outcome.RATE_LIMITED)
        pct = 100.0 * sum(failed.values()) / len(recent)
        level = _level(
            pct,
            warning=rule.warning_pct,
            critical=rule.critical_pct,
            current=current,
            clear=rule.clear_ratio,
        )
        if current is None and level is not None and result.outcome.is_success:
            # The newest result is a success: the failures are behind us (e.g. a storm the
            # guard held back, counted only as it recovers). Do not open an alert now.
            return []
        provider = result.provider
        main = failed.most_common(1)[0][0] if failed else None
        mostly = f", mostly {main.value}" if main else ""
        return self._set(
            Rule.ERROR_RATE,
            provider,
            None,
            level,
            now=now,
            message=f"{provider}: error rate {pct:.0f}% over the last {len(recent)} results "
            f"({sum(failed.values())} failed{mostly})",
            outcome=main,
            labels={"value_pct": round(pct, 1)},
            resolved_message=f"{provider}: error rate back to {pct:.0f}%",
        )

    def _anomaly(self, result: ProbeResult, now: datetime) -> list[AlertNotice]:
        if not result.outcome.is_success or result.latency_ms is None:
            return []
        rule = self.settings.rules.latency_anomaly
        provider, endpoint = result.provider, result.endpoint
        judged = self._detector.observe(provider, endpoint, result.latency_ms)
        key = (provider, endpoint)
        if judged.z is None:
            return []
        if not judged.anomalous:
            if self._severity(Rule.LATENCY_ANOMALY, provider, endpoint) is None:
                return []
            self._calm[key] = self._calm.get(key, 0) + 1
            if self._calm[key] < rule.clear_after:
                return []
            self._calm.pop(key, None)
            return self._set(
                Rule.LATENCY_ANOMALY,
                provider,
                endpoint,
                None,
                now=now,
                resolved_message=f"{provider}/{endpoint}: latency back to usual "
                f"({result.latency_ms:.0f} ms)",
            )
        self._calm.pop(key, None)
        critical = rule.critical_z is not None and abs(judged.z) > rule.critical_z
        return self._set(
            Rule.LATENCY_ANOMALY,
            provider,
            endpoint,
            Severity.CRITICAL if critical else Severity.WARNING,
            now=now,
            message=f"{provider}/{endpoint}: latency {result.latency_ms:.0f} ms is "
            f"{judged.z:+.1f} standard deviations from the mean {judged.mean:.0f} ms of the "
            f"last {judged.samples} results",
            labels={"endpoint": endpoint, "z": round(judged.z, 2)},
        )

    def _severity(self, rule: str, provider: str | None, item: str | None) -> Severity | None:
        firing = self._firing.get((rule, provider, item))
        return firing.notice.severity if firing else None

    # -- status changes and events ----------------------------------------------------------

    def on_status_change(self, change: StatusChange) -> list[AlertNotice]:
        rule = self.settings.rules.provider_status
        if not rule.enabled or change.new is Status.UNKNOWN:
            return []
        severity = {Status.DEGRADED: rule.degraded, Status.OFFLINE: rule.offline}.get(change.new)
        return self._set(
            Rule.PROVIDER_STATUS,
            change.provider,
            None,
            severity,
            now=change.at,
            message=f"{change.provider} is {change.new.value}: {change.reason}",
            outcome=self._failure_class(change.provider, change.reason),
            labels={"status": change.new.value, "previous": change.old.value},
            resolved_message=f"{change.provider} is {change.new.value} again: {change.reason}",
        )

    def _failure_class(self, provider: str, reason: str) -> Outcome | None:
        for outcome in _KNOWN_OUTCOMES:
            if outcome.value in reason and outcome not in (Outcome.OK, Outcome.SKIPPED):
                return outcome
        return self._last_failure.get(provider)

    def on_event(
        self, kind: str, provider: str | None, data: Mapping[str, Any], *, now: datetime
    ) -> list[AlertNotice]:
        """An event from the bus by its kind (`runtime.EVENT_KINDS`); unknown kinds → []."""
        rules = self.settings.rules
        provider = provider or data.get("provider")
        out = self._expire(now, provider) if provider else []
        if kind == "rate_limit_warning" and rules.rate_limit_warning.enabled and provider:
            window = str(data.get("window") or "")
            reset = _parse_time(data.get("reset_at"))
            percent = float(data.get("percent") or 0)
            until = f"; resets {reset.isoformat(timespec='seconds')}" if reset else ""
            out += self._set(
                Rule.RATE_LIMIT_WARNING,
                provider,
                window or None,
                rules.rate_limit_warning.severity,
                now=now,
                message=f"{provider}: {percent:.0f}% of the {window or 'rate-limit'} budget "
                f"used ({data.get('used')}/{data.get('limit')}){until}",
                labels={"window": window, "percent": round(percent, 1)},
                expires_at=reset,
                resolved_message=f"{provider}: the {window} budget window has reset",
            )
        elif kind == "key_expired" and rules.key_expired.enabled and provider:
            env_name = str(data.get("env_name") or "key")
            masked = data.get("masked") or ""
            out += self._set(
                Rule.KEY_EXPIRED,
                provider,
                env_name,
                rules.key_expired.severity,
                now=now,
                message=f"{provider}: key {env_name} ({masked}) was rejected by the provider",
                resolved_message=f"{provider}: key {env_name} works again",
            )
        elif kind == "breaker_transition" and rules.breaker_open.enabled and provider:
            out += self._breaker(provider, data, now)
        elif kind in ("data_stale", "data_divergent") and provider:
            out += self._data(kind, provider, data, now)
        elif kind in ("inbound_usage_spike", "inbound_unauthorized"):
            out += self._inbound_event(kind, data, now)
        return out

    def _breaker(self, provider: str, data: Mapping[str, Any], now: datetime) -> list[AlertNotice]:
        to = str(data.get("to") or data.get("new") or "")
        if to == "half_open":
            return []  # still not trusted: the open alert stands until the trial succeeds
        severity = self.settings.rules.breaker_open.severity if to == "open" else None
        last = self._last_failure.get(provider)
        return self._set(
            Rule.BREAKER_OPEN,
            provider,
            None,
            severity,
            now=now,
            message=f"{provider}: circuit breaker open ({data.get('reason') or 'failures'}); "
            "probes paused until the cooldown ends",
            outcome=last if last is not None and last.is_failure else None,
            resolved_message=f"{provider}: circuit breaker closed again",
        )

    def _data(
        self, kind: str, provider: str, data: Mapping[str, Any], now: datetime
    ) -> list[AlertNotice]:
        rule = getattr(self.settings.rules, kind)
        if not rule.enabled:
            return []
        item = str(data.get("item") or "") or None
        if data.get("cleared"):
            return self._set(
                kind,
                provider,
                item,
                None,
                now=now,
                resolved_message=f"{provider}: {item} data is "
                + ("fresh again" if kind == "data_stale" else "back with the others"),
            )
        if kind == "data_stale":
            message = (
                f"{provider}: {item} data is {float(data.get('age_s') or 0):.0f} s old "
                f"(TTL {float(data.get('ttl_s') or 0):.0f} s)"
            )
        else:
            message = (
                f"{provider}: {item} = {data.get('value')} is "
                f"{float(data.get('deviation_pct') or 0):.2f}% from the median "
                f"{data.get('median')} (threshold {data.get('threshold_pct')}%)"
            )
        at = _parse_time(data.get("at")) or now
        expires = at + timedelta(seconds=rule.auto_resolve_s) if rule.auto_resolve_s else None
        return self._set(
            kind,
            provider,
            item,
            rule.severity,
            now=now,
            message=message,
            category=data.get("category"),
            expires_at=expires,
        )

    # -- the product's own API --------------------------------------------------------------

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

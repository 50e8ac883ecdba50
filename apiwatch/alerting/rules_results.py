"""Rules over probe results: budget blocks, expired keys, response time, error rate and
latency anomalies. Mixed into `RuleEngine`, which owns the state machine (`_set`)."""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Callable
from datetime import datetime

from apiwatch.alerting.config import AlertSettings
from apiwatch.alerting.model import AlertNotice
from apiwatch.alerting.rule_kinds import Rule, level_for
from apiwatch.alerting.windows import TimedWindow
from apiwatch.analysis.anomalies import AnomalyDetector
from apiwatch.domain import FAILURE_OUTCOMES, Outcome, ProbeResult, Severity, SkipReason

# What the error-rate rule counts: failures, and answers that say "too many requests".
_COUNTED_AS_ERRORS = FAILURE_OUTCOMES | {Outcome.RATE_LIMITED}
# Outcomes kept in a window of numbers: each by its place in the enum, negated (minus one)
# when it is not counted as an error, so "no error in the window" is one `max() < 0`.
_OUTCOMES = tuple(Outcome)
_OUTCOME_CODE = {
    outcome: float(code) if outcome in _COUNTED_AS_ERRORS else -1.0 - code
    for code, outcome in enumerate(_OUTCOMES)
}


def _outcome(code: float) -> Outcome:
    return _OUTCOMES[int(code) if code >= 0 else int(-1.0 - code)]


class ResultRules:
    settings: AlertSettings
    _detector: AnomalyDetector
    _latencies: dict[str, TimedWindow]
    _evidence: dict[str, TimedWindow]
    _calm: dict[tuple[str, str], int]
    _last_failure: dict[str, Outcome]
    _set: Callable[..., list[AlertNotice]]
    _expire: Callable[..., list[AlertNotice]]
    _severity: Callable[..., Severity | None]

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
        window = self._latencies.get(result.provider)
        if window is None:
            window = self._latencies[result.provider] = TimedWindow(rule.window_results)
        elif window.size != rule.window_results:
            window = self._latencies[result.provider] = window.resized(rule.window_results)
        if answered and result.latency_ms is not None:
            window.append(result.started_at.timestamp(), result.latency_ms / 1000)
        # Judged for every result: one cut-off time, compared, rather than an age per entry.
        recent = window.since(now.timestamp() - rule.window_s)
        current = self._severity(Rule.RESPONSE_TIME, result.provider, None)
        if len(recent) < rule.min_samples and (current is None or not recent):
            return []  # a firing alert is judged on what there is (sparse checks)
        median = statistics.median(recent)
        level = level_for(
            median,
            warning=rule.warning_s,
            critical=rule.critical_s,
            current=current,
            clear=rule.clear_ratio,
        )
        if level is None and current is None:
            return []  # fast and nothing firing: the common case, without building messages
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
        window = self._evidence.get(result.provider)
        if window is None:
            window = self._evidence[result.provider] = TimedWindow(rule.window_results)
        elif window.size != rule.window_results:
            window = self._evidence[result.provider] = window.resized(rule.window_results)
        window.append(result.started_at.timestamp(), _OUTCOME_CODE[result.outcome])
        current = self._severity(Rule.ERROR_RATE, result.provider, None)
        if current is None and window.largest() < 0:
            return []  # no error in the window and nothing firing: decided without a list
        recent = [_outcome(code) for code in window.since(now.timestamp() - rule.max_age_s)]
        # Too few recent results to judge a new alert; a firing one is judged on what there
        # is, so sparse checks (a 10-minute schedule) still let it clear.
        if len(recent) < rule.min_samples and current is None:
            return []
        failures = [o for o in recent if o in _COUNTED_AS_ERRORS]
        if not failures and current is None:
            return []  # nothing failed and nothing fires: the common case, decided here
        failed = Counter(failures)
        pct = 100.0 * len(failures) / len(recent)
        level = level_for(
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

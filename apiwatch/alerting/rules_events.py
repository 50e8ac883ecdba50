"""Rules over status changes and bus events: provider status, budget warnings and blocks,
expired keys, open breakers, stale and divergent data, failed order-book integrity checks,
error-budget burn rates, TLS certificates. Mixed into `RuleEngine`, which owns the state
machine (`_set`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from apiwatch.alerting.config import AlertSettings
from apiwatch.alerting.model import AlertNotice
from apiwatch.alerting.rule_kinds import KNOWN_OUTCOMES, Rule, parse_time
from apiwatch.analysis.slo import BurnCondition, describe_span, judge_burn
from apiwatch.domain import BudgetBurn, Outcome, Severity, Status, StatusChange


class EventRules:
    settings: AlertSettings
    _last_failure: dict[str, Outcome]
    _set: Callable[..., list[AlertNotice]]
    _inbound_event: Callable[..., list[AlertNotice]]

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

    def burn_conditions(self) -> list[BurnCondition]:
        """The burn-rate conditions of the settings, as `analysis.slo` judges them."""
        return [
            BurnCondition(
                c.name,
                timedelta(seconds=c.long_s),
                timedelta(seconds=c.short_s),
                c.factor,
                c.severity,
            )
            for c in self.settings.rules.slo_burn.conditions
        ]

    def on_budget_burn(self, burn: BudgetBurn) -> list[AlertNotice]:
        """Fire the most severe burn-rate condition that holds; resolve when none does
        (a change of condition at the same severity keeps the alert as it is)."""
        rule = self.settings.rules.slo_burn
        if not rule.enabled:
            return []
        rates = {timedelta(seconds=s): rate for s, rate in burn.burn_rates.items()}
        held = judge_burn(rates, self.burn_conditions())
        provider = burn.provider
        if held is None:
            return self._set(
                Rule.SLO_BURN,
                provider,
                None,
                None,
                now=burn.at,
                resolved_message=f"{provider}: error budget no longer burning fast",
            )
        long_rate, short_rate = rates.get(held.long) or 0.0, rates.get(held.short) or 0.0
        long_name, short_name = describe_span(held.long), describe_span(held.short)
        return self._set(
            Rule.SLO_BURN,
            provider,
            None,
            held.severity,
            now=burn.at,
            message=f"{provider}: error budget burning {long_rate:.1f}x over {long_name} and "
            f"{short_rate:.1f}x over {short_name} (condition {held.name}: at least "
            f"{held.factor:g}x; objective {100 * burn.target:g}%)",
            labels={
                "condition": held.name,
                "burn_long": round(long_rate, 3),
                "burn_short": round(short_rate, 3),
                "long": long_name,
                "short": short_name,
            },
        )

    def _failure_class(self, provider: str, reason: str) -> Outcome | None:
        for outcome in KNOWN_OUTCOMES:
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
            reset = parse_time(data.get("reset_at"))
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
        elif kind == "book_integrity" and rules.book_integrity.enabled and provider:
            out += self._book(provider, data, now)
        elif kind in ("inbound_usage_spike", "inbound_unauthorized"):
            out += self._inbound_event(kind, data, now)
        elif kind == "dependency_change" and rules.apiwatch_dependency_down.enabled:
            out += self._dependency(data, now)
        elif kind == "tls_certificate" and rules.tls_certificate.enabled and provider:
            out += self._certificate(provider, data, now)
        return out

    def _certificate(
        self, provider: str, data: Mapping[str, Any], now: datetime
    ) -> list[AlertNotice]:
        """One alert per provider and host: the worse of "does not verify" and "expires
        soon"; resolved by a reading that is neither (a renewed certificate)."""
        rule = self.settings.rules.tls_certificate
        host = f"{data.get('host')}:{data.get('port')}"
        expires = parse_time(data.get("chain_not_after")) or parse_time(data.get("not_after"))
        days = None if expires is None else (expires - now).total_seconds() / 86400
        until = expires.isoformat(timespec="minutes") if expires else "unknown"
        labels: dict[str, Any] = {"host": host, "expires_at": until}
        if days is not None:
            labels["days_left"] = round(days, 1)
        severity: Severity | None = None
        level = rule.level(verified=bool(data.get("verified")), days_left=days)
        if level == "invalid":
            severity = rule.invalid
            what = (
                "does not cover the host name"
                if data.get("host_matches") is False
                else "does not verify"
            )
            message = f"{provider}: the TLS certificate of {host} {what}: {data.get('error')}"
        elif level in ("warning", "critical"):
            severity = Severity(level)
            message = (
                f"{provider}: the TLS certificate chain of {host} expires in {days:.1f} days "
                f"({until})"
            )
        else:
            message = ""
        return self._set(
            Rule.TLS_CERTIFICATE,
            provider,
            host,
            severity,
            now=now,
            message=message,
            labels=labels,
            resolved_message=f"{provider}: {host} presents a valid certificate until {until}",
        )

    def _dependency(self, data: Mapping[str, Any], now: datetime) -> list[AlertNotice]:
        name = str(data.get("dependency") or "dependency")
        down = not data.get("ok")
        fallback = f"; meanwhile {data['fallback']}" if data.get("fallback") else ""
        return self._set(
            Rule.APIWATCH_DEPENDENCY_DOWN,
            None,
            name,
            self.settings.rules.apiwatch_dependency_down.severity if down else None,
            now=now,
            message=f"apiwatch: {name} unavailable ({data.get('reason') or 'unknown'}){fallback}",
            category="apiwatch",
            labels={"dependency": name},
            resolved_message=f"apiwatch: {name} {data.get('reason') or 'available again'}",
        )

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
        at = parse_time(data.get("at")) or now
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

    def _book(self, provider: str, data: Mapping[str, Any], now: datetime) -> list[AlertNotice]:
        """One alert per venue, book and check; the reason names the check."""
        rule = self.settings.rules.book_integrity
        item, check = str(data.get("item") or ""), str(data.get("check") or "")
        subject = f"{item}:{check}" if check else item or None
        if data.get("cleared"):
            return self._set(
                Rule.BOOK_INTEGRITY,
                provider,
                subject,
                None,
                now=now,
                resolved_message=f"{provider}: {item} passes the {check} check again",
            )
        at = parse_time(data.get("at")) or now
        expires = at + timedelta(seconds=rule.auto_resolve_s) if rule.auto_resolve_s else None
        return self._set(
            Rule.BOOK_INTEGRITY,
            provider,
            subject,
            rule.severity,
            now=now,
            message=f"{provider}: {item} {data.get('reason') or check}",
            # The failure class is invalid_payload, but the rule's own action says more
            # than the generic one for that outcome, so it is a label, not `outcome`.
            labels={"check": check, "item": item, "outcome": Outcome.INVALID_PAYLOAD.value},
            category="market_data",
            expires_at=expires,
        )

    # -- the product's own API --------------------------------------------------------------

"""Rule-based triage of a batch of alerts: how loud to be, whether a person must act, what
to do, and a short incident report. Always available; the LLM's report (`llm.py`) is an
optional extra on top of it, never a replacement.

The failure class of an alert is its `outcome` label (set by the rules), else the class
its rule implies; the remediation table (`analysis.failures`) says what to do about it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from apiwatch.alerting.model import AlertNotice, AlertState
from apiwatch.alerting.rules import RULE_OUTCOMES, Rule
from apiwatch.analysis.failures import remediation_for
from apiwatch.domain import Outcome, Severity

Escalation = Literal["none", "low", "high", "page"]

# Classes no retry or backoff will fix: a key, a request or a payload must change.
HUMAN_CLASSES = frozenset({Outcome.AUTH_ERROR, Outcome.CLIENT_ERROR, Outcome.INVALID_PAYLOAD})
HUMAN_RULES = frozenset({Rule.KEY_EXPIRED, Rule.INBOUND_UNAUTHORIZED, Rule.DATA_DIVERGENT})
DOWN_RULES = frozenset({Rule.BREAKER_OPEN})
NETWORK_CLASSES = frozenset({Outcome.TIMEOUT, Outcome.CONNECTION_ERROR})
# This many providers failing the same way at once points at our side, not theirs.
WIDESPREAD = 3
MAX_LISTED = 5

NETWORK_ACTION = (
    "Several providers fail to connect at once, which points at this host rather than them: "
    "check its network, DNS, proxy and firewall first."
)


@dataclass(frozen=True, slots=True)
class Triage:
    escalation: Escalation
    needs_human: bool
    suggested_action: str
    report: str
    failure_class: str | None = None


def failure_class(notice: AlertNotice) -> Outcome | None:
    label = notice.labels.get("outcome")
    if label in tuple(Outcome):
        return Outcome(label)
    return RULE_OUTCOMES.get(notice.rule)


def triage(notices: Sequence[AlertNotice], *, statuses: Mapping[str, str] | None = None) -> Triage:
    """Judge a batch (typically one notification's alerts, or one group's)."""
    statuses = statuses or {}
    firing = [n for n in notices if n.state is AlertState.FIRING]
    if not firing:
        return _resolved(notices)
    critical = [n for n in firing if n.severity is Severity.CRITICAL]
    warning = [n for n in firing if n.severity is Severity.WARNING]
    providers = sorted({n.provider for n in firing if n.provider})
    classes = Counter(c for n in firing if (c := failure_class(n)) is not None)
    main = classes.most_common(1)[0][0] if classes else None
    network_down = {
        n.provider for n in firing if n.provider and failure_class(n) in NETWORK_CLASSES
    }
    widespread = len(network_down) >= WIDESPREAD

    human = any(failure_class(n) in HUMAN_CLASSES or n.rule in HUMAN_RULES for n in firing)
    down = any(
        statuses.get(n.provider or "") == "offline"
        or n.rule in DOWN_RULES
        or n.labels.get("status") == "offline"
        for n in critical
    )
    critical_providers = {n.provider for n in critical if n.provider}
    escalation: Escalation
    if critical and (human or down or widespread or len(critical_providers) >= WIDESPREAD):
        escalation = "page"
    elif critical or (warning and human) or len(providers) >= WIDESPREAD:
        escalation = "high"
    elif warning:
        escalation = "low"
    else:
        escalation = "none"
    needs_human = escalation == "page" or human

    if widespread:
        action = NETWORK_ACTION
    elif main is not None:
        action = remediation_for(main)
    else:
        action = next((n.suggested_action for n in firing if n.suggested_action), "")
    report = _report(
        firing,
        critical=len(critical),
        warning=len(warning),
        providers=providers,
        main=main,
        widespread=widespread,
        action=action,
        escalation=escalation,
        needs_human=needs_human,
    )
    return Triage(escalation, needs_human, action, report, main.value if main else None)


def _report(
    firing: Sequence[AlertNotice],
    *,
    critical: int,
    warning: int,
    providers: Sequence[str],
    main: Outcome | None,
    widespread: bool,
    action: str,
    escalation: Escalation,
    needs_human: bool,
) -> str:
    counts = (
        ", ".join(
            f"{n} {label}" for n, label in ((critical, "critical"), (warning, "warning")) if n
        )
        or f"{len(firing)} info"
    )
    where = ", ".join(providers) if providers else "apiwatch itself"
    rules = ", ".join(sorted({n.rule for n in firing}))
    if widespread:
        cause = "connection failures at several providers at once (likely our network)"
    elif main is not None:
        cause = main.value.replace("_", " ")
    else:
        cause = "see the alerts below"
    lines = [
        f"What: {counts} alert{'s' if len(firing) > 1 else ''} on {where} ({rules}).",
        f"Likely cause: {cause}.",
        f"What to do: {action}" if action else "What to do: look at the alerts below.",
        f"Escalation: {escalation}; needs a human: {'yes' if needs_human else 'no'}.",
    ]
    ordered = sorted(firing, key=lambda n: n.severity is not Severity.CRITICAL)
    lines += [f"- [{n.severity.value}] {n.message}" for n in ordered[:MAX_LISTED]]
    if len(firing) > MAX_LISTED:
        lines.append(f"- … and {len(firing) - MAX_LISTED} more")
    return "\n".join(lines)


def _resolved(notices: Sequence[AlertNotice]) -> Triage:
    if not notices:
        return Triage("none", False, "", "No alerts.")
    where = ", ".join(sorted({n.provider or n.category or "apiwatch" for n in notices}))
    lines = [f"Resolved: {len(notices)} alert{'s' if len(notices) > 1 else ''} on {where}."]
    lines += [f"- {n.message}" for n in notices[:MAX_LISTED]]
    return Triage("none", False, "Nothing to do: the condition has cleared.", "\n".join(lines))

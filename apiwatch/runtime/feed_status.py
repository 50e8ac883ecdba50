"""The overall status of the providers as `GET /api/status` and the live feed's
`status_update` both show it (one builder, so the two cannot drift apart), and what an API
process that probes nothing adopts from the workers over the Redis relay: their status
changes and their latest result per provider."""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Any

from apiwatch.analysis.status import health_score, status_counts
from apiwatch.domain import Outcome, ProbeResult, Status
from apiwatch.runtime import locations
from apiwatch.runtime.feed_messages import NEW_LOG_ENTRY, PROVIDER_STATUS_CHANGE, Message

if TYPE_CHECKING:
    from apiwatch.runtime.core import Runtime


def overall_status(runtime: Runtime) -> dict[str, Any]:
    """The body of `GET /api/status`: counts by status, health score, when the newest
    check started, and whether apiwatch is degraded and why. Answered from memory, so it
    still tells the truth while the database is away."""
    enabled = [spec.id for spec in runtime.catalogue.enabled()]
    states = runtime.tracker.states()
    statuses = [states[pid].status for pid in enabled]
    reasons = runtime.degraded_reasons()
    return {
        "counts": status_counts(statuses),
        "providers_total": len(runtime.catalogue.providers),
        "providers_enabled": len(enabled),
        "health_score": health_score(statuses),
        "last_check_at": runtime.last_check_at,
        "state": "degraded" if reasons else "ok",
        "degraded_reasons": reasons,
        "dependencies": {name: dep.as_dict() for name, dep in runtime.dependencies.items()},
    }


async def status_snapshot(runtime: Runtime) -> dict[str, object]:
    """What `GET /api/status` returns, plus each enabled provider's status and last
    result (the live feed's `status_update`; no history, so it stays small)."""
    overall = overall_status(runtime)
    states = runtime.tracker.states()
    providers = []
    for spec in runtime.catalogue.enabled():
        state = states[spec.id]
        last = state.last_result
        providers.append(
            {
                "id": spec.id,
                "status": state.status.value,
                "reason": state.reason,
                "changed_at": state.changed_at,
                "last_outcome": None if last is None else last.outcome.value,
                "last_latency_ms": (
                    None if last is None or last.latency_ms is None else round(last.latency_ms, 2)
                ),
                "last_check_at": None if last is None else last.started_at,
            }
        )
    counts = {status.value: n for status, n in overall["counts"].items()}
    return {**overall, "counts": counts, "providers": providers}


def adopt_remote(runtime: Runtime, msg: Message) -> None:
    """What this process takes from another's feed messages.

    A process that probes nothing takes the other's status changes as its status of the
    provider, and its final results as the provider's latest, so that its API and feed
    stay current: shown, never judged, the status being the one the probing process
    derived and announced. Every process judges the results of other locations
    (`runtime.locations`), so each combines the same per-location statuses."""
    probes = runtime.settings.role != "api"
    if msg.type == PROVIDER_STATUS_CHANGE and not probes:
        data = json.loads(msg.text)["data"]
        if data.get("provider") in runtime.catalogue.providers:
            runtime.tracker.restore(
                data["provider"],
                status=Status(data["to"]),
                reason=str(data.get("reason", "")),
                at=datetime.fromisoformat(data["at"]),
            )
    elif msg.type == NEW_LOG_ENTRY:
        if probes and '"location":""' in msg.text:
            return  # nothing for a prober without locations: spare it the parsing
        result = _result(json.loads(msg.text)["data"])
        if result is None or result.provider not in runtime.catalogue.providers:
            return
        if not probes and (
            runtime.last_check_at is None or result.started_at > runtime.last_check_at
        ):
            runtime.last_check_at = result.started_at
        if not result.final:  # as `Runtime.handle`: an at-once retry is not the check's result
            return
        if result.location:
            locations.judge_remote(runtime, result)
        elif not probes:
            runtime.tracker.note(result)


def _result(data: dict[str, Any]) -> ProbeResult | None:
    """The result a `new_log_entry` describes, or None if it is not one (another version's
    message, say): a bad message from Redis must not stop the relay."""
    try:
        return ProbeResult(
            provider=str(data["provider"]),
            endpoint=str(data["endpoint"]),
            outcome=Outcome(data["outcome"]),
            started_at=datetime.fromisoformat(data["started_at"]),
            latency_ms=data.get("latency_ms"),
            status_code=data.get("status_code"),
            reason=str(data.get("reason") or ""),
            attempt=int(data.get("attempt") or 1),
            final=bool(data.get("final", True)),
            location=str(data.get("location") or ""),
        )
    except (KeyError, TypeError, ValueError):
        return None

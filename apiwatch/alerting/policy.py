"""Against storms: dedup, silences, acknowledge and grouping of alerts into notifications.

Every submitted notice gets a `Decision` with a named reason (docs/alerting.md):
- a new alert is queued (`first_notification`, or `new_alerts_in_group` when its group was
  notified less than `group_interval_s` ago), unless a silence mutes it (`silenced`) or a
  maintenance window holds it (`maintenance`; a silence wins when both match);
- the same alert again while active is held (`duplicate_within_window`) until the dedup
  window has passed since it was sent, then sent again (`repeat_interval_elapsed`), unless
  it was acknowledged (`acknowledged`); still-active alerts are also re-sent on their own
  every `repeat_interval_s`;
- a resolve is sent (`resolved`) only for an alert that was sent; one resolved before it
  went out (still batched, silenced, in maintenance) is dropped along with its firing notice;
- an alert held by a silence or a maintenance window that still fires when it ends is
  judged as new at the next flush, and sent as usual.

Queued notices wait in batches per (provider, severity, state): `flush` releases a batch
once it is `group_window_s` old or `max_batch` full, and a group notified less than
`group_interval_s` ago collects new alerts until then. So a storm of any size costs at most
one notification per provider and severity per group interval (plus its resolves). A
notification carries at most `max_batch` alerts; the rest wait for the next round.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta

from apiwatch.alerting.batches import (
    ActiveAlert,
    Batch,
    Decision,
    PendingBatch,
    batch_title,
    group_key,
)
from apiwatch.alerting.config import AlertSettings
from apiwatch.alerting.maintenance import MaintenanceSet
from apiwatch.alerting.model import AlertNotice, AlertState, DecisionReason, Notification
from apiwatch.alerting.silences import SilenceSet

_SECOND = timedelta(seconds=1)


class AlertPolicy:
    def __init__(
        self,
        settings: AlertSettings,
        *,
        clock: Callable[[], datetime],
        silences: SilenceSet | None = None,
        maintenance: MaintenanceSet | None = None,
    ) -> None:
        self.settings = settings
        self.silences = silences if silences is not None else SilenceSet()
        self.maintenance = maintenance if maintenance is not None else MaintenanceSet()
        self._clock = clock
        self._active: dict[str, ActiveAlert] = {}
        self._batches: dict[tuple[str, AlertState], Batch] = {}
        # When each group last had a firing notification; only read within
        # `group_interval_s`, so older entries are pruned (`_forget_old_groups`): a provider
        # that alerted once would otherwise be kept for good, tens of thousands of entries
        # over hours at 10,000 providers.
        self._notified: dict[str, datetime] = {}
        self._next_prune: datetime | None = None
        self._held: set[str] = set()  # silenced or in maintenance, never sent: sent after
        self._repeats: list[tuple[datetime, str]] = []  # (due, fingerprint), a heap
        self._ids: dict[str, int] = {}

    def update_settings(self, settings: AlertSettings) -> None:
        self.settings = settings
        # A sweep under the new interval at the next flush. A group forgotten under a
        # shorter interval before the change stays forgotten.
        self._next_prune = None

    # -- views ------------------------------------------------------------------------------

    def active(self) -> list[ActiveAlert]:
        return sorted(self._active.values(), key=lambda a: a.first_seen)

    def get(self, ref: str | int) -> ActiveAlert | None:
        """An active alert by fingerprint or by its stored id."""
        if isinstance(ref, str):
            return self._active.get(ref)
        for fingerprint, alert_id in self._ids.items():
            if alert_id == ref:
                return self._active.get(fingerprint)
        return None

    def pending(self) -> list[PendingBatch]:
        return [
            PendingBatch(
                b.group_key,
                b.state,
                b.severity,
                b.provider,
                len(b.alerts),
                b.opened_at,
                self._due(b),
            )
            for b in self._batches.values()
        ]

    # -- input ------------------------------------------------------------------------------

    def bind(self, fingerprint: str, alert_id: int | None) -> None:
        """Remember the stored id of an alert, so its notifications carry it (only while the
        policy still knows the alert: ids of finished alerts would pile up)."""
        if alert_id is None:
            return
        waiting = any(
            fingerprint in batch.alerts
            for (_, state), batch in self._batches.items()
            if state is AlertState.RESOLVED
        )
        if fingerprint in self._active or waiting:
            self._ids[fingerprint] = alert_id

    def restore(
        self, notice: AlertNotice, *, sent_at: datetime | None, acked: bool | str = False
    ) -> None:
        """Take back a firing alert from storage after a restart, without sending it."""
        now = self._clock()
        entry = ActiveAlert(
            notice,
            first_seen=notice.fired_at,
            reason=DecisionReason.FIRST_NOTIFICATION,
            sent_at=sent_at,
            notifications=1 if sent_at else 0,
        )
        if acked:
            entry.acknowledged_by = acked if isinstance(acked, str) else "unknown"
            entry.acknowledged_at = now
        self._active[notice.fingerprint] = entry
        self.bind(notice.fingerprint, notice.alert_id)
        if sent_at is not None:
            self._schedule_repeat(entry)
        elif not acked:
            # Held back before the restart (a silence, maintenance); re-judged at next flush.
            self._held.add(notice.fingerprint)

    def submit(self, notice: AlertNotice) -> Decision:
        now = self._clock()
        key = group_key(notice)
        if notice.state is AlertState.RESOLVED:
            decision = self._resolve(notice, key)
            self.bind(notice.fingerprint, notice.alert_id)
            return decision
        entry = self._active.get(notice.fingerprint)
        if entry is None:
            entry = ActiveAlert(notice, first_seen=now, reason=DecisionReason.FIRST_NOTIFICATION)
            self._active[notice.fingerprint] = entry
            self.bind(notice.fingerprint, notice.alert_id)
            return self._judge_new(entry, key, now)
        # Keep the newest wording, but the time it first fired.
        entry.notice = replace(notice, fired_at=entry.notice.fired_at)
        if entry.acknowledged_at is not None:
            return self._hold(entry, DecisionReason.ACKNOWLEDGED, key)
        if entry.sent_at is None and not entry.queued:
            return self._judge_new(entry, key, now)
        if (held := self._held_by(entry, now)) is not None:
            return self._hold(entry, held, key)
        if entry.queued:
            batch = self._batches.get((key, AlertState.FIRING))
            if batch is not None and notice.fingerprint in batch.alerts:
                batch.alerts[notice.fingerprint] = entry.notice
            return self._hold(entry, DecisionReason.DUPLICATE_WITHIN_WINDOW, key)
        assert entry.sent_at is not None
        if now - entry.sent_at < timedelta(seconds=self.settings.dedup_window_s):
            return self._hold(entry, DecisionReason.DUPLICATE_WITHIN_WINDOW, key)
        self._enqueue(entry.notice, key, now, repeat=True)
        entry.queued = True
        entry.reason = DecisionReason.REPEAT_INTERVAL_ELAPSED
        return Decision(True, entry.reason, key)

    def _judge_new(self, entry: ActiveAlert, key: str, now: datetime) -> Decision:
        if (held := self._held_by(entry, now)) is not None:
            self._held.add(entry.fingerprint)
            return self._hold(entry, held, key)
        self._held.discard(entry.fingerprint)
        entry.reason = self._enqueue(entry.notice, key, now)
        entry.queued = True
        return Decision(True, entry.reason, key)

    def _held_by(self, entry: ActiveAlert, now: datetime) -> DecisionReason | None:
        """`silenced` or `maintenance` when a silence or a window holds the alert at `now`."""
        silence = self.silences.matching(entry.notice, now)
        entry.silenced_by = silence.id if silence is not None else None
        window = None if silence is not None else self.maintenance.matching(entry.notice, now)
        entry.maintenance_id = window.id if window is not None else None
        if silence is not None:
            return DecisionReason.SILENCED
        return DecisionReason.MAINTENANCE if window is not None else None

    @staticmethod
    def _hold(entry: ActiveAlert, reason: DecisionReason, key: str) -> Decision:
        entry.reason = reason
        return Decision(False, reason, key)

    def _resolve(self, notice: AlertNotice, key: str) -> Decision:
        now = self._clock()
        entry = self._active.pop(notice.fingerprint, None)
        self._held.discard(notice.fingerprint)
        if entry is None:
            return Decision(False, DecisionReason.RESOLVED, key)
        if entry.queued:
            self._unqueue(notice.fingerprint, key)
        if entry.sent_at is None:
            self._ids.pop(notice.fingerprint, None)
            # Never reached anyone (silenced, in maintenance, or resolved within its group
            # window): a resolve would be news about nothing.
            reason = DecisionReason.RESOLVED
            if entry.silenced_by is not None:
                reason = DecisionReason.SILENCED
            elif entry.maintenance_id is not None:
                reason = DecisionReason.MAINTENANCE
            return Decision(False, reason, key)
        self._enqueue(notice, key, now)
        return Decision(True, DecisionReason.RESOLVED, key)

    def acknowledge(
        self, ref: str | int, *, by: str, now: datetime | None = None
    ) -> ActiveAlert | None:
        """Stop an active alert from repeating; `ref` is its fingerprint or stored id."""
        entry = self.get(ref)
        if entry is None:
            return None
        entry.acknowledged_by = by
        entry.acknowledged_at = now or self._clock()
        entry.reason = DecisionReason.ACKNOWLEDGED
        self._held.discard(entry.fingerprint)
        if entry.queued:
            self._unqueue(entry.fingerprint, group_key(entry.notice))
            entry.queued = False
        return entry

    # -- batching ---------------------------------------------------------------------------

    def _enqueue(
        self, notice: AlertNotice, key: str, now: datetime, *, repeat: bool = False
    ) -> DecisionReason:
        state = notice.state
        batch = self._batches.get((key, state))
        if batch is None:
            batch = self._batches[(key, state)] = Batch(
                group_key=key,
                state=state,
                severity=notice.severity,
                provider=notice.provider,
                category=notice.category,
                opened_at=now,
                reason=self._group_reason(key, state, now),
            )
        batch.alerts[notice.fingerprint] = notice
        if repeat:
            batch.repeats.add(notice.fingerprint)
            return DecisionReason.REPEAT_INTERVAL_ELAPSED
        if state is AlertState.RESOLVED:
            return DecisionReason.RESOLVED
        return batch.reason

    def _group_reason(self, key: str, state: AlertState, now: datetime) -> DecisionReason:
        if state is AlertState.RESOLVED:
            return DecisionReason.RESOLVED
        last = self._notified.get(key)
        recent = last is not None and now - last < timedelta(seconds=self.settings.group_interval_s)
        return DecisionReason.NEW_ALERTS_IN_GROUP if recent else DecisionReason.FIRST_NOTIFICATION

    def _unqueue(self, fingerprint: str, key: str) -> None:
        batch = self._batches.get((key, AlertState.FIRING))
        if batch is None:
            return
        batch.alerts.pop(fingerprint, None)
        batch.repeats.discard(fingerprint)
        if not batch.alerts:
            del self._batches[(key, AlertState.FIRING)]

    def _due(self, batch: Batch) -> datetime:
        """When `batch` may go: its group window has passed (or it is full), and for firing
        batches the group's interval since its last notification has passed too."""
        due = batch.opened_at + timedelta(seconds=self.settings.group_window_s)
        if len(batch.alerts) >= self.settings.max_batch:
            due = batch.opened_at
        last = self._notified.get(batch.group_key) if batch.state is AlertState.FIRING else None
        if last is not None:
            due = max(due, last + timedelta(seconds=self.settings.group_interval_s))
        return due

    def flush(self, now: datetime | None = None, *, force: bool = False) -> list[Notification]:
        """Notifications for every batch that is ready (every batch, with `force`)."""
        now = now or self._clock()
        self._release_unsilenced(now)
        self._queue_repeats(now)
        self._forget_old_groups(now)
        out = []
        for bkey, batch in list(self._batches.items()):
            if not force and self._due(batch) > now:
                continue
            holders = self.silences.all() or self.maintenance.all()
            if batch.state is AlertState.FIRING and holders:
                self._drop_silenced(batch, now)
                if not batch.alerts:
                    del self._batches[bkey]
                    continue
            out.append(self._emit(bkey, batch, now))
        return out

    def _forget_old_groups(self, now: datetime) -> None:
        """Drop the last-notified times older than the group interval, which no decision
        reads any more; a sweep at most once per interval and at least a second apart."""
        if self._next_prune is not None and now < self._next_prune:
            return
        keep = timedelta(seconds=self.settings.group_interval_s)
        self._next_prune = now + max(keep, _SECOND)
        if any(now - last >= keep for last in self._notified.values()):
            # Rebuilt, not deleted from: a dict keeps the table it grew to.
            self._notified = {
                key: last for key, last in self._notified.items() if now - last < keep
            }

    def _drop_silenced(self, batch: Batch, now: datetime) -> None:
        """A silence created (or a window begun) while alerts waited in their batch holds
        them back too."""
        for fp in list(batch.alerts):
            entry = self._active.get(fp)
            held = None if entry is None else self._held_by(entry, now)
            if entry is None or held is None:
                continue
            del batch.alerts[fp]
            batch.repeats.discard(fp)
            entry.queued = False
            entry.reason = held
            if entry.sent_at is None:
                self._held.add(fp)

    def _emit(self, bkey: tuple[str, AlertState], batch: Batch, now: datetime) -> Notification:
        limit = self.settings.max_batch
        fingerprints = list(batch.alerts)
        taken, rest = fingerprints[:limit], fingerprints[limit:]
        alerts = tuple(self._with_id(batch.alerts[fp]) for fp in taken)
        repeats_only = all(fp in batch.repeats for fp in taken)
        reason = DecisionReason.REPEAT_INTERVAL_ELAPSED if repeats_only else batch.reason
        del self._batches[bkey]
        if rest:
            follow = self._batches[bkey] = replace(
                batch,
                opened_at=now,
                reason=DecisionReason.NEW_ALERTS_IN_GROUP,
                alerts={fp: batch.alerts[fp] for fp in rest},
                repeats=batch.repeats & set(rest),
            )
            if batch.state is AlertState.RESOLVED:
                follow.reason = DecisionReason.RESOLVED
        if batch.state is AlertState.FIRING:
            self._notified[batch.group_key] = now
        for fp in taken:
            if batch.state is AlertState.RESOLVED:
                if fp not in self._active:
                    self._ids.pop(fp, None)
                continue
            entry = self._active.get(fp)
            if entry is not None:
                entry.queued = False
                entry.sent_at = now
                entry.notifications += 1
                self._schedule_repeat(entry)
        return Notification(
            group_key=batch.group_key,
            severity=batch.severity,
            state=batch.state,
            alerts=alerts,
            reason=reason,
            title=batch_title(batch, alerts, len(rest), reason),
            provider=batch.provider,
            category=batch.category,
        )

    def _with_id(self, notice: AlertNotice) -> AlertNotice:
        alert_id = self._ids.get(notice.fingerprint)
        if notice.alert_id is None and alert_id is not None:
            return replace(notice, alert_id=alert_id)
        return notice

    def _schedule_repeat(self, entry: ActiveAlert) -> None:
        every = self.settings.repeat_interval_s
        if every is not None and entry.sent_at is not None:
            due = entry.sent_at + timedelta(seconds=every)
            heapq.heappush(self._repeats, (due, entry.fingerprint))

    def _queue_repeats(self, now: datetime) -> None:
        every = self.settings.repeat_interval_s
        while self._repeats and self._repeats[0][0] <= now:
            _, fp = heapq.heappop(self._repeats)
            entry = self._active.get(fp)
            if entry is None or entry.sent_at is None or entry.queued or every is None:
                continue
            if entry.acknowledged_at is not None or now - entry.sent_at < timedelta(seconds=every):
                continue  # acknowledged, or sent again since this reminder was planned
            if (held := self._held_by(entry, now)) is not None:
                entry.reason = held
                heapq.heappush(self._repeats, (now + timedelta(seconds=every), fp))
                continue
            self._enqueue(entry.notice, group_key(entry.notice), now, repeat=True)
            entry.queued = True
            entry.reason = DecisionReason.REPEAT_INTERVAL_ELAPSED

    def _release_unsilenced(self, now: datetime) -> None:
        for fp in list(self._held):
            entry = self._active.get(fp)
            if entry is None or entry.acknowledged_at is not None:
                self._held.discard(fp)
                continue
            if self._held_by(entry, now) is None:
                self._judge_new(entry, group_key(entry.notice), now)

"""Whether the services apiwatch itself depends on (Redis, the database) are reachable.

A `Dependency` is told of every success and failure by the part that uses the service (the
budget store for Redis, the recorder for the database). It turns them into a state with a
reason and a start time, into one `DependencyChange` event per transition (alerting raises
`apiwatch_dependency_down` from it), and into log lines bounded in number: one when the
service goes, one per `log_every_s` while it stays away (with how many operations were
served locally meanwhile), one when it is back. After a failure the user skips the service
for `retry_s`, so a dead or hung service costs one short timeout per `retry_s`, not one per
call. A service is declared away (event, alert, degraded) only once it has kept failing for
`grace_s`: a SQLite write lock that lasts a few seconds is not an outage.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

log = logging.getLogger("apiwatch.dependencies")


@dataclass(frozen=True, slots=True)
class DependencyChange:
    """A dependency went away (`ok` False) or came back."""

    dependency: str
    ok: bool
    reason: str
    at: datetime
    # What apiwatch does meanwhile ("budgets counted locally", "results kept in memory").
    fallback: str = ""

    def as_dict(self) -> dict[str, object]:
        return {
            "dependency": self.dependency,
            "ok": self.ok,
            "reason": self.reason,
            "at": self.at,
            "fallback": self.fallback,
            "provider": None,
        }


class Dependency:
    def __init__(
        self,
        name: str,
        *,
        fallback: str = "",
        retry_s: float = 1.0,
        grace_s: float = 0.0,
        log_every_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.fallback = fallback
        self.retry_s = retry_s
        self.grace_s = grace_s
        self._failing_since: float | None = None
        self.log_every_s = log_every_s
        self._clock = clock
        self.ok = True
        self.reason = ""
        self.down_since: datetime | None = None
        self.listeners: list[Callable[[DependencyChange], None]] = []
        self._retry_at = 0.0
        self._logged_at = 0.0
        self._served_locally = 0
        # Failed retries since the last log line: counted, not logged one by one.
        self._unlogged_failures = 0
        self.failures = 0

    def should_try(self) -> bool:
        """False while a recent failure says the service is still away (skip it, go local)."""
        return self.ok or self._clock() >= self._retry_at

    def failed(self, error: BaseException | str) -> None:
        now = self._clock()
        self.failures += 1
        self._retry_at = now + self.retry_s
        reason = error if isinstance(error, str) else _describe(error)
        if self._failing_since is None:
            self._failing_since = now
        if self.ok and now - self._failing_since < self.grace_s:
            return  # not (yet) an outage
        if self.ok:
            self.ok = False
            self.reason = reason
            self.down_since = datetime.now(UTC)
            self._logged_at = now
            self._served_locally = 0
            self._unlogged_failures = 0
            log.error("%s unavailable: %s; %s", self.name, reason, self.fallback or "retrying")
            self._tell(DependencyChange(self.name, False, reason, self.down_since, self.fallback))
            return
        self.reason = reason
        self._unlogged_failures += 1
        self.served_locally()

    def served_locally(self) -> None:
        """Count an operation done without the service; logs at most once per period."""
        self._served_locally += 1
        now = self._clock()
        if now - self._logged_at >= self.log_every_s:
            self._logged_at = now
            log.error(
                "%s still unavailable since %s: %s; %d operations served without it; "
                "%d failed retries since the last line (not logged one by one)",
                self.name,
                self.down_since.isoformat(timespec="seconds") if self.down_since else "?",
                self.reason,
                self._served_locally,
                self._unlogged_failures,
            )
            self._unlogged_failures = 0

    def succeeded(self) -> None:
        self._failing_since = None
        if self.ok:
            return
        since = self.down_since
        self.ok = True
        self.reason = ""
        self.down_since = None
        outage = f" after {(datetime.now(UTC) - since).total_seconds():.1f} s" if since else ""
        log.warning("%s available again%s", self.name, outage)
        self._tell(DependencyChange(self.name, True, f"available again{outage}", datetime.now(UTC)))

    def as_dict(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "reason": self.reason or None,
            "down_since": self.down_since,
            "fallback": None if self.ok else self.fallback or None,
        }

    def _tell(self, change: DependencyChange) -> None:
        for listener in list(self.listeners):
            try:
                listener(change)
            except Exception:  # a listener's bug must not turn an outage into a crash
                log.exception("dependency listener failed")


def _describe(error: BaseException) -> str:
    text = str(error).strip()
    # Connection strings can carry passwords; exceptions from clients rarely do, but cut
    # anything that looks like a URL's credentials.
    if "@" in text and "://" in text:
        text = text.split("://", 1)[0] + "://…"
    return f"{type(error).__name__}: {text[:200]}" if text else type(error).__name__

"""The live state of every provider: its recent results and the Status derived from them.

It owns no I/O; `observe` returns the StatusChange (if any) and the caller records and
publishes it, so the tracker stays trivially testable.

Results are judged per location (`ProbeResult.location`): each location has its own window
and status, and the provider's status combines them (`analysis.locations.combine`) over the
locations that should probe it (`expected`, by default those it has results from). With
one location, which is every deployment without locations, the provider's status is that
location's, exactly as it was before locations existed.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from datetime import datetime

from apiwatch.analysis.locations import combine
from apiwatch.analysis.status import HEALTHY, consecutive_failures, derive_status
from apiwatch.domain import Outcome, ProbeResult, ProviderState, Status, StatusChange, utcnow
from apiwatch.runtime.result_window import ResultWindow


class _Site:
    """One location's view of a provider: its own window and the status derived from it."""

    __slots__ = ("not_ok", "reason", "results", "status")

    def __init__(self, window: int) -> None:
        self.results = ResultWindow(window)
        self.status = Status.UNKNOWN
        self.reason = "no results yet"
        # How many results in the window are not `ok`: with none, the status is `online`
        # without judging the window again (the common case, decided for every result).
        self.not_ok = 0

    def add(self, result: ProbeResult) -> None:
        left = self.results.append(result)
        if left is not None and left is not Outcome.OK:
            self.not_ok -= 1
        if result.outcome is not Outcome.OK:
            self.not_ok += 1

    def judge(self, *, breaker_open: bool = False) -> None:
        if self.not_ok == 0 and self.results and not breaker_open:
            self.status, self.reason = Status.ONLINE, HEALTHY
        else:
            self.status, self.reason = derive_status(
                self.results.judged(), breaker_open=breaker_open
            )


_NONE = ResultWindow(0)


class _Entry:
    __slots__ = ("_merged", "changed_at", "reason", "sites", "status", "window")

    def __init__(self, window: int) -> None:
        self.window = window
        self.sites: dict[str, _Site] = {}
        # Every location's results together, once there are two locations; with one (every
        # deployment without locations) its own window is that, and is not kept twice.
        self._merged: ResultWindow | None = None
        self.status = Status.UNKNOWN
        self.reason = "no results yet"
        self.changed_at: datetime | None = None

    @property
    def results(self) -> ResultWindow:
        """Every location's results together, newest last: what the dashboard shows."""
        if self._merged is not None:
            return self._merged
        for site in self.sites.values():
            return site.results
        return _NONE

    def add(self, result: ProbeResult, site: _Site) -> None:
        site.add(result)
        if self._merged is None:
            if len(self.sites) == 1:
                return
            # A second location: the merged window starts as the first one's.
            first = next(other for other in self.sites.values() if other is not site)
            self._merged = ResultWindow(self.window)
            for earlier in first.results:
                self._merged.append(earlier)
        self._merged.append(result)

    def clear(self) -> None:
        self.sites.clear()
        self._merged = None


class StatusTracker:
    def __init__(
        self,
        providers: Iterable[str],
        *,
        window: int = 20,
        clock: Callable[[], datetime] = utcnow,
        quorum: int = 0,
    ) -> None:
        self._window = window
        self._clock = clock
        self._entries = {provider: _Entry(window) for provider in providers}
        # How many locations must see a provider offline (0: a majority of them).
        self.quorum = quorum
        # The locations that should probe a provider; empty: those it has results from.
        self.expected: Callable[[str], Collection[str]] = lambda provider: ()

    def restore(self, provider: str, *, status: Status, reason: str, at: datetime) -> None:
        """Start from the last stored status after a restart (results come in afresh)."""
        entry = self._entries.setdefault(provider, _Entry(self._window))
        entry.status, entry.reason, entry.changed_at = status, reason, at

    def seed(self, provider: str, results: Iterable[ProbeResult]) -> None:
        """Take over a provider's recent results (oldest first) from storage, so judging
        carries on where it stopped: after a restart, or on a worker that takes the
        provider over from another. The status itself is left as restored."""
        entry = self._entries.setdefault(provider, _Entry(self._window))
        entry.clear()
        for result in results:
            entry.add(result, self._site(entry, result.location))
        for site in entry.sites.values():
            site.judge()

    def note(self, result: ProbeResult) -> None:
        """Take a result as the provider's latest without judging it (a process that
        probes nothing shows the workers' results; their status comes as a change)."""
        entry = self._entries.setdefault(result.provider, _Entry(self._window))
        entry.add(result, self._site(entry, result.location))

    def _site(self, entry: _Entry, location: str) -> _Site:
        site = entry.sites.get(location)
        if site is None:
            site = entry.sites[location] = _Site(self._window)
        return site

    def observe(self, result: ProbeResult, *, breaker_open: bool = False) -> StatusChange | None:
        entry = self._entries.setdefault(result.provider, _Entry(self._window))
        site = self._site(entry, result.location)
        entry.add(result, site)
        site.judge(breaker_open=breaker_open)
        status, reason = combine(self._per_location(result.provider, entry), quorum=self.quorum)
        entry.reason = reason
        if status is entry.status:
            return None
        change = StatusChange(
            provider=result.provider, old=entry.status, new=status, reason=reason, at=self._clock()
        )
        entry.status, entry.changed_at = status, change.at
        return change

    def _per_location(self, provider: str, entry: _Entry) -> dict[str, tuple[Status, str]]:
        names = set(self.expected(provider)) or set(entry.sites)
        unknown = (Status.UNKNOWN, "no results yet")
        return {
            name: (site.status, site.reason) if (site := entry.sites.get(name)) else unknown
            for name in names
        }

    def locations(self, provider: str) -> dict[str, tuple[Status, str]]:
        """{location: (status, reason)} of the locations that judge `provider`."""
        entry = self._entries.get(provider)
        return self._per_location(provider, entry) if entry is not None else {}

    def state(self, provider: str) -> ProviderState:
        entry = self._entries.get(provider) or _Entry(self._window)
        results = entry.results
        return ProviderState(
            provider=provider,
            status=entry.status,
            reason=entry.reason,
            consecutive_failures=consecutive_failures(results.judged()),
            last_result=results.last,
            changed_at=entry.changed_at,
        )

    def recent(self, provider: str) -> list[ProbeResult]:
        """The results the status is judged on, oldest first (the dashboard's heartbeat)."""
        entry = self._entries.get(provider)
        return list(entry.results) if entry is not None else []

    def heartbeat(self, provider: str) -> list[tuple[Outcome, datetime, float | None]]:
        """(outcome, started at, latency) of the results `recent` gives, without building
        them: the dashboard draws this for every provider."""
        entry = self._entries.get(provider)
        return entry.results.heartbeat() if entry is not None else []

    def statuses(self) -> Mapping[str, str]:
        """Each provider's status word, read when asked: a view, not a copy. Every
        notification's triage looks up its own providers here; building every provider's
        state for it cost 10,000 states a notification at 10,000 providers (seconds of a
        stalled event loop in an alert storm)."""
        return _StatusView(self._entries)

    def states(self) -> dict[str, ProviderState]:
        return {provider: self.state(provider) for provider in self._entries}

    def forget(self, provider: str) -> None:
        """A provider removed from the catalogue: its status goes with it."""
        self._entries.pop(provider, None)


class _StatusView(Mapping[str, str]):
    __slots__ = ("_entries",)

    def __init__(self, entries: dict[str, _Entry]) -> None:
        self._entries = entries

    def __getitem__(self, provider: str) -> str:
        return self._entries[provider].status.value

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

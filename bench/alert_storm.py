"""Alert storm and time to notification: what apiwatch's alerting sends when things go wrong.

Run: .venv/bin/python bench/alert_storm.py [--probes 1000] [--seconds 60]
     [--ttn-runs 5] [--ttn-windows 5 1] [--check-interval 1] [--skip-storm] [--skip-ttn]

Everything is real and local: apiwatch's simulator on 127.0.0.1 plays the providers, the
whole runtime (`open_runtime`: probe engine behind its guard, status tracker, recorder into
a SQLite file, event bus, AlertManager with rules, policy and channels) runs in-process, and
the notifications are POSTed by the `webhook` channel to a small HTTP receiver in this
script. Alerting uses the packaged defaults (`alerting/defaults.yaml`: dedup 300 s, group
window 5 s, group interval 60 s) plus a user file that only defines the two channels the
default routes name: `slack` (warnings, receiver path /warning) and `pagerduty` (critical,
/critical).

1. Storm. The five providers are set to the simulator's `rate_limited` scenario (each with
   its own signal: Binance 429 then 418, CoinGecko, CoinMarketCap and Alternative.me 429,
   CryptoCompare an HTTP 200 body with Type 99), and `--probes` health checks are sent
   round-robin over `--seconds` through `runtime.check`, so every result, skip, status
   change and guard event feeds alerting exactly as scheduled checks do. apiwatch's own
   guard holds many of them back (Retry-After blocks the provider, a rate-limited key rests,
   a full budget window refuses): these are counted as skipped, by reason. Scheduled
   retries that `runtime.check` plans (rate-limited: after the reset + 10 s) run too and are
   counted apart. Then the scenarios are cleared and health checks run, each provider at
   most at 2/3 of its tightest per-minute budget, until every provider is online and no
   alert is firing, and the resolves have been sent.
2. Time to notification. One provider at a time goes `down` (HTTP 503) while its health
   check runs every `--check-interval` seconds; measured from setting the scenario to the
   arrival of the critical notification at the receiver, for each group window given.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

from aiohttp import web

from apiwatch.catalogue.loader import Catalogue, load_catalogue
from apiwatch.domain import Outcome, ProbeResult, Status, StatusChange, utcnow
from apiwatch.logs import configure_logging
from apiwatch.runtime import Runtime, open_runtime
from apiwatch.settings import Settings
from apiwatch.simulator import Scenario, Simulator

STORM_PROVIDERS = ["binance", "coingecko", "coinmarketcap", "cryptocompare", "alternative_me"]
# Time-to-notification runs take one provider each, in this order (none shares a group).
TTN_PROVIDERS = [
    "binance",
    "coingecko",
    "coinmarketcap",
    "cryptocompare",
    "alternative_me",
    "etherscan",
    "bscscan",
    "tronscan",
    "newsapi",
    "cryptopanic",
]
DEDUP_WINDOW_S = 300.0  # defaults.yaml; the per-window maximum below is counted over it
GROUP_INTERVAL_S = 60.0


# -- the receiver ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Arrival:
    path: str
    at: float  # time.monotonic() when the request arrived
    body: dict[str, Any]

    @property
    def state(self) -> str:
        return str(self.body.get("state"))

    @property
    def provider(self) -> str:
        return str(self.body.get("provider"))

    @property
    def severity(self) -> str:
        return str(self.body.get("severity"))

    @property
    def reason(self) -> str:
        return str(self.body.get("reason"))


class Receiver:
    """An HTTP server on 127.0.0.1 that answers 200 and keeps every JSON body it got."""

    def __init__(self) -> None:
        self.arrivals: list[Arrival] = []
        self._runner: web.AppRunner | None = None
        self.base = ""

    async def _handle(self, request: web.Request) -> web.Response:
        at = time.monotonic()
        body = json.loads(await request.read() or b"{}")
        self.arrivals.append(Arrival(request.path, at, body))
        return web.Response(text="ok")

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.base = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def since(self, moment: float) -> list[Arrival]:
        return [a for a in self.arrivals if a.at >= moment]


def write_alerts_file(path: Path, receiver: Receiver, *, group_window_s: float | None) -> Path:
    """Only the channels the default routes name; every other setting stays the default."""
    window = f"group_window_s: {group_window_s:g}\n" if group_window_s is not None else ""
    path.write_text(
        window
        + "channels:\n"
        + f'  slack: {{kind: webhook, url: "{receiver.base}/warning"}}\n'
        + f'  pagerduty: {{kind: webhook, url: "{receiver.base}/critical"}}\n'
    )
    return path


def set_provider_keys(catalogue: Catalogue) -> None:
    """Placeholder keys for every keyed provider (they only ever reach the local simulator);
    set unconditionally so no real key from the environment is used."""
    for spec in catalogue.providers.values():
        for name in spec.auth.keys:
            os.environ[name] = f"bench-placeholder-{name.lower()}"


def make_settings(
    tmp: Path, name: str, sim: Simulator, alerts_file: Path, **overrides: Any
) -> Settings:
    return Settings(
        _env_file=None,
        database_url=f"sqlite+aiosqlite:///{tmp / name}.db",
        redis_url=None,
        upstream_override=sim.url,
        scheduler_enabled=False,
        alerts_file=alerts_file,
        llm_url=None,
        **overrides,
    )


# -- what went through the runtime -----------------------------------------------------------


def skip_class(reason: str) -> str:
    """`rate_limit_budget (minute window full) until …` → `rate_limit_budget (minute window)`."""
    head, _, rest = reason.partition(" ")
    if head == "rate_limit_budget":
        return "skipped: rate_limit_budget " + (
            "(Retry-After)" if "Retry-After" in rest else "(window full)"
        )
    if head.startswith("no_key"):
        return f"skipped: {reason.split(';')[0]}"
    return f"skipped: {head}"


@dataclass
class Tally:
    """Bus listener: every result (all attempts), every status change, with arrival times."""

    phase: str = "storm"
    results: dict[str, Counter[tuple[str, str]]] = field(
        default_factory=lambda: defaultdict(Counter)
    )
    changes: list[tuple[float, StatusChange]] = field(default_factory=list)
    failures: list[tuple[float, ProbeResult]] = field(default_factory=list)

    def __call__(self, event: object) -> None:
        now = time.monotonic()
        if isinstance(event, ProbeResult):
            outcome = event.outcome.value
            if event.outcome is Outcome.SKIPPED:
                outcome = skip_class(event.reason)
            self.results[self.phase][(event.provider, outcome)] += 1
            if event.outcome.is_failure:
                self.failures.append((now, event))
        elif isinstance(event, StatusChange):
            self.changes.append((now, event))


async def wait_until(predicate: Callable[[], bool], *, timeout: float, step: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(step)
    return True


# -- 1. the storm ----------------------------------------------------------------------------


@dataclass
class StormReport:
    probes: int
    seconds: float
    storm_s: float
    recovery_s: float
    recovered: bool
    own_checks: Counter[str]
    results: dict[str, Counter[tuple[str, str]]]
    sim_requests: dict[str, int]
    alerts: list[dict[str, Any]]
    arrivals: list[Arrival]
    status_changes: Counter[tuple[str, str]]
    dropped: int
    started: float  # time.monotonic() of the first storm check
    cleared_s: float  # scenarios cleared, seconds after `started`


def minute_budget(catalogue: Catalogue, provider: str) -> float | None:
    """The provider's tightest budget as requests per minute (None: no limit)."""
    windows = catalogue.providers[provider].rate_limits.windows()
    sizes = {"second": 1, "minute": 60, "hour": 3600, "day": 86_400, "month": 30 * 86_400}
    per_min = [limit * 60 / sizes[w] for w, limit in windows.items() if w in sizes]
    # A day or month budget is not what paces a short recovery; only short windows count.
    short = [
        limit * 60 / sizes[w] for w, limit in windows.items() if w in ("second", "minute", "hour")
    ]
    return min(short) if short else (min(per_min) if per_min else None)


def still_alerting(runtime: Runtime, providers: Iterable[str]) -> list[str]:
    """Alerts of these providers the rules or the policy still hold as firing or queued."""
    manager = runtime.alerts
    assert manager is not None
    wanted = set(providers)
    firing = [n.fingerprint for n in manager.rules.active() if n.provider in wanted]
    firing += [a.fingerprint for a in manager.policy.active() if a.notice.provider in wanted]
    pending = [f"{b.group_key}:{b.state}" for b in manager.policy.pending()]
    return firing + pending


async def run_storm(
    args: argparse.Namespace, tmp: Path, sim: Simulator, receiver: Receiver
) -> StormReport:
    providers = STORM_PROVIDERS
    alerts_file = write_alerts_file(tmp / "storm-alerts.yaml", receiver, group_window_s=None)
    # A breaker threshold no storm reaches: every probe the budget allows is really sent.
    settings = make_settings(tmp, "storm", sim, alerts_file, breaker_failure_threshold=1_000_000)
    tally = Tally()
    own: Counter[str] = Counter()
    async with open_runtime(settings) as runtime:
        runtime.bus.add_listener(tally)
        for pid in providers:
            sim.set_scenario(pid, Scenario("rate_limited", {}))
        before = sim.stats()["providers"]

        async def one(pid: str) -> None:
            for result in await runtime.check(provider_ids=[pid]):
                own[result.outcome.value] += 1

        gap = args.seconds / args.probes
        start = time.monotonic()
        tasks = []
        for i in range(args.probes):
            delay = start + i * gap - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(providers[i % len(providers)])))
            if i and i % max(1, args.probes // 6) == 0:
                progress(
                    f"storm: {i}/{args.probes} checks sent, {len(receiver.arrivals)} "
                    "notifications so far"
                )
        await asyncio.gather(*tasks)
        storm_s = time.monotonic() - start
        progress(f"storm: done in {storm_s:.1f} s; clearing scenarios, recovering")

        # Recovery: healthy checks, each provider at 2/3 of its tightest budget at most (under
        # the 80 % warning), so the recovery raises no budget alerts of its own.
        tally.phase = "recovery"
        for pid in providers:
            sim.clear_scenario(pid)
        recovery_start = time.monotonic()
        next_due = dict.fromkeys(providers, recovery_start)
        interval = {}
        for pid in providers:
            budget = minute_budget(runtime.catalogue, pid)
            interval[pid] = max(0.5, 60 / (2 / 3 * budget)) if budget else 0.5
        recovered = False
        while time.monotonic() - recovery_start < args.recovery_timeout:
            now = time.monotonic()
            due = [pid for pid in providers if next_due[pid] <= now]
            for pid in due:
                next_due[pid] = now + interval[pid]
            if due:
                await runtime.check(provider_ids=due)
            online = all(runtime.tracker.state(p).status is Status.ONLINE for p in providers)
            if online and not still_alerting(runtime, providers):
                recovered = True
                break
            await asyncio.sleep(0.05)
        # Resolves leave with the next flush; a quiet receiver means all went out.
        await wait_until(lambda: not still_alerting(runtime, providers), timeout=15)
        await wait_until(
            lambda: bool(receiver.arrivals) and time.monotonic() - receiver.arrivals[-1].at > 3,
            timeout=15,
            step=0.2,
        )
        recovery_s = time.monotonic() - recovery_start
        assert runtime.alerts is not None
        alerts = await runtime.alerts.list_alerts(limit=100_000)
        dropped = runtime.alerts.dropped
        after = sim.stats()["providers"]
        await runtime.cancel_retries()
    return StormReport(
        probes=args.probes,
        seconds=args.seconds,
        storm_s=storm_s,
        recovery_s=recovery_s,
        recovered=recovered,
        own_checks=own,
        results=tally.results,
        sim_requests={p: after[p]["requests"] - before[p]["requests"] for p in providers},
        alerts=alerts,
        arrivals=list(receiver.arrivals),
        status_changes=Counter((c.provider, c.new.value) for _, c in tally.changes),
        dropped=dropped,
        started=start,
        cleared_s=recovery_start - start,
    )


def max_in_window(times: list[float], window_s: float) -> int:
    times = sorted(times)
    best, lo = 0, 0
    for hi, t in enumerate(times):
        while t - times[lo] >= window_s:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


def print_storm(report: StormReport) -> None:
    providers = STORM_PROVIDERS
    storm = report.results.get("storm", Counter())
    recovery = report.results.get("recovery", Counter())
    sent_storm = sum(n for (p, o), n in storm.items() if not o.startswith("skipped"))
    skipped_storm = sum(n for (p, o), n in storm.items() if o.startswith("skipped"))
    own_total = sum(report.own_checks.values())
    print()
    print("## 1. Storm")
    print()
    print(
        f"{report.probes} health checks over {report.seconds:g} s "
        f"({report.probes / report.seconds:.1f}/s, {report.storm_s:.1f} s actual), "
        f"rate_limited on {len(providers)} providers; recovery took {report.recovery_s:.0f} s"
        + ("" if report.recovered else " (TIMED OUT before every alert had cleared)")
        + "."
    )
    print(
        f"During the storm: {sent_storm + skipped_storm} results through the runtime "
        f"({own_total} from the bench's checks, "
        f"{sent_storm + skipped_storm - own_total} scheduled retries): "
        f"{sent_storm} sent, {skipped_storm} skipped by apiwatch's guard."
    )
    print()
    outcomes = sorted({o for (_, o) in storm} | {o for (_, o) in recovery})
    print("Results by outcome (storm phase; every attempt, scheduled retries included):")
    print()
    header = "| outcome | " + " | ".join(providers) + " | total |"
    print(header)
    print("|" + "---|" * (len(providers) + 2))
    for outcome in outcomes:
        row = [storm.get((p, outcome), 0) for p in providers]
        if sum(row):
            print(f"| {outcome} | " + " | ".join(map(str, row)) + f" | {sum(row)} |")
    reqs = [report.sim_requests.get(p, 0) for p in providers]
    print(
        "| requests the simulator received (storm and recovery) | "
        + " | ".join(map(str, reqs))
        + f" | {sum(reqs)} |"
    )
    print()

    print("Recovery phase (scenarios cleared; healthy checks until every alert resolved):")
    print()
    print(header)
    print("|" + "---|" * (len(providers) + 2))
    for outcome in outcomes:
        row = [recovery.get((p, outcome), 0) for p in providers]
        if sum(row):
            print(f"| {outcome} | " + " | ".join(map(str, row)) + f" | {sum(row)} |")
    print()
    print("Alerts (rows in `alerts`) by rule and severity:")
    print()
    rows = Counter((a["rule"], a["severity"]) for a in report.alerts)
    states = Counter((a["rule"], a["severity"], a["state"]) for a in report.alerts)
    sent = Counter((a["rule"], a["severity"]) for a in report.alerts if a["sent_at"])
    print("| rule | severity | rows | resolved | ever notified |")
    print("|---|---|--:|--:|--:|")
    for (rule, sev), n in sorted(rows.items()):
        print(f"| {rule} | {sev} | {n} | {states[(rule, sev, 'resolved')]} | {sent[(rule, sev)]} |")
    print(
        f"| **total** | | {sum(rows.values())} | "
        f"{sum(v for (_, _, s), v in states.items() if s == 'resolved')} | "
        f"{sum(sent.values())} |"
    )
    print()

    arrivals = report.arrivals
    print("Notifications received:")
    print()
    print("| path | firing | resolved | total |")
    print("|---|--:|--:|--:|")
    for path in sorted({a.path for a in arrivals}):
        mine = [a for a in arrivals if a.path == path]
        firing = sum(a.state == "firing" for a in mine)
        print(f"| {path} | {firing} | {len(mine) - firing} | {len(mine)} |")
    firing_all = sum(a.state == "firing" for a in arrivals)
    print(f"| **total** | {firing_all} | {len(arrivals) - firing_all} | {len(arrivals)} |")
    print()
    print("| path | state | reason | notifications | alerts in them |")
    print("|---|---|---|--:|--:|")
    by_reason: Counter[tuple[str, str, str]] = Counter()
    carried: Counter[tuple[str, str, str]] = Counter()
    for a in arrivals:
        by_reason[(a.path, a.state, a.reason)] += 1
        carried[(a.path, a.state, a.reason)] += len(a.body.get("alerts") or [])
    for key, n in sorted(by_reason.items()):
        print(f"| {key[0]} | {key[1]} | {key[2]} | {n} | {carried[key]} |")
    print()

    print(
        "Firing notifications per provider and severity: the most in any "
        f"{DEDUP_WINDOW_S:g} s (dedup window), the shortest gap between two (the group interval "
        f"is {GROUP_INTERVAL_S:g} s; measured at the receiver), and resolves:"
    )
    print()
    print("| provider | severity | firing | max / 300 s | min gap (s) | resolved |")
    print("|---|---|--:|--:|--:|--:|")
    worst_dedup, gaps = 0, []
    for p in providers:
        for sev in ("warning", "critical"):
            mine = [a for a in arrivals if a.provider == p and a.severity == sev]
            fire = sorted(a.at for a in mine if a.state == "firing")
            if not mine:
                continue
            most = max_in_window(fire, DEDUP_WINDOW_S)
            worst_dedup = max(worst_dedup, most)
            gap = min((b - a for a, b in pairwise(fire)), default=None)
            if gap is not None:
                gaps.append(gap)
            print(f"| {p} | {sev} | {len(fire)} | {most} | {fmt(gap)} | {len(mine) - len(fire)} |")
    print()
    print(
        f"Max firing notifications per provider per severity per {DEDUP_WINDOW_S:g} s: "
        f"{worst_dedup}; shortest gap between two of one provider and severity: {fmt(min(gaps))} s."
        if gaps
        else f"Max firing notifications per provider per severity per {DEDUP_WINDOW_S:g} s: "
        f"{worst_dedup}."
    )
    changes = ", ".join(
        f"{p} {sum(n for (q, _), n in report.status_changes.items() if q == p)}" for p in providers
    )
    print(f"Status changes: {changes}. Events dropped by the alert queue: {report.dropped}.")
    print()
    print(
        f"Every notification (t: seconds after the first storm check; scenarios cleared at "
        f"{report.cleared_s:.1f} s):"
    )
    print()
    print("| t | path | provider | state | reason | alerts (rule) |")
    print("|--:|---|---|---|---|---|")
    for a in sorted(arrivals, key=lambda a: a.at):
        rules = ", ".join(str(x.get("rule")) for x in a.body.get("alerts") or [])
        print(
            f"| {a.at - report.started:.1f} | {a.path} | {a.provider} | {a.state} | "
            f"{a.reason} | {rules} |"
        )


# -- 2. time to notification -----------------------------------------------------------------


@dataclass
class Run:
    window_s: float
    provider: str
    first_fail_s: float | None
    offline_s: float | None
    due_s: float | None  # when the critical batch's group window had passed
    notified_s: float | None
    other_notifications: list[str]


async def check_loop(runtime: Runtime, pid: str, interval: float, stop: asyncio.Event) -> None:
    """Health checks of one provider on a fixed-rate grid, as the scheduler would run them."""
    due = time.monotonic()
    while not stop.is_set():
        await runtime.check(provider_ids=[pid])
        due += interval
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=max(0.0, due - time.monotonic()))


async def wait_for_page(
    runtime: Runtime, receiver: Receiver, pid: str, t0: float, *, timeout: float
) -> tuple[float | None, float | None]:
    """(page arrival, batch due) in seconds after t0; the due time is read off the policy's
    pending critical batch while it waits."""
    assert runtime.alerts is not None
    wall0 = utcnow()
    due: float | None = None
    deadline = t0 + timeout
    while time.monotonic() < deadline:
        for batch in runtime.alerts.policy.pending():
            critical = batch.severity.value == "critical" and batch.state.value == "firing"
            if batch.provider == pid and critical and due is None:
                due = (batch.due_at - wall0).total_seconds()
        for arrival in receiver.since(t0):
            paged = arrival.path == "/critical" and arrival.state == "firing"
            if arrival.provider == pid and paged:
                return arrival.at - t0, due
        await asyncio.sleep(0.005)
    return None, due


async def run_ttn(
    args: argparse.Namespace,
    tmp: Path,
    sim: Simulator,
    receiver: Receiver,
    window_s: float,
    rng: random.Random,
) -> list[Run]:
    alerts_file = write_alerts_file(
        tmp / f"ttn-{window_s:g}.yaml", receiver, group_window_s=window_s
    )
    settings = make_settings(tmp, f"ttn-{window_s:g}", sim, alerts_file)
    tally = Tally(phase="ttn")
    runs: list[Run] = []
    async with open_runtime(settings) as runtime:
        runtime.bus.add_listener(tally)
        candidates = [p for p in TTN_PROVIDERS if p in runtime.catalogue.providers]
        for pid in candidates:
            if len(runs) >= args.ttn_runs:
                break
            sim.clear_scenario(pid)
            # The previous run ended just after a flush; without a random start the checks
            # would keep in step with the alert flush loop and every run would wait a whole
            # flush tick (or none), instead of a uniformly random part of one.
            await asyncio.sleep(rng.uniform(0, args.check_interval))
            stop = asyncio.Event()
            loop = asyncio.create_task(check_loop(runtime, pid, args.check_interval, stop))
            try:
                online = await wait_until(
                    lambda pid=pid: runtime.tracker.state(pid).status is Status.ONLINE,
                    timeout=10 * args.check_interval + 5,
                )
                if not online:
                    progress(f"ttn: {pid} never came online in the simulator; skipped")
                    continue
                # The failure starts at a random point between two checks.
                await asyncio.sleep(rng.uniform(0, args.check_interval))
                sim.set_scenario(pid, Scenario("down", {"status": 503}))
                t0 = time.monotonic()
                notified, due = await wait_for_page(
                    runtime, receiver, pid, t0, timeout=window_s + 10 * args.check_interval + 15
                )
            finally:
                stop.set()
                await loop
                sim.clear_scenario(pid)
            first_fail = next(
                (at - t0 for at, r in tally.failures if r.provider == pid and at >= t0), None
            )
            offline = next(
                (
                    at - t0
                    for at, c in tally.changes
                    if c.provider == pid and c.new is Status.OFFLINE and at >= t0
                ),
                None,
            )
            others = [
                f"{a.path} {a.state}"
                for a in receiver.since(t0)
                if a.provider == pid and not (a.path == "/critical" and a.state == "firing")
            ]
            runs.append(Run(window_s, pid, first_fail, offline, due, notified, others))
            progress(
                f"ttn: group window {window_s:g} s, {pid}: "
                + (f"paged after {notified:.2f} s" if notified is not None else "NOT paged")
            )
        await runtime.cancel_retries()
    return runs


def fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def med(values: Iterable[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return statistics.median(known) if known else None


def print_ttn(runs: list[Run], check_interval: float) -> None:
    print()
    print("## 2. Time to notification")
    print()
    print(
        f"Provider set to `down` (503) at a random point between health checks run every "
        f"{check_interval:g} s; seconds from setting the scenario. `due`: the critical "
        "batch's group window has passed; `page`: the notification arrived at the receiver."
    )
    print()
    print(
        "| group window | provider | first failed check | offline | due | page "
        "| offline → page | due → page | other notifications of the run |"
    )
    print("|--:|---|--:|--:|--:|--:|--:|--:|---|")
    for r in runs:
        gap = None if r.notified_s is None or r.offline_s is None else r.notified_s - r.offline_s
        lag = None if r.notified_s is None or r.due_s is None else r.notified_s - r.due_s
        print(
            f"| {r.window_s:g} s | {r.provider} | {fmt(r.first_fail_s)} | {fmt(r.offline_s)} | "
            f"{fmt(r.due_s)} | {fmt(r.notified_s)} | {fmt(gap)} | {fmt(lag)} | "
            f"{', '.join(r.other_notifications) or '—'} |"
        )
    print()
    print(
        "| group window | runs | first failed check | offline | page (median) "
        "| page min to max | due → page (median) |"
    )
    print("|--:|--:|--:|--:|--:|--:|--:|")
    for window in sorted({r.window_s for r in runs}, reverse=True):
        mine = [r for r in runs if r.window_s == window]
        pages = [r.notified_s for r in mine if r.notified_s is not None]
        lags = [
            r.notified_s - r.due_s for r in mine if r.notified_s is not None and r.due_s is not None
        ]
        span = f"{min(pages):.2f} to {max(pages):.2f}" if pages else "—"
        print(
            f"| {window:g} s | {len(mine)} | {fmt(med(r.first_fail_s for r in mine))} | "
            f"{fmt(med(r.offline_s for r in mine))} | {fmt(med(pages))} | {span} | "
            f"{fmt(med(lags))} |"
        )
    print()
    print(
        "Components: the first failed check comes 0 to 1 check interval after the failure "
        f"starts; offline needs 3 consecutive failed checks, so 2 more intervals "
        f"({2 * check_interval:g} s here); the critical alert then waits in its batch for the "
        "group window, and the flush loop looks every group_window / 5 s (at most 1 s), so up "
        "to one tick more; triage, the database writes and the POST to the local receiver add "
        "milliseconds. Expected: interval x U(0,1) + 2 x interval + window + tick x U(0,1)."
    )


# -- main ------------------------------------------------------------------------------------


def progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


async def main(args: argparse.Namespace) -> dict[str, Any]:
    set_provider_keys(load_catalogue())
    rng = random.Random(args.seed)
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="apiwatch-alert-storm-") as tmpdir:
        tmp = Path(tmpdir)
        async with Simulator(host="127.0.0.1", port=0) as sim:
            if not args.skip_storm:
                receiver = Receiver()
                await receiver.start()
                try:
                    report = await run_storm(args, tmp, sim, receiver)
                finally:
                    await receiver.stop()
                print_storm(report)
                out["storm"] = report
                sim.reset()
            if not args.skip_ttn:
                runs: list[Run] = []
                for window in args.ttn_windows:
                    receiver = Receiver()
                    await receiver.start()
                    try:
                        runs += await run_ttn(args, tmp, sim, receiver, window, rng)
                    finally:
                        await receiver.stop()
                print_ttn(runs, args.check_interval)
                out["ttn"] = runs
    return out


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--probes", type=int, default=1000, help="health checks in the storm")
    parser.add_argument("--seconds", type=float, default=60.0, help="length of the storm")
    parser.add_argument(
        "--recovery-timeout", type=float, default=180.0, help="give up recovering after this"
    )
    parser.add_argument("--ttn-runs", type=int, default=5, help="runs per group window")
    parser.add_argument(
        "--ttn-windows", type=float, nargs="+", default=[5.0, 1.0], help="group windows (s)"
    )
    parser.add_argument("--check-interval", type=float, default=1.0, help="health check interval")
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--skip-storm", action="store_true")
    parser.add_argument("--skip-ttn", action="store_true")
    parser.add_argument("--verbose", action="store_true", help="apiwatch's INFO logs on stderr")
    args = parser.parse_args(argv)
    if args.ttn_runs > len(TTN_PROVIDERS):
        parser.error(f"--ttn-runs is at most {len(TTN_PROVIDERS)} (one provider per run)")
    return args


if __name__ == "__main__":
    arguments = parse_args()
    configure_logging(level="INFO" if arguments.verbose else "ERROR", json=False)
    try:
        import uvloop  # the loop apiwatch runs on where available

        runner: Any = uvloop.run
    except ImportError:
        runner = asyncio.run
    runner(main(arguments))

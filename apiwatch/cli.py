"""The `apiwatch` command: serve, check, simulate, demo, db upgrade, providers, report.

Reads Settings once per command and passes them down, like the API does.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Annotated, Any

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from apiwatch.allocator import cap_malloc_arenas
from apiwatch.catalogue.loader import Catalogue
from apiwatch.catalogue.schema import ResolvedObjective
from apiwatch.cli_keys import db_app, keys_app
from apiwatch.cli_providers import providers_app
from apiwatch.cli_support import (
    catalogue_or_exit,
    err,
    out,
    preflight,
    run,
    settings_or_exit,
)
from apiwatch.domain import Outcome, ProbeResult
from apiwatch.logs import configure_logging
from apiwatch.settings import Settings

app = typer.Typer(
    help="apiwatch: monitor the third-party APIs your product depends on.",
    no_args_is_help=True,
    add_completion=False,
)
app.add_typer(db_app, name="db")
app.add_typer(keys_app, name="keys")
app.add_typer(providers_app, name="providers")

_OUTCOME_STYLE = {
    Outcome.OK: "green",
    Outcome.SLOW: "yellow",
    Outcome.RATE_LIMITED: "yellow",
    Outcome.SKIPPED: "dim",
}


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to bind")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 7860)")] = None,
    role: Annotated[
        str | None,
        typer.Option(
            help="all: probe and serve (default); api: serve only; worker: probe only "
            "(api and worker share the work through REDIS_URL)"
        ),
    ] = None,
) -> None:
    """Run the monitor: scheduler, probes, storage and the API on one port."""
    cap_malloc_arenas()  # before any thread starts: see apiwatch/allocator.py
    import uvicorn

    from apiwatch.api.app import create_app
    from apiwatch.api.server import server_options

    settings = settings_or_exit(host=host, port=port, role=role)
    if settings.role != "all" and not settings.redis_url:
        err.print(
            f"[red]--role {settings.role} needs REDIS_URL[/red]: processes share the work "
            "through Redis; without it run one process with --role all"
        )
        raise typer.Exit(2)
    configure_logging(
        level=settings.log_level,
        json=settings.log_json,
        libraries_level=settings.log_level_libraries,
    )
    catalogue = catalogue_or_exit(settings)  # fail fast, with file and line, before uvicorn starts
    _alert_settings(settings)
    preflight(settings, ports={"APIWATCH_PORT": settings.port})
    _sentry(settings, catalogue)
    err.print(f"apiwatch on http://{settings.host}:{settings.port}  (docs: /docs)")
    err.print(
        f"dashboard: http://{_browsable(settings.host)}:{settings.port}/  (status page: /status)"
    )
    if settings.public_read:
        err.print("read routes are public (APIWATCH_PUBLIC_READ=true); admin routes need a key")
    # Head size, head timeout, connection cap, trusted proxies: see apiwatch/api/server.py.
    app = create_app(settings, catalogue=catalogue, on_first_key=_print_first_key)
    uvicorn.run(app, **server_options(settings))


def _sentry(settings: Settings, catalogue: Catalogue) -> None:
    from apiwatch import __version__
    from apiwatch.runtime.sentry import init_sentry, known_secrets

    dsn = settings.sentry_dsn.get_secret_value() if settings.sentry_dsn else None
    names = [name for spec in catalogue.providers.values() for name in spec.auth.keys]
    init_sentry(
        dsn,
        secrets=known_secrets(settings, names) if dsn else [],
        environment=settings.sentry_environment,
        release=f"apiwatch@{__version__}",
    )


def _browsable(host: str) -> str:
    """The address to open in a browser: a wildcard bind is reached as localhost."""
    return "localhost" if host in ("0.0.0.0", "::", "127.0.0.1") else host


def _alert_settings(settings: Settings) -> None:
    from apiwatch.alerting.channels import build_channel
    from apiwatch.alerting.config import load_alert_settings

    try:
        loaded = load_alert_settings(user_path=settings.alerts_file)
        for name, config in loaded.channel_configs().items():
            build_channel(config["kind"], name, config)
    except ValueError as exc:  # AlertConfigError names file, line and field
        where = f"{settings.alerts_file}: " if settings.alerts_file else ""
        text = str(exc)
        sys.stderr.write(f"{text if text.startswith('invalid') else where + text}\n")
        raise typer.Exit(2) from exc
    _maintenance_windows(settings)


def _maintenance_windows(settings: Settings) -> list[Any]:
    """The maintenance file's windows, or exit 2 naming its file, line and field."""
    if settings.maintenance_file is None:
        return []
    from apiwatch.alerting.maintenance_file import load_maintenance_file

    try:
        return list(load_maintenance_file(settings.maintenance_file))
    except ValueError as exc:
        sys.stderr.write(f"{exc}\n")
        raise typer.Exit(2) from exc


def _print_first_key(key: str) -> None:
    # Printed, never logged: this is the only time the key exists outside its hash.
    err.print(
        "[bold]No API keys yet: created an admin key.[/bold] Store it now, it is not shown "
        f"again:\n  X-API-Key: {key}\n(more keys: apiwatch keys create --name NAME "
        "--scope read|admin)"
    )


def _print_table(results: list[ProbeResult]) -> None:
    # Identifiers are never cut (at 80 columns `connection_e…` helps nobody); the reason
    # takes what is left and wraps. The try column appears only when something was retried.
    tries = any(r.attempt > 1 for r in results)
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    for column in ("provider", "endpoint", "outcome"):
        table.add_column(column, no_wrap=True, overflow="ignore")
    if tries:
        table.add_column("try", justify="right", no_wrap=True)
    table.add_column("http", no_wrap=True)
    table.add_column("ms", justify="right", no_wrap=True)
    table.add_column("reason", ratio=1, min_width=10, overflow="fold")
    for r in results:
        style = _OUTCOME_STYLE.get(r.outcome, "red")
        table.add_row(
            r.provider,
            r.endpoint,
            f"[{style}]{r.outcome.value}[/{style}]",
            *([str(r.attempt)] if tries else []),
            "" if r.status_code is None else str(r.status_code),
            "" if r.latency_ms is None else f"{r.latency_ms:.0f}",
            r.reason,
        )
    out.print(table)


@app.command()
def check(
    provider: Annotated[str | None, typer.Argument(help="Provider id, e.g. coingecko")] = None,
    all_providers: Annotated[bool, typer.Option("--all", help="Every enabled provider")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per result")] = False,
    health_only: Annotated[
        bool, typer.Option("--health-only", help="Only the health endpoints")
    ] = False,
    repeat: Annotated[int, typer.Option(min=1, help="Run the checks N times (throughput)")] = 1,
) -> None:
    """Probe once and print one row (or JSON object) per endpoint attempt.

    Exit status: 0 when nothing failed, 1 when any endpoint failed, 2 on bad input.
    """
    from apiwatch.probe.client import create_session
    from apiwatch.runtime.health import run_checks
    from apiwatch.runtime.wiring import build_engine, redis_from_settings

    if (provider is None) == (not all_providers):
        err.print("name one provider, or pass --all")
        raise typer.Exit(2)
    settings = settings_or_exit()
    configure_logging(level="WARNING", json=settings.log_json)
    catalogue = catalogue_or_exit(settings)
    if provider is not None:
        spec = catalogue.get(provider)
        if spec is None:
            err.print(
                f"unknown provider {provider!r}; known: {', '.join(sorted(catalogue.providers))}"
            )
            raise typer.Exit(2)
        specs = [spec]
    else:
        specs = catalogue.enabled()

    async def go() -> tuple[list[ProbeResult], float, int]:
        # With REDIS_URL, this process shares the providers' budgets with every other one.
        redis_client = redis_from_settings(settings)
        async with create_session(
            connection_limit=settings.probe_concurrency, ca_file=settings.tls_ca_file
        ) as http:
            engine = build_engine(settings, catalogue, http, redis_client=redis_client)
            start = time.perf_counter()
            total = 0
            for _ in range(repeat):
                results = await run_checks(
                    engine,
                    specs,
                    scope="health" if health_only else "all",
                    concurrency=settings.probe_concurrency,
                )
                total += len(results)
            if redis_client is not None:
                await redis_client.aclose()
            return results, time.perf_counter() - start, total

    results, elapsed, total = run(go())
    if as_json:
        for r in results:
            sys.stdout.write(json.dumps(r.as_dict()) + "\n")
    else:
        _print_table(results)
    if repeat > 1:
        err.print(f"{total} probes in {elapsed:.2f} s: {total / elapsed:.0f} probes/s")
    final = {(r.provider, r.endpoint): r for r in results}
    raise typer.Exit(1 if any(r.outcome.is_failure for r in final.values()) else 0)


@app.command()
def simulate(
    port: Annotated[int, typer.Option(help="Port to listen on")] = 7861,
    host: Annotated[
        str, typer.Option(help="Address to bind (loopback only by default)")
    ] = "127.0.0.1",
    scenario: Annotated[
        list[str] | None,
        typer.Option(help="PROVIDER=NAME[:param=value,...], e.g. binance=down:status=502"),
    ] = None,
) -> None:
    """Serve every catalogue provider's API, with fault scenarios, for tests and demos."""
    from apiwatch.simulator import parse_scenario_arg, run_simulator

    try:
        scenarios = dict(parse_scenario_arg(text) for text in scenario or [])
    except ValueError as exc:
        err.print(f"bad --scenario: {exc}")
        raise typer.Exit(2) from exc
    run_simulator(host=host, port=port, scenarios=scenarios)


@app.command()
def demo(
    port: Annotated[int | None, typer.Option(help="apiwatch port (default 7860)")] = None,
    sim_port: Annotated[
        int | None, typer.Option(help="Simulator port (default 7861, APIWATCH_SIM_PORT)")
    ] = None,
    interval: Annotated[float, typer.Option(help="Seconds between health checks")] = 5.0,
) -> None:
    """apiwatch against the built-in simulator, with faults injected on a timetable."""
    from apiwatch.demo import run_demo, set_demo_keys

    set_demo_keys()
    settings = settings_or_exit(
        port=port,
        sim_port=sim_port,
        health_interval_s=interval,
        database_url=os.environ.get("DATABASE_URL", "sqlite+aiosqlite:///data/demo.db"),
        # The demo is for looking around: reads need no key (admin routes still do).
        public_read=True,
    )
    settings = settings.model_copy(
        update={"upstream_override": f"http://127.0.0.1:{settings.sim_port}"}
    )
    configure_logging(level="WARNING", json=False)
    preflight(
        settings, ports={"APIWATCH_PORT": settings.port, "APIWATCH_SIM_PORT": settings.sim_port}
    )
    says = Console(soft_wrap=True)
    run(run_demo(settings, sim_port=settings.sim_port, say=says.print))


@app.command()
def report(
    month: Annotated[str | None, typer.Option(help="YYYY-MM (UTC); default: last month")] = None,
    out_file: Annotated[str, typer.Option("--out", help="Where to write the HTML")] = "report.html",
) -> None:
    """Write the monthly vendor report (scorecard, incidents) as one printable HTML file."""
    from pathlib import Path

    from apiwatch.api.vendor_report import report_from_database
    from apiwatch.runtime.slo import month_span

    try:
        if month is not None:
            month_span(month)
    except ValueError as exc:
        err.print(f"--month: {exc}")
        raise typer.Exit(2) from exc
    settings = settings_or_exit()
    configure_logging(level="WARNING", json=settings.log_json)
    catalogue = catalogue_or_exit(settings)
    windows = _maintenance_windows(settings)
    try:
        page = run(
            report_from_database(
                settings.database_url,
                catalogue,
                month=month,
                file_windows=windows,
                poor_after=settings.slo_poor_after,
                defaults=ResolvedObjective(
                    target=settings.slo_target, window_days=settings.slo_window_days
                ),
            )
        )
    except ValueError as exc:
        err.print(f"--month: {exc}")
        raise typer.Exit(2) from exc
    Path(out_file).write_text(page, encoding="utf-8")
    err.print(f"wrote {out_file}")


if __name__ == "__main__":  # pragma: no cover
    app()

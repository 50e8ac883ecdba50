"""The `apiwatch` command: serve, check, simulate, demo, db upgrade, providers.

Reads Settings once per command and passes them down, like the API does.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import Coroutine
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from apiwatch.catalogue.loader import Catalogue, CatalogueError, load_catalogue
from apiwatch.domain import Outcome, ProbeResult
from apiwatch.logs import configure_logging
from apiwatch.settings import Settings

app = typer.Typer(
    help="apiwatch: monitor the third-party APIs your product depends on.",
    no_args_is_help=True,
    add_completion=False,
)
db_app = typer.Typer(help="Database maintenance.", no_args_is_help=True)
app.add_typer(db_app, name="db")
keys_app = typer.Typer(help="API keys for apiwatch's own API.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
out = Console()
err = Console(stderr=True, soft_wrap=True, highlight=False)

_OUTCOME_STYLE = {
    Outcome.OK: "green",
    Outcome.SLOW: "yellow",
    Outcome.RATE_LIMITED: "yellow",
    Outcome.SKIPPED: "dim",
}


def _run(coro: Coroutine[Any, Any, Any]) -> Any:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - Windows
        return asyncio.run(coro)
    return uvloop.run(coro)


def _settings(**overrides: Any) -> Settings:
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        for error in exc.errors():
            field = ".".join(str(p) for p in error["loc"])
            err.print(f"[red]invalid setting[/red] {field}: {error['msg']}")
        raise typer.Exit(2) from exc


def _catalogue(settings: Settings) -> Catalogue:
    try:
        return load_catalogue(user_dir=settings.catalogue_dir)
    except CatalogueError as exc:
        sys.stderr.write(f"{exc}\n")  # verbatim: file paths and messages must not be re-wrapped
        raise typer.Exit(2) from exc


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to bind")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 7860)")] = None,
) -> None:
    """Run the monitor: scheduler, probes, storage and the API on one port."""
    import uvicorn

    from apiwatch.api.app import create_app

    settings = _settings(host=host, port=port)
    configure_logging(level=settings.log_level, json=settings.log_json)
    _catalogue(settings)  # fail fast, with file and line, before uvicorn starts
    _alert_settings(settings)
    err.print(f"apiwatch on http://{settings.host}:{settings.port}  (docs: /docs)")
    if settings.public_read:
        err.print("read routes are public (APIWATCH_PUBLIC_READ=true); admin routes need a key")
    uvicorn.run(
        create_app(settings, on_first_key=_print_first_key),
        host=settings.host,
        port=settings.port,
        log_config=None,
    )


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


def _print_first_key(key: str) -> None:
    # Printed, never logged: this is the only time the key exists outside its hash.
    err.print(
        "[bold]No API keys yet: created an admin key.[/bold] Store it now, it is not shown "
        f"again:\n  X-API-Key: {key}\n(more keys: apiwatch keys create --name NAME "
        "--scope read|admin)"
    )


def _print_table(results: list[ProbeResult]) -> None:
    table = Table(show_lines=False)
    for column in ("provider", "endpoint", "outcome", "status", "latency", "reason"):
        table.add_column(column)
    for r in results:
        style = _OUTCOME_STYLE.get(r.outcome, "red")
        attempt = f" (try {r.attempt})" if r.attempt > 1 else ""
        table.add_row(
            r.provider,
            r.endpoint,
            f"[{style}]{r.outcome.value}[/{style}]{attempt}",
            "" if r.status_code is None else str(r.status_code),
            "" if r.latency_ms is None else f"{r.latency_ms:.0f} ms",
            r.reason,
        )
    out.print(table)


@app.command()
def check(
    provider: Annotated[str | None, typer.Argument(help="Provider id, e.g. coingecko")] = None,
    all_providers: Annotated[bool, typer.Option("--all", help="Every enabled provider")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per result")] = False,
    health_only: Annotated[bool, typer.Option("--health-only", help="Only health")] = False,
    repeat: Annotated[int, typer.Option(min=1, help="Run the checks N times (throughput)")] = 1,
) -> None:
    """Probe once and print one row (or JSON object) per endpoint attempt.

    Exit status: 0 when nothing failed, 1 when any endpoint failed, 2 on bad input.
    """
    from apiwatch.probe.client import create_session
    from apiwatch.runtime import build_engine, redis_from_settings, run_checks

    if (provider is None) == (not all_providers):
        err.print("name one provider, or pass --all")
        raise typer.Exit(2)
    settings = _settings()
    configure_logging(level="WARNING", json=settings.log_json)
    catalogue = _catalogue(settings)
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
        async with create_session(connection_limit=settings.probe_concurrency) as http:
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

    results, elapsed, total = _run(go())
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
    sim_port: Annotated[int, typer.Option(help="Simulator port")] = 7861,
    interval: Annotated[float, typer.Option(help="Seconds between health checks")] = 5.0,
) -> None:
    """apiwatch against the built-in simulator, with faults injected on a timetable."""
    from apiwatch.demo import run_demo

    for name in _demo_key_names():
        os.environ.setdefault(name, f"demo-{name.lower().replace('_', '-')}-0000")
    sim_url = f"http://127.0.0.1:{sim_port}"
    settings = _settings(
        port=port,
        upstream_override=sim_url,
        health_interval_s=interval,
        database_url=os.environ.get("DATABASE_URL", "sqlite+aiosqlite:///data/demo.db"),
        # The demo is for looking around: reads need no key (admin routes still do).
        public_read=True,
    )
    configure_logging(level="WARNING", json=False)
    says = Console(soft_wrap=True)
    _run(run_demo(settings, sim_port=sim_port, say=says.print))


def _demo_key_names() -> list[str]:
    catalogue = load_catalogue()
    return [name for spec in catalogue.providers.values() for name in spec.auth.keys]


async def _with_access(settings: Settings, action: Any) -> Any:
    from apiwatch.access import AccessControl
    from apiwatch.inbound import MemoryKeyStore
    from apiwatch.storage.db import create_engine, create_sessionmaker
    from apiwatch.storage.migrate import upgrade

    await upgrade(settings.database_url)
    engine = create_engine(settings.database_url)
    try:
        access = AccessControl(
            sessions=create_sessionmaker(engine),
            store=MemoryKeyStore(),
            record=lambda row: None,  # nothing to record: no requests pass through here
        )
        return await action(access)
    finally:
        await engine.dispose()


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Option(help="Who or what uses the key")],
    scope: Annotated[str, typer.Option(help="read or admin")] = "read",
    minute: Annotated[int | None, typer.Option(min=1, help="Requests per minute")] = None,
    hour: Annotated[int | None, typer.Option(min=1, help="Requests per hour")] = None,
    day: Annotated[int | None, typer.Option(min=1, help="Requests per day")] = None,
) -> None:
    """Create a key and print it once (only its hash is stored)."""
    if scope not in ("read", "admin"):
        err.print(f"--scope must be read or admin, not {scope!r}")
        raise typer.Exit(2)
    settings = _settings()
    configure_logging(level="WARNING", json=settings.log_json)

    async def create(access: Any) -> tuple[dict[str, Any], str]:
        return await access.create(
            name=name, scope=scope, minute_limit=minute, hour_limit=hour, day_limit=day
        )

    row, key = _run(_with_access(settings, create))
    err.print(f"created key {row['id']} ({scope}) for {name}; store it now, it is not shown again")
    sys.stdout.write(key + "\n")


@keys_app.command("list")
def keys_list() -> None:
    """List keys, masked, with scope, state and usage."""
    settings = _settings()
    configure_logging(level="WARNING", json=settings.log_json)

    async def listing(access: Any) -> list[dict[str, Any]]:
        return await access.list()

    table = Table()
    for column in ("id", "key", "name", "scope", "active", "usage", "last used"):
        table.add_column(column)
    for row in _run(_with_access(settings, listing)):
        table.add_row(
            str(row["id"]),
            row["key"],
            row["name"],
            row["scope"],
            "yes" if row["active"] else "no",
            str(row["usage_count"]),
            "" if row["last_used"] is None else row["last_used"].isoformat(timespec="seconds"),
        )
    out.print(table)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Run the database migrations up to the newest (also done at every start)."""
    from apiwatch.storage.migrate import upgrade_sync

    settings = _settings()
    upgrade_sync(settings.database_url)
    err.print("database is at the newest migration")


@app.command()
def providers() -> None:
    """List the catalogue: ids, categories, whether enabled and whether keys are set."""
    settings = _settings()
    catalogue = _catalogue(settings)
    names = [name for spec in catalogue.providers.values() for name in spec.auth.keys]
    present = settings.secrets(names)
    table = Table()
    for column in ("id", "name", "category", "enabled", "keys", "source"):
        table.add_column(column)
    for spec in catalogue.providers.values():
        keys = sum(1 for name in spec.auth.keys if name in present)
        need = "required" if spec.auth.required else "optional" if spec.auth.keys else "none"
        table.add_row(
            spec.id,
            spec.name,
            spec.category.value,
            "yes" if spec.enabled else "no",
            f"{keys}/{len(spec.auth.keys)} ({need})",
            str(catalogue.sources[spec.id].name),
        )
    out.print(table)


if __name__ == "__main__":  # pragma: no cover
    app()

"""`apiwatch providers` (the running catalogue as a table) and `apiwatch providers export`
(the running catalogue as YAML files): the files' providers merged with those stored
through the API, by the same precedence the server applies (docs/providers.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from apiwatch.catalogue.loader import Catalogue
from apiwatch.catalogue.merge import Source
from apiwatch.cli_support import catalogue_or_exit, err, out, preflight, run, settings_or_exit
from apiwatch.logs import configure_logging
from apiwatch.settings import Settings

providers_app = typer.Typer(
    help="The provider catalogue: list it, or export it as YAML files.",
    invoke_without_command=True,
)


async def running_catalogue(settings: Settings) -> tuple[Catalogue, dict[str, Source]]:
    """The catalogue a server with these settings runs: files, then the database's."""
    from apiwatch.runtime.live_catalogue import LiveCatalogue, load_stored
    from apiwatch.storage.db import create_engine, create_sessionmaker
    from apiwatch.storage.migrate import upgrade

    files = catalogue_or_exit(settings)
    await upgrade(settings.database_url)
    engine = create_engine(settings.database_url)
    try:
        live = LiveCatalogue(files, overrides=settings.provider_overrides)
        catalogue = live.compose(await load_stored(create_sessionmaker(engine)))
    finally:
        await engine.dispose()
    return catalogue, live.sources


@providers_app.callback()
def providers(ctx: typer.Context) -> None:
    """List the running catalogue: ids, categories, whether enabled, keys set, source."""
    if ctx.invoked_subcommand is not None:
        return
    settings = settings_or_exit()
    configure_logging(level="WARNING", json=settings.log_json)
    preflight(settings)
    catalogue, sources = run(running_catalogue(settings))
    names = [name for spec in catalogue.providers.values() for name in spec.auth.keys]
    present = settings.secrets(names)
    table = Table()
    # The id (what every other command takes) and the source are never cut.
    table.add_column("id", no_wrap=True)
    for column in ("name", "category", "enabled", "keys"):
        table.add_column(column)
    table.add_column("source", no_wrap=True)
    for spec in catalogue.providers.values():
        keys = sum(1 for name in spec.auth.keys if name in present)
        need = "required" if spec.auth.required else "optional" if spec.auth.keys else "none"
        path = catalogue.sources.get(spec.id)
        source = sources[spec.id].value
        table.add_row(
            spec.id,
            spec.name,
            spec.category.value,
            "yes" if spec.enabled else "no",
            f"{keys}/{len(spec.auth.keys)} ({need})",
            # A user's file is named (which one defines it); the shipped ones need not be.
            f"file ({path.name})" if path and source == "file" else source,
        )
    out.print(table)


@providers_app.command("export")
def export(
    directory: Annotated[
        Path, typer.Option("--dir", help="Where to write one <id>.yaml per provider")
    ] = Path("providers-export"),
    only_api: Annotated[
        bool, typer.Option("--only-api", help="Only providers stored through the API")
    ] = False,
) -> None:
    """Write the running catalogue as YAML files that load back to the same providers
    (keys stay environment variable names: nothing secret is written)."""
    from apiwatch.catalogue.export import export_specs

    settings = settings_or_exit()
    configure_logging(level="WARNING", json=settings.log_json)
    preflight(settings)
    catalogue, sources = run(running_catalogue(settings))
    specs = [
        spec
        for spec in catalogue.providers.values()
        if not only_api or sources[spec.id] in (Source.API, Source.API_OVERRIDE)
    ]
    headers = {
        spec.id: f"# {spec.id}: exported from apiwatch, source {sources[spec.id].value}\n"
        for spec in specs
    }
    written = export_specs(specs, directory, headers=headers)
    err.print(f"wrote {len(written)} provider files to {directory}")

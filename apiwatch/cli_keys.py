"""`apiwatch keys …` (apiwatch's own API keys: create, revoke, list) and `apiwatch db
upgrade`, straight against the database of the settings."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer
from rich.table import Table

from apiwatch.cli_support import err, out, preflight, run, settings_or_exit
from apiwatch.logs import configure_logging
from apiwatch.settings import Settings

db_app = typer.Typer(help="Database maintenance.", no_args_is_help=True)
keys_app = typer.Typer(help="API keys for apiwatch's own API.", no_args_is_help=True)


async def _with_access(settings: Settings, action: Any) -> Any:
    from apiwatch.inbound import MemoryKeyStore
    from apiwatch.runtime.access import AccessControl
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
    settings = settings_or_exit()
    configure_logging(level="WARNING", json=settings.log_json)

    async def create(access: Any) -> tuple[dict[str, Any], str]:
        return await access.create(
            name=name, scope=scope, minute_limit=minute, hour_limit=hour, day_limit=day
        )

    preflight(settings)
    row, key = run(_with_access(settings, create))
    err.print(f"created key {row['id']} ({scope}) for {name}; store it now, it is not shown again")
    sys.stdout.write(key + "\n")


@keys_app.command("revoke")
def keys_revoke(
    key_id: Annotated[int, typer.Argument(help="The key's id (apiwatch keys list)")],
) -> None:
    """Deactivate a key; a running server refuses it within APIWATCH_API_KEY_RECHECK_S (1 s)."""
    settings = settings_or_exit()
    configure_logging(level="WARNING", json=settings.log_json)
    preflight(settings)

    async def revoke(access: Any) -> dict[str, Any] | None:
        return await access.update(key_id, {"active": False})

    row = run(_with_access(settings, revoke))
    if row is None:
        err.print(f"no key with id {key_id} (see: apiwatch keys list)")
        raise typer.Exit(1)
    err.print(f"revoked key {key_id} ({row['key']}, {row['name']})")


@keys_app.command("list")
def keys_list() -> None:
    """List keys, masked, with scope, state and usage."""
    settings = settings_or_exit()
    configure_logging(level="WARNING", json=settings.log_json)

    async def listing(access: Any) -> list[dict[str, Any]]:
        return await access.list()

    preflight(settings)
    table = Table()
    for column in ("id", "key", "name", "scope", "active", "usage", "last used"):
        table.add_column(column)
    for row in run(_with_access(settings, listing)):
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
    settings = settings_or_exit()
    preflight(settings)  # connects and migrates, explaining any failure
    err.print("database is at the newest migration")

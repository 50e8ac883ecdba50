"""What every `apiwatch` command shares: the consoles, running a coroutine (uvloop where
there is one), settings and the catalogue read or a one-line error and exit status 2, and
the pre-flight checks of ports, database and Redis."""

from __future__ import annotations

import asyncio
import sys
import traceback
from collections.abc import Coroutine
from typing import Any

import typer
from pydantic import ValidationError
from pydantic_settings import SettingsError
from rich.console import Console

from apiwatch.catalogue.loader import Catalogue, CatalogueError, load_catalogue
from apiwatch.settings import Settings, describe_setting_errors, describe_settings_error

out = Console()
err = Console(stderr=True, soft_wrap=True, highlight=False)


def run(coro: Coroutine[Any, Any, Any]) -> Any:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - Windows
        return asyncio.run(coro)
    return uvloop.run(coro)


def settings_or_exit(**overrides: Any) -> Settings:
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        for line in describe_setting_errors(exc):
            sys.stderr.write(f"invalid setting: {line}\n")
        raise typer.Exit(2) from exc
    except SettingsError as exc:
        sys.stderr.write(f"invalid setting: {describe_settings_error(exc)}\n")
        raise typer.Exit(2) from exc


def explain(problem: Exception, settings: Settings) -> typer.Exit:
    """Print a StartupProblem in its one or two lines (the traceback only at DEBUG)."""
    if settings.log_level.upper() == "DEBUG":
        traceback.print_exception(problem)
    sys.stderr.write(f"apiwatch cannot start: {problem}\n")
    return typer.Exit(2)


def preflight(settings: Settings, *, ports: dict[str, int] | None = None) -> None:
    """Ports first (nothing printed yet), then the database (migrated) and Redis."""
    from apiwatch.runtime.preflight import StartupProblem, check_port, check_services

    try:
        for setting, port in (ports or {}).items():
            check_port(settings.host, port, setting=setting)
        run(check_services(settings.database_url, settings.redis_url))
    except StartupProblem as problem:
        raise explain(problem, settings) from problem


def catalogue_or_exit(settings: Settings) -> Catalogue:
    try:
        return load_catalogue(user_dir=settings.catalogue_dir)
    except CatalogueError as exc:
        sys.stderr.write(f"{exc}\n")  # verbatim: file paths and messages must not be re-wrapped
        raise typer.Exit(2) from exc

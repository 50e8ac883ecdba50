"""Persistence: the async engine, the schema, its migrations, the batched recorder and the
repositories (docs/operations.md).

Imports only `apiwatch.domain` from the rest of apiwatch. Callers above this layer get plain
dicts from the repositories, never ORM objects.
"""

from apiwatch.storage.db import create_engine, create_sessionmaker, normalize_url
from apiwatch.storage.migrate import upgrade, upgrade_sync
from apiwatch.storage.recorder import Recorder

__all__ = [
    "Recorder",
    "create_engine",
    "create_sessionmaker",
    "normalize_url",
    "upgrade",
    "upgrade_sync",
]

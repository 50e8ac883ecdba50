"""Inserting many rows of one table through the driver's own executemany.

The recorder writes one `api_usage` row per API request: thousands a second under load, on
the event loop that also serves the requests. SQLAlchemy's Core `insert()` with a list of
rows compiles and batches them well, but it still processes every row through its own
layers (about 15 µs a row, measured). Here the statement is compiled once per dialect and
column set, each row becomes a tuple of values passed through the columns' own bind
converters (the same ones SQLAlchemy would apply: aware datetimes made naive UTC for SQLite,
naive ones refused), and the list goes to `exec_driver_sql`, which hands it to the driver's
executemany (sqlite3's, asyncpg's) with almost no work per row. It runs on the session's
connection, in its transaction, so the batch stays one commit with the recorder's other
tables, and the driver's errors arrive wrapped as SQLAlchemy's, as before.

Only tables whose missing columns have no Python-side default can go this way (there is
nothing to compute per row); `prepare` returns None for the others, which keep `insert()`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from operator import itemgetter
from typing import Any

from sqlalchemy import Table, insert
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import StatementError
from sqlalchemy.ext.asyncio import AsyncConnection

Row = dict[str, Any]
# Rows per multi-row INSERT on SQLite.
MAX_ROWS_PER_STATEMENT = 100
Processor = Callable[[Any], Any] | None


class PreparedInsert:
    """One table's INSERT for one column set, compiled for one dialect."""

    __slots__ = ("_converted", "_get", "chunk", "chunk_sql", "names", "processors", "sql")

    def __init__(
        self, sql: str, names: tuple[str, ...], processors: tuple[Processor, ...], chunk: int = 0
    ):
        self.sql = sql
        self.names = names
        self.processors = processors
        # With `chunk`, also the statement that inserts that many rows at once.
        self.chunk = chunk
        head, _, group = sql.partition(" VALUES ")
        self.chunk_sql = f"{head} VALUES {', '.join([group] * chunk)}" if chunk > 1 else ""
        if not self.chunk_sql:
            self.chunk = 0
        # The row's values in the statement's order in one C call; then only the columns
        # that convert anything are touched.
        self._get = itemgetter(*names)
        self._converted = tuple((i, p) for i, p in enumerate(processors) if p is not None)

    def values(self, rows: Sequence[Row]) -> list[tuple[Any, ...]]:
        """The rows as tuples in the statement's order, converted for the driver.

        A value its column refuses (a naive datetime) raises StatementError, as
        SQLAlchemy's own binding does, so the recorder's bad-row handling applies."""
        get, converted = self._get, self._converted
        if len(self.names) == 1:
            plain = [(get(row),) for row in rows]
        else:
            plain = [get(row) for row in rows]
        if not converted:
            return plain
        out = []
        try:
            for values in plain:
                row = list(values)
                for index, process in converted:
                    row[index] = process(row[index])
                out.append(tuple(row))
        except (TypeError, ValueError) as error:
            raise StatementError(str(error), self.sql, None, error) from error
        return out

    async def execute(self, connection: AsyncConnection, rows: Sequence[Row]) -> None:
        values = self.values(rows)
        chunk = self.chunk
        if chunk and len(values) >= chunk:
            # SQLite: many rows per statement. sqlite3's executemany steps the statement once
            # per row, releasing and taking back the GIL each time, which the event loop's
            # thread then waits for; a multi-row VALUES steps once per chunk.
            whole = len(values) - len(values) % chunk
            flat = [
                tuple([value for row in values[start : start + chunk] for value in row])
                for start in range(0, whole, chunk)
            ]
            await connection.exec_driver_sql(self.chunk_sql, flat)
            values = values[whole:]
        if values:
            await connection.exec_driver_sql(self.sql, values)


_PREPARED: dict[tuple[str, str, frozenset[str]], PreparedInsert | None] = {}


def prepare(table: Table, columns: frozenset[str], dialect: Dialect) -> PreparedInsert | None:
    """The compiled INSERT of `columns` into `table` for `dialect`, or None when it cannot
    be written this way (a missing column has a Python-side default, or the dialect's
    parameters are not positional)."""
    cache_key = (dialect.name, table.name, columns)
    if cache_key in _PREPARED:
        return _PREPARED[cache_key]
    prepared: PreparedInsert | None = None
    defaulted = any(
        column.default is not None or column.onupdate is not None
        for column in table.columns
        if column.key not in columns
    )
    if not defaulted:
        # for_executemany: no RETURNING of the new ids, which nobody reads here.
        compiled = insert(table).compile(
            dialect=dialect, column_keys=sorted(columns), for_executemany=True
        )
        names = tuple(compiled.positiontup or ())
        if names and set(names) == columns:
            processors = tuple(
                table.columns[name].type.dialect_impl(dialect).bind_processor(dialect)
                for name in names
            )
            # qmark (SQLite): rows go several to a statement, within SQLite's oldest bound
            # on parameters per statement (999).
            chunk = (
                min(MAX_ROWS_PER_STATEMENT, 999 // len(names))
                if dialect.paramstyle == "qmark"
                else 0
            )
            prepared = PreparedInsert(str(compiled), names, processors, chunk)
    _PREPARED[cache_key] = prepared
    return prepared

"""The maintenance file (`APIWATCH_MAINTENANCE_FILE`): windows planned in YAML, read at start.

```yaml
windows:
  nightly-backup:                # the window's name; its id is `file:nightly-backup`
    title: Nightly database backup
    message: Quotes may lag by a minute.
    matchers: {provider: coingecko}
    timezone: Europe/Berlin
    recurrence: {every: daily, at: "02:00"}
    duration_s: 1800
```

The fields are those of `POST /api/maintenance`. Errors name the file, the line and the
field, like the alert settings and the catalogue (`ConfigProblem`), and every problem of
the file is reported at once.
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from apiwatch.alerting.config import AlertConfigError, ConfigProblem, read_yaml_file
from apiwatch.alerting.maintenance import MaintenanceError, MaintenanceWindow
from apiwatch.catalogue.loader import node_line

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class MaintenanceFileError(AlertConfigError):
    """The maintenance file is invalid; `problems` says where and why."""

    def __init__(self, problems: list[ConfigProblem]) -> None:
        super().__init__(problems)
        self.args = ("invalid maintenance file:\n" + "\n".join(f"  {p}" for p in problems),)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FileRecurrence(_Strict):
    every: Literal["daily", "weekly", "monthly", "cron"]
    at: str | None = None
    weekdays: list[str] | None = None
    day: int | None = None
    cron: str | None = None

    @field_validator("at", mode="before")
    @classmethod
    def _sexagesimal(cls, value: Any) -> Any:
        # YAML 1.1 reads an unquoted 02:30 as the number 150 (base 60): take it back.
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 24 * 60:
            return f"{value // 60:02d}:{value % 60:02d}"
        return value


class FileWindow(_Strict):
    title: str = Field(min_length=1, max_length=200)
    message: str = Field(default="", max_length=2000)
    matchers: dict[str, str]
    timezone: str = "UTC"
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    duration_s: int | None = None
    recurrence: FileRecurrence | None = None


def _describe(error: Any) -> str:
    return str(error["msg"]).removeprefix("Value error, ")


def load_maintenance_file(path: Path) -> list[MaintenanceWindow]:
    """The windows of `path`; raises MaintenanceFileError naming file, line and field."""
    source = str(path)
    node, data = read_yaml_file(path, MaintenanceFileError)
    data = {} if data is None else data
    if not isinstance(data, dict) or set(data) - {"windows"}:
        raise MaintenanceFileError(
            [ConfigProblem(source, 1, "(file)", "expected a mapping with one key, `windows`")]
        )
    windows = data.get("windows") or {}
    if not isinstance(windows, dict):
        line = node_line(node, ["windows"])
        raise MaintenanceFileError(
            [ConfigProblem(source, line, "windows", "expected a mapping of name: window")]
        )
    problems: list[ConfigProblem] = []
    out: list[MaintenanceWindow] = []
    for name, body in windows.items():
        where = ["windows", str(name)]
        if not isinstance(name, str) or not NAME.match(name):
            problems.append(
                ConfigProblem(
                    source,
                    node_line(node, where),
                    f"windows.{name}",
                    "a name of letters, digits, '.', '_' and '-' (at most 64)",
                )
            )
            continue
        try:
            parsed = FileWindow.model_validate(body)
        except ValidationError as exc:
            for error in exc.errors():
                loc = [*where, *error["loc"]]
                field = ".".join(str(part) for part in loc)
                problems.append(
                    ConfigProblem(source, node_line(node, loc), field, _describe(error))
                )
            continue
        try:
            out.append(
                MaintenanceWindow(
                    id=f"file:{name}",
                    source="file",
                    origin=f"{source}:{node_line(node, where)}",
                    recurrence=(
                        parsed.recurrence.model_dump(exclude_none=True)
                        if parsed.recurrence
                        else None
                    ),
                    **parsed.model_dump(exclude={"recurrence"}),
                )
            )
        except MaintenanceError as error:
            loc = [*where, *error.field.split(".")]
            problems.append(ConfigProblem(source, node_line(node, loc), ".".join(loc), str(error)))
    if problems:
        raise MaintenanceFileError(problems)
    return out

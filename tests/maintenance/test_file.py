"""The maintenance file: windows read from YAML, and errors naming file, line and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from apiwatch.alerting.maintenance_file import MaintenanceFileError, load_maintenance_file

GOOD = """\
windows:
  nightly-backup:
    title: Nightly database backup
    message: Quotes may lag by a minute.
    matchers: {provider: binance}
    timezone: Europe/Berlin
    recurrence: {every: daily, at: 02:30}
    duration_s: 1800
  migration:
    title: Exchange migration
    matchers: {category: market_data}
    starts_at: 2026-12-24T22:00:00Z
    ends_at: 2026-12-25T02:00:00Z
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "maintenance.yaml"
    path.write_text(text)
    return path


def test_windows_are_read_with_their_origin(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    nightly, migration = load_maintenance_file(path)
    assert nightly.id == "file:nightly-backup" and nightly.source == "file"
    assert nightly.origin == f"{path}:2"
    # An unquoted 02:30 is a YAML 1.1 number (150); it is read back as the time.
    assert nightly.recurrence == {"every": "daily", "at": "02:30"}
    assert migration.duration.total_seconds() == 4 * 3600


@pytest.mark.parametrize(
    ("text", "line", "field"),
    [
        (GOOD.replace("Europe/Berlin", "Europe/Atlantis"), 6, "windows.nightly-backup.timezone"),
        (GOOD.replace("duration_s: 1800", "duration_s: 0"), 8, "windows.nightly-backup.duration_s"),
        (
            GOOD.replace("{every: daily, at: 02:30}", "{every: cron, cron: '99 * * * *'}"),
            7,
            "windows.nightly-backup.recurrence.cron",
        ),
        (GOOD.replace("2026-12-25T02", "2026-12-23T02"), 13, "windows.migration.ends_at"),
        (GOOD.replace("    title: Exchange migration\n", ""), 9, "windows.migration.title"),
        (
            GOOD.replace("matchers: {provider: binance}", "matchers: {colour: red}"),
            5,
            "windows.nightly-backup.matchers.colour",
        ),
        (
            GOOD.replace("    message: Quotes", "    mesage: Quotes"),
            4,
            "windows.nightly-backup.mesage",
        ),
    ],
)
def test_a_bad_file_names_its_file_line_and_field(
    tmp_path: Path, text: str, line: int, field: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(MaintenanceFileError) as caught:
        load_maintenance_file(path)
    (problem,) = caught.value.problems
    assert (problem.source, problem.line, problem.field) == (str(path), line, field)
    assert str(caught.value).startswith("invalid maintenance file:")
    assert f"{path}:{line}: {field}:" in str(caught.value)


def test_broken_yaml_and_a_missing_file_say_so(tmp_path: Path) -> None:
    with pytest.raises(MaintenanceFileError) as caught:
        load_maintenance_file(write(tmp_path, "windows:\n  a: [\n"))
    assert caught.value.problems[0].field == "(yaml)"
    with pytest.raises(MaintenanceFileError) as caught:
        load_maintenance_file(tmp_path / "absent.yaml")
    assert caught.value.problems[0].field == "(file)"

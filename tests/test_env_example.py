"""`.env.example` lists every setting with its real default and every provider key, and
names nothing outside the repository."""

from __future__ import annotations

import json
import re
from pathlib import Path

from apiwatch.catalogue.loader import load_catalogue
from apiwatch.settings import Settings, env_name

ROOT = Path(__file__).resolve().parents[1]
LINE = re.compile(r"^(#\s*)?([A-Z][A-Z0-9_]+)=(.*?)\s*$")


def _entries() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        match = LINE.match(line)
        if match:
            found.setdefault(match.group(2), []).append(match.group(3))
    return found


def _shown(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)


def test_every_setting_is_listed_with_its_default() -> None:
    entries = _entries()
    missing, wrong = [], []
    for name, field in Settings.model_fields.items():
        variable = env_name(name)
        if variable not in entries:
            missing.append(variable)
            continue
        default = field.default_factory() if field.default_factory else field.default  # type: ignore[call-arg]
        if entries[variable][0] != _shown(default):
            wrong.append(f"{variable}={entries[variable][0]!r}, default {_shown(default)!r}")
    assert not missing, f"not in .env.example: {missing}"
    assert not wrong, f"wrong defaults in .env.example: {wrong}"


def test_every_provider_key_is_listed() -> None:
    entries = _entries()
    names = {name for spec in load_catalogue().providers.values() for name in spec.auth.keys}
    assert names - set(entries) == set()


def test_no_stale_text() -> None:
    # Outside references are checked for every file by tests/test_docs.py.
    assert "later issue" not in (ROOT / ".env.example").read_text()

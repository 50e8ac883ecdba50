"""Writes providers as catalogue YAML files that `load_catalogue` reads back to the same
specs: only the fields a definition gave are written, aliases (`json`, `in`) are written as a file
says them. Keys are never in a spec (`auth.keys` names environment variables), so nothing
secret is written.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from apiwatch.catalogue.schema import ProviderSpec


def spec_document(spec: ProviderSpec) -> dict[str, Any]:
    """The spec as a catalogue file holds it: JSON types, aliases, only the fields given
    (a default written out would read back the same, but `equals: null` must stay)."""
    return spec.model_dump(mode="json", by_alias=True, exclude_unset=True)


def spec_yaml(spec: ProviderSpec, *, header: str = "") -> str:
    body = yaml.safe_dump(
        spec_document(spec), sort_keys=False, allow_unicode=True, default_flow_style=False
    )
    return f"{header}{body}"


def export_specs(
    specs: Iterable[ProviderSpec], directory: Path, *, headers: dict[str, str] | None = None
) -> list[Path]:
    """One `<id>.yaml` per provider in `directory` (created if missing); the paths written.
    `headers` gives a comment block per provider id (where it came from)."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for spec in specs:
        path = directory / f"{spec.id}.yaml"
        header = (headers or {}).get(spec.id, "")
        path.write_text(spec_yaml(spec, header=header), encoding="utf-8")
        written.append(path)
    return written

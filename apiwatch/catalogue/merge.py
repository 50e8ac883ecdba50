"""Where each provider of the running catalogue comes from, and which definition wins.

Files are the operator's code: the built-in catalogue and the user's directory. The API
adds providers at run time, stored in the database. A provider defined in a file is
read-only through the API unless overrides are allowed (`APIWATCH_PROVIDER_OVERRIDES`);
then the stored definition wins and is shown as `api-override`. A stored definition of a
file provider while overrides are off is kept but not used (turning overrides on again
brings it back).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from apiwatch.catalogue.loader import BUILTIN_DIR, Catalogue
from apiwatch.catalogue.schema import ProviderSpec


class Source(StrEnum):
    BUILTIN = "builtin"
    FILE = "file"
    API = "api"
    API_OVERRIDE = "api-override"


def file_source(catalogue: Catalogue, provider_id: str) -> Source | None:
    """`builtin` or `file` for a provider some catalogue file defines, else None."""
    path = catalogue.sources.get(provider_id)
    if path is None:
        return None
    return Source.BUILTIN if path.parent.resolve() == BUILTIN_DIR.resolve() else Source.FILE


@dataclass(frozen=True)
class Merged:
    providers: dict[str, ProviderSpec]
    sources: dict[str, Source]
    # Stored definitions of file providers that lose to their file (overrides are off).
    shadowed: list[str]


def merge(files: Catalogue, stored: Mapping[str, ProviderSpec], *, overrides: bool) -> Merged:
    """The running catalogue: the files' providers, then the stored ones by the rules above
    (file providers first, in their order; API providers after, by id)."""
    providers = dict(files.providers)
    sources: dict[str, Source] = {}
    for pid in providers:
        sources[pid] = file_source(files, pid) or Source.FILE
    shadowed = []
    for pid in sorted(stored):
        if pid in files.providers:
            if not overrides:
                shadowed.append(pid)
                continue
            sources[pid] = Source.API_OVERRIDE
        else:
            sources[pid] = Source.API
        providers[pid] = stored[pid]
    return Merged(providers=providers, sources=sources, shadowed=shadowed)

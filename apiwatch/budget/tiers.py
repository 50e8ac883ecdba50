"""Budget tiers: how the gate names the tier a window belongs to, and how it lays out the
windows of one tier.

A tier is addressed by its scope: "" for the provider-wide `ip` tier, `endpoint:<name>`
for one endpoint's, `key:<env name>` for one key's (`key:*` holds the limits every key
gets). A tier's windows are every named window (0 where the catalogue sets no limit, so a
provider's reported figure can still be enforced), then its custom `<n>s` windows.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from apiwatch.budget.windows import WINDOWS, check_window

Tier = Literal["ip", "endpoint", "key"]
# A tier's windows as the gate keeps them: (window name, limit; 0 for none), every named
# window first, shortest first, then the custom `<n>s` windows the catalogue gives.
Windows = tuple[tuple[str, int], ...]


def tier_of(scope: str) -> tuple[Tier, str]:
    """`endpoint:books` → ("endpoint", "books"); "" → ("ip", "")."""
    kind, _, name = scope.partition(":")
    if kind == "endpoint":
        return "endpoint", name
    if kind == "key":
        return "key", name
    return "ip", ""


def describe_scope(scope: str) -> str:
    tier, name = tier_of(scope)
    return "" if tier == "ip" else f"{tier} {name} "


def tier_windows(limits: Mapping[str, int], where: str) -> Windows:
    for window, limit in limits.items():
        check_window(window)
        if limit < 1:
            raise ValueError(f"{where} {window} limit must be at least 1, got {limit}")
    custom = sorted((w for w in limits if w not in WINDOWS), key=lambda w: int(w.removesuffix("s")))
    return tuple((w, limits.get(w, 0)) for w in WINDOWS) + tuple((w, limits[w]) for w in custom)


def scope_order(scope: str) -> tuple[int, str]:
    return ({"ip": 0, "endpoint": 1, "key": 2}[tier_of(scope)[0]], scope)

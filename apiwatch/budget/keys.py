"""Provider key pools: which of a provider's configured keys to send, and how to show them.

Keys arrive as a mapping of environment-variable name to value (read by settings); they are
never logged or returned in full, only as `mask(key)`.
"""

from __future__ import annotations

from dataclasses import dataclass


def mask(secret: str) -> str:
    """`abcd…wxyz` for long keys; short keys show nothing of themselves."""
    if len(secret) >= 12:
        return f"{secret[:4]}…{secret[-4:]}"
    return "…" * 3


@dataclass(frozen=True, slots=True)
class Key:
    env_name: str
    value: str

    @property
    def label(self) -> str:
        return f"{self.env_name}={mask(self.value)}"


class KeyPool:
    """The keys configured for one provider, in the catalogue's order (primary first)."""

    def __init__(self, provider: str, keys: list[Key]) -> None:
        self.provider = provider
        self.keys = keys

    @classmethod
    def from_env(cls, provider: str, names: list[str], values: dict[str, str]) -> KeyPool:
        return cls(provider, [Key(name, values[name]) for name in names if values.get(name)])

    def current(self) -> Key | None:
        return self.keys[0] if self.keys else None

    def secrets(self) -> list[str]:
        return [key.value for key in self.keys]

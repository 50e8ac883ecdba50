"""Provider key pools: which of a provider's configured keys to send, and how to show them.

Keys arrive as a mapping of environment-variable name to value (read by settings); they are
never logged or returned in full, only as `mask(key)`.

A pool keeps its keys in the catalogue's order, primary first, and each key's status:
`unknown` until a provider has answered with it, then `valid`, `invalid` (rejected: skipped
until someone marks it ok again) or `rate_limited` until a given time. `current()` is the
first key that may be sent now, so the pool rotates to a backup while the primary is rate
limited and back to the primary as soon as its limit has passed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from apiwatch.domain import utcnow


def mask(secret: str) -> str:
    """`abcd…wxyz` for keys of 20+ characters, `…wxyz` from 12, nothing of shorter ones.

    At most 8 characters show, and never more than a third of the key.
    """
    if len(secret) >= 20:
        return f"{secret[:4]}…{secret[-4:]}"
    if len(secret) >= 12:
        return f"…{secret[-4:]}"
    return "…" * 3


@dataclass(frozen=True, slots=True)
class Key:
    env_name: str
    # Kept out of repr so a Key in a log line, traceback or assertion message stays masked.
    value: str = field(repr=False)

    @property
    def label(self) -> str:
        return f"{self.env_name}={mask(self.value)}"

    @property
    def masked(self) -> str:
        return mask(self.value)


class KeyStatus(StrEnum):
    VALID = "valid"
    INVALID = "invalid"
    RATE_LIMITED = "rate_limited"
    UNKNOWN = "unknown"


class PoolUnavailable(StrEnum):
    """Why a pool has no key to send; becomes the reason of a `skipped` result."""

    NO_KEYS = "no_keys"
    ALL_KEYS_INVALID = "all_keys_invalid"
    ALL_KEYS_RATE_LIMITED = "all_keys_rate_limited"


@dataclass(frozen=True, slots=True)
class KeyExpired:
    """A key was just rejected by its provider: what a `key_expired` event carries."""

    provider: str
    env_name: str
    masked: str
    at: datetime

    def as_dict(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "env_name": self.env_name,
            "masked": self.masked,
            "at": self.at.isoformat(),
        }


@dataclass(slots=True)
class _KeyState:
    status: KeyStatus = KeyStatus.UNKNOWN
    last_used: datetime | None = None
    until: datetime | None = None
    # What the key was before its rate limit, so it recovers to that (a key never seen
    # answering stays `unknown`, a known-good one goes back to `valid`).
    before_limit: KeyStatus = KeyStatus.UNKNOWN


class KeyPool:
    """The keys configured for one provider, in the catalogue's order (primary first)."""

    def __init__(
        self, provider: str, keys: list[Key], *, clock: Callable[[], datetime] = utcnow
    ) -> None:
        self.provider = provider
        self.keys = keys
        self._clock = clock
        self._states: dict[Key, _KeyState] = {key: _KeyState() for key in keys}

    @classmethod
    def from_env(
        cls,
        provider: str,
        names: list[str],
        values: dict[str, str],
        *,
        clock: Callable[[], datetime] = utcnow,
    ) -> KeyPool:
        keys = [Key(name, values[name]) for name in names if values.get(name)]
        return cls(provider, keys, clock=clock)

    def current(self) -> Key | None:
        """The first key that may be sent now, or None (see `unavailable_reason()`)."""
        now = self._clock()
        for key in self.keys:
            if self._usable(self._refreshed(key, now)):
                return key
        return None

    def secrets(self) -> list[str]:
        return [key.value for key in self.keys]

    # -- what the provider said about a key --------------------------------------------------

    def mark_used(self, key: Key, at: datetime | None = None) -> None:
        self._state(key).last_used = at if at is not None else self._clock()

    def mark_ok(self, key: Key) -> None:
        """The provider accepted the key (also how an `invalid` key is reinstated)."""
        state = self._state(key)
        state.status = KeyStatus.VALID
        state.until = None

    def mark_rate_limited(self, key: Key, until: datetime) -> None:
        """Skip the key until `until`; a later limit on an already limited key extends it."""
        state = self._refreshed(key, self._clock())
        if state.status is KeyStatus.INVALID:
            return  # a rejected key stays rejected; its rate limit is moot
        if state.status is not KeyStatus.RATE_LIMITED:
            state.before_limit = state.status
        elif state.until is not None and state.until > until:
            return
        state.status = KeyStatus.RATE_LIMITED
        state.until = until

    def mark_invalid(self, key: Key) -> KeyExpired | None:
        """Skip the key until it is marked ok again.

        Returns the `key_expired` details the first time only; a key already known to be
        invalid returns None, so repeated rejections do not repeat the event.
        """
        state = self._state(key)
        if state.status is KeyStatus.INVALID:
            return None
        state.status = KeyStatus.INVALID
        state.until = None
        return KeyExpired(self.provider, key.env_name, key.masked, self._clock())

    # -- reading ---------------------------------------------------------------------------

    def status(self, key: Key) -> KeyStatus:
        return self._refreshed(key, self._clock()).status

    def unavailable_reason(self) -> PoolUnavailable | None:
        """Why `current()` is None, or None while some key may be sent.

        Rate limited wins over invalid when both occur: it is the one that ends by itself.
        """
        if not self.keys:
            return PoolUnavailable.NO_KEYS
        now = self._clock()
        states = [self._refreshed(key, now) for key in self.keys]
        if any(self._usable(state) for state in states):
            return None
        if any(state.status is KeyStatus.RATE_LIMITED for state in states):
            return PoolUnavailable.ALL_KEYS_RATE_LIMITED
        return PoolUnavailable.ALL_KEYS_INVALID

    def next_available_at(self) -> datetime | None:
        """When the first rate-limited key comes back, if no key is usable now.

        None when a key is usable now, or when no key will ever come back by itself.
        """
        now = self._clock()
        states = [self._refreshed(key, now) for key in self.keys]
        if any(self._usable(state) for state in states):
            return None
        untils = [s.until for s in states if s.status is KeyStatus.RATE_LIMITED and s.until]
        return min(untils, default=None)

    def statuses(self) -> list[dict[str, Any]]:
        """Every key, masked, JSON-friendly, for the API; never the key itself."""
        now = self._clock()
        rows: list[dict[str, Any]] = []
        for key in self.keys:
            state = self._refreshed(key, now)
            rows.append(
                {
                    "provider": self.provider,
                    "env_name": key.env_name,
                    "masked": key.masked,
                    "status": state.status.value,
                    "last_used": _iso(state.last_used),
                    "until": _iso(state.until),
                }
            )
        return rows

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """Key states by env-var name (never the value), to share between processes."""
        return {
            key.env_name: {
                "status": state.status.value,
                "last_used": _iso(state.last_used),
                "until": _iso(state.until),
                "before_limit": state.before_limit.value,
            }
            for key, state in self._states.items()
        }

    def restore(self, snapshot: dict[str, dict[str, Any]]) -> None:
        """Take over key states another process saw; unknown names and bad entries are ignored."""
        by_name = {key.env_name: key for key in self.keys}
        for name, entry in snapshot.items():
            key = by_name.get(name)
            if key is None:
                continue
            try:
                self._states[key] = _KeyState(
                    status=KeyStatus(entry["status"]),
                    last_used=_parse(entry.get("last_used")),
                    until=_parse(entry.get("until")),
                    before_limit=KeyStatus(entry.get("before_limit", "unknown")),
                )
            except (KeyError, ValueError, TypeError):
                continue

    # -- internals -------------------------------------------------------------------------

    def _state(self, key: Key) -> _KeyState:
        try:
            return self._states[key]
        except KeyError:
            # Not `KeyError(key)`: the message must not carry the value.
            raise KeyError(f"{key.label} is not in the {self.provider} key pool") from None

    def _refreshed(self, key: Key, now: datetime) -> _KeyState:
        """The key's state, with a rate limit whose time has passed lifted."""
        state = self._state(key)
        if (
            state.status is KeyStatus.RATE_LIMITED
            and state.until is not None
            and now >= state.until
        ):
            state.status = state.before_limit
            state.until = None
        return state

    @staticmethod
    def _usable(state: _KeyState) -> bool:
        return state.status not in (KeyStatus.INVALID, KeyStatus.RATE_LIMITED)


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _parse(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None

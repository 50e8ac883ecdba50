"""Key pools: rotation on rate limits and rejections, recovery, and never showing a key."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from apiwatch.budget.keys import Key, KeyExpired, KeyPool, KeyStatus, PoolUnavailable, mask

T0 = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
PRIMARY = Key("ETHERSCAN_KEY_1", "PRIMARYSECRET-0123456789")
BACKUP = Key("ETHERSCAN_KEY_2", "BACKUPSECRET-abcdefghij")


class Clock:
    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def pool(clock: Clock) -> KeyPool:
    return KeyPool("etherscan", [PRIMARY, BACKUP], clock=clock)


def test_mask_shows_four_characters_each_side_of_long_keys() -> None:
    assert mask("abcd0123456789012wxyz") == "abcd…wxyz"
    assert mask("abcd01234wxyz") == "…wxyz"  # 13 characters: 8 shown would be most of it
    assert mask("short") == "………"


def test_key_repr_does_not_show_its_value() -> None:
    assert PRIMARY.value not in repr(PRIMARY)
    assert PRIMARY.label == "ETHERSCAN_KEY_1=PRIM…6789"


def test_from_env_keeps_catalogue_order_and_drops_unset_keys(clock: Clock) -> None:
    pool = KeyPool.from_env(
        "etherscan",
        ["ETHERSCAN_KEY_1", "ETHERSCAN_KEY_2", "ETHERSCAN_KEY_3"],
        {"ETHERSCAN_KEY_2": BACKUP.value, "ETHERSCAN_KEY_1": PRIMARY.value, "ETHERSCAN_KEY_3": ""},
        clock=clock,
    )
    assert pool.keys == [PRIMARY, BACKUP]
    assert pool.secrets() == [PRIMARY.value, BACKUP.value]


def test_new_keys_are_unknown_and_the_primary_is_current(pool: KeyPool) -> None:
    assert pool.current() == PRIMARY
    assert pool.status(PRIMARY) is KeyStatus.UNKNOWN
    assert pool.unavailable_reason() is None


def test_rate_limited_primary_rotates_to_the_backup_and_back_after_until(
    pool: KeyPool, clock: Clock
) -> None:
    pool.mark_ok(PRIMARY)
    pool.mark_rate_limited(PRIMARY, T0 + timedelta(seconds=60))
    assert pool.current() == BACKUP
    assert pool.status(PRIMARY) is KeyStatus.RATE_LIMITED
    clock.advance(59)
    assert pool.current() == BACKUP
    clock.advance(1)
    assert pool.current() == PRIMARY
    assert pool.status(PRIMARY) is KeyStatus.VALID  # recovers to what it was


def test_a_key_never_seen_answering_recovers_to_unknown(pool: KeyPool, clock: Clock) -> None:
    pool.mark_rate_limited(PRIMARY, T0 + timedelta(seconds=5))
    clock.advance(5)
    assert pool.status(PRIMARY) is KeyStatus.UNKNOWN


def test_a_later_rate_limit_extends_but_an_earlier_one_does_not_shorten(
    pool: KeyPool, clock: Clock
) -> None:
    pool.mark_rate_limited(PRIMARY, T0 + timedelta(seconds=60))
    pool.mark_rate_limited(PRIMARY, T0 + timedelta(seconds=10))
    clock.advance(30)
    assert pool.current() == BACKUP
    pool.mark_rate_limited(PRIMARY, T0 + timedelta(seconds=120))
    clock.advance(60)
    assert pool.current() == BACKUP
    clock.advance(30)
    assert pool.current() == PRIMARY


def test_invalid_key_is_skipped_permanently(pool: KeyPool, clock: Clock) -> None:
    pool.mark_invalid(PRIMARY)
    assert pool.current() == BACKUP
    clock.advance(365 * 86400)
    assert pool.current() == BACKUP
    assert pool.status(PRIMARY) is KeyStatus.INVALID


def test_a_rate_limit_does_not_revive_an_invalid_key(pool: KeyPool, clock: Clock) -> None:
    pool.mark_invalid(PRIMARY)
    pool.mark_rate_limited(PRIMARY, T0 + timedelta(seconds=1))
    clock.advance(2)
    assert pool.status(PRIMARY) is KeyStatus.INVALID


def test_marking_an_invalid_key_ok_reinstates_it(pool: KeyPool) -> None:
    pool.mark_invalid(PRIMARY)
    pool.mark_ok(PRIMARY)
    assert pool.current() == PRIMARY
    assert pool.status(PRIMARY) is KeyStatus.VALID


def test_mark_invalid_returns_masked_key_expired_details_once(pool: KeyPool) -> None:
    expired = pool.mark_invalid(BACKUP)
    assert expired == KeyExpired("etherscan", "ETHERSCAN_KEY_2", "BACK…ghij", T0)
    assert BACKUP.value not in json.dumps(expired.as_dict())
    assert pool.mark_invalid(BACKUP) is None  # no repeated key_expired for the same key


def test_all_keys_invalid_leaves_no_current_key_and_says_why(pool: KeyPool) -> None:
    pool.mark_invalid(PRIMARY)
    pool.mark_invalid(BACKUP)
    assert pool.current() is None
    assert pool.unavailable_reason() is PoolUnavailable.ALL_KEYS_INVALID
    assert pool.next_available_at() is None


def test_all_keys_rate_limited_leaves_no_current_key_until_the_first_recovers(
    pool: KeyPool, clock: Clock
) -> None:
    pool.mark_rate_limited(PRIMARY, T0 + timedelta(seconds=90))
    pool.mark_rate_limited(BACKUP, T0 + timedelta(seconds=30))
    assert pool.current() is None
    assert pool.unavailable_reason() is PoolUnavailable.ALL_KEYS_RATE_LIMITED
    assert pool.next_available_at() == T0 + timedelta(seconds=30)
    clock.advance(30)
    assert pool.current() == BACKUP
    assert pool.unavailable_reason() is None
    assert pool.next_available_at() is None


def test_invalid_and_rate_limited_together_report_rate_limited(pool: KeyPool) -> None:
    pool.mark_invalid(PRIMARY)
    pool.mark_rate_limited(BACKUP, T0 + timedelta(seconds=30))
    assert pool.current() is None
    assert pool.unavailable_reason() is PoolUnavailable.ALL_KEYS_RATE_LIMITED


def test_an_empty_pool_has_no_key(clock: Clock) -> None:
    pool = KeyPool("coingecko", [], clock=clock)
    assert pool.current() is None
    assert pool.unavailable_reason() is PoolUnavailable.NO_KEYS
    assert pool.statuses() == []


def test_mark_used_records_the_given_or_current_time(pool: KeyPool, clock: Clock) -> None:
    pool.mark_used(PRIMARY, T0 - timedelta(minutes=5))
    clock.advance(10)
    pool.mark_used(BACKUP)
    rows = {row["env_name"]: row for row in pool.statuses()}
    assert rows["ETHERSCAN_KEY_1"]["last_used"] == (T0 - timedelta(minutes=5)).isoformat()
    assert rows["ETHERSCAN_KEY_2"]["last_used"] == (T0 + timedelta(seconds=10)).isoformat()


def test_statuses_show_every_key_masked_and_never_its_value(pool: KeyPool) -> None:
    pool.mark_used(PRIMARY, T0)
    pool.mark_ok(PRIMARY)
    pool.mark_rate_limited(BACKUP, T0 + timedelta(hours=1))
    rows = pool.statuses()
    assert rows == [
        {
            "provider": "etherscan",
            "env_name": "ETHERSCAN_KEY_1",
            "masked": "PRIM…6789",
            "status": "valid",
            "last_used": T0.isoformat(),
            "until": None,
        },
        {
            "provider": "etherscan",
            "env_name": "ETHERSCAN_KEY_2",
            "masked": "BACK…ghij",
            "status": "rate_limited",
            "last_used": None,
            "until": (T0 + timedelta(hours=1)).isoformat(),
        },
    ]
    text = json.dumps(rows)
    assert PRIMARY.value not in text and BACKUP.value not in text


def test_marking_a_key_outside_the_pool_fails_without_showing_it(pool: KeyPool) -> None:
    stranger = Key("OTHER_KEY", "STRANGERSECRET-zyxwvu")
    with pytest.raises(KeyError) as raised:
        pool.mark_ok(stranger)
    assert stranger.value not in str(raised.value)
    assert "OTHER_KEY" in str(raised.value)

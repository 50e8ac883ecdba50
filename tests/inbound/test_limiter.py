"""InboundLimiter over minute/hour/day windows, in memory and in the real Redis here, with
a clock the tests move: counting down, refusals naming their window, resets, per-key
limits, refused requests costing no quota, exact counts under concurrency."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from apiwatch.inbound import InboundLimiter, headers
from tests.conftest import REDIS_URL, connect_redis, delete_prefix, new_prefix
from tests.inbound.clock import NOON, FakeClock

MakeLimiter = Callable[..., InboundLimiter]


@pytest.fixture(params=["memory", "redis"])
async def make_limiter(request: pytest.FixtureRequest) -> AsyncIterator[MakeLimiter]:
    """Builds limiters on one storage; Redis ones share a fresh key prefix."""
    created: list[InboundLimiter] = []
    client: Any = None
    prefix = new_prefix()
    if request.param == "redis":
        client = await connect_redis()

    def make(**options: Any) -> InboundLimiter:
        uri = REDIS_URL if client is not None else "memory://"
        limiter = InboundLimiter(uri, key_prefix=prefix, **options)
        created.append(limiter)
        return limiter

    try:
        yield make
    finally:
        for limiter in created:
            await limiter.close()
        if client is not None:
            await delete_prefix(client, prefix)
            await client.aclose()


async def test_each_hit_counts_down_every_window(make_limiter: MakeLimiter) -> None:
    clock = FakeClock(NOON)
    limiter = make_limiter(defaults=(5, 50, 500), clock=clock)
    first = await limiter.hit(1, minute=None, hour=None, day=None)
    second = await limiter.hit(1, minute=None, hour=None, day=None)
    assert first.allowed and second.allowed
    assert (first.minute.remaining, first.hour.remaining, first.day.remaining) == (4, 49, 499)
    assert (second.minute.remaining, second.hour.remaining, second.day.remaining) == (3, 48, 498)
    assert (second.minute.limit, second.hour.limit, second.day.limit) == (5, 50, 500)
    # NOON is 12:00:10 UTC: the minute and hour windows end 50 s and 3,590 s later, the
    # day at midnight.
    assert second.minute.reset_epoch == NOON + 50
    assert second.hour.reset_epoch == NOON + 3590
    assert second.day.reset_epoch == NOON + 12 * 3600 - 10


async def test_headers_are_the_nine_rate_limit_headers_with_reset_in_seconds(
    make_limiter: MakeLimiter,
) -> None:
    limiter = make_limiter(defaults=(5, 50, 500), clock=FakeClock(NOON))
    decision = await limiter.hit(7, minute=None, hour=None, day=None)
    assert dict(headers(decision)) == {
        b"x-ratelimit-minute-limit": b"5",
        b"x-ratelimit-minute-remaining": b"4",
        b"x-ratelimit-minute-reset": b"50",
        b"x-ratelimit-hour-limit": b"50",
        b"x-ratelimit-hour-remaining": b"49",
        b"x-ratelimit-hour-reset": b"3590",
        b"x-ratelimit-day-limit": b"500",
        b"x-ratelimit-day-remaining": b"499",
        b"x-ratelimit-day-reset": b"43190",
    }
    assert limiter.headers(decision) == headers(decision)


async def test_minute_limit_refuses_until_the_next_minute(make_limiter: MakeLimiter) -> None:
    clock = FakeClock(NOON)
    limiter = make_limiter(clock=clock)
    decisions = [await limiter.hit(1, minute=3, hour=None, day=None) for _ in range(4)]
    assert [d.allowed for d in decisions] == [True, True, True, False]
    refused = decisions[-1]
    assert refused.exceeded == "minute"
    assert refused.retry_after_s == 50
    assert refused.minute.remaining == 0
    clock.advance(49)
    assert not (await limiter.hit(1, minute=3, hour=None, day=None)).allowed
    clock.advance(1)  # 12:01:00, a new minute
    again = await limiter.hit(1, minute=3, hour=None, day=None)
    assert again.allowed and again.minute.remaining == 2


async def test_refused_requests_use_no_quota_in_any_window(make_limiter: MakeLimiter) -> None:
    limiter = make_limiter(defaults=(3, 100, 1000), clock=FakeClock(NOON))
    for _ in range(3):
        await limiter.hit(1, minute=None, hour=None, day=None)
    for _ in range(10):
        refused = await limiter.hit(1, minute=None, hour=None, day=None)
        assert not refused.allowed
    # Only the three admitted requests count in the hour and the day.
    assert (refused.hour.remaining, refused.day.remaining) == (97, 997)
    assert refused.minute.remaining == 0


async def test_hour_limit_refuses_across_minutes_and_resets_on_the_hour(
    make_limiter: MakeLimiter,
) -> None:
    clock = FakeClock(NOON)
    limiter = make_limiter(clock=clock)
    for _ in range(4):
        assert (await limiter.hit(2, minute=3, hour=5, day=None)).allowed
        clock.advance(60)
    # 4 admitted over 4 minutes; the fifth fits, the sixth does not, whatever the minute.
    assert (await limiter.hit(2, minute=3, hour=5, day=None)).allowed
    refused = await limiter.hit(2, minute=3, hour=5, day=None)
    assert not refused.allowed
    assert refused.exceeded == "hour"
    assert refused.retry_after_s == 3600 - 10 - 240
    clock.now = NOON - 10 + 3600  # 13:00:00
    assert (await limiter.hit(2, minute=3, hour=5, day=None)).allowed


async def test_day_limit_refuses_until_midnight_utc(make_limiter: MakeLimiter) -> None:
    clock = FakeClock(NOON)
    limiter = make_limiter(clock=clock)
    for _ in range(2):
        assert (await limiter.hit(3, minute=None, hour=None, day=2)).allowed
        clock.advance(3600)
    refused = await limiter.hit(3, minute=None, hour=None, day=2)
    assert not refused.allowed
    assert refused.exceeded == "day"
    assert refused.retry_after_s == 10 * 3600 - 10  # from 14:00:10 to midnight
    clock.now = NOON - 10 + 12 * 3600  # midnight
    assert (await limiter.hit(3, minute=None, hour=None, day=2)).allowed


async def test_when_several_windows_are_full_the_last_to_reset_is_named(
    make_limiter: MakeLimiter,
) -> None:
    limiter = make_limiter(clock=FakeClock(NOON))
    assert (await limiter.hit(4, minute=1, hour=1, day=5)).allowed
    refused = await limiter.hit(4, minute=1, hour=1, day=5)
    assert refused.exceeded == "hour"
    assert refused.retry_after_s == 3590


async def test_per_key_limits_override_the_defaults_and_keys_count_apart(
    make_limiter: MakeLimiter,
) -> None:
    limiter = make_limiter(defaults=(100, 1000, 10000), clock=FakeClock(NOON))
    tight = await limiter.hit(10, minute=2, hour=20, day=None)
    default = await limiter.hit(11, minute=None, hour=None, day=None)
    assert (tight.minute.limit, tight.hour.limit, tight.day.limit) == (2, 20, 10000)
    assert (default.minute.limit, default.minute.remaining) == (100, 99)
    await limiter.hit(10, minute=2, hour=20, day=None)
    assert not (await limiter.hit(10, minute=2, hour=20, day=None)).allowed
    assert (await limiter.hit(11, minute=None, hour=None, day=None)).minute.remaining == 98


async def test_a_zero_limit_refuses_every_request(make_limiter: MakeLimiter) -> None:
    limiter = make_limiter(clock=FakeClock(NOON))
    decision = await limiter.hit(5, minute=0, hour=None, day=None)
    assert not decision.allowed and decision.exceeded == "minute"


async def test_concurrent_hits_are_admitted_exactly_up_to_the_limit(
    make_limiter: MakeLimiter,
) -> None:
    limiter = make_limiter(clock=FakeClock(NOON))
    decisions = await asyncio.gather(
        *(limiter.hit(6, minute=20, hour=None, day=None) for _ in range(50))
    )
    allowed = [d for d in decisions if d.allowed]
    assert len(allowed) == 20
    assert sorted(d.minute.remaining for d in allowed) == list(range(20))
    assert all(d.exceeded == "minute" for d in decisions if not d.allowed)


async def test_two_redis_limiters_share_a_keys_windows(
    redis_client: Any, redis_prefix: str
) -> None:
    clock = FakeClock(NOON)
    first = InboundLimiter(REDIS_URL, key_prefix=redis_prefix, clock=clock)
    second = InboundLimiter(REDIS_URL, key_prefix=redis_prefix, clock=clock)
    try:
        assert first.shared and second.shared
        results = await asyncio.gather(
            *(limiter.hit(8, minute=10, hour=None, day=None) for limiter in [first, second] * 8)
        )
    finally:
        await first.close()
        await second.close()
    assert sum(d.allowed for d in results) == 10
    assert await redis_client.exists(f"{redis_prefix}:8/minute/{int(NOON) - 10}")


async def test_failed_auth_is_counted_per_address_per_minute(make_limiter: MakeLimiter) -> None:
    clock = FakeClock(NOON)
    limiter = make_limiter(clock=clock)
    assert [await limiter.count_failure("10.0.0.1", per_minute=2) for _ in range(2)] == [
        None,
        None,
    ]
    assert await limiter.count_failure("10.0.0.1", per_minute=2) == 50
    assert await limiter.count_failure("10.0.0.2", per_minute=2) is None
    clock.advance(50)
    assert await limiter.count_failure("10.0.0.1", per_minute=2) is None


async def test_reset_key_forgets_a_keys_current_counts(make_limiter: MakeLimiter) -> None:
    limiter = make_limiter(clock=FakeClock(NOON))
    await limiter.hit(9, minute=1, hour=None, day=None)
    assert not (await limiter.hit(9, minute=1, hour=None, day=None)).allowed
    await limiter.reset_key(9)
    assert (await limiter.hit(9, minute=1, hour=None, day=None)).allowed


def test_unsupported_storage_is_refused_without_echoing_the_uri() -> None:
    with pytest.raises(ValueError, match="unsupported") as caught:
        InboundLimiter("memcached://user:s3cret@127.0.0.1:11211")
    assert "s3cret" not in str(caught.value)


def test_defaults_must_be_three_non_negative_limits() -> None:
    with pytest.raises(ValueError, match="three limits"):
        InboundLimiter(defaults=(1, -1, 3))

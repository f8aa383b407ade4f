"""Outbound pacing and retries (bot/channels/ratelimit.py) and Redis de-duplication.

The limiter is tested with a fake clock, so the tests check the schedule it computes rather than
timing anything; the Redis variants run against the local Redis server."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from bot.channels.dedup import DatabaseDeduplicator, RedisDeduplicator, make_deduplicator
from bot.channels.ratelimit import RateLimiter, RedisRateLimiter, backoff, send_with_retries

REDIS_URL = "redis://127.0.0.1:6379/0"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_overall_rate_spaces_messages_evenly():
    clock = Clock()
    lim = RateLimiter(30.0, None, clock=clock)
    waits = [lim.reserve() for _ in range(4)]
    assert waits == pytest.approx([0, 1 / 30, 2 / 30, 3 / 30])


def test_per_chat_rate_is_separate_for_each_chat():
    clock = Clock()
    lim = RateLimiter(30.0, 1.0, clock=clock)
    a1, a2, b1 = lim.reserve("a"), lim.reserve("a"), lim.reserve("b")
    assert a1 == 0
    assert a2 == pytest.approx(1.0)          # the same chat waits a second
    assert b1 == pytest.approx(2 / 30)       # another chat only waits for the overall slot


def test_burst_is_allowed_then_paced_and_recovers_with_time():
    clock = Clock()
    lim = RateLimiter(1000.0, 1.0, per_chat_burst=3, clock=clock)
    waits = [lim.reserve("a") for _ in range(4)]
    assert waits[:3] == pytest.approx([0, 0.001, 0.002], abs=1e-9)
    assert waits[3] == pytest.approx(1.0, abs=0.01)
    clock.now += 10  # a quiet chat gets its burst back
    assert lim.reserve("a") == 0


async def test_acquire_sleeps_for_the_reserved_wait():
    slept = []

    async def sleep(s):
        slept.append(s)

    lim = RateLimiter(2.0, None, clock=Clock(), sleep=sleep)
    for _ in range(3):
        await lim.acquire()
    assert slept == pytest.approx([0.5, 1.0])


class Flaky(Exception):
    def __init__(self, status: int, retry_after: float | None = None) -> None:
        super().__init__(status)
        self.status, self.retry_after = status, retry_after


def classify(error, attempt):
    if isinstance(error, Flaky) and error.status == 429:
        return error.retry_after
    if isinstance(error, Flaky) and error.status >= 500:
        return backoff(attempt)
    return None


async def test_retries_honour_retry_after_then_succeed():
    slept, calls = [], []
    errors = [Flaky(429, 3), Flaky(502)]

    async def send():
        calls.append(1)
        if errors:
            raise errors.pop(0)
        return "ok"

    async def sleep(s):
        slept.append(s)

    assert await send_with_retries(send, retry_delay=classify, sleep=sleep) == "ok"
    assert len(calls) == 3 and slept == [3, backoff(2)]


async def test_a_client_error_is_not_retried():
    calls = []

    async def send():
        calls.append(1)
        raise Flaky(400)

    with pytest.raises(Flaky):
        await send_with_retries(send, retry_delay=classify, sleep=lambda s: asyncio.sleep(0))
    assert len(calls) == 1


async def test_gives_up_after_the_last_attempt_and_on_a_very_long_wait():
    async def always_429():
        raise Flaky(429, 1)

    async def nosleep(s):
        pass

    with pytest.raises(Flaky):
        await send_with_retries(always_429, retry_delay=classify, retries=3, sleep=nosleep)

    async def wait_an_hour():
        raise Flaky(429, 3600)

    slept = []

    async def record(s):
        slept.append(s)

    with pytest.raises(Flaky):  # left to the outbox to retry later rather than holding a worker
        await send_with_retries(wait_an_hour, retry_delay=classify, sleep=record)
    assert slept == []


@pytest.fixture
async def redis():
    from redis.asyncio import Redis

    client = Redis.from_url(REDIS_URL)
    try:
        await client.ping()
    except Exception as exc:  # noqa: BLE001
        await client.aclose()
        pytest.skip(f"Redis is not reachable at {REDIS_URL}: {exc}")
    yield client
    await client.aclose()


async def test_redis_limiter_shares_one_budget_between_workers(redis):
    from redis.asyncio import Redis

    prefix = f"estu:test:rl:{uuid.uuid4().hex}"
    second = Redis.from_url(REDIS_URL)
    try:
        w1 = RedisRateLimiter(redis, prefix, 10.0, 0.5)
        w2 = RedisRateLimiter(second, prefix, 10.0, 0.5)
        first = await w1.reserve("chat")
        other = await w2.reserve("chat")  # another worker, the same chat
        assert first == pytest.approx(0, abs=0.01)
        assert 1.9 < other <= 2.0  # 0.5/s per chat: the second message waits about two seconds
        assert await w2.reserve("another") < 0.5  # a different chat only waits for the overall slot
    finally:
        await second.aclose()


async def test_redis_dedup_is_shared_and_expires(redis):
    channel = f"test-{uuid.uuid4().hex[:8]}"
    d1, d2 = RedisDeduplicator(redis, ttl_seconds=1), RedisDeduplicator(redis, ttl_seconds=1)
    assert await d1.first_time(channel, "u1") is True
    assert await d2.first_time(channel, "u1") is False  # another worker sees it
    assert await d1.first_time(channel, "u2") is True
    ttl = await redis.ttl(f"estu:dedup:{channel}:u1")
    assert 0 < ttl <= 1


def test_factory_picks_redis_only_when_configured(settings):
    assert isinstance(make_deduplicator(settings.model_copy(update={"redis_url": None}), None), DatabaseDeduplicator)
    d = make_deduplicator(settings.model_copy(update={"redis_url": REDIS_URL}), None)
    assert isinstance(d, RedisDeduplicator)

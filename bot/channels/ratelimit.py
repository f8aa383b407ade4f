"""Outbound rate limiting and retries, shared by the channel adapters.

Platforms throttle senders: Telegram allows about 30 messages a second overall and about one a second
per chat; WhatsApp Cloud API has a per-number throughput and a per-recipient pace. Adapters call
``await limiter.acquire(chat_id)`` before each send and wrap the send in ``send_with_retries``, which
retries on "429 Too Many Requests" (honouring the platform's ``retry_after``) and on 5xx/network errors
(exponential back-off), and gives up — raising the last error — after ``retries`` attempts.

Limits use the generic cell rate algorithm (GCRA): each caller reserves the next free slot
synchronously, then sleeps until it, so concurrent senders are spaced fairly without a lock. With
``ESTU_REDIS_URL`` set the same algorithm runs in Redis (one Lua script), so several workers share one
budget per bot.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from bot.logging import get_logger

log = get_logger("estu.ratelimit")
T = TypeVar("T")


class _Cell:
    """GCRA state for one key: ``rate`` events per second with bursts of ``burst``."""

    __slots__ = ("interval", "tolerance", "tat")

    def __init__(self, rate: float, burst: int) -> None:
        self.interval = 1.0 / rate
        self.tolerance = (max(burst, 1) - 1) * self.interval
        self.tat = 0.0  # theoretical arrival time

    def reserve(self, now: float) -> float:
        """Reserve the next slot; returns the time at which it may be used."""
        tat = max(self.tat, now)
        allowed_at = tat - self.tolerance
        self.tat = tat + self.interval
        return max(allowed_at, now)


class RateLimiter:
    """In-process limiter: an overall rate plus an optional per-chat rate."""

    def __init__(self, overall_per_second: float, per_chat_per_second: float | None = None, *,
                 overall_burst: int = 1, per_chat_burst: int = 1,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self.overall = _Cell(overall_per_second, overall_burst)
        self.per_chat_rate = per_chat_per_second
        self.per_chat_burst = per_chat_burst
        self.chats: dict[str, _Cell] = {}
        self.clock = clock
        self.sleep = sleep

    def reserve(self, chat_id: str | int | None = None) -> float:
        """Seconds to wait before sending (the slot is taken when this returns)."""
        now = self.clock()
        at = self.overall.reserve(now)
        if chat_id is not None and self.per_chat_rate:
            cell = self.chats.get(str(chat_id))
            if cell is None:
                if len(self.chats) > 10_000:  # forget chats whose slots are long past
                    self.chats = {k: c for k, c in self.chats.items() if c.tat > now}
                cell = self.chats[str(chat_id)] = _Cell(self.per_chat_rate, self.per_chat_burst)
            at = max(at, cell.reserve(now))
        return max(0.0, at - now)

    async def acquire(self, chat_id: str | int | None = None) -> None:
        wait = self.reserve(chat_id)
        if wait > 0:
            await self.sleep(wait)


_GCRA_LUA = """
local now = tonumber(ARGV[1])
local interval = tonumber(ARGV[2])
local tolerance = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local allowed_at = tat - tolerance
local new_tat = tat + interval
redis.call('SET', KEYS[1], tostring(new_tat), 'PX', math.ceil((new_tat - now) * 1000) + 1000)
if allowed_at < now then allowed_at = now end
return tostring(allowed_at - now)
"""


class RedisRateLimiter:
    """The same limits kept in Redis, shared by every worker of one deployment."""

    def __init__(self, redis, prefix: str, overall_per_second: float, per_chat_per_second: float | None = None,
                 *, overall_burst: int = 1, per_chat_burst: int = 1,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self.redis = redis
        self.prefix = prefix
        self.overall = (1.0 / overall_per_second, (max(overall_burst, 1) - 1) / overall_per_second)
        self.per_chat = ((1.0 / per_chat_per_second, (max(per_chat_burst, 1) - 1) / per_chat_per_second)
                         if per_chat_per_second else None)
        self.sleep = sleep
        self._script = redis.register_script(_GCRA_LUA)

    async def _reserve(self, key: str, cell: tuple[float, float]) -> float:
        # Redis server time keeps every worker on one clock
        sec, usec = await self.redis.time()
        now = sec + usec / 1e6
        return float(await self._script(keys=[key], args=[repr(now), repr(cell[0]), repr(cell[1])]))

    async def reserve(self, chat_id: str | int | None = None) -> float:
        wait = await self._reserve(f"{self.prefix}:all", self.overall)
        if chat_id is not None and self.per_chat:
            wait = max(wait, await self._reserve(f"{self.prefix}:chat:{chat_id}", self.per_chat))
        return wait

    async def acquire(self, chat_id: str | int | None = None) -> None:
        wait = await self.reserve(chat_id)
        if wait > 0:
            await self.sleep(wait)

    async def close(self) -> None:
        await self.redis.aclose()


def make_limiter(redis_url: str | None, prefix: str, overall_per_second: float,
                 per_chat_per_second: float | None = None, **kwargs):
    """A Redis-backed limiter when ``redis_url`` is set, else an in-process one."""
    if redis_url:
        from redis.asyncio import Redis

        return RedisRateLimiter(Redis.from_url(redis_url), prefix, overall_per_second, per_chat_per_second,
                                **kwargs)
    return RateLimiter(overall_per_second, per_chat_per_second, **kwargs)


async def send_with_retries(send: Callable[[], Awaitable[T]], *, retry_delay: Callable[[BaseException, int], float | None],
                            retries: int = 4, limiter=None, chat_id: str | int | None = None,
                            sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                            max_delay: float = 60.0) -> T:
    """Call ``send()`` (after ``limiter.acquire(chat_id)``) until it succeeds.

    ``retry_delay(error, attempt)`` says how long to wait before trying again, or None when the error
    is not worth retrying (a 400, a blocked bot …), in which case it is raised at once. Waits longer
    than ``max_delay`` are not slept through: the error is raised so the caller (the outbox) can
    try again later instead of holding a worker."""
    attempt = 0
    while True:
        if limiter is not None:
            await limiter.acquire(chat_id)
        try:
            return await send()
        except Exception as exc:  # noqa: BLE001 - classified by retry_delay
            attempt += 1
            delay = retry_delay(exc, attempt)
            if delay is None or attempt >= retries or delay > max_delay:
                raise
            log.warning("send_retry", attempt=attempt, delay=round(delay, 2), error=type(exc).__name__)
            await sleep(delay)


def backoff(attempt: int, base: float = 0.5, cap: float = 30.0) -> float:
    """Exponential back-off for 5xx and network errors: 0.5 s, 1 s, 2 s … up to ``cap``."""
    return min(cap, base * 2 ** (attempt - 1))

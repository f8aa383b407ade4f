"""Each platform update is processed once: recorded in Redis with a TTL when ESTU_REDIS_URL is set,
in the database (unique per channel and key) otherwise."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.storage.models import ProcessedUpdate


class DatabaseDeduplicator:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    async def first_time(self, channel: str, key: str) -> bool:
        """True the first time (channel, key) is seen, False for a duplicate (also across workers)."""
        try:
            async with self.sessions() as session, session.begin():
                session.add(ProcessedUpdate(channel=channel, key=str(key)[:128]))
        except IntegrityError:
            return False
        return True


class RedisDeduplicator:
    """The same contract kept in Redis with a TTL (``SET key 1 NX EX ttl``): shared by every worker,
    and old ids expire instead of growing a table."""

    def __init__(self, redis, ttl_seconds: int = 86400, prefix: str = "estu:dedup") -> None:
        self.redis = redis
        self.ttl = ttl_seconds
        self.prefix = prefix

    async def first_time(self, channel: str, key: str) -> bool:
        return bool(await self.redis.set(f"{self.prefix}:{channel}:{str(key)[:128]}", b"1", nx=True, ex=self.ttl))

    async def close(self) -> None:
        await self.redis.aclose()


def make_deduplicator(settings, sessions: async_sessionmaker[AsyncSession]):
    """Redis when ``ESTU_REDIS_URL`` is set (several workers), the database otherwise."""
    if settings.redis_url:
        from redis.asyncio import Redis

        return RedisDeduplicator(Redis.from_url(settings.redis_url), settings.dedup_ttl_seconds)
    return DatabaseDeduplicator(sessions)

"""Each platform update is processed once: recorded in the database (unique per channel and key)."""

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

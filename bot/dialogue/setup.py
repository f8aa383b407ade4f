"""Assemble the engine: database, routers in order, connector, outbox worker."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.assistant import Assistant
from bot.config import Settings
from bot.dialogue import flows
from bot.dialogue.engine import Engine, inbox_sender
from bot.intake import form
from bot.intake.connectors import OutboxWorker, make_connector
from bot.storage.db import make_engine, sessionmaker, upgrade_async

# channels whose notifications wait in the conversation until the client fetches them
PULL_CHANNELS = ("web", "cli", "test", "api")


@dataclass
class Runtime:
    engine: Engine
    db: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    worker: OutboxWorker

    async def close(self) -> None:
        await self.worker.close()
        await self.db.dispose()


async def build_runtime(settings: Settings, assistant: Assistant, migrate: bool = True,
                        senders: dict | None = None) -> Runtime:
    if migrate:
        await upgrade_async(settings.db_url)
    db = make_engine(settings.db_url)
    sessions = sessionmaker(db)
    engine = Engine(assistant, sessions, connector=make_connector(settings.intake_url))
    engine.include(flows.commands, flows.emergency, form.router, flows.buttons, flows.answers)
    inbox = inbox_sender(sessions)
    all_senders = {ch: inbox for ch in PULL_CHANNELS}
    all_senders.update(senders or {})
    worker = OutboxWorker(sessions, all_senders)
    from bot.operators.service import idle_release_job  # operators idle too long give the bot its turn back

    worker.periodic.append((settings.operator_idle_check_seconds, idle_release_job(sessions, engine)))
    return Runtime(engine, db, sessions, worker)

"""Hand-off of registered appeals to an intake system, and delivery of notifications.

* :class:`RegistryConnector` (default): the built-in registry (our database) is the system of
  record; staff move appeals through their statuses (``estu appeals set-status``, the console).
* :class:`HttpConnector`: posts each appeal as JSON (``docs/intake.md``) to ``ESTU_INTAKE_URL``
  with an ``Idempotency-Key`` header. The post is written to the transactional outbox in the same
  transaction as the appeal, and :class:`OutboxWorker` delivers it with retries and exponential
  back-off, so no appeal is lost when the endpoint or this process is down.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import inspect
from collections.abc import Awaitable, Callable

import aiohttp
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.logging import get_logger
from bot.storage.models import Appeal, AppealEvent, Outbox, utcnow

log = get_logger("estu.outbox")
SCHEMA_VERSION = 1


def appeal_payload(appeal: Appeal) -> dict:
    """The documented JSON of an appeal (docs/intake.md)."""
    return {
        "schema_version": SCHEMA_VERSION,
        "number": appeal.number,
        "type": appeal.appeal_type,
        "language": appeal.language,
        "received_at": appeal.received_at.isoformat(),
        "due_date": appeal.due_date.isoformat(),
        "addressee": {"agency": appeal.agency, "name": appeal.addressee},
        "applicant": {
            "surname": appeal.surname, "name": appeal.name, "patronymic": appeal.patronymic, "iin": appeal.iin,
            "address": appeal.address, "phone": appeal.phone, "email": appeal.email,
        },
        "text": appeal.text,
        "attachments": appeal.attachments or [],
        "consent_to_personal_data_processing": appeal.consent,
        "source": {"channel": appeal.channel},
    }


class RegistryConnector:
    name = "registry"

    async def submit(self, session: AsyncSession, appeal: Appeal) -> None:  # the database is the registry
        return None


class HttpConnector:
    name = "http"

    def __init__(self, url: str) -> None:
        self.url = url

    async def submit(self, session: AsyncSession, appeal: Appeal) -> None:
        session.add(Outbox(kind="intake_http", idempotency_key=f"appeal-{appeal.number}",
                           payload={"url": self.url, "appeal_id": appeal.id, "body": appeal_payload(appeal)}))


def make_connector(intake_url: str | None):
    return HttpConnector(intake_url) if intake_url else RegistryConnector()


Sender = Callable[[str, str, str], Awaitable[None]]  # (channel, user_id, text[, buttons=list[Button]])


def _takes_buttons(sender) -> bool:
    """Whether a sender accepts ``buttons=`` (senders without it get the text alone)."""
    try:
        params = inspect.signature(sender).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == "buttons" or p.kind is p.VAR_KEYWORD for p in params)


class OutboxWorker:
    """Delivers outbox rows: ``intake_http`` by HTTP POST, ``notify`` through channel senders."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], senders: dict[str, Sender] | None = None,
                 base_delay: float = 2.0, max_delay: float = 600.0, timeout: float = 10.0) -> None:
        self.sessions = sessions
        self.senders = senders or {}
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.timeout = timeout
        self._http: aiohttp.ClientSession | None = None
        # (interval seconds, job): housekeeping run_forever also does, e.g. bot/operators' idle release
        self.periodic: list[tuple[float, Callable[[], Awaitable[object]]]] = []
        self._periodic_due: dict[int, float] = {}

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None

    def backoff(self, attempts: int) -> float:
        return min(self.max_delay, self.base_delay * (2 ** max(0, attempts - 1)))

    async def run_once(self, limit: int = 50) -> int:
        """Try every due row once; returns how many were delivered."""
        now = utcnow()
        async with self.sessions() as session:
            rows = (await session.execute(
                select(Outbox).where(Outbox.delivered_at.is_(None), Outbox.next_attempt_at <= now)
                .order_by(Outbox.id).limit(limit))).scalars().all()
            ids = [r.id for r in rows]
        delivered = 0
        for row_id in ids:
            async with self.sessions() as session, session.begin():
                row = await session.get(Outbox, row_id, with_for_update=True)
                if row is None or row.delivered_at is not None:
                    continue
                try:
                    handled = await self._deliver(session, row)
                except Exception as exc:  # noqa: BLE001 - any failure is retried later
                    handled, error = False, f"{type(exc).__name__}: {exc}"
                else:
                    error = None if handled else "no sender for this channel yet"
                row.attempts += 1
                if handled:
                    row.delivered_at = utcnow()
                    row.last_error = None
                    delivered += 1
                else:
                    row.last_error = error
                    row.next_attempt_at = utcnow() + dt.timedelta(seconds=self.backoff(row.attempts))
                    log.warning("outbox_retry", kind=row.kind, key=row.idempotency_key, attempts=row.attempts,
                                error=error)
        return delivered

    async def _deliver(self, session: AsyncSession, row: Outbox) -> bool:
        if row.kind == "intake_http":
            return await self._post(session, row)
        if row.kind == "notify":
            sender = self.senders.get(row.payload.get("channel"))
            if sender is None:
                return False
            buttons = row.payload.get("buttons")
            if buttons and _takes_buttons(sender):  # e.g. the CSAT prompt's rating buttons
                from bot.messages import Button

                await sender(row.payload["channel"], row.payload["user_id"], row.payload["text"],
                             buttons=[Button(b["id"], b["label"]) for b in buttons])
            else:
                await sender(row.payload["channel"], row.payload["user_id"], row.payload["text"])
            return True
        raise ValueError(f"unknown outbox kind {row.kind!r}")

    async def _post(self, session: AsyncSession, row: Outbox) -> bool:
        if self._http is None:
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))
        async with self._http.post(row.payload["url"], json=row.payload["body"],
                                   headers={"Idempotency-Key": row.idempotency_key}) as resp:
            if resp.status in (200, 201, 202, 204, 409):  # 409: the endpoint already has it
                appeal = await session.get(Appeal, row.payload["appeal_id"])
                if appeal is not None and appeal.status == "registered":
                    appeal.status = "sent"
                    session.add(AppealEvent(appeal_id=appeal.id, status="sent", actor="intake-http",
                                            note=f"HTTP {resp.status}"))
                return True
            raise RuntimeError(f"intake endpoint answered HTTP {resp.status}")

    async def run_periodic(self, force: bool = False) -> None:
        """Run the ``periodic`` jobs that are due (all of them with ``force``)."""
        now = asyncio.get_running_loop().time()
        for i, (every, job) in enumerate(self.periodic):
            if not force and now < self._periodic_due.get(i, 0.0):
                continue
            self._periodic_due[i] = now + every
            try:
                await job()
            except Exception:  # noqa: BLE001 - keep the worker alive
                log.exception("periodic_job_error", job=getattr(job, "__name__", repr(job)))

    async def run_forever(self, interval: float = 2.0, stop: asyncio.Event | None = None) -> None:
        stop = stop or asyncio.Event()
        while not stop.is_set():
            await self.run_periodic()
            try:
                await self.run_once()
            except Exception:  # noqa: BLE001 - keep the worker alive
                log.exception("outbox_worker_error")
            try:
                await asyncio.wait_for(stop.wait(), timeout=interval)
            except asyncio.TimeoutError:
                pass

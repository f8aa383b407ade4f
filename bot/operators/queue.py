"""The operators' queue: priority, per-agency queues, presence and the waiting-time estimate.

**Order.** Open, not yet taken hand-offs, per queue, sorted by
(1) emergency mentioned in the conversation (lexicon of ``nlu.emergency``) first, then
(2) the conversation is about an appeal that is still open and due within
``ESTU_OPERATOR_DEADLINE_DAYS`` working days (or overdue), then
(3) everything else; inside each class the longest-waiting first (``created_at``, then id).

**Queues.** A hand-off's ``queue`` is an agency id (``knowledge.ids.AGENCY_IDS``) or ``general``:
the editor topic's queue if one required the hand-off, else the agency of the answer / routing
advice / linked appeal, else ``general``. Operators serve the queues they name in their
heartbeat (none named: all queues).

**Estimate** (minutes until an operator takes the conversation), for a conversation with ``p``
conversations ahead of it in its queue::

    k = operators online for the queue (console heartbeat within ESTU_OPERATOR_PRESENCE_MINUTES)
    b = conversations of the queue currently owned by an operator
    H = median handling time (taken → closed) of the last 50 hand-offs of the queue closed in the
        last 14 days (idle time-outs and cancellations left out); fewer than 3 such: all queues;
        still fewer than 3: ESTU_OPERATOR_HANDLING_MINUTES (10)
    k == 0          → no estimate (nobody online; the citizen is told so)
    p + b < k       → 1 minute (an operator is free)
    otherwise       → ceil(H · (p + b + 1 − k) / k)

i.e. each operator handles one conversation at a time and frees up every H minutes; the citizen
waits until ``p + b + 1 − k`` of the conversations in front have been finished by ``k`` operators.
"""

from __future__ import annotations

import datetime as dt
import math
import statistics
from collections.abc import Iterable
from dataclasses import asdict, dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.operators.desk import Desk, aware, default_desk
from bot.storage.models import Appeal, Conversation, Handoff, Message, OperatorPresence, User

EMERGENCY, DEADLINE, NORMAL = 0, 1, 2
PRIORITY_LABELS = {EMERGENCY: "emergency", DEADLINE: "deadline", NORMAL: "normal"}
OPEN_APPEAL_STATUSES = ("registered", "sent", "in_progress", "extended", "redirected")
HANDLING_SAMPLE, HANDLING_WINDOW_DAYS, HANDLING_MIN_SAMPLES = 50, 14, 3


@dataclass
class QueueItem:
    handoff_id: int
    conversation_id: int
    queue: str
    agency: str | None
    reason: str
    topic: str | None
    priority: int                 # 0 emergency, 1 appeal near its deadline, 2 normal
    priority_label: str
    emergency: bool
    appeal_number: str | None
    appeal_due_date: dt.date | None
    created_at: dt.datetime
    waiting_minutes: int
    scheduled_for: dt.datetime | None   # out of hours: when the desk opens for it
    taken_by: str | None
    channel: str
    language: str | None
    contact: str | None           # a phone to call back (out of hours), None: reply in the chat
    description: str | None       # the citizen's summary (out of hours), masked
    preview: str | None           # the citizen's last message, masked
    position: int | None          # 1-based place in its queue (waiting ones)
    estimate_minutes: int | None  # see the module docstring; None when nobody is online

    def to_dict(self) -> dict:
        d = asdict(self)
        for k, v in d.items():
            if isinstance(v, (dt.datetime, dt.date)):
                d[k] = v.isoformat()
        return d


@dataclass
class WaitEstimate:
    queue: str
    position: int         # 1-based
    ahead: int
    online: int
    busy: int
    handling_minutes: float
    minutes: int | None   # None: no operator online


def wait_minutes(ahead: int, busy: int, online: int, handling: float) -> int | None:
    """The estimate formula of the module docstring."""
    if online <= 0:
        return None
    if ahead + busy < online:
        return 1
    return max(1, math.ceil(handling * (ahead + busy + 1 - online) / online))


def priority_of(h: Handoff, due: dt.date | None, today: dt.date, desk: Desk) -> int:
    if h.emergency:
        return EMERGENCY
    if due is not None and due <= desk.hours.calendar.add_working_days(today, desk.settings.operator_deadline_days):
        return DEADLINE
    return NORMAL


# -- presence ---------------------------------------------------------------------------------
async def heartbeat(session: AsyncSession, operator: str, queues: Iterable[str] | None = None, *,
                    now: dt.datetime | None = None, desk: Desk | None = None) -> OperatorPresence:
    """Mark ``operator`` online (serving ``queues``; None or empty: all). The console calls this on
    every page load / poll; an operator counts as online for ESTU_OPERATOR_PRESENCE_MINUTES."""
    desk = desk or default_desk()
    now = aware(now) or desk.now()
    row = await session.get(OperatorPresence, operator)
    if row is None:
        row = OperatorPresence(operator=operator, queues=[], last_seen_at=now, online=True)
        session.add(row)
    row.queues = sorted(set(queues or []))
    row.last_seen_at = now
    row.online = True
    await session.flush()
    return row


async def go_offline(session: AsyncSession, operator: str) -> None:
    """The operator logged out or closed the console."""
    row = await session.get(OperatorPresence, operator)
    if row is not None:
        row.online = False
        await session.flush()


async def online_operators(session: AsyncSession, queue: str | None = None, *, now: dt.datetime | None = None,
                           desk: Desk | None = None) -> list[str]:
    desk = desk or default_desk()
    now = aware(now) or desk.now()
    since = now - dt.timedelta(minutes=desk.settings.operator_presence_minutes)
    rows = (await session.execute(select(OperatorPresence).where(OperatorPresence.online.is_(True),
                                                                  OperatorPresence.last_seen_at >= since))).scalars()
    return sorted(r.operator for r in rows if queue is None or not r.queues or queue in r.queues)


# -- handling time and estimate ---------------------------------------------------------------
async def handling_minutes(session: AsyncSession, queue: str | None, *, now: dt.datetime | None = None,
                           desk: Desk | None = None) -> float:
    """Median minutes from take to close (see the module docstring)."""
    desk = desk or default_desk()
    now = aware(now) or desk.now()
    since = now - dt.timedelta(days=HANDLING_WINDOW_DAYS)
    for q in ([queue] if queue else []) + [None]:
        stmt = (select(Handoff.taken_at, Handoff.closed_at)
                .where(Handoff.taken_at.is_not(None), Handoff.closed_at.is_not(None), Handoff.closed_at >= since,
                       Handoff.resolution.not_in(("idle_timeout", "cancelled")))
                .order_by(Handoff.closed_at.desc()).limit(HANDLING_SAMPLE))
        if q:
            stmt = stmt.where(Handoff.queue == q)
        rows = (await session.execute(stmt)).all()
        samples = [max(0.0, (aware(c) - aware(t)).total_seconds() / 60) for t, c in rows]
        if len(samples) >= HANDLING_MIN_SAMPLES:
            return max(1.0, statistics.median(samples))
    return float(desk.settings.operator_handling_minutes)


async def _busy(session: AsyncSession, queue: str) -> int:
    return (await session.execute(select(func.count(Handoff.id)).where(
        Handoff.queue == queue, Handoff.closed_at.is_(None), Handoff.taken_by.is_not(None)))).scalar_one()


async def estimate_for(session: AsyncSession, handoff: Handoff, *, now: dt.datetime | None = None,
                       desk: Desk | None = None) -> WaitEstimate:
    """Where ``handoff`` stands in its queue and how long it will probably wait."""
    desk = desk or default_desk()
    now = aware(now) or desk.now()
    items = await list_queue(session, queues=[handoff.queue], now=now, desk=desk, with_estimates=False)
    ahead = next((i for i, it in enumerate(items) if it.handoff_id == handoff.id), len(items))
    online = len(await online_operators(session, handoff.queue, now=now, desk=desk))
    busy = await _busy(session, handoff.queue)
    h = await handling_minutes(session, handoff.queue, now=now, desk=desk)
    return WaitEstimate(handoff.queue, ahead + 1, ahead, online, busy, h, wait_minutes(ahead, busy, online, h))


# -- the queue --------------------------------------------------------------------------------
async def list_queue(session: AsyncSession, *, queues: Iterable[str] | None = None, include_owned: bool = False,
                     now: dt.datetime | None = None, desk: Desk | None = None,
                     with_estimates: bool = True) -> list[QueueItem]:
    """Open hand-offs in priority order (module docstring), waiting ones first with their
    1-based ``position`` in their queue and ``estimate_minutes``; with ``include_owned`` the
    conversations operators own follow (position None). ``queues``: only these queue keys."""
    desk = desk or default_desk()
    now = aware(now) or desk.now()
    stmt = (select(Handoff, User.channel, Conversation.language)
            .join(Conversation, Handoff.conversation_id == Conversation.id)
            .join(User, Conversation.user_id == User.id)
            .where(Handoff.closed_at.is_(None)))
    if not include_owned:
        stmt = stmt.where(Handoff.taken_by.is_(None))
    queues = list(queues) if queues is not None else None
    if queues is not None:
        stmt = stmt.where(Handoff.queue.in_(queues))
    rows = (await session.execute(stmt)).all()
    appeal_ids = {h.appeal_id for h, _, _ in rows if h.appeal_id}
    appeals = {}
    if appeal_ids:
        appeals = {a.id: a for a in (await session.execute(
            select(Appeal).where(Appeal.id.in_(appeal_ids)))).scalars()}
    conv_ids = [h.conversation_id for h, _, _ in rows]
    previews = {}
    if conv_ids:
        last = (select(Message.conversation_id, func.max(Message.id).label("mid"))
                .where(Message.conversation_id.in_(conv_ids), Message.direction == "in")
                .group_by(Message.conversation_id).subquery())
        previews = dict((await session.execute(
            select(Message.conversation_id, Message.text_masked).join(last, Message.id == last.c.mid))).all())
    today = desk.hours.local(now).date()
    items: list[QueueItem] = []
    for h, channel, language in rows:
        appeal = appeals.get(h.appeal_id)
        due = appeal.due_date if appeal is not None and appeal.status in OPEN_APPEAL_STATUSES else None
        prio = priority_of(h, due, today, desk)
        created = aware(h.created_at)
        items.append(QueueItem(
            handoff_id=h.id, conversation_id=h.conversation_id, queue=h.queue, agency=h.agency, reason=h.reason,
            topic=h.topic, priority=prio, priority_label=PRIORITY_LABELS[prio], emergency=bool(h.emergency),
            appeal_number=appeal.number if appeal is not None else None, appeal_due_date=due, created_at=created,
            waiting_minutes=max(0, int((now - created).total_seconds() // 60)),
            scheduled_for=aware(h.scheduled_for), taken_by=h.taken_by, channel=channel, language=language,
            contact=h.contact, description=h.description, preview=previews.get(h.conversation_id), position=None,
            estimate_minutes=None))
    waiting = sorted((i for i in items if i.taken_by is None), key=lambda i: (i.priority, i.created_at, i.handoff_id))
    owned = sorted((i for i in items if i.taken_by is not None), key=lambda i: (i.priority, i.created_at, i.handoff_id))
    per_queue: dict[str, int] = {}
    for item in waiting:
        per_queue[item.queue] = per_queue.get(item.queue, 0) + 1
        item.position = per_queue[item.queue]
    if with_estimates:
        cache: dict[str, tuple[int, int, float]] = {}
        for item in waiting:
            if item.queue not in cache:
                cache[item.queue] = (len(await online_operators(session, item.queue, now=now, desk=desk)),
                                     await _busy(session, item.queue),
                                     await handling_minutes(session, item.queue, now=now, desk=desk))
            online, busy, handling = cache[item.queue]
            item.estimate_minutes = wait_minutes(item.position - 1, busy, online, handling)
    return waiting + owned

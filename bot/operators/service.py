"""The service API the operator console calls. Plain async functions over an ``AsyncSession``;
the caller owns the transaction (``async with sessions() as s, s.begin(): await take(s, …)``).
Messages to the citizen are written to the outbox in the same transaction (bot/operators/delivery.py),
so they go out only if the change is committed.

Errors are :class:`HandoffError` subclasses: :class:`NotFound` (404), :class:`Conflict` (409: taken
by someone else, already closed), :class:`NotOwner` (403), :class:`InvalidInput` (400).

``now``/``desk`` are for tests and for callers with their own clock; by default the desk is built
from ``ESTU_*`` settings and the clock is the system's.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.messages import Button
from bot.operators import feedback
from bot.operators.delivery import language_of, say, t
from bot.operators.desk import SYSTEM_RESOLUTIONS, Desk, aware, default_desk
from bot.operators.queue import estimate_for
from bot.operators.topics import QUEUES, queue_for
from bot.storage.models import Conversation, Handoff, Message, User

MAX_REPLY = 4000


class HandoffError(ValueError):
    status = 400


class NotFound(HandoffError):
    status = 404


class Conflict(HandoffError):
    status = 409


class NotOwner(HandoffError):
    status = 403


class InvalidInput(HandoffError):
    status = 400


def _log(h: Handoff, now: dt.datetime, action: str, by: str | None, **extra) -> None:
    entry = {"at": now.isoformat(), "action": action, "by": by}
    entry.update({k: v for k, v in extra.items() if v is not None})
    h.history = list(h.history or []) + [entry]


async def open_handoff(session: AsyncSession, conversation_id: int) -> Handoff | None:
    """The conversation's open hand-off (not closed), if any."""
    return (await session.execute(select(Handoff).where(Handoff.conversation_id == conversation_id,
                                                        Handoff.closed_at.is_(None))
                                  .order_by(Handoff.id.desc()).limit(1))).scalar_one_or_none()


async def _load(session: AsyncSession, conv_id: int) -> tuple[Conversation, User, Handoff | None]:
    conv = await session.get(Conversation, conv_id)
    if conv is None:
        raise NotFound(f"conversation {conv_id} not found")
    user = await session.get(User, conv.user_id)
    return conv, user, await open_handoff(session, conv_id)


async def _require_open(session: AsyncSession, conv_id: int) -> tuple[Conversation, User, Handoff]:
    conv, user, h = await _load(session, conv_id)
    if h is None:
        raise Conflict(f"conversation {conv_id} has no open hand-off")
    return conv, user, h


def _require_owner(h: Handoff, operator: str) -> None:
    if h.taken_by != operator:
        raise NotOwner(f"the conversation is owned by {h.taken_by or 'nobody'}, not {operator}")


def _operator_label(lang: str, display_name: str | None) -> str:
    return display_name or t(lang, "Operator")


async def release(session: AsyncSession, h: Handoff, conv: Conversation, user: User, resolution: str,
                  now: dt.datetime, by: str | None, *, notify: str | None = None) -> None:
    """Close ``h`` without an operator resolution and give the conversation back to the bot."""
    h.closed_at = now
    h.resolution = resolution
    h.closed_by = by
    h.citizen_waiting_since = None
    _log(h, now, resolution, by)
    conv.status = "bot"
    state = dict(conv.state or {})
    state.pop("handoff", None)
    conv.state = state
    if notify:
        say(session, conv, user, notify, key=f"{resolution}-{h.id}", system=resolution)


# -- the console's calls ----------------------------------------------------------------------
async def take(session: AsyncSession, conv_id: int, operator: str, *, display_name: str | None = None,
               now: dt.datetime | None = None, desk: Desk | None = None) -> Handoff:
    """``operator`` takes the conversation: the bot goes silent, the citizen is told an operator
    joined (with ``display_name`` if given). A conversation without an open hand-off is taken on
    the operator's initiative (reason ``operator_initiative``). Taking one's own again is a no-op.
    Raises Conflict if someone else owns it."""
    desk = desk or default_desk()
    now = aware(now) or desk.now()
    conv, user, h = await _load(session, conv_id)
    if h is None:
        h = Handoff(conversation_id=conv.id, reason="operator_initiative", queue="general", created_at=now,
                    history=[])
        _log(h, now, "requested", operator, reason="operator_initiative")
        session.add(h)
        await session.flush()
    if h.taken_by == operator:
        return h
    # atomic: only one operator wins a race for the same conversation
    result = await session.execute(update(Handoff).where(Handoff.id == h.id, Handoff.taken_by.is_(None),
                                                         Handoff.closed_at.is_(None))
                                   .values(taken_by=operator, taken_at=now, operator_activity_at=now,
                                           citizen_waiting_since=None)
                                   .execution_options(synchronize_session=False))
    if result.rowcount != 1:
        await session.refresh(h)
        raise Conflict(f"the conversation is already taken by {h.taken_by}")
    await session.refresh(h)
    _log(h, now, "taken", operator)
    conv.status = "operator"
    state = dict(conv.state or {})
    state.pop("handoff", None)  # an unfinished out-of-hours questionnaire is no longer needed
    conv.state = state
    lang = language_of(conv, user)
    text = (t(lang, "Operator {name} has joined the conversation and will answer you here.", name=display_name)
            if display_name else t(lang, "An operator has joined the conversation and will answer you here."))
    say(session, conv, user, text, key=f"taken-{h.id}-{len(h.history)}", system="operator_joined")
    await session.flush()
    return h


async def reply(session: AsyncSession, conv_id: int, operator: str, text: str, *, display_name: str | None = None,
                now: dt.datetime | None = None, desk: Desk | None = None) -> Message:
    """Send ``text`` to the citizen through their own channel (outbox → ``worker.senders[channel]``;
    web chat: ``GET /api/v1/notifications``), prefixed "Operator:" (or ``display_name``). Returns the
    transcript message (masked). Only the owner may reply."""
    desk = desk or default_desk()
    now = aware(now) or desk.now()
    text = (text or "").strip()
    if not text:
        raise InvalidInput("the reply is empty")
    if len(text) > MAX_REPLY:
        raise InvalidInput(f"the reply is longer than {MAX_REPLY} characters")
    conv, user, h = await _require_open(session, conv_id)
    _require_owner(h, operator)
    lang = language_of(conv, user)
    h.operator_activity_at = now
    h.citizen_waiting_since = None
    msg = say(session, conv, user, f"{_operator_label(lang, display_name)}: {text}", operator=operator)
    await session.flush()
    return msg


async def transfer(session: AsyncSession, conv_id: int, *, by: str, to_operator: str | None = None,
                   to_queue: str | None = None, now: dt.datetime | None = None, desk: Desk | None = None) -> Handoff:
    """Pass the conversation to another operator (it stays owned, by them) and/or to another queue
    (without ``to_operator`` it goes back to waiting there). ``by`` is recorded; whether ``by`` may
    transfer is the console's (role) decision."""
    desk = desk or default_desk()
    now = aware(now) or desk.now()
    if not to_operator and not to_queue:
        raise InvalidInput("name an operator or a queue")
    if to_queue is not None and to_queue not in QUEUES:
        raise InvalidInput(f"unknown queue {to_queue!r}; one of {', '.join(QUEUES)}")
    conv, user, h = await _require_open(session, conv_id)
    lang = language_of(conv, user)
    if to_queue:
        h.queue = to_queue
        if to_queue != "general":
            h.agency = to_queue
    if to_operator:
        h.taken_by = to_operator
        h.taken_at = h.taken_at or now
        h.operator_activity_at = now
        h.citizen_waiting_since = None
        conv.status = "operator"
        text = t(lang, "Your conversation has been passed to another operator, who will answer you here.")
    else:
        h.taken_by = None
        h.taken_at = None
        h.operator_activity_at = None
        conv.status = "waiting_operator"
        await session.flush()
        est = await estimate_for(session, h, now=now, desk=desk)
        text = t(lang, "Your conversation has been passed to the operators who deal with this subject.") + " " + \
            wait_text(lang, est.position, est.minutes)
    _log(h, now, "transferred", by, to_operator=to_operator, to_queue=to_queue)
    say(session, conv, user, text, key=f"transfer-{h.id}-{len(h.history)}", system="transferred")
    await session.flush()
    return h


async def hand_back(session: AsyncSession, conv_id: int, *, by: str | None = None, now: dt.datetime | None = None,
                    desk: Desk | None = None) -> Handoff:
    """Give the conversation back to the bot (resolution ``handed_back``); the citizen is told."""
    desk = desk or default_desk()
    now = aware(now) or desk.now()
    conv, user, h = await _require_open(session, conv_id)
    lang = language_of(conv, user)
    await release(session, h, conv, user, "handed_back", now, by,
                  notify=t(lang, "The operator has passed the conversation back to me, the bot. Ask me anything; "
                                 "to reach an operator again, send /operator."))
    await session.flush()
    return h


async def close(session: AsyncSession, conv_id: int, operator: str, resolution_code: str, *,
                note: str | None = None, now: dt.datetime | None = None, desk: Desk | None = None) -> Handoff:
    """Close with a resolution code from ``resolutions.yml``. The owner closes; an operator may
    also close a waiting (untaken) conversation, e.g. as ``spam``. The bot resumes and, where the
    code has ``ask_rating`` and an operator handled it, asks the citizen for a 1-5 rating."""
    desk = desk or default_desk()
    now = aware(now) or desk.now()
    spec = desk.resolutions.get(resolution_code)
    if spec is None:
        raise InvalidInput(f"unknown resolution {resolution_code!r}; one of {', '.join(desk.resolutions)}")
    conv, user, h = await _require_open(session, conv_id)
    if h.taken_by is not None:
        _require_owner(h, operator)
    handled = h.taken_by is not None
    h.taken_by = h.taken_by or operator
    h.closed_at = now
    h.closed_by = operator
    h.resolution = resolution_code
    h.citizen_waiting_since = None
    _log(h, now, "closed", operator, resolution=resolution_code, note=(note or "")[:500] or None)
    conv.status = "bot"
    state = dict(conv.state or {})
    state.pop("handoff", None)
    conv.state = state
    lang = language_of(conv, user)
    if resolution_code != "spam":
        say(session, conv, user, t(lang, "The operator has finished the conversation. If you have more questions, just "
                                         "write: I, the bot, am here again."), key=f"closed-{h.id}",
            system="handoff_closed")
    await session.flush()
    if spec["ask_rating"] and handled:
        await feedback.request_operator_rating(session, h, conv, user)
    return h


async def release_idle(session: AsyncSession, *, now: dt.datetime | None = None, desk: Desk | None = None) -> int:
    """Give back to the bot every owned conversation idle for ESTU_OPERATOR_IDLE_MINUTES: since the
    citizen's first unanswered message, or, if the citizen is not waiting, since the operator's
    last action (take, reply, transfer). Returns how many were released. The outbox worker loop
    runs this (``worker.periodic``); a citizen's message checks its own conversation lazily."""
    desk = desk or default_desk()
    now = aware(now) or desk.now()
    rows = (await session.execute(select(Handoff).where(Handoff.closed_at.is_(None),
                                                        Handoff.taken_by.is_not(None)))).scalars().all()
    released = 0
    for h in rows:
        if not is_idle(h, now, desk):
            continue
        conv = await session.get(Conversation, h.conversation_id)
        user = await session.get(User, conv.user_id)
        await release(session, h, conv, user, "idle_timeout", now, None, notify=idle_text(language_of(conv, user)))
        released += 1
    await session.flush()
    return released


async def transcript(session: AsyncSession, conv_id: int, limit: int = 500) -> list[dict]:
    """The conversation's messages, oldest first, masked: ``{id, at, direction, who, text,
    buttons}`` with ``who`` citizen | bot | operator:<name> | system:<kind> | notification.
    ``notification`` rows are the copies kept for pull channels (web chat) of what was pushed;
    they repeat operator and system messages and appeal status changes, so a console may hide them."""
    rows = (await session.execute(select(Message).where(Message.conversation_id == conv_id)
                                  .order_by(Message.id.desc()).limit(limit))).scalars().all()
    out = []
    for m in reversed(rows):
        p = m.payload or {}
        if m.direction == "in":
            who = "citizen"
        elif p.get("operator"):
            who = f"operator:{p['operator']}"
        elif p.get("system"):
            who = f"system:{p['system']}"
        elif p.get("notification"):
            who = "notification"
        else:
            who = "bot"
        buttons = [b if isinstance(b, str) else b.get("id") for b in p.get("buttons") or []]
        out.append({"id": m.id, "at": aware(m.created_at).isoformat(), "direction": m.direction, "who": who,
                    "text": m.text_masked, "buttons": buttons})
    return out


def resolution_codes(desk: Desk | None = None) -> dict[str, dict]:
    """``{code: {"ask_rating": bool, "ru": label, "kk": label}}`` from ``resolutions.yml``."""
    return dict((desk or default_desk()).resolutions)


# -- shared with the dialogue side ------------------------------------------------------------
def is_idle(h: Handoff, now: dt.datetime, desk: Desk) -> bool:
    since = aware(h.citizen_waiting_since) or aware(h.operator_activity_at) or aware(h.taken_at) or aware(h.created_at)
    return since is not None and now - since >= desk.idle


def idle_text(lang: str) -> str:
    return t(lang, "The operator has not answered for a while, so I, the bot, am back in the conversation. You can "
                   "ask me, or send /operator to wait for an operator again.")


def wait_text(lang: str, position: int, minutes: int | None) -> str:
    if minutes is None:
        return t(lang, "No operator is online at the moment; your place in the queue is {position}. An operator will "
                       "answer as soon as one is available.", position=position)
    return t(lang, "Your place in the queue: {position}. Estimated waiting time: about {minutes} min.",
             position=position, minutes=minutes)


def cancel_button(lang: str) -> Button:
    return Button("op:cancel", t(lang, "Continue with the bot"))


__all__ = ["HandoffError", "NotFound", "Conflict", "NotOwner", "InvalidInput", "open_handoff", "take", "reply",
           "transfer", "hand_back", "close", "release_idle", "transcript", "resolution_codes", "queue_for",
           "SYSTEM_RESOLUTIONS"]


def idle_release_job(sessions, engine):
    """The outbox worker's periodic job (bot/dialogue/setup.py): :func:`release_idle` with the
    engine's desk, in its own transaction."""
    from bot.operators.desk import desk_for

    async def release_idle_conversations() -> int:
        async with sessions() as session, session.begin():
            return await release_idle(session, desk=desk_for(engine))

    return release_idle_conversations

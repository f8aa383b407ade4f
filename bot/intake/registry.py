"""The built-in appeal registry: numbering, registration, the status lifecycle, events and
notifications (written to the outbox in the same transaction as the change)."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.i18n import gettext as _
from bot.intake.deadlines import due_date as legal_due_date
from bot.intake.deadlines import extension_cap, rule_for, today
from bot.storage.models import Appeal, AppealEvent, Counter, Outbox, User, utcnow
from nlu.entities import format_appeal_number

STATUSES = ("registered", "sent", "in_progress", "answered", "closed", "extended", "redirected", "rejected")
# allowed transitions; staff can always close
TRANSITIONS = {
    "registered": {"sent", "in_progress", "extended", "redirected", "rejected", "answered", "closed"},
    "sent": {"in_progress", "extended", "redirected", "rejected", "answered", "closed"},
    "in_progress": {"extended", "redirected", "rejected", "answered", "closed"},
    "extended": {"in_progress", "redirected", "rejected", "answered", "closed"},
    "redirected": {"in_progress", "answered", "rejected", "closed"},
    "answered": {"closed"},
    "rejected": {"closed"},
    "closed": set(),
}
NEEDS_NOTE = {"extended": "a reason", "redirected": "the body it went to", "rejected": "a motivated reason",
              "answered": "the answer text"}


class TransitionError(ValueError):
    pass


async def next_number(session: AsyncSession, year: int) -> str:
    """Atomically take the next serial of ``year`` (one counter row per year)."""
    name = f"appeal-{year}"
    result = await session.execute(
        update(Counter).where(Counter.name == name).values(value=Counter.value + 1).returning(Counter.value))
    value = result.scalar_one_or_none()
    if value is None:
        session.add(Counter(name=name, value=1))
        await session.flush()
        value = 1
    return format_appeal_number(year, value)


STATUS_TEXT = {
    "registered": "registered", "sent": "sent to the addressee", "in_progress": "under consideration",
    "answered": "answered", "closed": "closed", "extended": "term extended", "redirected": "redirected",
    "rejected": "rejected",
}


def status_label(status: str, lang: str) -> str:
    return _(lang, STATUS_TEXT.get(status, status))


def notify(session: AsyncSession, user: User, text: str, key: str | None = None) -> None:
    """Queue a message to the citizen through the channel the appeal came from."""
    session.add(Outbox(kind="notify", idempotency_key=key or f"notify-{uuid.uuid4()}",
                       payload={"channel": user.channel, "user_id": user.external_id, "text": text}))


async def register(session: AsyncSession, *, user: User, conversation_id: int | None, channel: str, language: str,
                   appeal_type: str, agency: str | None, addressee: str, surname: str, name: str,
                   patronymic: str | None, iin: str, address: str, phone: str | None, email: str | None, text: str,
                   attachments: list, consent: bool, connector=None, received: dt.datetime | None = None) -> Appeal:
    received = received or utcnow()
    number = await next_number(session, received.astimezone(dt.timezone(dt.timedelta(hours=5))).year)
    appeal = Appeal(number=number, user_id=user.id, conversation_id=conversation_id, channel=channel,
                    language=language, appeal_type=appeal_type, agency=agency, addressee=addressee, surname=surname,
                    name=name, patronymic=patronymic, iin=iin, address=address, phone=phone, email=email, text=text,
                    attachments=attachments, consent=consent, status="registered", received_at=received,
                    due_date=legal_due_date(received, appeal_type))
    session.add(appeal)
    await session.flush()
    session.add(AppealEvent(appeal_id=appeal.id, status="registered", actor="estu", note=None))
    if connector is not None:
        await connector.submit(session, appeal)
    await session.flush()
    return appeal


async def find_own(session: AsyncSession, number: str, channel: str, external_id: str) -> Appeal | None:
    """An appeal by number, but only for the citizen who filed it (the number alone is not enough)."""
    row = await session.execute(
        select(Appeal).join(User, Appeal.user_id == User.id)
        .where(Appeal.number == number, User.channel == channel, User.external_id == external_id))
    return row.scalar_one_or_none()


async def list_own(session: AsyncSession, user: User, limit: int = 5) -> list[Appeal]:
    rows = await session.execute(select(Appeal).where(Appeal.user_id == user.id)
                                 .order_by(Appeal.id.desc()).limit(limit))
    return list(rows.scalars())


def can_extend(appeal: Appeal) -> bool:
    """Whether the law lets the term of ``appeal`` be extended at all (not a complaint's, APPC Art. 99)."""
    return rule_for(appeal.appeal_type).extendable


def latest_extension(appeal: Appeal, decided: dt.date | None = None) -> dt.date | None:
    """The latest new deadline an extension decided on ``decided`` (default: today in Kazakhstan) may set,
    APPC Art. 76 §3; None when no cap is known. Only for an appeal whose term can be extended."""
    return extension_cap(decided or today(), appeal.appeal_type)


async def set_status(session: AsyncSession, appeal: Appeal, status: str, actor: str, note: str | None = None,
                     new_due_date: dt.date | None = None, redirected_to: str | None = None,
                     on: dt.date | None = None) -> AppealEvent:
    """Change the status, record the event, and queue a notification in the citizen's language.

    ``on`` is the day of the decision (an extension) or the day the competent body received the appeal (a
    redirection); it defaults to today in Kazakhstan. A redirection starts the term anew (APPC Art. 76 §2).
    """
    if status not in STATUSES:
        raise TransitionError(f"unknown status {status!r}; one of {', '.join(STATUSES)}")
    if status not in TRANSITIONS[appeal.status]:
        raise TransitionError(f"cannot go from {appeal.status!r} to {status!r}")
    if status in NEEDS_NOTE and not (note or redirected_to):
        raise TransitionError(f"status {status!r} needs {NEEDS_NOTE[status]}")
    on = on or today()
    if status == "extended":
        if not can_extend(appeal):
            basis = rule_for(appeal.appeal_type).citation["ru"]
            raise TransitionError(f"the term of a {appeal.appeal_type} cannot be extended ({basis})")
        if new_due_date is None:
            raise TransitionError("an extension needs the new date")
        cap = latest_extension(appeal, on)
        if cap is not None and new_due_date > cap:
            raise TransitionError(f"an extension may not go beyond {cap.isoformat()} (two months from the decision, "
                                  "APPC Art. 76)")
        if new_due_date <= appeal.due_date:
            raise TransitionError("the new date must be later than the current deadline")
        appeal.due_date = new_due_date
    elif status == "redirected":
        if new_due_date is not None:
            raise TransitionError("a redirection computes its own deadline; give the day the body received it instead")
        new_due_date = legal_due_date(on, appeal.appeal_type, redirected=True)
        appeal.due_date = new_due_date
    appeal.status = status
    event = AppealEvent(appeal_id=appeal.id, status=status, actor=actor, note=note, new_due_date=new_due_date,
                        redirected_to=redirected_to)
    session.add(event)
    await session.flush()
    user = await session.get(User, appeal.user_id)
    lang = appeal.language
    parts = [_(lang, "Your appeal {number}: {status}.", number=appeal.number, status=status_label(status, lang))]
    if redirected_to:
        parts.append(_(lang, "It was redirected to: {body}.", body=redirected_to))
    if new_due_date is not None:
        parts.append(_(lang, "New deadline: {date}.", date=new_due_date.strftime("%d.%m.%Y")))
    if note:
        parts.append(note)
    notify(session, user, " ".join(parts), key=f"status-{appeal.number}-{event.id}")
    if status == "answered":  # ask the citizen to rate how the appeal was handled (CSAT, bot/operators)
        from bot.operators.feedback import request_appeal_rating

        await request_appeal_rating(session, appeal, user)
    return event

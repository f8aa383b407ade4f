"""The dialogue side of the hand-off: triggers, the waiting state, out-of-hours intake, ownership.

Triggers (each calls :func:`request`): the citizen asks (/operator, the Operator button, the
``operator`` intent); two low-confidence / no-answer turns in a row; negative feedback twice in a
conversation; an answer on an editor-defined topic (``handoff_topics.yml``). The citizen is told
their place in the queue and the estimated wait (bot/operators/queue.py), or, outside working
hours, when the desk opens; then the bot asks for a phone number (or "reply here") and a short
description and queues the conversation for that opening.

Conversation statuses: ``bot`` → ``waiting_operator`` (queued; the bot acknowledges messages,
emergencies are still answered first) → ``operator`` (owned; the bot is silent, messages are
stored masked for the operator) → ``bot`` (closed, handed back, or idle time-out).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from bot.messages import Button, Reply
from bot.operators import feedback
from bot.operators.desk import aware, desk_for
from bot.operators.queue import estimate_for
from bot.operators.service import _log, cancel_button, idle_text, is_idle, open_handoff, release, wait_text
from bot.operators.topics import Topic, queue_for
from bot.storage.models import Appeal, Handoff, Message
from nlu.emergency import emergency_kinds, is_emergency
from nlu.entities import find_appeal_numbers, find_emails, find_phones
from nlu.pii import mask

RECENT_MESSAGES = 30
MAX_DESCRIPTION = 1000
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


async def _recent_texts(ctx, limit: int = RECENT_MESSAGES) -> list[str]:
    rows = (await ctx.session.execute(select(Message.text_masked).where(
        Message.conversation_id == ctx.conversation.id, Message.direction == "in")
        .order_by(Message.id.desc()).limit(limit))).scalars().all()
    return list(rows) + ([ctx.text] if ctx.text else [])


async def _emergency_mentioned(ctx, texts: list[str]) -> bool:
    if any(is_emergency(x) for x in texts if x):
        return True
    row = (await ctx.session.execute(select(Message.id).where(
        Message.conversation_id == ctx.conversation.id, Message.answer_status == "emergency").limit(1))).first()
    return row is not None


async def _linked_appeal(ctx, texts: list[str]) -> Appeal | None:
    """The citizen's own open appeal this conversation is about: one whose number was mentioned,
    else one filed in this conversation; the nearest deadline wins."""
    numbers = {e.value for x in texts if x for e in find_appeal_numbers(x)}
    stmt = select(Appeal).where(Appeal.user_id == ctx.user.id,
                                Appeal.status.in_(("registered", "sent", "in_progress", "extended", "redirected")))
    rows = (await ctx.session.execute(stmt)).scalars().all()
    mentioned = [a for a in rows if a.number in numbers] \
        or [a for a in rows if a.conversation_id == ctx.conversation.id]
    return min(mentioned, key=lambda a: a.due_date) if mentioned else None


def when_text(ctx, opening: dt.datetime) -> str:
    return ctx.t("on {date} ({weekday}) when work starts at {time} (Astana time)", date=f"{opening:%d.%m.%Y}",
                 weekday=ctx.t(WEEKDAYS[opening.weekday()]), time=f"{opening:%H:%M}")


def hours_text(ctx) -> str:
    hours = desk_for(ctx.engine).hours
    if hours.lunch:
        return ctx.t("{hours}, lunch break {lunch}", hours=hours.summary(),
                     lunch=f"{hours.lunch.start:%H:%M}–{hours.lunch.end:%H:%M}")
    return hours.summary()


def _opening(ctx, h: Handoff) -> dt.datetime:
    desk = desk_for(ctx.engine)
    return desk.hours.local(aware(h.scheduled_for) or desk.hours.next_open(desk.now()))


async def request(ctx, reason: str, *, topic: Topic | None = None, agency: str | None = None,
                  lead: list[Reply] | None = None) -> list[Reply]:
    """Hand the conversation to a human (or tell the citizen where they stand if already queued)."""
    lead = list(lead or [])
    desk = desk_for(ctx.engine)
    now = desk.now()
    ctx.meta.update(intent="operator", answer_status="handed_off")
    conv = ctx.conversation
    for key in ("low_confidence", "negative_feedback"):
        ctx.state.pop(key, None)
    existing = await open_handoff(ctx.session, conv.id)
    if existing is not None:
        if existing.taken_by is None:
            conv.status = "waiting_operator"
        return lead + await _status_reply(ctx, existing, already=True)
    texts = await _recent_texts(ctx)
    appeal = await _linked_appeal(ctx, texts)
    agency = agency or ctx.state.get("last_agency") or (appeal.agency if appeal else None)
    h = Handoff(conversation_id=conv.id, reason=reason, queue=queue_for(agency, topic.queue if topic else None),
                agency=agency, topic=topic.key if topic else None, emergency=await _emergency_mentioned(ctx, texts),
                appeal_id=appeal.id if appeal else None, created_at=now, history=[])
    _log(h, now, "requested", "citizen" if reason == "citizen_request" else "bot", reason=reason)
    ctx.session.add(h)
    conv.status = "waiting_operator"
    if not desk.hours.is_open(now):
        opening = desk.hours.next_open(now)
        h.scheduled_for = opening.astimezone(dt.timezone.utc)
        await ctx.session.flush()
        ctx.state["handoff"] = {"step": "contact"}
        text = (ctx.t("Operators work on working days, {hours} (Astana time); it is outside working hours now. I will "
                      "queue your request, and an operator will take it {when}.", hours=hours_text(ctx),
                      when=when_text(ctx, opening))
                + "\n" + _contact_prompt(ctx))
        return lead + [Reply(text, buttons=_contact_buttons(ctx))]
    await ctx.session.flush()
    est = await estimate_for(ctx.session, h, now=now, desk=desk)
    text = (ctx.t("I am passing the conversation to a human operator.") + " "
            + wait_text(ctx.lang, est.position, est.minutes) + " "
            + ctx.t("Meanwhile, describe your question in one message; the operator will see our whole conversation."))
    return lead + [Reply(text, buttons=[cancel_button(ctx.lang)])]


def _contact_prompt(ctx) -> str:
    return ctx.t("How should the operator reach you? Send a phone number for a call back, or press «Reply here» to "
                 "get the answer in this chat.")


def _contact_buttons(ctx) -> list[Button]:
    return [Button("op:here", ctx.t("Reply here")), cancel_button(ctx.lang)]


async def _status_reply(ctx, h: Handoff, already: bool = False) -> list[Reply]:
    desk = desk_for(ctx.engine)
    now = desk.now()
    head = ctx.t("You are already in the queue for an operator.") if already else \
        ctx.t("Your message has been passed on to the operator.")
    scheduled = aware(h.scheduled_for)
    if scheduled is not None and scheduled > now:
        body = ctx.t("An operator will take your request {when}.", when=when_text(ctx, _opening(ctx, h)))
    else:
        est = await estimate_for(ctx.session, h, now=now, desk=desk)
        body = wait_text(ctx.lang, est.position, est.minutes)
    return [Reply(f"{head} {body}", buttons=[cancel_button(ctx.lang)])]


async def cancel(ctx) -> list[Reply]:
    """The citizen leaves the queue."""
    h = await open_handoff(ctx.session, ctx.conversation.id)
    if h is not None and h.taken_by is None:
        await release(ctx.session, h, ctx.conversation, ctx.user, "cancelled", desk_for(ctx.engine).now(), "citizen")
    ctx.conversation.status = "bot"
    ctx.state.pop("handoff", None)
    ctx.meta.update(intent="operator", answer_status="handoff_cancelled")
    from bot.intake.form import resume_prompt

    return [Reply(ctx.t("Your request for an operator is cancelled. I, the bot, will go on answering your questions."))
            ] + resume_prompt(ctx)


# -- routers' entry points (registered in bot/dialogue/flows.py) --------------------------------
async def controls(ctx) -> list[Reply] | None:
    """First handler of the commands router: CSAT answers, and leaving / re-asking the queue."""
    b = ctx.incoming.button or ""
    if b.startswith("csat:"):
        value = b.split(":", 1)[1]
        if value.isdigit() and 1 <= int(value) <= 5:
            return await feedback.record(ctx, int(value))
        return [Reply(ctx.t("Please rate with a digit from 1 to 5."))]
    if ctx.state.get("awaiting_csat"):
        digit = None if b else feedback.parse_digit(ctx.text)
        if digit is not None:
            return await feedback.record(ctx, digit)
        ctx.state.pop("awaiting_csat", None)
    cmd = ctx.text.split()[0].split("@")[0].lower() if ctx.text.startswith("/") else None
    if ctx.conversation.status == "waiting_operator":
        if b == "op:cancel" or cmd == "/cancel":
            return await cancel(ctx)
    elif b in ("op:cancel", "op:here"):
        ctx.state.pop("handoff", None)
        return [Reply(ctx.t("There is no request for an operator at the moment."))]
    return None


async def while_waiting(ctx) -> list[Reply] | None:
    """After the emergency handler: the conversation is queued for an operator."""
    if ctx.conversation.status != "waiting_operator":
        return None
    h = await open_handoff(ctx.session, ctx.conversation.id)
    if h is None:  # closed elsewhere: the bot has it again
        ctx.conversation.status = "bot"
        ctx.state.pop("handoff", None)
        return None
    b = ctx.incoming.button or ""
    if b.startswith(("fb:", "lang:")):
        return None  # a vote on an earlier answer is still recorded
    if b in ("act:operator",) or (ctx.text or "").lower().startswith("/operator"):
        return await _status_reply(ctx, h, already=True)
    if ctx.text:
        if is_emergency(ctx.text):
            h.emergency = True
        if not h.appeal_id:
            appeal = await _linked_appeal(ctx, [ctx.text])
            if appeal is not None:
                h.appeal_id = appeal.id
    ctx.meta.update(intent="operator", answer_status="waiting_operator")
    step = (ctx.state.get("handoff") or {}).get("step")
    if step == "contact":
        return _contact_step(ctx, h)
    if step == "description":
        return _description_step(ctx, h)
    return await _status_reply(ctx, h)


def _contact_step(ctx, h: Handoff) -> list[Reply]:
    b = ctx.incoming.button or ""
    text = ctx.text or ""
    contact = None
    rest = text
    if b == "op:here":
        contact = "chat"
    elif text and not b:
        phones, emails = find_phones(text), find_emails(text)
        found = phones[0] if phones else (emails[0] if emails else None)
        if found is not None:
            contact = found.value
            rest = (text[:found.start] + text[found.end:]).strip(" ,.;:-")
    if contact is None:
        if text and not b and len(text) >= 15:
            h.description = mask(text)[:MAX_DESCRIPTION]
            return [Reply(ctx.t("I have saved your description.") + " " + _contact_prompt(ctx),
                          buttons=_contact_buttons(ctx))]
        return [Reply(ctx.t("I could not find a phone number in the message.") + " " + _contact_prompt(ctx),
                      buttons=_contact_buttons(ctx))]
    h.contact = None if contact == "chat" else contact
    if len(rest) >= 15 and not h.description:
        h.description = mask(rest)[:MAX_DESCRIPTION]
    if h.description:
        return _queued(ctx, h)
    ctx.state["handoff"] = {"step": "description"}
    return [Reply(ctx.t("Thank you. Now describe your question briefly, in one message."),
                  buttons=[cancel_button(ctx.lang)])]


def _description_step(ctx, h: Handoff) -> list[Reply]:
    text = ctx.text or ""
    if ctx.incoming.button or len(text) < 5:
        return [Reply(ctx.t("Please describe your question in words, in one message."),
                      buttons=[cancel_button(ctx.lang)])]
    h.description = mask(text)[:MAX_DESCRIPTION]
    return _queued(ctx, h)


def _queued(ctx, h: Handoff) -> list[Reply]:
    ctx.state.pop("handoff", None)
    how = (ctx.t("The operator will call you at {phone}.", phone=h.contact) if h.contact and "@" not in h.contact
           else ctx.t("The operator will write to you at {email}.", email=h.contact) if h.contact
           else ctx.t("The operator will answer you here, in this chat."))
    return [Reply(ctx.t("Thank you, your request is in the queue. An operator will take it {when}.",
                        when=when_text(ctx, _opening(ctx, h))) + " " + how, buttons=[cancel_button(ctx.lang)])]


async def owned_message(ctx) -> bool:
    """A citizen's message while an operator owns the conversation. True: stay silent (the message
    is already stored, masked) — except that an emergency still gets the 112 advice (the engine sends
    it when ``ctx.meta['emergency_while_owned']`` is set). False: the operator has been idle too long — the conversation is
    given back to the bot (told in ``ctx.meta['prefix']``) and the message is answered normally."""
    desk = desk_for(ctx.engine)
    now = desk.now()
    h = await open_handoff(ctx.session, ctx.conversation.id)
    if h is None or h.taken_by is None:
        ctx.conversation.status = "waiting_operator" if h is not None else "bot"
        return False
    if is_idle(h, now, desk):
        await release(ctx.session, h, ctx.conversation, ctx.user, "idle_timeout", now, None)
        ctx.state.pop("handoff", None)
        ctx.meta["prefix"] = [Reply(idle_text(ctx.lang))]
        return False
    if h.citizen_waiting_since is None:
        h.citizen_waiting_since = now
    if ctx.text and is_emergency(ctx.text):
        # safety before silence: the emergency numbers go out at once, the operator sees the flag
        h.emergency = True
        ctx.meta["emergency_while_owned"] = emergency_kinds(ctx.text)
    return True


async def flag_emergency(ctx) -> None:
    """An emergency in a queued conversation moves it to the front of its queue."""
    if ctx.conversation.status in ("waiting_operator", "operator"):
        h = await open_handoff(ctx.session, ctx.conversation.id)
        if h is not None:
            h.emergency = True


def topic_for(ctx, entry_id: str | None, agency: str | None) -> Topic | None:
    return desk_for(ctx.engine).topics.match(entry_id, agency)

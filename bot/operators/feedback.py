"""CSAT: a 1-5 rating asked after an operator closes a conversation and after an appeal is
answered, stored in ``Feedback.rating`` with the operator and the agency.

Asking writes a ``Feedback`` row (``kind`` "operator" or "appeal", ``rating`` NULL) and pushes the
prompt with buttons ``csat:1`` … ``csat:5``; the text also says a digit will do, for channels that
show no buttons. The answer (a button, or a lone digit while the prompt is the last thing the bot
said in this conversation) fills the citizen's latest requested rating of the last 7 days; a
second answer replaces the first.
"""

from __future__ import annotations

import datetime as dt
import re

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import flag_modified

from bot.messages import Button, Reply
from bot.operators.delivery import language_of, say, t
from bot.storage.models import Appeal, Conversation, Feedback, Handoff, User, utcnow

CSAT_WINDOW = dt.timedelta(days=7)
LABELS = {1: "1 — very poor", 2: "2 — poor", 3: "3 — fair", 4: "4 — good", 5: "5 — excellent"}
_DIGIT = re.compile(r"^\s*([1-5])\s*(?:[*⭐️★]+\s*)?$")


def csat_buttons(lang: str) -> list[Button]:
    return [Button(f"csat:{n}", t(lang, label)) for n, label in LABELS.items()]


def parse_digit(text: str | None) -> int | None:
    m = _DIGIT.match(text or "")
    return int(m.group(1)) if m else None


def _await_in(conversation: Conversation, feedback_id: int) -> None:
    """Let a lone digit answer the prompt in this conversation (not in the middle of a form)."""
    state = dict(conversation.state or {})
    if state.get("flow"):
        return
    state["awaiting_csat"] = feedback_id
    conversation.state = state
    flag_modified(conversation, "state")


async def request_operator_rating(session: AsyncSession, handoff: Handoff, conversation: Conversation,
                                  user: User) -> Feedback:
    lang = language_of(conversation, user)
    fb = Feedback(conversation_id=conversation.id, kind="operator", operator=handoff.taken_by,
                  agency=handoff.agency or (handoff.queue if handoff.queue != "general" else None),
                  handoff_id=handoff.id, created_at=utcnow())
    session.add(fb)
    await session.flush()
    say(session, conversation, user, t(lang, "How would you rate the operator's help? Press a button or send a digit "
                                            "from 1 (very poor) to 5 (excellent)."),
        buttons=csat_buttons(lang), key=f"csat-handoff-{handoff.id}", system="csat_prompt")
    _await_in(conversation, fb.id)
    return fb


async def request_appeal_rating(session: AsyncSession, appeal: Appeal, user: User) -> Feedback | None:
    """After an appeal is answered (hooked into ``registry.set_status``)."""
    conv = None
    if appeal.conversation_id:
        conv = await session.get(Conversation, appeal.conversation_id)
    latest = (await session.execute(select(Conversation).where(Conversation.user_id == user.id,
                                                               Conversation.status != "closed")
                                    .order_by(Conversation.id.desc()).limit(1))).scalar_one_or_none()
    conv = latest or conv
    if conv is None:
        return None
    lang = appeal.language if appeal.language in ("kk", "ru") else language_of(conv, user)
    fb = Feedback(conversation_id=conv.id, kind="appeal", agency=appeal.agency, appeal_id=appeal.id,
                  created_at=utcnow())
    session.add(fb)
    await session.flush()
    say(session, conv, user, t(lang, "How satisfied are you with how your appeal {number} was handled? Press a button "
                                     "or send a digit from 1 (very poor) to 5 (excellent).", number=appeal.number),
        buttons=csat_buttons(lang), key=f"csat-appeal-{appeal.id}", system="csat_prompt")
    if conv.status == "bot":
        _await_in(conv, fb.id)
    return fb


async def record(ctx, rating: int) -> list[Reply]:
    """Store a rating from the citizen of ``ctx`` (a dialogue Context)."""
    ctx.state.pop("awaiting_csat", None)
    ctx.meta.update(answer_status="csat")
    since = utcnow() - CSAT_WINDOW
    fb = (await ctx.session.execute(
        select(Feedback).join(Conversation, Feedback.conversation_id == Conversation.id)
        .where(Conversation.user_id == ctx.user.id, Feedback.kind.in_(("operator", "appeal")),
               Feedback.created_at >= since)
        .order_by(Feedback.id.desc()).limit(1))).scalar_one_or_none()
    if fb is None:
        return [Reply(ctx.t("Thank you! There is nothing to rate at the moment."))]
    fb.rating = rating
    out = [Reply(ctx.t("Thank you for your rating!"))]
    if rating <= 2:
        out[0].text += " " + ctx.t("We are sorry it did not go well. If the question is not solved, you can ask for "
                                   "an operator again (/operator) or file an appeal.")
    return out

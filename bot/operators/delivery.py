"""Messages from the desk to a citizen, outside the citizen's own turn (operator replies, "an
operator joined", the CSAT prompt …).

Each is an ``Outbox`` row of kind ``notify`` written in the caller's transaction, so the outbox
worker pushes it through ``worker.senders[channel]`` (Telegram, WhatsApp) or, for pull channels
(web, cli, test), stores it for ``engine.pending_notifications`` / ``GET /api/v1/notifications``.
Buttons travel in the payload; senders that take a ``buttons`` keyword get them, the others get
the text (which always says how to answer without buttons).

A copy goes into the conversation's transcript (``messages``, masked, ``delivered`` true) with
``payload.operator`` or ``payload.system`` saying who spoke.
"""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from bot.i18n import gettext
from bot.messages import Button
from bot.storage.models import Conversation, Message, Outbox, User
from nlu.pii import mask


def language_of(conversation: Conversation | None, user: User | None) -> str:
    lang = (conversation.language if conversation else None) or (user.language if user else None)
    return lang if lang in ("kk", "ru") else "ru"


def push(session: AsyncSession, user: User, text: str, buttons: list[Button] | None = None,
         key: str | None = None) -> None:
    """Queue ``text`` (and buttons) to the citizen's own channel."""
    payload = {"channel": user.channel, "user_id": user.external_id, "text": text}
    if buttons:
        payload["buttons"] = [{"id": b.id, "label": b.label} for b in buttons]
    session.add(Outbox(kind="notify", idempotency_key=key or f"notify-{uuid.uuid4()}", payload=payload))


def say(session: AsyncSession, conversation: Conversation, user: User, text: str, *,
        buttons: list[Button] | None = None, key: str | None = None, operator: str | None = None,
        system: str | None = None) -> Message:
    """Push ``text`` to the citizen and record it in the transcript."""
    push(session, user, text, buttons, key)
    payload: dict = {"buttons": [b.id for b in buttons or []]}
    if operator:
        payload["operator"] = operator
    if system:
        payload["system"] = system
    msg = Message(conversation_id=conversation.id, direction="out", text_masked=mask(text), payload=payload,
                  answer_status="operator" if operator else system, delivered=True)
    session.add(msg)
    return msg


def t(lang: str, msgid: str, **kw) -> str:
    return gettext(lang, msgid, **kw)

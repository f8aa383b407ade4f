"""The dialogue engine: one incoming neutral message in, replies out.

Routers are tried in order (commands → emergency → the appeal form → buttons → understanding);
each handler returns replies or ``None`` to pass the message on, like aiogram's routers. The
conversation's state is a JSON document saved with the conversation after every message.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm.attributes import flag_modified

from bot.assistant import Assistant, Understanding
from bot.i18n import gettext
from bot.logging import get_logger
from bot.messages import Button, Incoming, Reply
from bot.storage.models import Conversation, Message, User
from nlu.language import detect_language
from nlu.normalize import clean
from nlu.pii import mask

log = get_logger("estu.dialogue")
MAX_TEXT = 10_000

Handler = Callable[["Context"], Awaitable[list[Reply] | None]]
# (engine, assistant) pinned for the message being handled: a knowledge-base version published meanwhile
# (bot/editorial/publish.py swaps ``engine.assistant``) takes effect from the next message, never half-way
_PINNED: ContextVar[tuple["Engine", Assistant] | None] = ContextVar("estu_pinned_assistant", default=None)


@dataclass
class Context:
    engine: "Engine"
    session: AsyncSession
    user: User
    conversation: Conversation
    incoming: Incoming
    text: str
    lang: str
    _understanding: Understanding | None = None
    meta: dict = field(default_factory=dict)  # what to record with the outgoing message

    @property
    def state(self) -> dict:
        return self.conversation.state

    def t(self, msgid: str, **kw) -> str:
        return gettext(self.lang, msgid, **kw)

    def understand(self) -> Understanding:
        if self._understanding is None:
            self._understanding = self.engine.assistant.understand(self.text, self.conversation.language)
        return self._understanding

    def replace_text(self, text: str) -> None:
        """Handle ``text`` instead of what arrived (a kept question the citizen answered a button about)."""
        self.text, self._understanding = text, None

    def set_lang(self, lang: str) -> None:
        self.lang = lang
        self.conversation.language = lang


class Router:
    """An ordered list of handlers for one feature."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.handlers: list[Handler] = []

    def handler(self, fn: Handler) -> Handler:
        self.handlers.append(fn)
        return fn


class Engine:
    def __init__(self, assistant: Assistant, sessions: async_sessionmaker[AsyncSession], connector=None) -> None:
        self._assistant = assistant
        self.sessions = sessions
        self.connector = connector
        self.routers: list[Router] = []
        self.operators = None  # bot.operators.desk.Desk (hours, topics, clock), created on first use

    @property
    def assistant(self) -> Assistant:
        """The assistant of the message being handled (pinned when it started), else the current one."""
        pinned = _PINNED.get()
        return pinned[1] if pinned is not None and pinned[0] is self else self._assistant

    @assistant.setter
    def assistant(self, value: Assistant) -> None:
        self._assistant = value

    def include(self, *routers: Router) -> "Engine":
        self.routers.extend(routers)
        return self

    async def _user(self, session: AsyncSession, msg: Incoming) -> User:
        row = await session.execute(select(User).where(User.channel == msg.channel, User.external_id == msg.user_id))
        user = row.scalar_one_or_none()
        if user is None:
            user = User(channel=msg.channel, external_id=msg.user_id, language=None, profile={})
            session.add(user)
            await session.flush()
        return user

    async def _conversation(self, session: AsyncSession, user: User) -> Conversation:
        row = await session.execute(select(Conversation).where(Conversation.user_id == user.id,
                                                                Conversation.status != "closed")
                                    .order_by(Conversation.id.desc()).limit(1))
        conv = row.scalar_one_or_none()
        if conv is None:
            conv = Conversation(user_id=user.id, status="bot", state={}, language=user.language)
            session.add(conv)
            await session.flush()
        return conv

    def _language(self, msg: Incoming, text: str, conv: Conversation, user: User) -> str:
        previous = conv.language or user.language or (msg.language_hint if msg.language_hint in ("kk", "ru") else None)
        state = conv.state or {}
        if previous and state.get("flow") == "appeal" and state.get("step") not in (None, "text"):
            return previous  # names, IINs and addresses say nothing about the language of the conversation
        if text and len(text.split()) >= 2:
            lang = detect_language(text, previous)
            return lang if lang in ("kk", "ru") else (previous or "ru")
        return previous or "ru"

    async def handle(self, msg: Incoming) -> list[Reply]:
        """Process one message; never raises to the caller (a failure becomes a kind apology)."""
        token = _PINNED.set((self, self._assistant))
        try:
            return await self._handle(msg)
        except Exception:  # noqa: BLE001
            log.exception("dialogue_error", channel=msg.channel)
            lang = msg.language_hint if msg.language_hint in ("kk", "ru") else "ru"
            return [Reply(gettext(lang, "Sorry, something went wrong on our side. Your data is saved; please "
                                        "send the message again."))]
        finally:
            _PINNED.reset(token)

    async def _handle(self, msg: Incoming) -> list[Reply]:
        text = clean(msg.text or "")[:MAX_TEXT]
        async with self.sessions() as session, session.begin():
            user = await self._user(session, msg)
            conv = await self._conversation(session, user)
            conv.state = dict(conv.state or {})
            lang = self._language(msg, text, conv, user)
            ctx = Context(self, session, user, conv, msg, text, lang)
            if text or msg.button or msg.attachments:
                session.add(Message(conversation_id=conv.id, direction="in",
                                    text_masked=mask(text) if text else f"[button {msg.button}]"
                                    if msg.button else "[attachment]"))
            if conv.status == "operator":
                from bot.operators.handoff import owned_message

                if await owned_message(ctx):
                    # an operator owns the conversation: the bot stays silent (the message is stored above),
                    # except for an emergency: a miss can cost a life, a duplicate costs a sentence
                    kinds = ctx.meta.get("emergency_while_owned")
                    if kinds is None:
                        return []
                    advice = Reply(self.assistant._emergency_answer(lang, kinds), links=["tel:112"])
                    session.add(Message(conversation_id=conv.id, direction="out", text_masked=mask(advice.text),
                                        intent="emergency", answer_status="emergency"))
                    return [advice]
            if conv.language is None and text:
                conv.language = lang
            replies: list[Reply] = []
            for router in self.routers:
                for handler in router.handlers:
                    out = await handler(ctx)
                    if out is not None:
                        replies = out
                        break
                else:
                    continue
                break
            replies = ctx.meta.pop("prefix", []) + replies  # e.g. "the operator was idle, I am back"
            for r in replies:
                session.add(Message(conversation_id=conv.id, direction="out", text_masked=mask(r.text),
                                    intent=ctx.meta.get("intent"), confidence=ctx.meta.get("confidence"),
                                    entry_id=ctx.meta.get("entry_id"), answer_status=ctx.meta.get("answer_status"),
                                    payload={"buttons": [b.id for b in r.buttons], **_analytics(ctx, r)}))
            conv.updated_at = dt.datetime.now(dt.timezone.utc)
            flag_modified(conv, "state")
            return replies

    async def pending_notifications(self, channel: str, user_id: str) -> list[Reply]:
        """Notifications stored for channels that fetch them (web chat, CLI); marks them delivered."""
        async with self.sessions() as session, session.begin():
            rows = await session.execute(
                select(Message).join(Conversation, Message.conversation_id == Conversation.id)
                .join(User, Conversation.user_id == User.id)
                .where(User.channel == channel, User.external_id == user_id, Message.delivered.is_(False))
                .order_by(Message.id))
            out = []
            for m in rows.scalars():
                m.delivered = True
                out.append(Reply(m.payload.get("text", m.text_masked),
                                 buttons=[Button(**b) for b in m.payload.get("buttons") or [] if isinstance(b, dict)]))
            return out


def _analytics(ctx: Context, reply: Reply) -> dict:
    """What the traffic analytics (bot/editorial/insights.py) read from a reply's payload: the channel a shown
    recommendation card points to, and whether the question went unanswered (even if a hand-off followed)."""
    out = {}
    if reply.card is not None and ctx.meta.get("channel"):
        out["channel"] = ctx.meta["channel"]
    if ctx.meta.get("unanswered"):
        out["unanswered"] = ctx.meta["unanswered"]
    return out


def inbox_sender(sessions: async_sessionmaker[AsyncSession]):
    """A notification sender for channels without push (web chat, CLI, tests): the message waits in
    the conversation until the client fetches it."""

    async def send(channel: str, user_id: str, text: str, buttons: list[Button] | None = None) -> None:
        async with sessions() as session, session.begin():
            user = (await session.execute(select(User).where(User.channel == channel, User.external_id == user_id))
                    ).scalar_one()
            conv = (await session.execute(select(Conversation).where(Conversation.user_id == user.id)
                                          .order_by(Conversation.id.desc()).limit(1))).scalar_one()
            # the full text goes in the payload (it is the citizen's own notification), the column is masked
            session.add(Message(conversation_id=conv.id, direction="out", text_masked=mask(text),
                                payload={"text": text, "notification": True,
                                         "buttons": [{"id": b.id, "label": b.label} for b in buttons or []]},
                                delivered=False))

    return send

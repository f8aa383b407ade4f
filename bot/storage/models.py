"""Tables. Citizens' raw texts are kept only where an appeal needs them (``appeals.text``);
conversation messages are stored masked."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, Boolean, Date, DateTime, ForeignKey, Integer, String, Text, UniqueConstraint, func
from sqlalchemy import false as sa_false
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class Base(DeclarativeBase):
    type_annotation_map = {dict: JSON, list: JSON}


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class User(Base):
    """A citizen as one channel identity (telegram:123, whatsapp:+7…, web:uuid, cli:local)."""

    __tablename__ = "users"
    __table_args__ = (UniqueConstraint("channel", "external_id", name="uq_user_identity"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    channel: Mapped[str] = mapped_column(String(32))
    external_id: Mapped[str] = mapped_column(String(128))
    language: Mapped[str | None] = mapped_column(String(2))
    consent_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    profile: Mapped[dict] = mapped_column(JSON, default=dict)  # applicant details remembered with consent
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Conversation(Base):
    __tablename__ = "conversations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(24), default="bot")  # bot | waiting_operator | operator | closed
    state: Mapped[dict] = mapped_column(JSON, default=dict)  # the dialogue state (flow, step, form data)
    language: Mapped[str | None] = mapped_column(String(2))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)

    user: Mapped[User] = relationship(lazy="joined")


class Message(Base):
    """One message in or out, masked; ``delivered`` is False for notifications not yet fetched."""

    __tablename__ = "messages"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"), index=True)
    direction: Mapped[str] = mapped_column(String(3))  # in | out
    text_masked: Mapped[str] = mapped_column(Text, default="")
    intent: Mapped[str | None] = mapped_column(String(24))
    confidence: Mapped[float | None]
    entry_id: Mapped[str | None] = mapped_column(String(80))
    answer_status: Mapped[str | None] = mapped_column(String(24))
    payload: Mapped[dict] = mapped_column(JSON, default=dict)  # buttons, card …
    delivered: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Appeal(Base):
    __tablename__ = "appeals"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    number: Mapped[str] = mapped_column(String(20), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    conversation_id: Mapped[int | None] = mapped_column(ForeignKey("conversations.id", ondelete="SET NULL"))
    channel: Mapped[str] = mapped_column(String(32))
    language: Mapped[str] = mapped_column(String(2))
    appeal_type: Mapped[str] = mapped_column(String(16))
    agency: Mapped[str | None] = mapped_column(String(32))
    addressee: Mapped[str] = mapped_column(String(255))
    surname: Mapped[str] = mapped_column(String(120))
    name: Mapped[str] = mapped_column(String(120))
    patronymic: Mapped[str | None] = mapped_column(String(120))
    iin: Mapped[str] = mapped_column(String(12))
    address: Mapped[str] = mapped_column(Text)
    phone: Mapped[str | None] = mapped_column(String(20))
    email: Mapped[str | None] = mapped_column(String(255))
    text: Mapped[str] = mapped_column(Text)
    attachments: Mapped[list] = mapped_column(JSON, default=list)
    consent: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(16), default="registered")
    received_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    due_date: Mapped[dt.date] = mapped_column(Date)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)

    events: Mapped[list["AppealEvent"]] = relationship(order_by="AppealEvent.id", lazy="selectin",
                                                        cascade="all, delete-orphan")
    user: Mapped[User] = relationship(lazy="joined")


class AppealEvent(Base):
    __tablename__ = "appeal_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    appeal_id: Mapped[int] = mapped_column(ForeignKey("appeals.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(16))
    note: Mapped[str | None] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(String(120))
    new_due_date: Mapped[dt.date | None] = mapped_column(Date)
    redirected_to: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Feedback(Base):
    __tablename__ = "feedback"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"), index=True)
    entry_id: Mapped[str | None] = mapped_column(String(80))
    helpful: Mapped[bool | None] = mapped_column(Boolean)
    rating: Mapped[int | None]  # CSAT 1-5 (operator issue); NULL while a requested rating is unanswered
    # what a CSAT rating is about (bot/operators/feedback.py): "operator" (a closed hand-off) or "appeal"
    # (an answered appeal); NULL for the "helpful / not helpful" votes on bot answers
    kind: Mapped[str | None] = mapped_column(String(16))
    operator: Mapped[str | None] = mapped_column(String(120))
    agency: Mapped[str | None] = mapped_column(String(32))
    handoff_id: Mapped[int | None] = mapped_column(
        ForeignKey("handoffs.id", ondelete="SET NULL", name="fk_feedback_handoff_id_handoffs"))
    appeal_id: Mapped[int | None] = mapped_column(
        ForeignKey("appeals.id", ondelete="SET NULL", name="fk_feedback_appeal_id_appeals"))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Handoff(Base):
    """A conversation handed to a human operator (bot/operators). Open while ``closed_at`` is NULL:
    waiting in ``queue`` while ``taken_by`` is NULL, owned by ``taken_by`` otherwise."""

    __tablename__ = "handoffs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"), index=True)
    # citizen_request | low_confidence | negative_feedback | topic | operator_initiative
    reason: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    taken_by: Mapped[str | None] = mapped_column(String(120))
    closed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    queue: Mapped[str] = mapped_column(String(40), default="general", server_default="general", index=True)
    agency: Mapped[str | None] = mapped_column(String(32))
    topic: Mapped[str | None] = mapped_column(String(80))  # the editor-defined topic that required the hand-off
    emergency: Mapped[bool] = mapped_column(Boolean, default=False, server_default=sa_false())
    appeal_id: Mapped[int | None] = mapped_column(
        ForeignKey("appeals.id", ondelete="SET NULL", name="fk_handoffs_appeal_id_appeals"))
    scheduled_for: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))  # out of hours: next opening
    contact: Mapped[str | None] = mapped_column(String(255))  # out of hours: a phone to call back, or NULL = chat
    description: Mapped[str | None] = mapped_column(Text)  # out of hours: the citizen's summary (masked)
    taken_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    operator_activity_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    citizen_waiting_since: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    resolution: Mapped[str | None] = mapped_column(String(24))
    closed_by: Mapped[str | None] = mapped_column(String(120))
    history: Mapped[list] = mapped_column(JSON, default=list)  # [{at, action, by, ...}]


class Outbox(Base):
    """Transactional outbox: written in the same transaction as the change it announces."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(24))  # intake_http | notify
    idempotency_key: Mapped[str] = mapped_column(String(80), unique=True)
    payload: Mapped[dict] = mapped_column(JSON)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    delivered_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ProcessedUpdate(Base):
    """Platform updates already handled (Telegram update_id, WhatsApp message id): each is processed once."""

    __tablename__ = "processed_updates"
    __table_args__ = (UniqueConstraint("channel", "key", name="uq_processed_update"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    channel: Mapped[str] = mapped_column(String(32))
    key: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)


class Counter(Base):
    """Atomic counters (appeal numbers per year)."""

    __tablename__ = "counters"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    value: Mapped[int] = mapped_column(Integer, default=0)


class OperatorPresence(Base):
    """Operators online for the waiting-time estimate: the console calls ``heartbeat`` while an
    operator has it open (bot/operators/queue.py)."""

    __tablename__ = "operator_presence"

    operator: Mapped[str] = mapped_column(String(120), primary_key=True)
    queues: Mapped[list] = mapped_column(JSON, default=list)  # queues served; empty: all
    last_seen_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    online: Mapped[bool] = mapped_column(Boolean, default=True)


_ = func  # re-exported for migrations

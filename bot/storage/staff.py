"""Tables of the people behind the bot: staff users, console sessions, audit log, canned replies.

Migration: ``bot/storage/migrations/versions/0004_console.py`` (written by hand; keep the two in step).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from bot.storage.models import Base, utcnow

ROLES = ("operator", "editor", "admin")


class StaffUser(Base):
    """A person who logs in to the console. ``role``: operator | editor | admin (admin can do everything)."""

    __tablename__ = "staff_users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(120), default="")
    password_hash: Mapped[str] = mapped_column(String(255))  # argon2id, PHC string
    role: Mapped[str] = mapped_column(String(16))
    agency: Mapped[str | None] = mapped_column(String(32))  # an agency id from the corpus, optional
    queue: Mapped[str | None] = mapped_column(String(64))  # an operator queue, optional
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    last_login_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    @property
    def name(self) -> str:
        return self.display_name or self.username

    def can(self, *roles: str) -> bool:
        """True if the user has one of ``roles`` (admin has every role); no roles: any active user."""
        return self.active and (not roles or self.role == "admin" or self.role in roles)


class StaffSession(Base):
    """A console login. Only the SHA-256 of the cookie token is stored."""

    __tablename__ = "staff_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("staff_users.id", ondelete="CASCADE"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    ip: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), index=True)
    last_seen_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    user: Mapped[StaffUser] = relationship(lazy="joined")


class AuditLog(Base):
    """Who did what to which record. ``detail`` is PII-masked before it is stored (``bot.web.console.audit``)."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id", ondelete="SET NULL"), index=True)
    actor: Mapped[str] = mapped_column(String(120))  # username at the time, "cli:<login>", or "-" (unknown)
    action: Mapped[str] = mapped_column(String(64), index=True)
    record_type: Mapped[str | None] = mapped_column(String(40))
    record_id: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[dict] = mapped_column(JSON, default=dict)
    ip: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)


class CannedReply(Base):
    """A ready answer operators can insert, in both languages."""

    __tablename__ = "canned_replies"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    text_kk: Mapped[str] = mapped_column(Text, default="")
    text_ru: Mapped[str] = mapped_column(Text, default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)

    def text(self, language: str) -> str:
        """The text in ``language`` (kk|ru), else the other one."""
        first, other = (self.text_kk, self.text_ru) if language == "kk" else (self.text_ru, self.text_kk)
        return first or other


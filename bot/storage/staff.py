"""Tables of the people behind the bot: staff users, console sessions, audit log, canned replies."""

from __future__ import annotations

from bot.storage.models import Base  # noqa: F401

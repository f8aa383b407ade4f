"""Tables of the editorial side: published corpus versions."""

from __future__ import annotations

from bot.storage.models import Base  # noqa: F401

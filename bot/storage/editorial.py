"""Tables of the editorial side: published corpus versions and the shared working copy (docs/editing.md).

* ``kb_versions``: every published state of the knowledge base (all entries, the retired ids and the routing
  rules, as JSON), numbered 1, 2, 3 …; exactly one is live (``is_live``). A roll-back publishes the old content
  again as a new version, so the history only ever grows.
* ``kb_drafts``: one shared working copy (row ``id = 1``): the live data plus the editors' pending changes.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from bot.storage.models import Base


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class CorpusVersion(Base):
    __tablename__ = "kb_versions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    number: Mapped[int] = mapped_column(Integer, unique=True)
    data: Mapped[dict] = mapped_column(JSON)  # {"entries": [...], "retired": [ids], "routing": {...}}
    corpus_hash: Mapped[str] = mapped_column(String(32), default="")
    author: Mapped[str] = mapped_column(String(120))
    comment: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("kb_versions.id", ondelete="SET NULL"))
    diff: Mapped[str] = mapped_column(Text, default="")
    is_live: Mapped[bool] = mapped_column(Boolean, default=False, index=True)


class KbDraft(Base):
    __tablename__ = "kb_drafts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)  # always 1: a single shared working copy
    base_version_id: Mapped[int | None] = mapped_column(ForeignKey("kb_versions.id", ondelete="SET NULL"))
    data: Mapped[dict] = mapped_column(JSON)
    changed: Mapped[list] = mapped_column(JSON, default=list)  # ids touched since the base version
    # the self-retrieval problems found when each entry was last saved ({entry id: [problem dicts]}): the test
    # takes a second or two, so it runs on save and its result is shown with the entry until the next save
    self_test: Mapped[dict] = mapped_column(JSON, default=dict)
    updated_by: Mapped[str] = mapped_column(String(120), default="")
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)

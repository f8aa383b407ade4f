"""Pydantic schema of a corpus entry (documented in knowledge/corpus/SCHEMA.md)."""

from __future__ import annotations

import datetime as dt
import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from knowledge.ids import AGENCY_IDS, CHANNEL_IDS

_ID = re.compile(r"^(channel|faq|service|agency)\.[a-z0-9_]+$")


class LangBlock(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=2)
    questions: list[str] = Field(min_length=1)
    answer: str = Field(min_length=10)

    @field_validator("questions")
    @classmethod
    def _strip(cls, v: list[str]) -> list[str]:
        out = [str(q).strip() for q in v if str(q).strip()]
        if not out:
            raise ValueError("at least one non-empty question")
        return out


class Localized(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kk: str | None = None
    ru: str | None = None


class Contact(BaseModel):
    model_config = ConfigDict(extra="forbid")
    phone: str | None = None
    url: str | None = None
    hours: Localized | None = None
    deadline: Localized | None = None


class Entry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    kind: Literal["channel", "faq", "service", "agency"]
    agency: str | None = None
    channels: list[str] = Field(default_factory=list)
    url: str | None = None
    reviewed: dt.date
    sources: list[str] = Field(min_length=1)
    notes: str | None = None
    contact: Contact | None = None
    kk: LangBlock | None = None
    ru: LangBlock | None = None

    @field_validator("id")
    @classmethod
    def _id_form(cls, v: str) -> str:
        if not _ID.match(v):
            raise ValueError(f"id {v!r} must look like '<kind>.<slug>' with a lower-case ASCII slug")
        return v

    @field_validator("agency")
    @classmethod
    def _agency(cls, v: str | None) -> str | None:
        if v is not None and v not in AGENCY_IDS:
            raise ValueError(f"unknown agency id {v!r}")
        return v

    @field_validator("channels")
    @classmethod
    def _channels(cls, v: list[str]) -> list[str]:
        unknown = [c for c in v if c not in CHANNEL_IDS]
        if unknown:
            raise ValueError(f"unknown channel id(s) {unknown}")
        return v

    @field_validator("sources")
    @classmethod
    def _sources(cls, v: list[str]) -> list[str]:
        v = [str(s).strip() for s in v if str(s).strip()]
        if not v:
            raise ValueError("sources must not be empty")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> "Entry":
        if not self.id.startswith(self.kind + "."):
            raise ValueError(f"id {self.id!r} does not match kind {self.kind!r}")
        if self.kind == "channel":
            cid = self.id.split(".", 1)[1]
            if cid not in CHANNEL_IDS:
                raise ValueError(f"channel entry {self.id!r} names no known channel id")
        if self.kind == "agency":
            aid = self.id.split(".", 1)[1]
            if aid not in AGENCY_IDS:
                raise ValueError(f"agency entry {self.id!r} names no known agency id")
        if self.kk is None and self.ru is None:
            raise ValueError("an entry needs at least one of kk / ru")
        return self

    # -- helpers -----------------------------------------------------------------
    def block(self, language: str) -> LangBlock | None:
        return self.kk if language == "kk" else self.ru if language == "ru" else None

    def languages(self) -> list[str]:
        return [lang for lang in ("kk", "ru") if self.block(lang) is not None]

    @property
    def channel_id(self) -> str | None:
        """For a channel entry, the channel it describes; else its primary channel."""
        if self.kind == "channel":
            return self.id.split(".", 1)[1]
        return self.channels[0] if self.channels else None

"""The operators' desk configuration: settings, clock, working hours, topics, resolution codes.

One :class:`Desk` is attached to the dialogue engine (``engine.operators``, created on first use
from the assistant's settings); the console's service calls accept ``desk=`` and otherwise use
:func:`default_desk`. Tests inject a clock: ``Desk(settings, clock=lambda: some_utc_datetime)``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

import yaml

from bot.config import Settings, get_settings
from bot.operators.hours import WorkingHours
from bot.operators.topics import Topics
from bot.storage.models import utcnow

RESOLUTIONS_FILE = Path(__file__).parent / "resolutions.yml"
# closed by the system, not chosen by an operator
SYSTEM_RESOLUTIONS = ("handed_back", "idle_timeout", "cancelled")


def load_resolutions(path: Path | None = None) -> dict[str, dict]:
    path = Path(path or RESOLUTIONS_FILE)
    doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(doc, dict) or not doc:
        raise ValueError(f"{path}: expected a mapping of resolution codes")
    out = {}
    for code, spec in doc.items():
        spec = spec or {}
        if not isinstance(spec, dict) or not str(code).isidentifier() or len(str(code)) > 24:
            raise ValueError(f"{path}: {code!r}: a code is a short identifier mapped to ask_rating/ru/kk")
        if code in SYSTEM_RESOLUTIONS:
            raise ValueError(f"{path}: {code!r} is reserved")
        out[str(code)] = {"ask_rating": bool(spec.get("ask_rating", False)), "ru": spec.get("ru") or code,
                          "kk": spec.get("kk") or spec.get("ru") or code}
    return out


def aware(moment: dt.datetime | None) -> dt.datetime | None:
    """A timezone-aware UTC datetime (SQLite gives back naive datetimes, which are UTC)."""
    if moment is None:
        return None
    if moment.tzinfo is None or moment.tzinfo.utcoffset(moment) is None:
        return moment.replace(tzinfo=dt.timezone.utc)
    return moment.astimezone(dt.timezone.utc)


class Desk:
    def __init__(self, settings: Settings, clock: Callable[[], dt.datetime] | None = None,
                 hours: WorkingHours | None = None, topics: Topics | None = None,
                 resolutions: dict[str, dict] | None = None) -> None:
        self.settings = settings
        self.clock = clock or utcnow
        self.hours = hours or WorkingHours(settings.operator_hours_file)
        self.topics = topics or Topics(settings.operator_topics_file)
        self.resolutions = resolutions or load_resolutions()

    def now(self) -> dt.datetime:
        return aware(self.clock())

    @property
    def idle(self) -> dt.timedelta:
        return dt.timedelta(minutes=self.settings.operator_idle_minutes)


@lru_cache(maxsize=1)
def default_desk() -> Desk:
    return Desk(get_settings())


def desk_for(engine) -> Desk:
    """The engine's desk, created on first use from the assistant's settings."""
    desk = getattr(engine, "operators", None)
    if desk is None:
        desk = Desk(engine.assistant.settings)
        engine.operators = desk
    return desk

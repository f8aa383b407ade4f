"""Operators' working hours, in data (``working_hours.yml``), with Kazakhstan's holidays.

A moment is *open* when its local date (Asia/Almaty, UTC+5) is a working day of the desk and its
local time falls inside that day's hours but not inside the lunch break. Holidays and transferred
days off come from :class:`bot.intake.deadlines.WorkingCalendar` (the ``holidays`` package plus
``calendar_overrides.yml``): a public holiday closes the desk all day, a Saturday or Sunday made
a working day opens it with ``transferred_working_day`` hours.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import yaml

from bot.intake.deadlines import WorkingCalendar, default_calendar
from bot.logging import get_logger

log = get_logger("estu.operators")
HERE = Path(__file__).parent
HOURS_FILE = HERE / "working_hours.yml"
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_SPAN = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")
UTC5 = dt.timezone(dt.timedelta(hours=5), "UTC+5")


def kz_timezone(name: str = "Asia/Almaty") -> dt.tzinfo:
    """``name`` from the system tzdata, unless that tzdata predates Kazakhstan's move to UTC+5
    (1 March 2024), in which case a fixed UTC+5."""
    try:
        tz = ZoneInfo(name)
    except Exception:  # noqa: BLE001 - no tzdata at all
        log.warning("tzdata_missing", zone=name)
        return UTC5
    if name in ("Asia/Almaty", "Asia/Qostanay") and dt.datetime(2025, 1, 15, 12, tzinfo=tz).utcoffset() != \
            dt.timedelta(hours=5):
        log.warning("tzdata_outdated", zone=name, note="Kazakhstan is UTC+5 since 2024-03-01; using a fixed offset")
        return UTC5
    return tz


@dataclass(frozen=True)
class Span:
    start: dt.time
    end: dt.time

    def __contains__(self, t: dt.time) -> bool:
        return self.start <= t < self.end


def _span(value, path: Path, field: str) -> Span | None:
    if value in (None, "", False):
        return None
    m = _SPAN.match(str(value))
    if not m:
        raise ValueError(f"{path}: {field}: {value!r} is not 'HH:MM-HH:MM'")
    h1, m1, h2, m2 = map(int, m.groups())
    try:
        span = Span(dt.time(h1, m1), dt.time(h2, m2) if (h2, m2) != (24, 0) else dt.time.max)
    except ValueError:
        raise ValueError(f"{path}: {field}: {value!r} is not a valid time range") from None
    if span.end <= span.start:
        raise ValueError(f"{path}: {field}: the end must be after the start")
    return span


class WorkingHours:
    def __init__(self, path: Path | None = None, calendar: WorkingCalendar | None = None) -> None:
        path = Path(path or HOURS_FILE)
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        if not isinstance(doc, dict):
            raise ValueError(f"{path}: expected a mapping")
        self.path = path
        self.tz = kz_timezone(str(doc.get("timezone") or "Asia/Almaty"))
        days = doc.get("days") or {}
        unknown = set(days) - set(DAYS)
        if unknown:
            raise ValueError(f"{path}: unknown days {sorted(unknown)}; use {', '.join(DAYS)}")
        self.days: dict[int, Span | None] = {i: _span(days.get(d), path, f"days.{d}") for i, d in enumerate(DAYS)}
        self.lunch = _span(doc.get("lunch"), path, "lunch")
        self.transferred = _span(doc.get("transferred_working_day"), path, "transferred_working_day")
        self.close_on_holidays = bool(doc.get("close_on_holidays", True))
        self.calendar = calendar or default_calendar()
        if not any(self.days.values()) and not self.transferred:
            raise ValueError(f"{path}: the desk is never open")

    def local(self, moment: dt.datetime) -> dt.datetime:
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=dt.timezone.utc)
        return moment.astimezone(self.tz)

    def hours_on(self, day: dt.date) -> Span | None:
        """The desk's hours on a local date, or None if it is closed all day."""
        if day in self.calendar.extra_working_days:
            return self.transferred or self.days[day.weekday()]
        if self.close_on_holidays and (day in self.calendar.extra_days_off or self.calendar.holiday_name(day)):
            return None
        return self.days[day.weekday()]

    def is_open(self, moment: dt.datetime) -> bool:
        local = self.local(moment)
        span = self.hours_on(local.date())
        if span is None or local.time() not in span:
            return False
        return not (self.lunch and local.time() in self.lunch)

    def next_open(self, moment: dt.datetime) -> dt.datetime:
        """``moment`` itself if open, otherwise the next moment the desk opens (local time)."""
        local = self.local(moment)
        if self.is_open(local):
            return local
        day = local.date()
        for _ in range(400):
            span = self.hours_on(day)
            if span is not None:
                starts = [span.start]
                if self.lunch and span.start < self.lunch.end < span.end:
                    starts.append(self.lunch.end)
                for s in starts:
                    candidate = dt.datetime.combine(day, s, tzinfo=self.tz)
                    if candidate >= local and self.is_open(candidate):
                        return candidate
            day += dt.timedelta(days=1)
        raise ValueError(f"{self.path}: no opening within 400 days")

    def summary(self) -> str:
        """Language-neutral hours, e.g. "09:00–18:00 (13:00–14:00 lunch)" for the usual weekdays."""
        spans = {s for s in self.days.values() if s}
        parts = [f"{s.start:%H:%M}–{s.end:%H:%M}" for s in sorted(spans, key=lambda s: s.start)]
        return ", ".join(parts)

    def open_weekdays(self) -> list[int]:
        return [i for i, s in self.days.items() if s]

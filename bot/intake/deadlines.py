"""Legal deadlines of appeals in working or calendar days.

Rules (``deadline_rules.yml``) are data with their legal citations. Working days are Monday to
Friday minus Kazakhstan's public holidays (the ``holidays`` package) and minus the days off that
the Government transfers each year, plus transferred working days; both adjustments live in
``calendar_overrides.yml`` so that a deployment can follow the annual resolution without a release.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo

import holidays
import yaml

HERE = Path(__file__).parent
RULES_FILE = HERE / "deadline_rules.yml"
OVERRIDES_FILE = HERE / "calendar_overrides.yml"
KZ_TZ = ZoneInfo("Asia/Almaty")


@dataclass(frozen=True)
class DeadlineRule:
    key: str
    days: int
    unit: str  # working | calendar
    extension_max_months: int | None
    citation: dict


def load_rules(path: Path | None = None) -> dict[str, DeadlineRule]:
    return _load_rules(str(path or RULES_FILE))


@lru_cache(maxsize=8)
def _load_rules(path: str) -> dict[str, DeadlineRule]:
    doc = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    rules = {}
    for key, r in (doc.get("rules") or {}).items():
        if r.get("unit") not in ("working", "calendar"):
            raise ValueError(f"rule {key!r}: unit must be 'working' or 'calendar'")
        rules[key] = DeadlineRule(key, int(r["days"]), r["unit"], r.get("extension_max_months"),
                                  dict(r.get("citation") or {}))
    if "default" not in rules:
        raise ValueError(f"{path}: a 'default' rule is required")
    return rules


class WorkingCalendar:
    def __init__(self, overrides_path: Path | None = None) -> None:
        path = Path(overrides_path or OVERRIDES_FILE)
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) if path.exists() else {}
        doc = doc or {}
        self.extra_days_off = {dt.date.fromisoformat(str(d)) for d in doc.get("days_off") or []}
        self.extra_working_days = {dt.date.fromisoformat(str(d)) for d in doc.get("working_days") or []}
        self._years: dict[int, holidays.HolidayBase] = {}

    def _holidays(self, year: int):
        if year not in self._years:
            self._years[year] = holidays.country_holidays("KZ", years=year)
        return self._years[year]

    def is_working_day(self, d: dt.date) -> bool:
        if d in self.extra_working_days:
            return True
        if d in self.extra_days_off:
            return False
        return d.weekday() < 5 and d not in self._holidays(d.year)

    def next_working_day(self, d: dt.date) -> dt.date:
        while not self.is_working_day(d):
            d += dt.timedelta(days=1)
        return d

    def add_working_days(self, start: dt.date, n: int) -> dt.date:
        """The n-th working day after ``start`` (the day of receipt itself is not counted)."""
        d = start
        counted = 0
        while counted < n:
            d += dt.timedelta(days=1)
            if self.is_working_day(d):
                counted += 1
        return d


@lru_cache(maxsize=1)
def default_calendar() -> WorkingCalendar:
    return WorkingCalendar()


def _local_date(received) -> dt.date:
    if isinstance(received, dt.datetime):
        if received.tzinfo is None:
            received = received.replace(tzinfo=dt.timezone.utc)
        return received.astimezone(KZ_TZ).date()
    return received


def due_date(received, appeal_type: str, calendar: WorkingCalendar | None = None,
             rules: dict[str, DeadlineRule] | None = None) -> dt.date:
    calendar = calendar or default_calendar()
    rules = rules or load_rules()
    rule = rules.get(appeal_type) or rules["default"]
    start = _local_date(received)
    if rule.unit == "working":
        return calendar.add_working_days(start, rule.days)
    # calendar days: a last day that falls on a day off moves to the next working day
    return calendar.next_working_day(start + dt.timedelta(days=rule.days))


def extended_due_date(received, months: int = 2) -> dt.date:
    """The latest date an extension may reach: two months from receipt (APPC Art. 76)."""
    start = _local_date(received)
    month = start.month - 1 + months
    year = start.year + month // 12
    month = month % 12 + 1
    import calendar as _cal

    day = min(start.day, _cal.monthrange(year, month)[1])
    return dt.date(year, month, day)

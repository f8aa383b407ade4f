"""Legal deadlines of appeals (обращения), counted in working or calendar days.

The terms are data: ``deadline_rules.yml`` holds each rule with its legal citation in Russian and
Kazakh and a URL. The calendar is data too. A working day is Monday to Friday, minus Kazakhstan's
public holidays, minus extra days off, plus extra working days:

* the public holidays come from the ``holidays`` package, ``holidays.country_holidays("KZ")``. It
  already applies the statutory rule that a holiday falling on a weekend gives the next working
  day off. It also holds some of the transfers made by the Government or the Ministry of Labour;
* ``calendar_overrides.yml`` adds the transfers the package lacks: extra ``days_off``, and
  ``working_days``, such as a Saturday or Sunday that was made a working day. A deployment can
  follow a new resolution by editing it, without a release.

How a term is counted. docs/legal.md, "Computing terms", has the sources and the gaps.

* The day of receipt is the calendar date in Kazakhstan time (``Asia/Almaty``, UTC+5 since
  1 March 2024). The hour does not matter: an appeal received on Friday evening or on a holiday is
  dated that day. A timezone-aware datetime is converted to Kazakhstan time. A naive datetime is
  read as UTC, because that is what the storage layer writes (``bot.storage.models.utcnow``) and
  what SQLite gives back.
* The term starts on the day after receipt. A working-day term ends on the n-th working day after
  the day of receipt.
* A calendar-day term ends n days after the day of receipt. If that day is a day off, the term
  moves to the next working day.
* The extension cap (APPC Art. 76, at most two months) falls on the same date two months after
  receipt, or on the last day of the month if that month is shorter. It is not moved off a day off.

No APPC article on computing terms was found. The "day after" start and the move off a day off
are conventions, and docs/legal.md flags them as unconfirmed.
"""

from __future__ import annotations

import calendar as _calendar
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
UNITS = ("working", "calendar")
CITATION_KEYS = ("ru", "kk", "url")
# No real run of days off comes close to a year, so a longer run means the overrides are broken.
_MAX_RUN_OF_DAYS_OFF = 366


@dataclass(frozen=True)
class DeadlineRule:
    key: str              # appeal type, or "default"
    days: int
    unit: str             # "working" | "calendar"
    extension_max_months: int | None
    citation: dict        # {"ru": "...", "kk": "...", "url": "..."}


def load_rules(path: Path | None = None) -> dict[str, DeadlineRule]:
    """The rules from ``path`` (default: ``deadline_rules.yml``), keyed by appeal type.

    A type without a rule of its own uses ``rules["default"]``, which must exist.
    """
    return dict(_load_rules(str(Path(path or RULES_FILE).resolve())))


@lru_cache(maxsize=8)
def _load_rules(path: str) -> dict[str, DeadlineRule]:
    doc = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    raw = doc.get("rules") if isinstance(doc, dict) else None
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: expected a mapping under 'rules'")
    rules = {}
    for key, r in raw.items():
        if not isinstance(r, dict):
            raise ValueError(f"{path}: rule {key!r} must be a mapping")
        days = r.get("days")
        if not isinstance(days, int) or isinstance(days, bool) or days < 1:
            raise ValueError(f"{path}: rule {key!r}: days must be a positive integer")
        if r.get("unit") not in UNITS:
            raise ValueError(f"{path}: rule {key!r}: unit must be 'working' or 'calendar'")
        ext = r.get("extension_max_months")
        if ext is not None and (not isinstance(ext, int) or isinstance(ext, bool) or ext < 1):
            raise ValueError(f"{path}: rule {key!r}: extension_max_months must be a positive integer or null")
        citation = r.get("citation") or {}
        missing = [k for k in CITATION_KEYS if not str(citation.get(k) or "").strip()]
        if missing:
            raise ValueError(f"{path}: rule {key!r}: citation needs {', '.join(missing)}")
        rules[str(key)] = DeadlineRule(str(key), days, r["unit"], ext, dict(citation))
    if "default" not in rules:
        raise ValueError(f"{path}: a 'default' rule is required")
    return rules


def _dates(values, path: Path, field: str) -> frozenset[dt.date]:
    out = set()
    for v in values or []:
        if isinstance(v, dt.datetime) or not isinstance(v, (dt.date, str)):
            raise ValueError(f"{path}: {field}: {v!r} is not an ISO date (YYYY-MM-DD)")
        try:
            out.add(v if isinstance(v, dt.date) else dt.date.fromisoformat(v.strip()))
        except ValueError:
            raise ValueError(f"{path}: {field}: {v!r} is not an ISO date (YYYY-MM-DD)") from None
    return frozenset(out)


class WorkingCalendar:
    """Kazakhstan's working days for a five-day week.

    ``overrides_path`` defaults to ``calendar_overrides.yml``. If the file is missing, no overrides
    apply: only the ``holidays`` package and weekends count.
    """

    def __init__(self, overrides_path: Path | None = None) -> None:
        path = Path(overrides_path) if overrides_path is not None else OVERRIDES_FILE
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) if path.exists() else None
        doc = doc or {}
        if not isinstance(doc, dict):
            raise ValueError(f"{path}: expected a mapping with 'days_off' and 'working_days'")
        self.overrides_path = path
        self.extra_days_off = _dates(doc.get("days_off"), path, "days_off")
        self.extra_working_days = _dates(doc.get("working_days"), path, "working_days")
        both = self.extra_days_off & self.extra_working_days
        if both:
            raise ValueError(f"{path}: listed both as a day off and as a working day: "
                             f"{', '.join(sorted(d.isoformat() for d in both))}")
        self._years: dict[int, holidays.HolidayBase] = {}

    def _holidays(self, year: int) -> holidays.HolidayBase:
        if year not in self._years:
            self._years[year] = holidays.country_holidays("KZ", years=year)
        return self._years[year]

    def holiday_name(self, d: dt.date) -> str | None:
        """The ``holidays`` package's name for ``d``, in Kazakh, or None if it is not a holiday."""
        return self._holidays(d.year).get(d)

    def is_working_day(self, d: dt.date) -> bool:
        d = _local_date(d)
        if d in self.extra_working_days:
            return True
        if d in self.extra_days_off:
            return False
        return d.weekday() < 5 and d not in self._holidays(d.year)

    def next_working_day(self, d: dt.date) -> dt.date:
        """``d`` itself if it is a working day, otherwise the first working day after it."""
        d = _local_date(d)
        for _ in range(_MAX_RUN_OF_DAYS_OFF):
            if self.is_working_day(d):
                return d
            d += dt.timedelta(days=1)
        raise ValueError(f"no working day within {_MAX_RUN_OF_DAYS_OFF} days; check {self.overrides_path}")

    def add_working_days(self, start: dt.date, n: int) -> dt.date:
        """The n-th working day after ``start``. The day ``start`` itself is never counted.

        With n == 0 this returns ``start`` unchanged.
        """
        if n < 0:
            raise ValueError("n must not be negative")
        d = _local_date(start)
        for _ in range(n):
            d = self.next_working_day(d + dt.timedelta(days=1))
        return d


@lru_cache(maxsize=1)
def default_calendar() -> WorkingCalendar:
    return WorkingCalendar()


def _local_date(received: dt.date | dt.datetime) -> dt.date:
    """The calendar date in Kazakhstan. A naive datetime is read as UTC."""
    if isinstance(received, dt.datetime):
        if received.tzinfo is None or received.tzinfo.utcoffset(received) is None:
            received = received.replace(tzinfo=dt.timezone.utc)
        return received.astimezone(KZ_TZ).date()
    if isinstance(received, dt.date):
        return received
    raise TypeError(f"expected a date or datetime, got {type(received).__name__}")


def rule_for(appeal_type: str | None, rules: dict[str, DeadlineRule] | None = None) -> DeadlineRule:
    """The rule for ``appeal_type``. A type without its own confirmed term uses ``default``."""
    rules = rules if rules is not None else load_rules()
    return rules.get(appeal_type or "default") or rules["default"]


def due_date(received: dt.date | dt.datetime, appeal_type: str, calendar: WorkingCalendar | None = None,
             rules: dict[str, DeadlineRule] | None = None) -> dt.date:
    """The last day of the legal term for an appeal of ``appeal_type`` received at ``received``."""
    calendar = calendar or default_calendar()
    rule = rule_for(appeal_type, rules)
    start = _local_date(received)
    if rule.unit == "working":
        return calendar.add_working_days(start, rule.days)
    # calendar days: if the last day is a day off, the term ends on the next working day
    return calendar.next_working_day(start + dt.timedelta(days=rule.days))


def extended_due_date(received: dt.date | dt.datetime, months: int = 2) -> dt.date:
    """The latest date an extension may reach: ``months`` calendar months after receipt.

    The default is two months (APPC Art. 76). If the later month is shorter, the date is the last
    day of that month. The date is not moved off a day off.
    """
    if months < 0:
        raise ValueError("months must not be negative")
    start = _local_date(received)
    month0 = start.month - 1 + months
    year, month = start.year + month0 // 12, month0 % 12 + 1
    return dt.date(year, month, min(start.day, _calendar.monthrange(year, month)[1]))

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

How a term is counted (APPC, official Russian text as amended by Law 241-VIII of 17.12.2025; docs/legal.md,
"Computing terms"):

* Dates are calendar dates in Kazakhstan time (``Asia/Almaty``, UTC+5 since 1 March 2024). A
  timezone-aware datetime is converted to Kazakhstan time. A naive datetime is read as UTC, because
  that is what the storage layer writes (``bot.storage.models.utcnow``) and what SQLite gives back.
* Registration (Art. 64 §3): on the day of arrival; on the next working day if the appeal arrives on
  a non-working day or, where ``registration.workday_ends`` is set, after that hour.
* The term (Art. 76 §1-2) runs from registration (or from receipt, for a rule ``counted_from:
  receipt``) and starts on the next day. A working-day term ends on the n-th working day after it; a
  calendar-day term n days after it, moved to the next working day if that is a day off (§5).
* After a redirection (Art. 65) the term starts anew on the day after the competent body received
  the appeal (Art. 76 §2).
* An extension (Art. 76 §3) reaches at most ``extension_max_months`` months from the day of the
  decision (the same date, or the month's last day if the month is shorter), moved off a day off
  (§5). A rule with ``extendable: false`` (complaints, Art. 99) cannot be extended.
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
COUNTED_FROM = ("registration", "receipt")
CITATION_KEYS = ("ru", "kk", "url")
# No real run of days off comes close to a year, so a longer run means the overrides are broken.
_MAX_RUN_OF_DAYS_OFF = 366


@dataclass(frozen=True)
class DeadlineRule:
    key: str              # appeal type, or "default"
    days: int
    unit: str             # "working" | "calendar"
    extension_max_months: int | None   # months from the extension decision; None: no cap is checked
    citation: dict        # {"ru": "...", "kk": "...", "url": "..."}
    extendable: bool = True
    counted_from: str = "registration"   # "registration" | "receipt"


def load_rules(path: Path | None = None) -> dict[str, DeadlineRule]:
    """The rules from ``path`` (default: ``deadline_rules.yml``), keyed by appeal type.

    A type without a rule of its own uses ``rules["default"]``, which must exist.
    """
    return dict(_load(str(Path(path or RULES_FILE).resolve()))[0])


def workday_ends(path: Path | None = None) -> dt.time | None:
    """``registration.workday_ends`` of the rules file: the hour after which an appeal is registered on the next
    working day (APPC Art. 64 §3), or None when the hour is not used."""
    return _load(str(Path(path or RULES_FILE).resolve()))[1]


def _positive_int(value, allow_none: bool) -> bool:
    if value is None:
        return allow_none
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


@lru_cache(maxsize=8)
def _load(path: str) -> tuple[dict[str, DeadlineRule], dt.time | None]:
    doc = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    raw = doc.get("rules") if isinstance(doc, dict) else None
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: expected a mapping under 'rules'")
    rules = {}
    for key, r in raw.items():
        if not isinstance(r, dict):
            raise ValueError(f"{path}: rule {key!r} must be a mapping")
        if not _positive_int(r.get("days"), allow_none=False):
            raise ValueError(f"{path}: rule {key!r}: days must be a positive integer")
        if r.get("unit") not in UNITS:
            raise ValueError(f"{path}: rule {key!r}: unit must be 'working' or 'calendar'")
        counted_from = r.get("counted_from", "registration")
        if counted_from not in COUNTED_FROM:
            raise ValueError(f"{path}: rule {key!r}: counted_from must be 'registration' or 'receipt'")
        extendable = r.get("extendable", True)
        if not isinstance(extendable, bool):
            raise ValueError(f"{path}: rule {key!r}: extendable must be true or false")
        ext = r.get("extension_max_months")
        if not _positive_int(ext, allow_none=True):
            raise ValueError(f"{path}: rule {key!r}: extension_max_months must be a positive integer or null")
        if ext is not None and not extendable:
            raise ValueError(f"{path}: rule {key!r}: extension_max_months is set but extendable is false")
        citation = r.get("citation") or {}
        missing = [k for k in CITATION_KEYS if not str(citation.get(k) or "").strip()]
        if missing:
            raise ValueError(f"{path}: rule {key!r}: citation needs {', '.join(missing)}")
        rules[str(key)] = DeadlineRule(str(key), r["days"], r["unit"], ext, dict(citation), extendable, counted_from)
    if "default" not in rules:
        raise ValueError(f"{path}: a 'default' rule is required")
    registration = doc.get("registration") or {}
    if not isinstance(registration, dict):
        raise ValueError(f"{path}: 'registration' must be a mapping")
    ends = registration.get("workday_ends")
    if ends is not None:
        try:
            ends = dt.time.fromisoformat(str(ends))
        except ValueError:
            raise ValueError(f"{path}: registration.workday_ends must be an hour such as \"18:30\" or null") from None
    return rules, ends


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


def _local_datetime(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return value.astimezone(KZ_TZ)


def _local_date(received: dt.date | dt.datetime) -> dt.date:
    """The calendar date in Kazakhstan. A naive datetime is read as UTC."""
    if isinstance(received, dt.datetime):
        return _local_datetime(received).date()
    if isinstance(received, dt.date):
        return received
    raise TypeError(f"expected a date or datetime, got {type(received).__name__}")


def rule_for(appeal_type: str | None, rules: dict[str, DeadlineRule] | None = None) -> DeadlineRule:
    """The rule for ``appeal_type``. A type without its own confirmed term uses ``default``."""
    rules = rules if rules is not None else load_rules()
    return rules.get(appeal_type or "default") or rules["default"]


def registration_date(received: dt.date | dt.datetime, calendar: WorkingCalendar | None = None,
                      ends: dt.time | None = None) -> dt.date:
    """The day an appeal that arrived at ``received`` is registered (APPC Art. 64 §3).

    That day, if it is a working day and the appeal arrived before ``ends`` (when given, and when
    ``received`` carries a time); otherwise the next working day.
    """
    calendar = calendar or default_calendar()
    day = _local_date(received)
    late = ends is not None and isinstance(received, dt.datetime) and _local_datetime(received).time() >= ends
    if calendar.is_working_day(day) and not late:
        return day
    return calendar.next_working_day(day + dt.timedelta(days=1))


def due_date(received: dt.date | dt.datetime, appeal_type: str, calendar: WorkingCalendar | None = None,
             rules: dict[str, DeadlineRule] | None = None, *, redirected: bool = False,
             ends: dt.time | None = None) -> dt.date:
    """The last day of the legal term for an appeal of ``appeal_type`` that arrived at ``received``.

    With ``redirected``, ``received`` is when the competent body received the redirected appeal, and the
    term starts on the next day (APPC Art. 76 §2). ``ends`` defaults to ``registration.workday_ends`` of
    the shipped rules file when ``rules`` is not given.
    """
    calendar = calendar or default_calendar()
    rule = rule_for(appeal_type, rules)
    if rule.counted_from == "registration" and not redirected:
        if ends is None and rules is None:
            ends = workday_ends()
        start = registration_date(received, calendar, ends)
    else:
        start = _local_date(received)
    if rule.unit == "working":
        return calendar.add_working_days(start, rule.days)
    # calendar days: if the last day is a day off, the term ends on the next working day (Art. 76 §5)
    return calendar.next_working_day(start + dt.timedelta(days=rule.days))


def add_months(day: dt.date | dt.datetime, months: int) -> dt.date:
    """The same date ``months`` calendar months after ``day``, or the last day of that month if it is shorter."""
    if months < 0:
        raise ValueError("months must not be negative")
    start = _local_date(day)
    month0 = start.month - 1 + months
    year, month = start.year + month0 // 12, month0 % 12 + 1
    return dt.date(year, month, min(start.day, _calendar.monthrange(year, month)[1]))


def extension_cap(decided: dt.date | dt.datetime, appeal_type: str, calendar: WorkingCalendar | None = None,
                  rules: dict[str, DeadlineRule] | None = None) -> dt.date | None:
    """The latest date an extension decided on ``decided`` may reach (APPC Art. 76 §3 and §5).

    ``extension_max_months`` months from the decision, moved to the next working day if that is a day off.
    None when the rule sets no cap. Raises ``ValueError`` when the rule's term cannot be extended at all.
    """
    rule = rule_for(appeal_type, rules)
    if not rule.extendable:
        raise ValueError(f"the term of {rule.key!r} cannot be extended")
    if rule.extension_max_months is None:
        return None
    return (calendar or default_calendar()).next_working_day(add_months(decided, rule.extension_max_months))


def today() -> dt.date:
    """Today's date in Kazakhstan."""
    return dt.datetime.now(KZ_TZ).date()

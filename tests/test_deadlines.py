"""The legal-deadline calculator: rules as data, Kazakhstan's working days, counting conventions.

Expected dates are counted by hand in the comments. The rules come from the APPC (Arts. 64, 65, 76, 99;
official text as amended by Law 241-VIII of 17.12.2025); docs/legal.md, "Computing terms", has the sources.
"""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.intake.deadlines import (
    OVERRIDES_FILE,
    RULES_FILE,
    DeadlineRule,
    WorkingCalendar,
    add_months,
    due_date,
    extension_cap,
    load_rules,
    registration_date,
    rule_for,
    workday_ends,
)

D = dt.date
ALMATY = ZoneInfo("Asia/Almaty")
UTC = dt.timezone.utc
CAL = WorkingCalendar()                     # the shipped overrides
RULES = load_rules()


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    """Only weekends and the `holidays` package, no overrides."""
    return WorkingCalendar(tmp_path_factory.mktemp("none") / "missing.yml")


# --- rules are data, with citations ---------------------------------------------------------

def test_shipped_rules_and_citations():
    default, complaint, request = RULES["default"], RULES["complaint"], RULES["request"]
    # APPC Art. 76: 15 working days from registration, extendable to two months from the decision
    assert (default.days, default.unit, default.counted_from, default.extendable, default.extension_max_months) == \
        (15, "working", "registration", True, 2)
    # APPC Art. 99: 20 working days from registration, no extension
    assert (complaint.days, complaint.unit, complaint.counted_from, complaint.extendable) == \
        (20, "working", "registration", False)
    # Law "On access to information": 15 calendar days from receipt by the holder
    assert (request.days, request.unit, request.counted_from) == (15, "calendar", "receipt")
    for rule in RULES.values():
        assert rule.citation["ru"].strip() and rule.citation["kk"].strip()
        assert rule.citation["url"].startswith("https://adilet.zan.kz/")
    assert "ст. 76" in default.citation["ru"] and "ӘРПК 76-бабы" in default.citation["kk"]
    assert "ст. 99" in complaint.citation["ru"] and "ӘРПК 99-бабы" in complaint.citation["kk"]
    assert "K2000000350" in default.citation["url"] and "Z1500000401" in request.citation["url"]
    assert workday_ends() is None       # working hours differ between bodies: the hour is not used by default


def test_a_type_without_its_own_term_uses_default():
    for t in ("statement", "proposal", "feedback", "report", "no-such-type", None):
        assert rule_for(t, RULES) is RULES["default"]
    assert rule_for("complaint", RULES) is RULES["complaint"]
    assert rule_for("request", RULES) is RULES["request"]
    assert due_date(D(2026, 11, 16), "report", CAL) == due_date(D(2026, 11, 16), "default", CAL)


def test_a_complaint_has_twenty_working_days():
    # registered Mon 16 Nov 2026. 16 Dec (Independence Day) is a day off.
    # counted: 17-20 Nov (4), 23-27 (9), 30 Nov-4 Dec (14), 7-11 Dec (19), 14 Dec (20)
    assert due_date(D(2026, 11, 16), "complaint", CAL) == D(2026, 12, 14)
    # a statement of the same day: the 15th working day is 7 Dec
    assert due_date(D(2026, 11, 16), "statement", CAL) == D(2026, 12, 7)


@pytest.mark.parametrize("body, message", [
    ("rules: {request: {days: 15, unit: calendar, citation: {ru: a, kk: b, url: c}}}", "default"),
    ("rules: {default: {days: 0, unit: working, citation: {ru: a, kk: b, url: c}}}", "positive"),
    ("rules: {default: {days: 15, unit: weeks, citation: {ru: a, kk: b, url: c}}}", "unit"),
    ("rules: {default: {days: 15, unit: working, citation: {ru: a, url: c}}}", "kk"),
    ("rules: {default: {days: 15, unit: working, extension_max_months: 0, citation: {ru: a, kk: b, url: c}}}",
     "extension"),
    ("rules: {default: {days: 15, unit: working, counted_from: filing, citation: {ru: a, kk: b, url: c}}}",
     "counted_from"),
    ("rules: {default: {days: 15, unit: working, extendable: 'no', citation: {ru: a, kk: b, url: c}}}",
     "extendable"),
    ("rules: {default: {days: 15, unit: working, extendable: false, extension_max_months: 2,"
     " citation: {ru: a, kk: b, url: c}}}", "extendable is false"),
    ("registration: {workday_ends: 'late'}\n"
     "rules: {default: {days: 15, unit: working, citation: {ru: a, kk: b, url: c}}}", "workday_ends"),
])
def test_bad_rules_are_rejected(tmp_path, body, message):
    p = tmp_path / "rules.yml"
    p.write_text(body, encoding="utf-8")
    with pytest.raises(ValueError, match=message):
        load_rules(p)


def test_rules_from_another_file(tmp_path):
    p = tmp_path / "rules.yml"
    p.write_text("rules:\n  default: {days: 3, unit: working, extension_max_months: null,\n"
                 "            citation: {ru: тест, kk: тест, url: 'https://example.org'}}\n", encoding="utf-8")
    rules = load_rules(p)
    assert set(rules) == {"default"} and rules["default"].extension_max_months is None
    assert rules["default"].counted_from == "registration" and rules["default"].extendable  # the defaults
    assert workday_ends(p) is None
    # Fri 20 Nov 2026 + 3 working days: 23, 24, 25 Nov
    assert due_date(D(2026, 11, 20), "request", CAL, rules) == D(2026, 11, 25)
    assert load_rules() == load_rules(RULES_FILE)


# --- the calendar: what the package gives and what the overrides add -------------------------

def test_holidays_package_has_the_2025_2026_calendar(plain):
    """Pins what calendar_overrides.yml relies on the package for. An older package would fail here."""
    off = [D(2025, 1, 1), D(2025, 1, 2), D(2025, 1, 3), D(2025, 1, 7), D(2025, 3, 10), D(2025, 3, 24),
           D(2025, 3, 25), D(2025, 6, 6), D(2025, 7, 7), D(2025, 9, 1), D(2025, 10, 27), D(2025, 12, 16),
           D(2026, 1, 1), D(2026, 1, 2), D(2026, 1, 7), D(2026, 3, 9), D(2026, 3, 23), D(2026, 3, 24),
           D(2026, 3, 25), D(2026, 5, 1), D(2026, 5, 7), D(2026, 5, 11), D(2026, 5, 27), D(2026, 7, 6),
           D(2026, 10, 26), D(2026, 12, 16)]
    for d in off:
        assert not plain.is_working_day(d), d
    # no Constitution Day in 2026 (moved to 15 March from 2027); the old 31 Aug 2026 day off is gone
    assert plain.is_working_day(D(2026, 8, 31))
    # 31 December is a working day; no transfer in 2026
    assert plain.is_working_day(D(2025, 12, 31)) and plain.is_working_day(D(2026, 12, 31))


def test_overrides_only_add_what_the_package_lacks(plain):
    assert CAL.extra_working_days or CAL.extra_days_off
    for d in CAL.extra_working_days:
        assert not plain.is_working_day(d) and CAL.is_working_day(d), d
    for d in CAL.extra_days_off:
        assert plain.is_working_day(d) and not CAL.is_working_day(d), d


def test_every_override_date_cites_its_act():
    lines = OVERRIDES_FILE.read_text(encoding="utf-8").splitlines()
    seen = 0
    for i, line in enumerate(lines):
        if re.match(r"^\s*-\s*\d{4}-\d{2}-\d{2}", line):
            seen += 1
            block = [line]
            j = i - 1
            while j >= 0 and lines[j].lstrip().startswith("#"):
                block.append(lines[j])
                j -= 1
            assert "https://" in "\n".join(block), f"no source for: {line.strip()}"
    assert seen == len(CAL.extra_working_days) + len(CAL.extra_days_off)


def test_time_zone_is_utc_plus_5():
    # Kazakhstan moved to a single UTC+5 zone on 1 March 2024; an older tzdata would still give +6
    assert ALMATY.utcoffset(dt.datetime(2026, 6, 1)) == dt.timedelta(hours=5)
    assert ALMATY.utcoffset(dt.datetime(2024, 2, 1)) == dt.timedelta(hours=6)


# --- the brief's cases ------------------------------------------------------------------------

def test_across_new_year():
    # received Mon 29 Dec 2025; 1-2 Jan and 7 Jan 2026 are holidays, 31 Dec is worked.
    # counted: 30, 31 Dec; 5, 6, 8, 9, 12, 13, 14, 15, 16, 19, 20, 21, 22 Jan -> the 15th is 22 Jan
    assert due_date(D(2025, 12, 29), "statement", CAL) == D(2026, 1, 22)
    assert due_date(dt.datetime(2025, 12, 29, 10, 0, tzinfo=ALMATY), "statement", CAL) == D(2026, 1, 22)
    # a complaint goes on: 23 (16), 26, 27, 28, 29 Jan (20) -> 29 Jan
    assert due_date(D(2025, 12, 29), "complaint", CAL) == D(2026, 1, 29)


def test_across_nauryz():
    # received Mon 16 Mar 2026; Nauryz 21-23 Mar is Sat-Mon, so 24 and 25 Mar are off too.
    # counted: 17, 18, 19, 20, 26, 27, 30, 31 Mar; 1, 2, 3, 6, 7, 8, 9 Apr -> the 15th is 9 Apr
    for day in range(21, 26):
        assert not CAL.is_working_day(D(2026, 3, day)), day
    assert due_date(D(2026, 3, 16), "statement", CAL) == D(2026, 4, 9)


def test_across_a_transferred_day_off_and_working_sunday(plain):
    # 2025: the day off of Sun 5 Jan moved to Fri 3 Jan (package); Sun 5 Jan was worked (override)
    assert not CAL.is_working_day(D(2025, 1, 3))
    assert CAL.is_working_day(D(2025, 1, 5)) and not plain.is_working_day(D(2025, 1, 5))
    # received Tue 31 Dec 2024; 1, 2, 3 Jan off, 7 Jan (Christmas) off.
    # counted: Sun 5, 6, 8, 9, 10, 13, 14, 15, 16, 17, 20, 21, 22, 23, 24 Jan -> 24 Jan
    assert due_date(D(2024, 12, 31), "statement", CAL) == D(2025, 1, 24)
    # without the worked Sunday the 15th working day is one later: Mon 27 Jan
    assert due_date(D(2024, 12, 31), "statement", plain) == D(2025, 1, 27)


def test_friday_evening_receipt():
    # Fri 13 Nov 2026. Without a workday end (the default) the hour does not matter: registered on Friday,
    # counted from Saturday: 16-20, 23-27, 30 Nov, 1, 2, 3, 4 Dec -> 4 Dec
    friday_noon = dt.datetime(2026, 11, 13, 12, 0, tzinfo=ALMATY)
    friday_evening = dt.datetime(2026, 11, 13, 19, 30, tzinfo=ALMATY)
    assert due_date(friday_noon, "statement", CAL) == D(2026, 12, 4)
    assert due_date(friday_evening, "statement", CAL) == D(2026, 12, 4)
    # with the body's working day ending at 18:30, the evening appeal is registered on Mon 16 Nov (APPC
    # Art. 64 §3): counted 17-20, 23-27, 30 Nov, 1-4 Dec, 7 Dec -> 7 Dec
    ends = dt.time(18, 30)
    assert registration_date(friday_evening, CAL, ends) == D(2026, 11, 16)
    assert registration_date(friday_noon, CAL, ends) == D(2026, 11, 13)
    assert due_date(friday_evening, "statement", CAL, ends=ends) == D(2026, 12, 7)
    assert due_date(friday_noon, "statement", CAL, ends=ends) == D(2026, 12, 4)
    # exactly at the hour is after the working day
    assert registration_date(dt.datetime(2026, 11, 13, 18, 30, tzinfo=ALMATY), CAL, ends) == D(2026, 11, 16)
    # 20:30 UTC on Friday is 01:30 on Saturday in Kazakhstan: registered on Monday, whatever the hour setting
    assert due_date(dt.datetime(2026, 11, 13, 20, 30, tzinfo=UTC), "statement", CAL) == D(2026, 12, 7)


def test_workday_end_from_the_rules_file(tmp_path):
    p = tmp_path / "rules.yml"
    p.write_text("registration: {workday_ends: '18:30'}\n"
                 "rules: {default: {days: 15, unit: working, citation: {ru: a, kk: b, url: c}}}\n", encoding="utf-8")
    assert workday_ends(p) == dt.time(18, 30)


def test_receipt_date_is_taken_in_kazakhstan_time():
    # the date flips at 19:00 UTC (midnight UTC+5)
    thu_late = dt.datetime(2026, 11, 12, 18, 59, tzinfo=UTC)        # Thu 23:59 in Almaty
    fri_early = dt.datetime(2026, 11, 12, 19, 0, tzinfo=UTC)        # Fri 00:00 in Almaty
    assert due_date(thu_late, "complaint", CAL) == due_date(D(2026, 11, 12), "complaint", CAL)
    assert due_date(fri_early, "complaint", CAL) == due_date(D(2026, 11, 13), "complaint", CAL)
    # a naive datetime is UTC, as the storage layer writes it
    assert due_date(fri_early.replace(tzinfo=None), "complaint", CAL) == due_date(fri_early, "complaint", CAL)
    with pytest.raises(TypeError):
        due_date("2026-11-13", "complaint", CAL)


def test_receipt_on_a_holiday():
    # Mon 23 Mar 2026 (Nauryz): 24, 25 Mar are off too, so the appeal is registered on Thu 26 Mar (APPC
    # Art. 64 §3) and counting starts on Fri 27 Mar (Art. 76 §2).
    # counted: 27, 30, 31 Mar; 1, 2, 3, 6, 7, 8, 9, 10, 13, 14, 15, 16 Apr -> 16 Apr
    assert registration_date(D(2026, 3, 23), CAL) == D(2026, 3, 26)
    assert due_date(D(2026, 3, 23), "statement", CAL) == D(2026, 4, 16)
    # one working day later than a receipt on the last working day before the holidays (Fri 20 Mar):
    # counted 26, 27, 30, 31 Mar; 1, 2, 3, 6, 7, 8, 9, 10, 13, 14, 15 Apr -> 15 Apr
    assert due_date(D(2026, 3, 20), "statement", CAL) == D(2026, 4, 15)
    # Wed 27 May 2026 (first day of Kurban ait, not moved off a weekday): registered Thu 28 May.
    # counted: 29 May; 1-5, 8-12, 15, 16, 17, 18 Jun -> 18 Jun
    assert due_date(D(2026, 5, 27), "statement", CAL) == D(2026, 6, 18)
    # received on Tue 26 May: counted 28, 29 May; 1-5, 8-12, 15, 16, 17 Jun -> 17 Jun
    assert due_date(D(2026, 5, 26), "statement", CAL) == D(2026, 6, 17)
    # a Saturday receipt is registered on Monday: Sat 14 Nov 2026 -> Mon 16 Nov -> 7 Dec (as a Monday receipt)
    assert due_date(D(2026, 11, 14), "statement", CAL) == due_date(D(2026, 11, 16), "statement", CAL) == D(2026, 12, 7)


def test_redirection_starts_the_term_anew():
    # APPC Art. 76 §2: after a redirection the term starts on the day after the competent body received it.
    # received by the competent body on Thu 3 Dec 2026; 16 Dec is a day off.
    # counted: 4, 7-11, 14, 15, 17, 18, 21-25 Dec -> the 15th working day is 25 Dec
    assert due_date(D(2026, 12, 3), "statement", CAL, redirected=True) == D(2026, 12, 25)
    # counted from receipt even on a day off: received Sat 5 Dec -> counting starts Mon 7 Dec -> 28 Dec
    assert due_date(D(2026, 12, 5), "statement", CAL, redirected=True) == D(2026, 12, 28)
    # a complaint keeps its own length: 20 working days from Thu 3 Dec -> ... 25 (15), 28, 29, 30, 31 Dec (19);
    # 1 Jan 2027 and Sat 2 Jan are holidays, the latter's day off moves to Mon 4 Jan -> Tue 5 Jan (20)
    assert due_date(D(2026, 12, 3), "complaint", CAL, redirected=True) == D(2027, 1, 5)


def test_request_calendar_days_moved_off_a_weekend_or_holiday():
    # Thu 5 Nov 2026 + 15 days = Fri 20 Nov
    assert due_date(D(2026, 11, 5), "request", CAL) == D(2026, 11, 20)
    # Fri 6 Nov + 15 = Sat 21 Nov -> Mon 23 Nov; Sat 7 Nov + 15 = Sun 22 Nov -> Mon 23 Nov
    assert due_date(D(2026, 11, 6), "request", CAL) == D(2026, 11, 23)
    assert due_date(D(2026, 11, 7), "request", CAL) == D(2026, 11, 23)
    # Tue 10 Mar 2026 + 15 = Wed 25 Mar (Nauryz day off) -> Thu 26 Mar
    assert due_date(D(2026, 3, 10), "request", CAL) == D(2026, 3, 26)
    # the calendar-day term does not skip days off in the middle: Fri 18 Dec 2026 + 15 = Sat 2 Jan
    # 2027 (New Year; its day off moves to Mon 4 Jan) -> Tue 5 Jan 2027
    assert due_date(D(2026, 12, 18), "request", CAL) == D(2027, 1, 5)


def test_add_months():
    assert add_months(D(2026, 1, 15), 2) == D(2026, 3, 15)
    assert add_months(D(2025, 12, 29), 2) == D(2026, 2, 28)       # February is shorter
    assert add_months(D(2026, 12, 31), 2) == D(2027, 2, 28)
    assert add_months(D(2027, 12, 31), 2) == D(2028, 2, 29)       # leap year
    assert add_months(D(2026, 11, 30), 3) == D(2027, 2, 28)
    # taken in Kazakhstan time too: 20:00 UTC on 31 Oct is 1 Nov in Almaty
    assert add_months(dt.datetime(2026, 10, 31, 20, 0, tzinfo=UTC), 2) == D(2027, 1, 1)
    with pytest.raises(ValueError):
        add_months(D(2026, 1, 1), -1)


def test_extension_cap_counts_from_the_decision():
    # APPC Art. 76 §3: at most two months from the day of the decision; §5: off a day off
    assert extension_cap(D(2026, 1, 14), "statement", CAL) == D(2026, 3, 16)   # Sat 14 Mar -> Mon 16 Mar
    assert extension_cap(D(2026, 1, 13), "statement", CAL) == D(2026, 3, 13)   # a Friday stays
    assert extension_cap(D(2025, 12, 29), "report", CAL) == D(2026, 3, 2)      # Sat 28 Feb -> Mon 2 Mar
    # a later decision gives a later cap (it is not tied to the day of receipt)
    assert extension_cap(D(2026, 2, 10), "statement", CAL) > extension_cap(D(2026, 1, 10), "statement", CAL)
    # the length of an information request's extension is not confirmed: no cap
    assert extension_cap(D(2026, 1, 14), "request", CAL) is None
    # APPC Art. 99: a complaint's term cannot be extended
    with pytest.raises(ValueError, match="cannot be extended"):
        extension_cap(D(2026, 1, 14), "complaint", CAL)
    # the cap leaves room beyond the ordinary term
    for start in (D(2025, 12, 29), D(2026, 3, 16), D(2026, 11, 13)):
        assert extension_cap(start, "statement", CAL) > due_date(start, "statement", CAL)


def test_overrides_from_a_temporary_file(tmp_path, plain):
    p = tmp_path / "overrides.yml"
    p.write_text(
        "days_off:\n"
        "  - 2026-11-23   # made up: Monday made a day off\n"
        "working_days:\n"
        "  - 2026-11-28   # made up: transferred working Saturday\n"
        "  - '2026-11-29' # a quoted date works too\n",
        encoding="utf-8")
    cal = WorkingCalendar(p)
    assert not cal.is_working_day(D(2026, 11, 23))
    assert cal.is_working_day(D(2026, 11, 28)) and cal.is_working_day(D(2026, 11, 29))
    # from Fri 20 Nov: plain counts 23, 24 -> Tue 24 Nov; with the overrides 24, 25 -> Wed 25 Nov
    assert plain.add_working_days(D(2026, 11, 20), 2) == D(2026, 11, 24)
    assert cal.add_working_days(D(2026, 11, 20), 2) == D(2026, 11, 25)
    # received Fri 27 Nov: the working Saturday and Sunday are days 1 and 2
    assert cal.add_working_days(D(2026, 11, 27), 1) == D(2026, 11, 28)
    # a calendar-day term ending on the working Saturday stays there: Fri 13 Nov + 15 = Sat 28 Nov
    assert due_date(D(2026, 11, 13), "request", cal) == D(2026, 11, 28)
    assert due_date(D(2026, 11, 13), "request", plain) == D(2026, 11, 30)
    # the default rule moves by one working day net (one day lost, two gained -> one earlier)
    # plain: 23 Nov-11 Dec; with overrides: 24-29 Nov (incl. Sat, Sun) ... 10 Dec
    assert due_date(D(2026, 11, 20), "statement", plain) == D(2026, 12, 11)
    assert due_date(D(2026, 11, 20), "statement", cal) == D(2026, 12, 10)


@pytest.mark.parametrize("body, message", [
    ("days_off: [2026-11-23]\nworking_days: [2026-11-23]\n", "both"),
    ("days_off: [23.11.2026]\n", "ISO"),
    ("days_off: [2026-11-23T10:00:00]\n", "ISO"),
    ("- 2026-11-23\n", "mapping"),
])
def test_bad_overrides_are_rejected(tmp_path, body, message):
    p = tmp_path / "overrides.yml"
    p.write_text(body, encoding="utf-8")
    with pytest.raises(ValueError, match=message):
        WorkingCalendar(p)


def test_empty_overrides_file(tmp_path, plain):
    p = tmp_path / "overrides.yml"
    p.write_text("# nothing yet\n", encoding="utf-8")
    cal = WorkingCalendar(p)
    assert not cal.extra_days_off and not cal.extra_working_days
    assert cal.add_working_days(D(2026, 1, 1), 10) == plain.add_working_days(D(2026, 1, 1), 10)


def test_add_working_days_edges():
    assert CAL.add_working_days(D(2026, 3, 21), 0) == D(2026, 3, 21)
    with pytest.raises(ValueError):
        CAL.add_working_days(D(2026, 3, 21), -1)
    assert CAL.next_working_day(D(2026, 3, 21)) == D(2026, 3, 26)
    assert CAL.holiday_name(D(2026, 3, 22)) and CAL.holiday_name(D(2026, 11, 13)) is None


# --- properties -------------------------------------------------------------------------------

receipts = st.one_of(
    st.dates(min_value=D(2024, 1, 1), max_value=D(2027, 12, 31)),
    st.datetimes(min_value=dt.datetime(2024, 1, 1), max_value=dt.datetime(2027, 12, 31),
                 timezones=st.sampled_from([UTC, ALMATY, ZoneInfo("Europe/Moscow")])),
)


def _local(received):
    return received.astimezone(ALMATY).date() if isinstance(received, dt.datetime) else received


@settings(max_examples=300, deadline=None)
@given(receipts, st.sampled_from(sorted(RULES) + ["statement", "report"]))
def test_due_date_is_a_working_day_after_registration(received, appeal_type):
    due = due_date(received, appeal_type, CAL)
    registered = registration_date(received, CAL)
    assert CAL.is_working_day(due) and CAL.is_working_day(registered)
    assert _local(received) <= registered < due
    # registration is never earlier with a workday end than without one, nor the deadline
    late = registration_date(received, CAL, dt.time(18, 30))
    assert registered <= late <= CAL.next_working_day(_local(received) + dt.timedelta(days=1))
    assert due_date(received, appeal_type, CAL, ends=dt.time(18, 30)) >= due
    # a redirection received the same day never ends after the original term
    assert due_date(received, appeal_type, CAL, redirected=True) <= due


@settings(max_examples=300, deadline=None)
@given(st.dates(min_value=D(2024, 1, 1), max_value=D(2027, 12, 31)), st.integers(1, 60), st.integers(0, 30))
def test_more_days_never_give_an_earlier_date(start, n, more):
    due = CAL.add_working_days(start, n)
    assert due > start and CAL.is_working_day(due)
    assert CAL.add_working_days(start, n + more) >= due
    if more:
        assert CAL.add_working_days(start, n + more) > due


@settings(max_examples=200, deadline=None)
@given(st.dates(min_value=D(2024, 1, 1), max_value=D(2027, 12, 31)), st.integers(1, 60), st.integers(0, 30),
       st.sampled_from(["working", "calendar"]))
def test_longer_rules_never_give_an_earlier_date(start, n, more, unit):
    def rules(days):
        return {"default": DeadlineRule("default", days, unit, None, {"ru": "x", "kk": "x", "url": "x"})}
    short, long_ = due_date(start, "x", CAL, rules(n)), due_date(start, "x", CAL, rules(n + more))
    assert CAL.is_working_day(short) and short > start
    assert long_ >= short
    if unit == "calendar":
        assert short >= start + dt.timedelta(days=n)


@settings(max_examples=200, deadline=None)
@given(st.dates(min_value=D(2024, 1, 1), max_value=D(2027, 12, 31)), st.integers(0, 24), st.integers(0, 12))
def test_add_months_is_monotone(start, months, more):
    later = add_months(start, months)
    assert later >= start and add_months(start, months + more) >= later


# --- migration 0006: open appeals filed under the old counting get the Code's deadline --------------

async def _appeals_before_and_after_0006(url: str) -> dict[str, dt.date]:
    import asyncio

    from sqlalchemy import select

    from bot.storage.db import make_engine, sessionmaker, upgrade
    from bot.storage.models import Appeal, AppealEvent, User

    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, upgrade, url, "0005")
    engine = make_engine(url)
    saturday = dt.datetime(2026, 11, 14, 10, 0, tzinfo=ALMATY)
    # (number, type, status, due date stored by the old counting: from receipt, 15 working days for all)
    rows = [("ET-2026-000001", "complaint", "registered", D(2026, 12, 4)),
            ("ET-2026-000002", "statement", "in_progress", D(2026, 12, 4)),
            ("ET-2026-000003", "complaint", "in_progress", D(2027, 1, 20)),   # extended by staff: kept
            ("ET-2026-000004", "complaint", "answered", D(2026, 12, 4)),      # history: kept
            ("ET-2026-000005", "request", "registered", D(2026, 11, 30))]     # calendar days from receipt
    try:
        async with sessionmaker(engine)() as s, s.begin():
            user = User(channel="web", external_id="migration")
            s.add(user)
            await s.flush()
            for number, appeal_type, status, due in rows:
                appeal = Appeal(number=number, user_id=user.id, channel="web", language="ru", appeal_type=appeal_type,
                                addressee="Акимат", surname="Иванова", name="Анна", iin="900101300126",
                                address="г. Астана", text="…", status=status, received_at=saturday, due_date=due)
                s.add(appeal)
                await s.flush()
                if number.endswith("3"):
                    s.add(AppealEvent(appeal_id=appeal.id, status="extended", actor="op", note="проверка",
                                      new_due_date=due))
        await loop.run_in_executor(None, upgrade, url, "head")
        async with sessionmaker(engine)() as s:
            return dict((await s.execute(select(Appeal.number, Appeal.due_date))).all())
    finally:
        await engine.dispose()


EXPECTED_AFTER_0006 = {
    # received Sat 14 Nov 2026, registered Mon 16 Nov: a complaint's 20 working days end on 14 Dec,
    # a statement's 15 on 7 Dec
    "ET-2026-000001": D(2026, 12, 14),
    "ET-2026-000002": D(2026, 12, 7),
    "ET-2026-000003": D(2027, 1, 20),
    "ET-2026-000004": D(2026, 12, 4),
    "ET-2026-000005": D(2026, 11, 30),
}


async def test_migration_0006_recounts_open_deadlines_sqlite(tmp_path):
    assert await _appeals_before_and_after_0006(f"sqlite+aiosqlite:///{tmp_path}/m.db") == EXPECTED_AFTER_0006


async def test_migration_0006_recounts_open_deadlines_postgresql(pg_url):
    assert await _appeals_before_and_after_0006(pg_url) == EXPECTED_AFTER_0006

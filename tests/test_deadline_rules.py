"""Working-day deadlines with Kazakhstan's holidays and transferred days off."""

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.intake.deadlines import WorkingCalendar, due_date, extended_due_date, load_rules

D = dt.date


@pytest.fixture(scope="module")
def cal():
    return WorkingCalendar()


def test_rules_are_data_with_citations():
    rules = load_rules()
    assert rules["default"].days == 15 and rules["default"].unit == "working"
    assert rules["default"].extension_max_months == 2
    assert "76" in rules["default"].citation["ru"] and rules["default"].citation["kk"]
    assert rules["request"].unit == "calendar"


def test_across_new_year(cal):
    # received Mon 29 Dec 2025; 1-2 Jan and 7 Jan 2026 are holidays; weekends skipped
    assert not cal.is_working_day(D(2026, 1, 1)) and not cal.is_working_day(D(2026, 1, 2))
    assert not cal.is_working_day(D(2026, 1, 7))
    # counted: 30, 31 Dec; 5, 6, 8, 9, 12, 13, 14, 15, 16, 19, 20, 21, 22 Jan → the 15th is 22 January
    assert due_date(D(2025, 12, 29), "complaint", cal) == D(2026, 1, 22)


def test_across_nauryz(cal):
    # 21-23 March 2026 fall on Sat-Mon; the days off move to 24 and 25 March
    for day in (21, 22, 23, 24, 25):
        assert not cal.is_working_day(D(2026, 3, day)), day
    # counted: 17, 18, 19, 20, 26, 27, 30, 31 Mar; 1, 2, 3, 6, 7, 8, 9 Apr → the 15th is 9 April
    assert due_date(D(2026, 3, 16), "statement", cal) == D(2026, 4, 9)


def test_transferred_day_off_and_working_saturday(tmp_path):
    p = tmp_path / "overrides.yml"
    p.write_text("days_off: [2026-11-23]\nworking_days: [2026-11-28]\n", encoding="utf-8")
    cal = WorkingCalendar(p)
    assert not cal.is_working_day(D(2026, 11, 23))   # a Monday made a day off
    assert cal.is_working_day(D(2026, 11, 28))       # a Saturday made a working day
    plain = WorkingCalendar(tmp_path / "missing.yml")
    assert due_date(D(2026, 11, 20), "complaint", cal) == due_date(D(2026, 11, 20), "complaint", plain)
    assert cal.add_working_days(D(2026, 11, 20), 2) == D(2026, 11, 25)
    assert plain.add_working_days(D(2026, 11, 20), 2) == D(2026, 11, 24)


def test_receipt_time_is_kazakhstan_time(cal):
    # 20:30 UTC on Friday is already Saturday in Kazakhstan (UTC+5)
    late_friday = dt.datetime(2026, 11, 20, 20, 30, tzinfo=dt.timezone.utc)
    assert due_date(late_friday, "complaint", cal) == due_date(D(2026, 11, 21), "complaint", cal)


def test_calendar_day_rule_moves_off_a_weekend(cal):
    # 15 calendar days from Thu 5 Nov 2026 is Fri 20 Nov; from Fri 6 Nov it is Sat 21 → Mon 23
    assert due_date(D(2026, 11, 5), "request", cal) == D(2026, 11, 20)
    assert due_date(D(2026, 11, 6), "request", cal) == D(2026, 11, 23)


def test_two_month_extension_cap():
    assert extended_due_date(D(2026, 11, 22)) == D(2027, 1, 22)
    assert extended_due_date(D(2026, 12, 31)) == D(2027, 2, 28)


@settings(max_examples=200)
@given(st.dates(min_value=D(2024, 1, 1), max_value=D(2027, 12, 31)), st.integers(1, 40), st.integers(0, 10))
def test_due_dates_are_working_days_after_receipt_and_monotone(start, n, more):
    cal = WorkingCalendar()
    due = cal.add_working_days(start, n)
    assert due > start and cal.is_working_day(due)
    assert cal.add_working_days(start, n + more) >= due

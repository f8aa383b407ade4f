"""Review age: an entry whose ``reviewed`` date is older than ``ESTU_REVIEW_MAX_AGE_DAYS`` (default 365) is
stale — flagged in the console's entry list and listed by ``estu kb stale``."""

from __future__ import annotations

import datetime as dt


def reviewed_date(value) -> dt.date | None:
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except (TypeError, ValueError):
        return None


def is_stale(value, today: dt.date, max_age_days: int) -> bool:
    d = reviewed_date(value)
    return d is None or (today - d).days > max_age_days


def stale_entries(data: dict, max_age_days: int, today: dt.date | None = None) -> list[dict]:
    """``[{"id", "reviewed", "age_days", "retired"}]`` of the stale entries, oldest first (retired ones left out)."""
    today = today or dt.date.today()
    retired = set(data.get("retired", []))
    out = []
    for raw in data.get("entries", []):
        if raw.get("id") in retired or not is_stale(raw.get("reviewed"), today, max_age_days):
            continue
        d = reviewed_date(raw.get("reviewed"))
        out.append({"id": raw.get("id"), "reviewed": d.isoformat() if d else "",
                    "age_days": (today - d).days if d else None})
    return sorted(out, key=lambda r: (r["age_days"] is not None, -(r["age_days"] or 0)))

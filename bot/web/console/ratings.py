"""CSAT figures: ``GET /operator/ratings`` (docs/console.md, "Operator pages: appeals and ratings").

The 1–5 ratings citizens give after an operator closes a conversation (``Feedback.kind == "operator"``, with the
operator) and after an appeal is answered (``kind == "appeal"``, with the agency); see
``bot/operators/feedback.py``. Shown for the last 30 or 90 days (``?days=``), counted by when the rating was
asked: overall, per operator and per agency — the number of ratings, the average and the share of 4s and 5s
("satisfied", the usual CSAT figure). Requested ratings the citizen never gave (``rating`` NULL) are not counted.
"""

from __future__ import annotations

import datetime as dt

from aiohttp import web
from sqlalchemy import case, func, select

from bot.storage.models import Feedback
from bot.storage.staff import StaffUser
from bot.web.console import core
from bot.web.console.core import agency_name as _agency_name
from bot.web.console.core import PREFIX, render, requires
from bot.web.console.nav import NavItem

routes = web.RouteTableDef()
RATINGS = PREFIX + "/ratings"
PERIODS = (30, 90)
KINDS = ("operator", "appeal")

nav = [NavItem("ratings", "Ratings", RATINGS, roles=("operator",), order=25,
               description="Citizens' satisfaction (CSAT) per operator and per agency")]


def _figures(count, total, satisfied) -> dict:
    count = int(count or 0)
    return {"count": count,
            "average": (float(total) / count) if count else None,
            "satisfied": (100.0 * int(satisfied or 0) / count) if count else None}


def _columns():
    return (func.count(Feedback.rating), func.sum(Feedback.rating),
            func.sum(case((Feedback.rating >= 4, 1), else_=0)))


async def csat(session, since: dt.datetime) -> dict:
    """``{"overall", "by_kind", "operators", "agencies"}`` for ratings asked since ``since``."""
    rated = (Feedback.rating.is_not(None), Feedback.kind.in_(KINDS), Feedback.created_at >= since)
    overall = _figures(*(await session.execute(select(*_columns()).where(*rated))).one())
    by_kind = {kind: _figures(c, t, sat) for kind, c, t, sat in (await session.execute(
        select(Feedback.kind, *_columns()).where(*rated).group_by(Feedback.kind))).all()}
    operators = [{"operator": op, **_figures(c, t, sat)} for op, c, t, sat in (await session.execute(
        select(Feedback.operator, *_columns()).where(*rated, Feedback.kind == "operator",
                                                     Feedback.operator.is_not(None))
        .group_by(Feedback.operator))).all()]
    agencies: dict[str | None, dict] = {}
    for agency, kind, c, t, sat in (await session.execute(
            select(Feedback.agency, Feedback.kind, *_columns()).where(*rated)
            .group_by(Feedback.agency, Feedback.kind))).all():
        row = agencies.setdefault(agency, {"agency": agency, "count": 0, "_total": 0, "_satisfied": 0,
                                           "conversations": 0, "appeals": 0})
        row["count"] += int(c or 0)
        row["_total"] += int(t or 0)
        row["_satisfied"] += int(sat or 0)
        row["conversations" if kind == "operator" else "appeals"] += int(c or 0)
    agency_rows = []
    for row in agencies.values():
        agency_rows.append({**row, **_figures(row["count"], row["_total"], row["_satisfied"])})
    operators.sort(key=lambda r: (-r["count"], r["operator"]))
    agency_rows.sort(key=lambda r: (r["agency"] is None, -r["count"], r["agency"] or ""))
    return {"overall": overall, "by_kind": by_kind, "operators": operators, "agencies": agency_rows}


@routes.get(RATINGS)
@requires("operator")
async def ratings_page(request: web.Request) -> web.Response:
    try:
        days = int(request.query.get("days", PERIODS[0]))
    except ValueError:
        days = PERIODS[0]
    if days not in PERIODS:
        days = PERIODS[0]
    lang = core.language(request)
    since = core.now() - dt.timedelta(days=days)
    async with core.sessions(request)() as s:
        figures = await csat(s, since)
        names = {u: (d or u) for u, d in (await s.execute(select(StaffUser.username, StaffUser.display_name))).all()}
    sep = "," if lang in ("ru", "kk") else "."

    def number(value: float | None, digits: int = 2) -> str:
        return "—" if value is None else f"{value:.{digits}f}".replace(".", sep)

    ctx = {**figures, "days": days, "periods": PERIODS, "since": since, "names": names, "number": number,
           "agency_label": lambda code: (_agency_name(request, code, lang) or code) if code else None}
    return render(request, "console/ratings.html", ctx)

"""Learning from traffic (docs/editing.md, "Learning from traffic"): editors' pages

* ``GET /operator/unanswered`` — clusters of similar questions the bot could not answer (Kazakh and Russian
  together), with counts, languages and examples (``bot.editorial.insights.unanswered_clusters``);
* ``GET /operator/analytics`` — figures of the service for a period, with server-rendered inline SVG charts
  (no script, no external resources: the Content-Security-Policy allows neither) and tables;
* ``GET /operator/analytics/<table>.csv`` — each table as CSV (audited: ``insights.export``).

Role ``editor`` (administrators pass too).
"""

from __future__ import annotations

import datetime as dt
from urllib.parse import urlencode

from aiohttp import web
from markupsafe import Markup, escape

from bot.editorial import insights
from bot.web.console import core
from bot.web.console.audit import audit_request
from bot.web.console.core import PREFIX, redirect, render, requires
from bot.web.console.nav import NavItem

routes = web.RouteTableDef()
UNANSWERED = PREFIX + "/unanswered"
ANALYTICS = PREFIX + "/analytics"
PERIODS = (7, 30, 90, 365)
DEFAULT_DAYS = 30
MAX_RANGE_DAYS = 731
TEXT_MAX = 500  # a phrasing sent from the Unanswered page

nav = [
    NavItem("unanswered", "Unanswered", UNANSWERED, roles=("editor",), order=32,
            description="Questions the bot could not answer, grouped by meaning"),
    NavItem("analytics", "Analytics", ANALYTICS, roles=("editor",), order=33,
            description="Traffic, answer rate, hand-offs, ratings and appeals, with CSV export"),
]

# English msgids (console.po) for the codes stored by the dialogue
STATUS_LABELS = {
    "answered": "Answered", "clarified": "Clarified", "low_confidence": "Low confidence", "no_answer": "No answer",
    "feedback_positive": "Helpful vote", "feedback_negative": "Not helpful vote", "handed_off": "Handed off",
    "out_of_scope": "Out of scope", "emergency": "Emergency", "appeal_registered": "Appeal registered",
    "waiting_operator": "Waiting for an operator", "handoff_cancelled": "Hand-off cancelled", "csat": "Rating",
    "operator": "Operator", "none": "No status",
}
INTENT_LABELS = {
    "faq": "Question", "channel": "Where to apply", "appeal": "Appeal", "status": "Appeal status",
    "operator": "Operator", "smalltalk": "Small talk", "out_of_scope": "Out of scope", "emergency": "Emergency",
}
REASON_LABELS = {
    "citizen_request": "Citizen asked", "low_confidence": "Low confidence", "negative_feedback": "Not helpful twice",
    "topic": "Topic for operators", "operator_initiative": "Operator's initiative", "all": "All hand-offs",
    "feedback_negative": "Not helpful vote", "no_answer": "No answer",
}
DEADLINE_LABELS = {
    "answered_on_time": "Answered on time", "answered_late": "Answered late", "in_time": "In time",
    "due_soon": "Due soon", "overdue": "Overdue",
}
CSAT_LABELS = {"operator": "Conversations with operators", "appeal": "Answered appeals", "all": "All ratings"}
TABLE_TITLES = {
    "messages": "Messages per day", "intents": "Intents", "entries": "Top entries", "statuses": "Answer statuses",
    "answer_rate": "Answer rate", "handoffs": "Hand-offs", "csat": "Ratings (CSAT)", "appeal_types": "Appeals by type",
    "appeal_agencies": "Appeals by agency", "appeal_deadlines": "Appeals by deadline",
    "channels": "Channel recommendations",
}


# -- period ---------------------------------------------------------------------------------------------------
def _date(value: str | None) -> dt.date | None:
    try:
        return dt.date.fromisoformat((value or "").strip())
    except ValueError:
        return None


def period(request: web.Request) -> dict:
    """``?days=N`` (7/30/90/365) or ``?from=YYYY-MM-DD&to=YYYY-MM-DD`` (Astana dates, both included)."""
    q = request.query
    today = dt.datetime.now(core.LOCAL_TZ).date()
    start, end = _date(q.get("from")), _date(q.get("to"))
    days = None
    if start or end:
        end = min(end or today, today)
        start = start or end - dt.timedelta(days=DEFAULT_DAYS - 1)
        if start > end:
            start, end = end, start
        start = max(start, end - dt.timedelta(days=MAX_RANGE_DAYS))
    else:
        try:
            days = int(q.get("days", DEFAULT_DAYS))
        except ValueError:
            days = DEFAULT_DAYS
        if days not in PERIODS:
            days = DEFAULT_DAYS
        end = today
        start = today - dt.timedelta(days=days - 1)
    since = dt.datetime.combine(start, dt.time(), core.LOCAL_TZ).astimezone(dt.timezone.utc)
    until = dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), core.LOCAL_TZ).astimezone(dt.timezone.utc)
    query = {"days": str(days)} if days else {"from": start.isoformat(), "to": end.isoformat()}
    return {"days": days, "start": start, "end": end, "since": since, "until": until, "query": urlencode(query)}


# -- charts (inline SVG, presentation attributes only: no style="") -------------------------------------------
def _num(value) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.1f}".rstrip("0").rstrip(".")
    return str(value)


def hbar_chart(items: list[tuple[str, float, str]], label: str, *, unit: str = "") -> Markup:
    """Horizontal bars: ``items`` = (label, value, css class). Empty when there is nothing to draw."""
    items = [(text, float(value or 0), cls) for text, value, cls in items]
    if not items or not any(v for _, v, _ in items):
        return Markup("")
    width, left, right, row = 520, 220, 50, 28
    height = row * len(items) + 8
    top = max(v for _, v, _ in items)
    parts = [f'<svg class="chart hbar" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
             f'role="img" aria-label="{escape(label)}" xmlns="http://www.w3.org/2000/svg">',
             f"<title>{escape(label)}</title>"]
    for i, (text, value, cls) in enumerate(items):
        y = 4 + i * row
        w = 0 if not top else max(2.0, (width - left - right) * value / top) if value else 0
        short = text if len(text) <= 26 else text[:25] + "…"
        parts.append(f'<text class="axis-label" x="{left - 8}" y="{y + 18}" text-anchor="end">{escape(short)}'
                     f"<title>{escape(text)}</title></text>")
        parts.append(f'<rect class="bar {escape(cls)}" x="{left}" y="{y + 4}" width="{w:.1f}" height="{row - 8}" '
                     f'rx="3"><title>{escape(text)}: {escape(_num(value))}{escape(unit)}</title></rect>')
        parts.append(f'<text class="value" x="{left + w + 6:.1f}" y="{y + 18}">{escape(_num(value))}{escape(unit)}'
                     "</text>")
    parts.append("</svg>")
    return Markup("".join(parts))


def day_chart(rows: list[dict], start: dt.date, end: dt.date, label: str, series_labels: dict[str, str]) -> Markup:
    """Stacked columns: incoming messages per day, one colour per language (kk, ru, other)."""
    days = (end - start).days + 1
    if days <= 0 or not rows:
        return Markup("")
    series = ("kk", "ru", "other")
    counts = {s: [0] * days for s in series}
    for r in rows:
        d = (dt.date.fromisoformat(r["day"]) - start).days
        if 0 <= d < days:
            counts[r["language"] if r["language"] in ("kk", "ru") else "other"][d] += r["messages"]
    totals = [sum(counts[s][i] for s in series) for i in range(days)]
    top = max(totals) or 1
    width, height, left, bottom, top_pad = 720, 240, 44, 28, 26
    plot_w, plot_h = width - left - 10, height - bottom - top_pad
    step = plot_w / days
    bar = max(1.0, step * 0.75)
    parts = [f'<svg class="chart days" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
             f'aria-label="{escape(label)}" xmlns="http://www.w3.org/2000/svg"><title>{escape(label)}</title>']
    for frac in (0, 0.5, 1):  # grid lines with the scale
        y = top_pad + plot_h * (1 - frac)
        parts.append(f'<line class="grid" x1="{left}" x2="{width - 10}" y1="{y:.1f}" y2="{y:.1f}"/>')
        parts.append(f'<text class="axis-label" x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">'
                     f"{_num(round(top * frac, 1))}</text>")
    for i in range(days):
        x = left + i * step + (step - bar) / 2
        y = top_pad + plot_h
        day = start + dt.timedelta(days=i)
        for s in series:
            v = counts[s][i]
            if not v:
                continue
            h = plot_h * v / top
            y -= h
            parts.append(f'<rect class="bar lang-{s}" x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{h:.1f}">'
                         f"<title>{day:%d.%m} · {escape(series_labels[s])}: {v}</title></rect>")
    ticks = max(1, days // 8)
    for i in range(0, days, ticks):
        x = left + i * step + step / 2
        parts.append(f'<text class="axis-label" x="{x:.1f}" y="{height - 8}" text-anchor="middle">'
                     f"{start + dt.timedelta(days=i):%d.%m}</text>")
    lx = left
    for s in series:  # legend
        parts.append(f'<rect class="bar lang-{s}" x="{lx}" y="4" width="12" height="12"/>'
                     f'<text class="legend-label" x="{lx + 16}" y="14">{escape(series_labels[s])}</text>')
        lx += 120
    parts.append("</svg>")
    return Markup("".join(parts))


# -- helpers --------------------------------------------------------------------------------------------------
def _assistant(request: web.Request):
    from bot.web.app import served_assistant

    return served_assistant(request.app)


def labeller(request: web.Request):
    lang = core.language(request)
    a = _assistant(request)

    def _(msgid: str, **kw) -> str:
        return core.gettext(request, msgid, **kw)

    def code(mapping: dict, value: str | None) -> str:
        if value in (None, ""):
            return _("Not set")
        return _(mapping[value]) if value in mapping else value

    def channel(value: str | None) -> str:
        if not value:
            return _("Not set")
        return a._title(f"channel.{value}", lang) if a.corpus.get(f"channel.{value}") else value

    def entry(value: str | None) -> str:
        return a._title(value, lang) if value and a.corpus.get(value) else (value or _("Not set"))

    def agency(value: str | None) -> str:
        from bot.web.console.core import agency_name as _agency_name

        return (_agency_name(request, value, lang) or value) if value else _("Not set")

    def appeal_type(value: str | None) -> str:
        from bot.web.console.appeals import TYPE_LABELS

        return code(TYPE_LABELS, value)

    def citizen_channel(value: str | None) -> str:
        from bot.web.console.appeals import CHANNELS

        return _(CHANNELS[value]) if value in CHANNELS else (value or _("Not set"))

    return {"status": lambda v: code(STATUS_LABELS, v), "intent": lambda v: code(INTENT_LABELS, v),
            "reason": lambda v: code(REASON_LABELS, v), "deadline": lambda v: code(DEADLINE_LABELS, v),
            "csat": lambda v: code(CSAT_LABELS, v), "channel": channel, "entry": entry, "agency": agency,
            "appeal_type": appeal_type, "citizen_channel": citizen_channel,
            "language": lambda v: {"kk": "Қазақша", "ru": "Русский"}.get(v or "", v or _("Not set"))}


# -- Unanswered ---------------------------------------------------------------------------------------------
@routes.get(UNANSWERED)
@requires("editor")
async def unanswered_page(request: web.Request) -> web.Response:
    p = period(request)
    try:
        min_size = max(1, min(int(request.query.get("min", 1)), 100))
    except ValueError:
        min_size = 1
    a = _assistant(request)
    async with core.sessions(request)() as s:
        questions = insights.unanswered_questions(await insights.turns(s, p["since"], p["until"]))
    shown = questions[-insights.MAX_QUESTIONS:]
    clusters = insights.cluster_questions(shown, a.embedder, min_size=min_size)
    lang = core.language(request)
    entries = sorted(((e.id, a._title(e.id, lang)) for e in a.corpus.entries if e.kind == "faq"),
                     key=lambda x: x[1].casefold())
    return render(request, "console/insights/unanswered.html", {
        "p": p, "periods": PERIODS, "clusters": clusters, "total": len(questions), "shown": len(shown),
        "min_size": min_size, "entries": entries, "labels": labeller(request),
        "text_max": TEXT_MAX})


def _text_language(text: str, fallback: str) -> str:
    from nlu.language import detect_language

    lang = detect_language(text, fallback if fallback in ("kk", "ru") else None)
    return lang if lang in ("kk", "ru") else (fallback if fallback in ("kk", "ru") else "ru")


def _texts(data) -> list[str]:
    out = []
    for t in data.getall("text", []):
        t = " ".join(str(t).split())[:TEXT_MAX]
        if t and t not in out:
            out.append(t)
    return out


async def _seeded_working_copy(request: web.Request, s) -> None:
    """The drafts API works on the editors' working copy: make sure version 1 exists first."""
    from bot.editorial import content, versions

    if await versions.live(s) is None:
        await versions.ensure_seeded(s, data=content.from_corpus(_assistant(request).corpus))


@routes.post(UNANSWERED + "/phrasings")
@requires("editor")
async def add_phrasings(request: web.Request) -> web.Response:
    from bot.editorial import drafts, publish

    back = UNANSWERED + ("?" + request.query_string if request.query_string else "")
    data = await request.post()
    texts, entry_id = _texts(data), str(data.get("entry_id", "")).strip()
    if not texts:
        return redirect(request, back, flash="Choose at least one question.")
    if not entry_id:
        return redirect(request, back, flash="Choose an entry.")
    by_language: dict[str, list[str]] = {}
    for text in texts:  # a cluster mixes Kazakh and Russian: each phrasing goes to its own language
        by_language.setdefault(_text_language(text, str(data.get("language", ""))), []).append(text)
    user = core.current_user(request)
    async with publish.editing_lock(request.app), core.sessions(request)() as s, s.begin():
        await _seeded_working_copy(request, s)
        try:
            added = sum([await drafts.add_phrasings(s, entry_id, language, group, user.username)
                         for language, group in by_language.items()])
        except LookupError:
            return redirect(request, back, flash="Choose an entry.")
        await audit_request(request, s, "insights.phrasings", "entry", entry_id,
                            {"count": added, "texts": by_language})
    return redirect(request, f"/operator/kb/entry/{entry_id}",
                    flash="The questions were added as phrasings of the entry. Publish to make the bot use them.")


@routes.post(UNANSWERED + "/new-entry")
@requires("editor")
async def new_entry(request: web.Request) -> web.Response:
    from bot.editorial import drafts, publish

    back = UNANSWERED + ("?" + request.query_string if request.query_string else "")
    data = await request.post()
    texts = _texts(data)
    if not texts:
        return redirect(request, back, flash="Choose at least one question.")
    by_language: dict[str, list[str]] = {}
    for text in texts:
        by_language.setdefault(_text_language(text, str(data.get("language", ""))), []).append(text)
    user = core.current_user(request)
    async with publish.editing_lock(request.app), core.sessions(request)() as s, s.begin():
        await _seeded_working_copy(request, s)
        draft = await drafts.new_entry_draft(s, by_language, user.username)
        await audit_request(request, s, "insights.new_entry", "entry", draft["id"],
                            {"count": len(texts), "texts": by_language})
    return redirect(request, f"/operator/kb/entry/{draft['id']}",
                    flash="A new entry was started from these questions. Complete it, then publish.")


# -- Analytics ----------------------------------------------------------------------------------------------
@routes.get(ANALYTICS)
@requires("editor")
async def analytics_page(request: web.Request) -> web.Response:
    p = period(request)
    async with core.sessions(request)() as s:
        data = await insights.report(s, p["since"], p["until"], today=dt.datetime.now(core.LOCAL_TZ).date())
    L = labeller(request)

    def _(msgid: str, **kw) -> str:
        return core.gettext(request, msgid, **kw)

    by_lang: dict[str, int] = {}
    by_channel: dict[str, int] = {}
    for r in data["messages"]:
        by_lang[r["language"]] = by_lang.get(r["language"], 0) + r["messages"]
        by_channel[r["channel"]] = by_channel.get(r["channel"], 0) + r["messages"]
    rate = data["answer_rate"][0]
    handoffs_all = next(r for r in data["handoffs"] if r["reason"] == "all")
    csat_all = next(r for r in data["csat"] if r["kind"] == "all")
    charts = {
        "messages": day_chart(data["messages"], p["start"], p["end"], _("Messages per day"),
                              {"kk": "Қазақша", "ru": "Русский", "other": _("Not set")}),
        "statuses": hbar_chart([(L["status"](r["status"]), r["turns"], f"status-{r['status']}")
                                for r in data["statuses"]], _("Answer statuses")),
        "intents": hbar_chart([(L["intent"](r["intent"]), r["turns"], "intent") for r in data["intents"]],
                              _("Intents")),
        "channels": hbar_chart([(L["channel"](r["channel"]), r["recommendations"], "channel")
                                for r in data["channels"]], _("Channel recommendations")),
        "handoffs": hbar_chart([(L["reason"](r["reason"]), r["handoffs"], "handoff")
                                for r in data["handoffs"] if r["reason"] != "all"], _("Hand-offs")),
        "deadlines": hbar_chart([(L["deadline"](r["state"]), r["appeals"], f"deadline-{r['state']}")
                                 for r in data["appeal_deadlines"]], _("Appeals by deadline")),
        "appeal_types": hbar_chart([(L["appeal_type"](r["appeal_type"]), r["appeals"], "appeal")
                                    for r in data["appeal_types"]], _("Appeals by type")),
        "entries": hbar_chart([(L["entry"](r["entry_id"]), r["answers"], "entry") for r in data["entries"][:10]],
                              _("Top entries")),
    }
    return render(request, "console/insights/analytics.html", {
        "p": p, "periods": PERIODS, "data": data, "charts": charts, "labels": L,
        "num": lambda v: _num(v).replace(".", ","),  # a decimal comma in Kazakh and Russian
        "by_lang": sorted(by_lang.items(), key=lambda x: -x[1]),
        "by_channel": sorted(by_channel.items(), key=lambda x: -x[1]),
        "total_messages": sum(by_lang.values()), "rate": rate, "handoffs_all": handoffs_all, "csat_all": csat_all,
        "titles": TABLE_TITLES})


@routes.get(ANALYTICS + r"/{table:[a-z_]+}.csv")
@requires("editor")
async def analytics_csv(request: web.Request) -> web.Response:
    name = request.match_info["table"]
    if name not in insights.TABLES:
        return core.error_page(request, 404)
    p = period(request)
    async with core.sessions(request)() as s, s.begin():
        rows = (await insights.report(s, p["since"], p["until"],
                                      today=dt.datetime.now(core.LOCAL_TZ).date()))[name]
        await audit_request(request, s, "insights.export", "analytics", name,
                            {"from": p["start"].isoformat(), "to": p["end"].isoformat(), "rows": len(rows)})
    body = "\ufeff" + insights.to_csv(rows, insights.TABLES[name])  # the BOM lets spreadsheet programs read UTF-8
    filename = f"estu-{name}-{p['start']:%Y%m%d}-{p['end']:%Y%m%d}.csv"
    return web.Response(body=body.encode("utf-8"), content_type="text/csv", charset="utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{filename}"'})

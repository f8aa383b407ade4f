"""Operator pages for appeals (docs/console.md, "Operator pages: appeals and ratings").

* ``GET  /operator/appeals`` — the appeals, soonest deadline first, 25 a page; filters: status (open ones by
  default), agency (the operator's own agency by default, if the account names one), type, deadline (overdue /
  due within N working days / all) and the number. Overdue and due-soon rows are coloured *and* labelled in text.
* ``GET  /operator/appeals/{number}`` — one appeal: fields (IIN, phone and e-mail masked), the text, the
  attachments, the event history, and the status changes ``registry.TRANSITIONS`` allows from the current status.
* ``POST /operator/appeals/{number}/status`` — one status change through ``bot.intake.registry.set_status`` (which
  records the event and queues the citizen's notification in their language, in the same transaction) plus the
  audit row. Bad input re-renders the page with an inline error and changes nothing.
* ``POST /operator/appeals/{number}/reveal`` — show the full IIN, phone and e-mail once (never in a URL); audited.

Deadlines are counted on Kazakhstan's working-day calendar (``bot.intake.deadlines.default_calendar``).
"""

from __future__ import annotations

import datetime as dt
import math
from urllib.parse import quote, urlencode

from aiohttp import web
from sqlalchemy import func, select

from bot.intake.deadlines import default_calendar, rule_for, today
from bot.intake.deadlines import due_date as legal_due_date
from bot.intake.registry import STATUSES, TRANSITIONS, TransitionError, can_extend, latest_extension, set_status
from bot.storage.models import Appeal
from bot.storage.staff import StaffUser
from bot.web.console import core
from bot.web.console.audit import audit_request
from bot.web.console.core import PREFIX, current_user, error_page, redirect, render, requires
from bot.web.console.nav import NavItem
from knowledge.ids import AGENCY_IDS, APPEAL_TYPES
from nlu.entities import find_appeal_numbers
from nlu.pii import mask

routes = web.RouteTableDef()
APPEALS = PREFIX + "/appeals"
PAGE_SIZE = 25
DUE_SOON_DAYS = 3  # working days: a deadline this close is coloured "due soon"
MAX_WITHIN = 60  # the largest N accepted in "due within N working days"
OPEN_STATUSES = ("registered", "sent", "in_progress", "extended", "redirected")  # still waiting for an answer
ACTION_ORDER = ("sent", "in_progress", "answered", "extended", "redirected", "rejected", "closed")
ANSWER_MAX, REASON_MAX, BODY_MAX = 4000, 1000, 255

nav = [NavItem("appeals", "Appeals", APPEALS, roles=("operator",), order=20,
               description="Appeals registered by the bot and their statuses")]

# English msgids (console.po) for the codes the registry stores
STATUS_LABELS = {
    "registered": "Registered", "sent": "Sent to the addressee", "in_progress": "In progress",
    "answered": "Answered", "closed": "Closed", "extended": "Term extended", "redirected": "Redirected",
    "rejected": "Rejected",
}
TYPE_LABELS = {
    "statement": "Statement", "complaint": "Complaint", "proposal": "Proposal", "request": "Request",
    "feedback": "Feedback", "report": "Report",
}
CHANNELS = {"telegram": "Telegram", "whatsapp": "WhatsApp", "web": "Web chat", "cli": "Terminal", "api": "API",
            "test": "Test"}
LANGUAGE_NAMES = {"kk": "Kazakh", "ru": "Russian", "en": "English"}
# what each action is called on its button, and the flash shown after it
ACTION_LABELS = {
    "sent": "Mark as sent to the addressee", "in_progress": "Mark as in progress", "answered": "Record the answer",
    "extended": "Extend the term", "redirected": "Redirect", "rejected": "Reject", "closed": "Close the appeal",
}
DEADLINE_FILTERS = ("all", "overdue", "soon")


class InputError(ValueError):
    """Bad form input: ``msgid`` (console.po) with its arguments; nothing was changed."""

    def __init__(self, msgid: str, status: int = 400, **kwargs) -> None:
        super().__init__(msgid)
        self.msgid, self.status, self.kwargs = msgid, status, kwargs


# -- helpers -----------------------------------------------------------------------------------------------
def _int(value, default: int | None = None) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def canonical_number(text: str | None) -> str | None:
    """``ЕТ-2026-000012`` from any spelling of it (Latin letters, other dashes, spaces), else None."""
    found = find_appeal_numbers(text or "")
    return found[0].value if len(found) == 1 and found[0].text.strip() == (text or "").strip() else None


def appeal_url(number: str) -> str:
    return f"{APPEALS}/{quote(number)}"


def working_days_between(start: dt.date, end: dt.date) -> int:
    """Working days after ``start`` up to and including ``end`` (0 if ``end`` is not after ``start``)."""
    cal = default_calendar()
    n, d = 0, start
    while d < end:
        d += dt.timedelta(days=1)
        if cal.is_working_day(d):
            n += 1
    return n


def deadline_info(appeal: Appeal, on: dt.date) -> dict:
    """``state``: ``overdue`` / ``soon`` / ``ok`` for an open appeal, ``done`` once it is answered, rejected or
    closed; ``days``: calendar days late (overdue) or working days left (soon/ok)."""
    if appeal.status not in OPEN_STATUSES:
        return {"state": "done", "days": None}
    if appeal.due_date < on:
        return {"state": "overdue", "days": (on - appeal.due_date).days}
    left = working_days_between(on, appeal.due_date)
    return {"state": "soon" if left <= DUE_SOON_DAYS else "ok", "days": left}


def labels(request: web.Request) -> dict:
    """Template helpers that turn stored codes into words in the console's language."""
    lang = core.language(request)

    def _(msgid: str, **kw) -> str:
        return core.gettext(request, msgid, **kw)

    def deadline_label(info: dict) -> str:
        if info["state"] == "overdue":
            return _("Overdue by {n} d.", n=info["days"])
        if info["state"] in ("soon", "ok"):
            return _("Due today") if info["days"] == 0 else _("Working days left: {n}", n=info["days"])
        return ""

    return {
        "status_label": lambda code: _(STATUS_LABELS[code]) if code in STATUS_LABELS else (code or "—"),
        "type_label": lambda code: _(TYPE_LABELS[code]) if code in TYPE_LABELS else (code or "—"),
        "channel_label": lambda code: _(CHANNELS[code]) if code in CHANNELS else (code or "—"),
        "lang_label": lambda code: _(LANGUAGE_NAMES[code]) if code in LANGUAGE_NAMES else (code or "—"),
        "agency_label": lambda code: (core.agency_name(request, code, lang) or code) if code else "—",
        "action_label": lambda code: _(ACTION_LABELS.get(code, code)),
        "deadline_label": deadline_label,
        "appeal_url": appeal_url,
        "date": lambda d: d.strftime("%d.%m.%Y") if d else "",
        "due_soon_days": DUE_SOON_DAYS,
    }


async def _staff_names(s) -> dict[str, str]:
    rows = (await s.execute(select(StaffUser.username, StaffUser.display_name))).all()
    return {u: (d or u) for u, d in rows}


# -- the list ----------------------------------------------------------------------------------------------
def read_filters(request: web.Request) -> dict:
    """The list's filters from the query string, each checked against what it may be."""
    q = request.query
    user = current_user(request)
    status = q.get("status", "open")
    if status not in ("open", "all", *STATUSES):
        status = "open"
    agency = q.get("agency")
    if agency is None:  # first visit: the operator's own agency, if the account names one
        agency = user.agency if user.agency in AGENCY_IDS else "all"
    if agency not in ("all", *AGENCY_IDS):
        agency = "all"
    appeal_type = q.get("type", "all")
    if appeal_type not in ("all", *APPEAL_TYPES):
        appeal_type = "all"
    deadline = q.get("deadline", "all")
    if deadline not in DEADLINE_FILTERS:
        deadline = "all"
    within = min(max(_int(q.get("within"), DUE_SOON_DAYS) or DUE_SOON_DAYS, 1), MAX_WITHIN)
    number = q.get("q", "").strip()[:40]
    page = max(_int(q.get("page"), 1) or 1, 1)
    return {"status": status, "agency": agency, "type": appeal_type, "deadline": deadline, "within": within,
            "q": number, "page": page}


def _number_condition(text: str):
    """``q`` matches the whole number in any spelling, or a part of it (digits, "2026-0001", …)."""
    full = canonical_number(text)
    if full:
        return Appeal.number == full
    part = text.upper().replace("E", "Е").replace("T", "Т")  # Latin letters typed for the Cyrillic prefix
    return Appeal.number.contains(part, autoescape=True)


def list_query(filters: dict, on: dt.date):
    conds = []
    if filters["status"] == "open" or filters["deadline"] != "all":
        conds.append(Appeal.status.in_(OPEN_STATUSES))
    if filters["status"] not in ("open", "all"):
        conds.append(Appeal.status == filters["status"])
    if filters["agency"] != "all":
        conds.append(Appeal.agency == filters["agency"])
    if filters["type"] != "all":
        conds.append(Appeal.appeal_type == filters["type"])
    if filters["deadline"] == "overdue":
        conds.append(Appeal.due_date < on)
    elif filters["deadline"] == "soon":
        conds.append(Appeal.due_date >= on)
        conds.append(Appeal.due_date <= default_calendar().add_working_days(on, filters["within"]))
    if filters["q"]:
        conds.append(_number_condition(filters["q"]))
    return conds


@routes.get(APPEALS)
@requires("operator")
async def appeals_page(request: web.Request) -> web.Response:
    filters = read_filters(request)
    on = today()
    conds = list_query(filters, on)
    async with core.sessions(request)() as s:
        total = (await s.execute(select(func.count()).select_from(Appeal).where(*conds))).scalar_one()
        pages = max(math.ceil(total / PAGE_SIZE), 1)
        page = min(filters["page"], pages)
        rows = (await s.execute(select(Appeal).where(*conds).order_by(Appeal.due_date, Appeal.id)
                                .offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE))).scalars().all()
    items = [{"a": a, "iin": mask(a.iin), "deadline": deadline_info(a, on)} for a in rows]
    base = {k: v for k, v in filters.items() if k != "page"}

    def page_url(n: int) -> str:
        return f"{APPEALS}?{urlencode({**base, 'page': n})}"

    ctx = {"items": items, "filters": filters, "total": total, "page": page, "pages": pages, "page_url": page_url,
           "statuses": STATUSES, "agencies": AGENCY_IDS, "types": APPEAL_TYPES, "today": on,
           "max_within": MAX_WITHIN}
    ctx.update(labels(request))
    return render(request, "console/appeals.html", ctx)


# -- one appeal --------------------------------------------------------------------------------------------
async def _load(s, request: web.Request) -> Appeal | None:
    number = canonical_number(request.match_info["number"])
    if number is None:
        return None
    return (await s.execute(select(Appeal).where(Appeal.number == number))).scalar_one_or_none()


def offered_actions(appeal: Appeal) -> list[str]:
    """The status changes offered for ``appeal``: those ``TRANSITIONS`` allows, in a fixed order; an extension
    only while a later date is still possible."""
    allowed = TRANSITIONS.get(appeal.status, set())
    out = [a for a in ACTION_ORDER if a in allowed]
    if "extended" in out and not _extension_room(appeal):
        out.remove("extended")
    return out


def _extension_room(appeal: Appeal) -> bool:
    """Whether an extension decided today could still set a later deadline (APPC Arts. 76 §3, 99)."""
    if not can_extend(appeal):
        return False
    cap = latest_extension(appeal)
    return cap is None or cap > appeal.due_date


async def _appeal_page(request: web.Request, *, revealed: bool = False, error: str | None = None,
                       form: dict | None = None, status: int = 200, audit_view: bool = False) -> web.Response:
    async with core.sessions(request)() as s, s.begin():
        appeal = await _load(s, request)
        if appeal is None:
            return error_page(request, 404, "There is no such appeal.")
        names = await _staff_names(s)
        if audit_view:
            await audit_request(request, s, "appeal.view", "appeal", appeal.number, {"status": appeal.status})
        events = list(appeal.events)
    on = today()
    extendable = can_extend(appeal)
    cap = latest_extension(appeal) if extendable else None
    extension_step = "extended" in TRANSITIONS.get(appeal.status, set())
    ctx = {
        "a": appeal,
        "events": events,
        "names": names,
        "iin": appeal.iin if revealed else mask(appeal.iin),
        "phone": (appeal.phone if revealed else mask(appeal.phone)) if appeal.phone else None,
        "email": (appeal.email if revealed else mask(appeal.email)) if appeal.email else None,
        "revealed": revealed,
        "deadline": deadline_info(appeal, on),
        "actions": offered_actions(appeal),
        "extension_possible": extendable and extension_step,
        "extension_forbidden": not extendable and extension_step,
        "extension_basis": rule_for(appeal.appeal_type).citation[core.language(request)],
        "redirect_due": legal_due_date(on, appeal.appeal_type, redirected=True),
        "min_date": (appeal.due_date + dt.timedelta(days=1)).isoformat(),
        "max_date": cap.isoformat() if cap else "",
        "cap": cap,
        "error": error,
        "form": form or {},
        "limits": {"answer": ANSWER_MAX, "reason": REASON_MAX, "body": BODY_MAX},
    }
    ctx.update(labels(request))
    return render(request, "console/appeal.html", ctx, status=status)


@routes.get(APPEALS + "/{number}")
@requires("operator")
async def appeal_page(request: web.Request) -> web.Response:
    return await _appeal_page(request, audit_view=True)


def _text(form, name: str, limit: int) -> str | None:
    value = str(form.get(name, "")).strip()
    if len(value) > limit:
        raise InputError("The text is too long: at most {n} characters.", n=limit)
    return value or None


def parse_change(appeal: Appeal, form) -> dict:
    """Check one status change from the form against the appeal as it is now; raise :class:`InputError`."""
    target = str(form.get("status", ""))
    if target not in STATUSES:
        raise InputError("Choose an action.")
    expected = str(form.get("expected", ""))
    if expected and expected != appeal.status:
        raise InputError("The appeal has changed meanwhile: its status is now “{status}”. Check it and try again.",
                         status=409, status_code=appeal.status)
    if target not in TRANSITIONS.get(appeal.status, set()):
        raise InputError("This change is not possible for an appeal with the status “{status}”.", status=409,
                         status_code=appeal.status)
    change = {"status": target, "note": None, "new_due_date": None, "redirected_to": None}
    if target == "answered":
        change["note"] = _text(form, "answer", ANSWER_MAX)
        if not change["note"]:
            raise InputError("Write the answer that the citizen will receive.")
    elif target in ("extended", "rejected", "redirected"):
        change["note"] = _text(form, "reason", REASON_MAX)
        if target == "redirected":
            change["redirected_to"] = _text(form, "redirected_to", BODY_MAX)
            if not change["redirected_to"]:
                raise InputError("Say where the appeal was redirected.")
        if not change["note"]:
            raise InputError("Give the reason; the citizen will receive it.")
        if target == "extended":
            if not can_extend(appeal):
                raise InputError("The law does not allow extending the term of this appeal.", status=409)
            raw = str(form.get("new_due_date", "")).strip()
            try:
                new = dt.date.fromisoformat(raw)
            except ValueError:
                raise InputError("Enter the new date as YYYY-MM-DD.") from None
            if new <= appeal.due_date:
                raise InputError("The new date must be after the current deadline ({date}).",
                                 date=appeal.due_date.strftime("%d.%m.%Y"))
            cap = latest_extension(appeal)
            if cap is not None and new > cap:
                raise InputError("The new date may not be later than {date}, the longest extension allowed.",
                                 date=cap.strftime("%d.%m.%Y"))
            change["new_due_date"] = new
    else:  # sent, in progress, closed: an optional note for the citizen
        change["note"] = _text(form, "note", REASON_MAX)
    return change


def _error_text(request: web.Request, exc: InputError) -> str:
    kwargs = dict(exc.kwargs)
    if "status_code" in kwargs:
        code = kwargs.pop("status_code")
        kwargs["status"] = core.gettext(request, STATUS_LABELS.get(code, code))
    return core.gettext(request, exc.msgid, **kwargs)


@routes.post(APPEALS + "/{number}/status")
@requires("operator")
async def status_action(request: web.Request) -> web.Response:
    user = current_user(request)
    form = await request.post()
    kept = {k: str(form.get(k, "")) for k in ("status", "answer", "reason", "redirected_to", "new_due_date", "note")}
    try:
        async with core.sessions(request)() as s, s.begin():
            appeal = await _load(s, request)
            if appeal is None:
                return error_page(request, 404, "There is no such appeal.")
            change = parse_change(appeal, form)
            old = appeal.status
            try:
                event = await set_status(s, appeal, change["status"], actor=user.username, note=change["note"],
                                         new_due_date=change["new_due_date"], redirected_to=change["redirected_to"])
            except TransitionError as exc:  # the registry's own rules, should the form checks ever miss one
                raise InputError("The registry refused the change: {reason}", reason=str(exc)) from None
            await audit_request(request, s, "appeal.status", "appeal", appeal.number, {
                "from": old, "to": change["status"], "event": event.id, "note": change["note"],
                "new_due_date": change["new_due_date"].isoformat() if change["new_due_date"] else None,
                "redirected_to": change["redirected_to"]})
            number = appeal.number
    except InputError as exc:
        return await _appeal_page(request, error=_error_text(request, exc), form=kept, status=exc.status)
    return redirect(request, appeal_url(number), flash="The status was changed; the citizen will be notified.")


@routes.post(APPEALS + "/{number}/reveal")
@requires("operator")
async def reveal_action(request: web.Request) -> web.Response:
    """Show the appeal's full IIN, phone and e-mail on this page (never in a URL), and record who saw them."""
    async with core.sessions(request)() as s, s.begin():
        appeal = await _load(s, request)
        if appeal is None:
            return error_page(request, 404, "There is no such appeal.")
        fields = ["iin"] + [f for f in ("phone", "email") if getattr(appeal, f)]
        await audit_request(request, s, "appeal.reveal_iin", "appeal", appeal.number,
                            {"fields": fields, "page": "appeal"})
    return await _appeal_page(request, revealed=True)

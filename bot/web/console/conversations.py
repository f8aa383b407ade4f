"""Operator pages: the queue and one conversation (docs/console.md, "Operator pages: conversations").

* ``GET  /operator/queue`` — conversations waiting for an operator, in the service's priority order
  (``bot.operators.list_queue``: emergency first, appeals near their deadline, then the longest waiting),
  with the estimate; the operator's own conversations; colleagues' ones. Every load is a presence
  heartbeat (``bot.operators.heartbeat``), so the operator counts as online for the waiting estimate.
* ``GET  /operator/queue/live`` — the same lists as an HTML fragment; ``console-queue.js`` polls it every
  5 s (the page also works without script: a "Refresh" link).
* ``GET  /operator/conversations/{id}`` — the transcript (citizen messages and the bot's answers with their
  intent and knowledge-base entry), the citizen's language and channel, their appeals (IIN masked), and
  the actions: take, reply (with canned replies), transfer, hand back to the bot, close.
* ``GET  /operator/conversations/{id}/live`` — the transcript as a fragment (polled like the queue).
* ``POST /operator/conversations/{id}/take|reply|transfer|hand-back|close|reveal``.

The hand-off rules live in ``bot/operators/service.py``: these handlers only check the console's own
rules (who may transfer, hand back or reveal), call the service and write the audit row in the same
transaction, so an action and its audit row are committed together or not at all.
"""

from __future__ import annotations

import re

from aiohttp import web
from sqlalchemy import or_, select

from bot.intake.registry import status_label
from bot.operators import (Conflict, HandoffError, InvalidInput, NotFound, NotOwner, close, estimate_for, hand_back,
                           heartbeat, list_queue, online_operators, reply, resolution_codes, take, transcript,
                           transfer)
from bot.operators.desk import Desk, desk_for
from bot.operators.service import MAX_REPLY, open_handoff
from bot.operators.topics import GENERAL, QUEUES
from bot.storage.models import Appeal, Conversation, Handoff, Message, User
from bot.storage.staff import CannedReply, StaffUser
from bot.web.console import core
from bot.web.console.audit import audit_request
from bot.web.console.core import PREFIX, current_user, error_page, redirect, render, requires
from bot.web.console.nav import NavItem
from nlu.pii import mask

routes = web.RouteTableDef()
QUEUE = PREFIX + "/queue"
CONVERSATIONS = PREFIX + "/conversations"
POLL_MS = 5000
NOTE_MAX = 500
SHOWN_APPEALS = 10

nav = [NavItem("queue", "Queue", QUEUE, roles=("operator",), order=10,
               description="Conversations waiting for an operator")]

# English msgids (console.po) for the codes the service stores
REASONS = {
    "citizen_request": "Asked for an operator",
    "low_confidence": "The bot was unsure twice",
    "negative_feedback": "Answers marked not helpful",
    "topic": "Topic that needs a person",
    "operator_initiative": "Taken by an operator",
}
CHANNELS = {"telegram": "Telegram", "whatsapp": "WhatsApp", "web": "Web chat", "cli": "Terminal", "api": "API",
            "test": "Test"}
LANGUAGE_NAMES = {"kk": "Kazakh", "ru": "Russian", "en": "English"}
PRIORITIES = {"emergency": "Emergency", "deadline": "Appeal deadline near", "normal": "Normal"}
OPERATOR_PREFIX = re.compile(r"^[^\n:]{1,120}: ")
SYSTEM_ENDINGS = {"handed_back": "Handed back to the bot", "idle_timeout": "Operator idle: back to the bot",
                  "cancelled": "Cancelled by the citizen"}


# -- helpers -----------------------------------------------------------------------------------------------
def desk(request: web.Request) -> Desk:
    """The desk the dialogue engine uses (same clock, hours and resolution codes); without the dialogue
    runtime, one built from the app's settings."""
    from bot.web.app import RUNTIME

    runtime = request.app.get(RUNTIME)
    if runtime is not None:
        return desk_for(runtime.engine)
    state = request.app[core.STATE]
    if state.get("operators_desk") is None:
        state["operators_desk"] = Desk(core.settings(request))
    return state["operators_desk"]


def _int(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _conv_id(request: web.Request) -> int:
    conv_id = _int(request.match_info["id"])
    if conv_id is None or conv_id <= 0:
        raise web.HTTPNotFound()
    return conv_id


def _operator_queues(user: StaffUser) -> list[str] | None:
    return [user.queue] if user.queue in QUEUES else None


async def _heartbeat(request: web.Request, s) -> None:
    user = current_user(request)
    await heartbeat(s, user.username, _operator_queues(user), desk=desk(request))


def labels(request: web.Request) -> dict:
    """Template helpers that turn stored codes into words in the console's language."""
    lang = core.language(request)

    def _(msgid: str, **kw) -> str:
        return core.gettext(request, msgid, **kw)

    def queue_label(queue: str | None) -> str:
        if not queue or queue == GENERAL:
            return _("General queue")
        return core.agency_name(request, queue, lang) or queue

    def minutes(n: int | None) -> str:
        if n is None:
            return "—"
        if n < 60:
            return _("{n} min", n=n)
        return _("{h} h {m} min", h=n // 60, m=n % 60)

    return {
        "reason_label": lambda code: _(REASONS[code]) if code in REASONS else (code or "—"),
        "channel_label": lambda code: _(CHANNELS[code]) if code in CHANNELS else (code or "—"),
        "lang_label": lambda code: _(LANGUAGE_NAMES[code]) if code in LANGUAGE_NAMES else (code or "—"),
        "priority_label": lambda code: _(PRIORITIES.get(code, "Normal")),
        "queue_label": queue_label,
        "minutes": minutes,
        "poll_ms": POLL_MS,
    }


def fragment(request: web.Request, template: str, context: dict, headers: dict | None = None) -> web.Response:
    """A template rendered without the page layout (for the live-refresh endpoints). Unlike ``render`` it
    does not consume a pending flash message."""
    lang = core.language(request)
    ctx = {"_": lambda msgid, **kw: core.gettext(request, msgid, **kw), "lang": lang,
           "user": request.get(core.USER), "csrf_field": lambda: core.csrf_field(request),
           "csrf_token": lambda: core.csrf_token(request), "request": request}
    ctx.update(labels(request))
    ctx.update(context)
    html = core.template_env().get_template(template).render(ctx)
    return web.Response(text=html, content_type="text/html", charset="utf-8", headers=headers)


async def _staff_names(s) -> dict[str, str]:
    rows = (await s.execute(select(StaffUser.username, StaffUser.display_name))).all()
    return {u: (d or u) for u, d in rows}


# -- the queue ---------------------------------------------------------------------------------------------
def _selected_queue(request: web.Request) -> str:
    """``?queue=`` (a queue key or ``all``); by default the operator's own queue if the account names one."""
    chosen = request.query.get("queue")
    if chosen == "all" or chosen in QUEUES:
        return chosen
    user = current_user(request)
    return user.queue if user.queue in QUEUES else "all"


async def _queue_context(request: web.Request) -> dict:
    user = current_user(request)
    selected = _selected_queue(request)
    d = desk(request)
    async with core.sessions(request)() as s, s.begin():
        await _heartbeat(request, s)
        waiting = await list_queue(s, queues=None if selected == "all" else [selected], desk=d)
        owned = [i for i in await list_queue(s, include_owned=True, desk=d, with_estimates=False)
                 if i.taken_by is not None]
        online = await online_operators(s, desk=d)
        names = await _staff_names(s)
    return {
        "waiting": waiting,
        "mine": [i for i in owned if i.taken_by == user.username],
        "others": [i for i in owned if i.taken_by != user.username],
        "online": online,
        "names": names,
        "selected": selected,
        "queues": QUEUES,
        "now": d.now(),
    }


@routes.get(QUEUE)
@requires("operator")
async def queue_page(request: web.Request) -> web.Response:
    ctx = await _queue_context(request)
    ctx.update(labels(request))
    return render(request, "console/queue.html", ctx)


@routes.get(QUEUE + "/live")
@requires("operator")
async def queue_live(request: web.Request) -> web.Response:
    ctx = await _queue_context(request)
    return fragment(request, "console/_queue_lists.html", ctx,
                    headers={"X-Estu-Waiting": str(len(ctx["waiting"]))})


# -- one conversation --------------------------------------------------------------------------------------
async def _conversation_context(request: web.Request, s, conv_id: int, *, revealed: dict | None = None) -> dict | None:
    user = current_user(request)
    lang = core.language(request)
    d = desk(request)
    conv = await s.get(Conversation, conv_id)
    if conv is None:
        return None
    citizen = await s.get(User, conv.user_id)
    h = await open_handoff(s, conv_id)
    last = h or (await s.execute(select(Handoff).where(Handoff.conversation_id == conv_id)
                                 .order_by(Handoff.id.desc()).limit(1))).scalar_one_or_none()
    estimate = await estimate_for(s, h, desk=d) if h is not None and h.taken_by is None else None
    names = await _staff_names(s)
    history = await _history(request, s, conv_id, names, lang)
    appeals = (await s.execute(select(Appeal).where(or_(Appeal.user_id == conv.user_id,
                                                         Appeal.conversation_id == conv_id))
                               .order_by(Appeal.id.desc()).limit(SHOWN_APPEALS))).scalars().all()
    citizen_lang = conv.language or (citizen.language if citizen else None)
    reply_lang = citizen_lang if citizen_lang in ("kk", "ru") else "ru"
    canned = (await s.execute(select(CannedReply).where(CannedReply.active.is_(True))
                              .order_by(CannedReply.title))).scalars().all()
    colleagues = (await s.execute(select(StaffUser).where(StaffUser.active.is_(True),
                                                          StaffUser.role.in_(("operator", "admin")))
                                  .order_by(StaffUser.username))).scalars().all()
    owner = h.taken_by if h is not None else None
    mine = owner == user.username
    resolutions = [(code, spec.get(lang) or spec.get("ru") or code) for code, spec in resolution_codes(d).items()]
    revealed = revealed or {}
    return {
        "state": "closed" if h is None else ("owned" if owner else "waiting"),
        "conv": conv,
        "citizen": citizen,
        "citizen_lang": citizen_lang,
        "channel": citizen.channel if citizen else None,
        "handoff": h,
        "last_handoff": last,
        "estimate": estimate,
        "history": history,
        "appeals": [{"a": a, "iin": revealed.get(a.id) or mask(a.iin), "revealed": a.id in revealed,
                     "status": status_label(a.status, lang)} for a in appeals],
        "canned": [{"id": c.id, "title": c.title, "text": c.text(reply_lang)} for c in canned],
        "colleagues": [c for c in colleagues if c.username != owner],
        "queues": QUEUES,
        "resolutions": resolutions,
        "names": names,
        "owner": owner,
        "mine": mine,
        "can_manage": mine or (h is not None and (owner is None or user.role == "admin")),
        "can_reveal": mine or user.role == "admin",
        "max_reply": MAX_REPLY,
        "system_endings": {k: core.gettext(request, v) for k, v in SYSTEM_ENDINGS.items()},
    }


async def _history(request: web.Request, s, conv_id: int, names: dict[str, str], lang: str) -> list[dict]:
    """The service's transcript (masked) plus what the bot stored about each answer: intent, entry, confidence."""
    from bot.web.app import served_assistant

    lines = [line for line in await transcript(s, conv_id) if line["who"] != "notification"]
    ids = [line["id"] for line in lines]
    meta = {}
    if ids:
        meta = {row.id: row for row in (await s.execute(
            select(Message.id, Message.intent, Message.entry_id, Message.confidence, Message.answer_status,
                   Message.created_at).where(Message.id.in_(ids)))).all()}
    corpus = served_assistant(request.app).corpus
    out = []
    for line in lines:
        m = meta.get(line["id"])
        who = line["who"]
        kind = who.split(":", 1)[0]
        item = {"id": line["id"], "kind": kind, "text": line["text"], "buttons": line["buttons"],
                "at": m.created_at if m is not None else None, "intent": None, "entry_id": None,
                "entry_title": None, "confidence": None, "status": None, "operator": None, "system": None}
        if kind == "operator":
            item["operator"] = names.get(who.split(":", 1)[1], who.split(":", 1)[1])
            # the citizen saw "<name>: text"; the name is already in the line's header
            item["text"] = OPERATOR_PREFIX.sub("", item["text"], count=1)
        elif kind == "system":
            item["system"] = who.split(":", 1)[1]
        if m is not None and kind == "bot":
            item.update(intent=m.intent, entry_id=m.entry_id, confidence=m.confidence, status=m.answer_status)
            entry = corpus.get(m.entry_id) if m.entry_id else None
            block = (entry.block(lang) or entry.block("ru") or entry.block("kk")) if entry is not None else None
            item["entry_title"] = block.title if block is not None else None
        out.append(item)
    return out


async def _conversation_page(request: web.Request, conv_id: int, *, revealed: dict | None = None,
                             draft: str | None = None, error: str | None = None, status: int = 200,
                             audit_view: bool = False) -> web.Response:
    async with core.sessions(request)() as s, s.begin():
        ctx = await _conversation_context(request, s, conv_id, revealed=revealed)
        if ctx is None:
            return error_page(request, 404)
        await _heartbeat(request, s)
        if audit_view:
            await audit_request(request, s, "conversation.view", "conversation", conv_id,
                                {"handoff": ctx["handoff"].id if ctx["handoff"] is not None else None})
    if draft is None:
        chosen = _int(request.query.get("canned"))
        draft = next((c["text"] for c in ctx["canned"] if c["id"] == chosen), "") if chosen else ""
    ctx.update(labels(request))
    ctx.update({"draft": draft, "error": error})
    return render(request, "console/conversation.html", ctx, status=status)


@routes.get(CONVERSATIONS + "/{id}")
@requires("operator")
async def conversation_page(request: web.Request) -> web.Response:
    return await _conversation_page(request, _conv_id(request), audit_view=True)


@routes.get(CONVERSATIONS + "/{id}/live")
@requires("operator")
async def conversation_live(request: web.Request) -> web.Response:
    conv_id = _conv_id(request)
    lang = core.language(request)
    async with core.sessions(request)() as s, s.begin():
        conv = await s.get(Conversation, conv_id)
        if conv is None:
            raise web.HTTPNotFound()
        await _heartbeat(request, s)
        names = await _staff_names(s)
        history = await _history(request, s, conv_id, names, lang)
        h = await open_handoff(s, conv_id)
    state = "closed" if h is None else ("owned" if h.taken_by else "waiting")
    return fragment(request, "console/_history.html", {"history": history},
                    headers={"X-Estu-State": state, "X-Estu-Owner": (h.taken_by or "") if h is not None else ""})


# -- actions -----------------------------------------------------------------------------------------------
ERRORS = {
    NotFound: "There is no such conversation.",
    Conflict: "This conversation has changed meanwhile (taken by a colleague or closed). Reload the page.",
    NotOwner: "Only the operator who owns the conversation can do this.",
    InvalidInput: "The request could not be understood.",
}


def _error_text(request: web.Request, exc: HandoffError) -> str:
    msgid = next((m for cls, m in ERRORS.items() if isinstance(exc, cls)), ERRORS[InvalidInput])
    return core.gettext(request, msgid)


async def _failed(request: web.Request, conv_id: int, exc: HandoffError, draft: str | None = None) -> web.Response:
    if isinstance(exc, NotFound):
        return error_page(request, 404)
    return await _conversation_page(request, conv_id, error=_error_text(request, exc), status=exc.status,
                                    draft=draft)


def _back(conv_id: int, anchor: str = "") -> str:
    return f"{CONVERSATIONS}/{conv_id}{anchor}"


@routes.post(CONVERSATIONS + "/{id}/take")
@requires("operator")
async def take_action(request: web.Request) -> web.Response:
    conv_id = _conv_id(request)
    user = current_user(request)
    try:
        async with core.sessions(request)() as s, s.begin():
            h = await take(s, conv_id, user.username, display_name=user.display_name or None, desk=desk(request))
            await audit_request(request, s, "conversation.take", "conversation", conv_id,
                                {"handoff": h.id, "queue": h.queue, "reason": h.reason})
    except HandoffError as exc:
        return await _failed(request, conv_id, exc)
    return redirect(request, _back(conv_id, "#reply"), flash="You have taken the conversation.")


@routes.post(CONVERSATIONS + "/{id}/reply")
@requires("operator")
async def reply_action(request: web.Request) -> web.Response:
    conv_id = _conv_id(request)
    user = current_user(request)
    form = await request.post()
    text = str(form.get("text", ""))
    if not text.strip():
        return await _conversation_page(request, conv_id, draft=text, status=400,
                                        error=core.gettext(request, "Write the reply first."))
    if len(text.strip()) > MAX_REPLY:
        return await _conversation_page(request, conv_id, draft=text, status=400,
                                        error=core.gettext(request, "The reply is too long: at most {n} characters.",
                                                           n=MAX_REPLY))
    try:
        async with core.sessions(request)() as s, s.begin():
            msg = await reply(s, conv_id, user.username, text, display_name=user.display_name or None,
                              desk=desk(request))
            h = await open_handoff(s, conv_id)
            await audit_request(request, s, "conversation.reply", "conversation", conv_id,
                                {"handoff": h.id if h is not None else None, "message": msg.id,
                                 "chars": len(text.strip()), "canned": _int(form.get("canned_id"))})
    except HandoffError as exc:
        return await _failed(request, conv_id, exc, draft=text)
    return redirect(request, _back(conv_id, "#reply"), flash="The reply was sent.")


async def _may_manage(request: web.Request, s, conv_id: int) -> Handoff | None:
    """The console's rule for transfer and hand-back: the owner, or anyone while it waits, or an admin."""
    user = current_user(request)
    h = await open_handoff(s, conv_id)
    if h is None:
        if await s.get(Conversation, conv_id) is None:
            raise NotFound(str(conv_id))
        raise Conflict("no open hand-off")
    if h.taken_by not in (None, user.username) and user.role != "admin":
        raise NotOwner(h.taken_by)
    return h


@routes.post(CONVERSATIONS + "/{id}/transfer")
@requires("operator")
async def transfer_action(request: web.Request) -> web.Response:
    conv_id = _conv_id(request)
    user = current_user(request)
    form = await request.post()
    to_operator = str(form.get("to_operator", "")).strip() or None
    to_queue = str(form.get("to_queue", "")).strip() or None
    if not to_operator and not to_queue:
        return await _conversation_page(request, conv_id, status=400,
                                        error=core.gettext(request, "Choose a colleague or a queue."))
    if to_queue is not None and to_queue not in QUEUES:
        return await _conversation_page(request, conv_id, status=400,
                                        error=core.gettext(request, "There is no such queue."))
    try:
        async with core.sessions(request)() as s, s.begin():
            if to_operator is not None:
                colleague = (await s.execute(select(StaffUser).where(StaffUser.username == to_operator))
                             ).scalar_one_or_none()
                if colleague is None or not colleague.can("operator"):
                    raise InvalidInput("not an active operator")
            h = await _may_manage(request, s, conv_id)
            from_queue, from_operator = h.queue, h.taken_by
            h = await transfer(s, conv_id, by=user.username, to_operator=to_operator, to_queue=to_queue,
                               desk=desk(request))
            await audit_request(request, s, "conversation.transfer", "conversation", conv_id,
                                {"handoff": h.id, "from_operator": from_operator, "to_operator": to_operator,
                                 "from_queue": from_queue, "to_queue": to_queue})
    except HandoffError as exc:
        if isinstance(exc, InvalidInput):
            return await _conversation_page(request, conv_id, status=400,
                                            error=core.gettext(request, "Choose an active operator."))
        return await _failed(request, conv_id, exc)
    return redirect(request, QUEUE, flash="The conversation was transferred.")


@routes.post(CONVERSATIONS + "/{id}/hand-back")
@requires("operator")
async def hand_back_action(request: web.Request) -> web.Response:
    conv_id = _conv_id(request)
    user = current_user(request)
    try:
        async with core.sessions(request)() as s, s.begin():
            h = await _may_manage(request, s, conv_id)
            owner = h.taken_by
            h = await hand_back(s, conv_id, by=user.username, desk=desk(request))
            await audit_request(request, s, "conversation.hand_back", "conversation", conv_id,
                                {"handoff": h.id, "owner": owner})
    except HandoffError as exc:
        return await _failed(request, conv_id, exc)
    return redirect(request, QUEUE, flash="The conversation was handed back to the bot.")


@routes.post(CONVERSATIONS + "/{id}/close")
@requires("operator")
async def close_action(request: web.Request) -> web.Response:
    conv_id = _conv_id(request)
    user = current_user(request)
    form = await request.post()
    code = str(form.get("resolution", "")).strip()
    note = str(form.get("note", "")).strip()[:NOTE_MAX] or None
    d = desk(request)
    if code not in resolution_codes(d):
        return await _conversation_page(request, conv_id, status=400,
                                        error=core.gettext(request, "Choose how the conversation ended."))
    try:
        async with core.sessions(request)() as s, s.begin():
            h = await close(s, conv_id, user.username, code, note=note, desk=d)
            await audit_request(request, s, "conversation.close", "conversation", conv_id,
                                {"handoff": h.id, "resolution": code, "note": note})
    except HandoffError as exc:
        return await _failed(request, conv_id, exc)
    return redirect(request, QUEUE, flash="The conversation was closed.")


@routes.post(CONVERSATIONS + "/{id}/reveal")
@requires("operator")
async def reveal_action(request: web.Request) -> web.Response:
    """Show one appeal's full IIN on this page (never in a URL), and record who saw it."""
    conv_id = _conv_id(request)
    user = current_user(request)
    form = await request.post()
    appeal_id = _int(form.get("appeal"))
    async with core.sessions(request)() as s, s.begin():
        conv = await s.get(Conversation, conv_id)
        appeal = await s.get(Appeal, appeal_id) if appeal_id is not None else None
        if conv is None or appeal is None or (appeal.user_id != conv.user_id and appeal.conversation_id != conv_id):
            return error_page(request, 404)
        h = await open_handoff(s, conv_id)
        if user.role != "admin" and (h is None or h.taken_by != user.username):
            return error_page(request, 403, "Only the operator who owns the conversation can see the full IIN.")
        await audit_request(request, s, "appeal.reveal_iin", "appeal", appeal.number,
                            {"conversation": conv_id, "field": "iin"})
        revealed = {appeal.id: appeal.iin}
    return await _conversation_page(request, conv_id, revealed=revealed)

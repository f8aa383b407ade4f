"""Admin pages: staff users, canned replies, the audit log, the effective settings."""

from __future__ import annotations

import json

from aiohttp import web
from sqlalchemy import func, select

from bot.storage.staff import AuditLog, CannedReply, StaffUser
from bot.web.console import core
from bot.web.console.audit import audit_request
from bot.web.console.core import PREFIX, current_user, error_page, redirect, render, requires
from bot.web.console.users import UserError, create_user, set_active, set_password, set_role, unlock

routes = web.RouteTableDef()
USERS = PREFIX + "/admin/users"
CANNED = PREFIX + "/admin/canned"
AUDIT = PREFIX + "/admin/audit"
AUDIT_PAGE_SIZE = 50
TITLE_MAX, TEXT_MAX = 200, 4000


def _int(value, default: int | None = None) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _err(request: web.Request, exc: UserError) -> str:
    return core.gettext(request, exc.msgid, **exc.kwargs)


# -- users ---------------------------------------------------------------------------------------------------
async def _users_page(request: web.Request, *, error: str | None = None, form: dict | None = None,
                      status: int = 200) -> web.Response:
    async with core.sessions(request)() as s:
        users = (await s.execute(select(StaffUser).order_by(StaffUser.username))).scalars().all()
    moment = core.now()
    rows = [{"u": u, "locked": u.locked_until is not None and core.aware(u.locked_until) > moment} for u in users]
    return render(request, "console/admin/users.html",
                  {"rows": rows, "error": error, "form": form or {}, "me": current_user(request)}, status=status)


@routes.get(USERS)
@requires("admin")
async def users_list(request: web.Request) -> web.Response:
    return await _users_page(request)


@routes.post(USERS)
@requires("admin")
async def users_create(request: web.Request) -> web.Response:
    form = await request.post()
    values = {k: str(form.get(k, "")).strip() for k in ("username", "display_name", "role", "agency", "queue")}
    password, again = str(form.get("password", "")), str(form.get("password2", ""))
    if password != again:
        return await _users_page(request, error=core.gettext(request, "The two passwords differ."), form=values,
                                 status=400)
    try:
        async with core.sessions(request)() as s, s.begin():
            user = await create_user(s, values["username"], password, values["role"],
                                     display_name=values["display_name"], agency=values["agency"],
                                     queue=values["queue"])
            await audit_request(request, s, "user.create", "staff_user", user.id,
                                {"username": user.username, "role": user.role, "agency": user.agency})
    except UserError as exc:
        return await _users_page(request, error=_err(request, exc), form=values, status=400)
    return redirect(request, USERS, flash="The user was created.")


async def _change_user(request: web.Request, change) -> web.Response:
    """Load the user from the URL, apply ``change(session, user, form)`` (returns (action, detail, flash))."""
    user_id = _int(request.match_info["user_id"])
    form = await request.post()
    try:
        async with core.sessions(request)() as s, s.begin():
            user = await s.get(StaffUser, user_id) if user_id is not None else None
            if user is None:
                return error_page(request, 404)
            action, detail, flash = await change(s, user, form)
            await audit_request(request, s, action, "staff_user", user.id, {"username": user.username, **detail})
    except UserError as exc:
        return await _users_page(request, error=_err(request, exc), status=400)
    return redirect(request, USERS, flash=flash)


@routes.post(USERS + "/{user_id}/role")
@requires("admin")
async def users_role(request: web.Request) -> web.Response:
    async def change(s, user, form):
        old, new = user.role, str(form.get("role", ""))
        await set_role(s, user, new)
        return "user.role", {"from": old, "to": new}, "The role was changed."

    return await _change_user(request, change)


@routes.post(USERS + "/{user_id}/active")
@requires("admin")
async def users_active(request: web.Request) -> web.Response:
    me = current_user(request)

    async def change(s, user, form):
        active = form.get("active") == "1"
        if not active and user.id == me.id:
            raise UserError("You cannot disable your own account.")
        await set_active(s, user, active)
        return ("user.enable" if active else "user.disable"), {}, \
            ("The user was enabled." if active else "The user was disabled.")

    return await _change_user(request, change)


@routes.post(USERS + "/{user_id}/password")
@requires("admin")
async def users_password(request: web.Request) -> web.Response:
    async def change(s, user, form):
        if str(form.get("password", "")) != str(form.get("password2", "")):
            raise UserError("The two passwords differ.")
        await set_password(s, user, str(form.get("password", "")))
        return "user.password_reset", {}, "The password was reset; the user's sessions were ended."

    return await _change_user(request, change)


@routes.post(USERS + "/{user_id}/unlock")
@requires("admin")
async def users_unlock(request: web.Request) -> web.Response:
    async def change(s, user, form):
        await unlock(s, user)
        return "user.unlock", {}, "The user was unlocked."

    return await _change_user(request, change)


# -- canned replies ------------------------------------------------------------------------------------------
def _canned_values(form) -> tuple[dict, str | None]:
    values = {"title": str(form.get("title", "")).strip(), "text_kk": str(form.get("text_kk", "")).strip(),
              "text_ru": str(form.get("text_ru", "")).strip(), "active": form.get("active") == "1"}
    if not values["title"]:
        return values, "A title is required."
    if len(values["title"]) > TITLE_MAX:
        return values, "The title is too long."
    if not values["text_kk"] or not values["text_ru"]:
        return values, "Write the reply in both Kazakh and Russian."
    if len(values["text_kk"]) > TEXT_MAX or len(values["text_ru"]) > TEXT_MAX:
        return values, "The text is too long."
    return values, None


async def _canned_page(request: web.Request, *, error: str | None = None, form: dict | None = None,
                       status: int = 200) -> web.Response:
    async with core.sessions(request)() as s:
        replies = (await s.execute(select(CannedReply).order_by(CannedReply.active.desc(), CannedReply.title)
                                   )).scalars().all()
    return render(request, "console/admin/canned.html",
                  {"replies": replies, "error": error, "form": form or {"active": True}}, status=status)


@routes.get(CANNED)
@requires("admin")
async def canned_list(request: web.Request) -> web.Response:
    return await _canned_page(request)


@routes.post(CANNED)
@requires("admin")
async def canned_create(request: web.Request) -> web.Response:
    values, error = _canned_values(await request.post())
    values["active"] = True
    if error:
        return await _canned_page(request, error=core.gettext(request, error), form=values, status=400)
    async with core.sessions(request)() as s, s.begin():
        reply = CannedReply(**values)
        s.add(reply)
        await s.flush()
        await audit_request(request, s, "canned.create", "canned_reply", reply.id, {"title": reply.title})
    return redirect(request, CANNED, flash="The reply was saved.")


@routes.get(CANNED + "/{reply_id}")
@requires("admin")
async def canned_edit(request: web.Request) -> web.Response:
    async with core.sessions(request)() as s:
        reply = await s.get(CannedReply, _int(request.match_info["reply_id"], 0))
    if reply is None:
        return error_page(request, 404)
    form = {"title": reply.title, "text_kk": reply.text_kk, "text_ru": reply.text_ru, "active": reply.active}
    return render(request, "console/admin/canned_edit.html", {"reply": reply, "form": form, "error": None})


@routes.post(CANNED + "/{reply_id}")
@requires("admin")
async def canned_save(request: web.Request) -> web.Response:
    values, error = _canned_values(await request.post())
    async with core.sessions(request)() as s, s.begin():
        reply = await s.get(CannedReply, _int(request.match_info["reply_id"], 0))
        if reply is None:
            return error_page(request, 404)
        if error:
            return render(request, "console/admin/canned_edit.html",
                          {"reply": reply, "form": values, "error": core.gettext(request, error)}, status=400)
        changed = sorted(k for k, v in values.items() if getattr(reply, k) != v)
        for k, v in values.items():
            setattr(reply, k, v)
        await audit_request(request, s, "canned.update", "canned_reply", reply.id,
                            {"title": reply.title, "changed": changed})
    return redirect(request, CANNED, flash="The reply was saved.")


@routes.post(CANNED + "/{reply_id}/active")
@requires("admin")
async def canned_active(request: web.Request) -> web.Response:
    form = await request.post()
    active = form.get("active") == "1"
    async with core.sessions(request)() as s, s.begin():
        reply = await s.get(CannedReply, _int(request.match_info["reply_id"], 0))
        if reply is None:
            return error_page(request, 404)
        reply.active = active
        await audit_request(request, s, "canned.activate" if active else "canned.deactivate", "canned_reply",
                            reply.id, {"title": reply.title})
    return redirect(request, CANNED, flash="The reply was saved.")


# -- audit log, settings ---------------------------------------------------------------------------------------
@routes.get(AUDIT)
@requires("admin")
async def audit_list(request: web.Request) -> web.Response:
    page = max(1, _int(request.query.get("page"), 1))
    action = request.query.get("action", "").strip()[:64]
    actor = request.query.get("actor", "").strip()[:120]
    q = select(AuditLog)
    if action:
        q = q.where(AuditLog.action.startswith(action, autoescape=True))
    if actor:
        q = q.where(AuditLog.actor == actor)
    async with core.sessions(request)() as s:
        total = (await s.execute(select(func.count()).select_from(q.subquery()))).scalar_one()
        rows = (await s.execute(q.order_by(AuditLog.id.desc()).offset((page - 1) * AUDIT_PAGE_SIZE)
                                .limit(AUDIT_PAGE_SIZE))).scalars().all()
        actions = (await s.execute(select(AuditLog.action).distinct().order_by(AuditLog.action))).scalars().all()
    pages = max(1, -(-total // AUDIT_PAGE_SIZE))

    def page_url(n: int) -> str:
        from urllib.parse import urlencode

        return f"{AUDIT}?{urlencode({k: v for k, v in (('action', action), ('actor', actor), ('page', n)) if v})}"

    entries = [{"row": r, "detail": json.dumps(r.detail, ensure_ascii=False, sort_keys=True) if r.detail else ""}
               for r in rows]
    return render(request, "console/admin/audit.html", {
        "entries": entries, "page": page, "pages": pages, "total": total, "action": action, "actor": actor,
        "actions": actions, "page_url": page_url})


@routes.get(PREFIX + "/admin/settings")
@requires("admin")
async def settings_page(request: web.Request) -> web.Response:
    items = sorted(core.settings(request).public_dict().items())
    return render(request, "console/admin/settings.html", {"items": items})


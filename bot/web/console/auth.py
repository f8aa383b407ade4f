"""Logging in and out, the home page and the user's own password.

Lock-out: after ``console_max_failed_logins`` wrong passwords in a row the account is locked for
``console_lockout_minutes``. An unknown user, a wrong password, a locked and a disabled account all get
the same message and cost the same argon2 work, so the form does not reveal which user names exist.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import secrets
from dataclasses import dataclass

from aiohttp import web
from sqlalchemy import delete, select, update

from bot.config import Settings
from bot.storage.staff import StaffSession, StaffUser
from bot.web.console import core
from bot.web.console.audit import audit, audit_request
from bot.web.console.core import (LOGIN_CSRF_COOKIE, PREFIX, SESSION_COOKIE, csrf_ok, current_user, error_page,
                                  load_user, redirect, render, requires, safe_next, set_cookie)
from bot.web.console.users import (USERNAME_RE, UserError, check_password, hash_password, needs_rehash,
                                   normalize_username, verify_password)

log = core.log
routes = web.RouteTableDef()

LOGIN_FAILED = "Wrong user name or password, or the account is locked for a while after too many attempts."


@dataclass
class LoginResult:
    user: StaffUser | None
    token: str | None = None


async def attempt_login(sessionmaker, cfg: Settings, username: str, password: str, ip: str | None) -> LoginResult:
    """Check the password and open a session. The same outcome (``user=None``) for every kind of failure;
    the audit log records which one it was."""
    name = normalize_username(username)[:64]
    moment = core.now()
    async with sessionmaker() as s, s.begin():
        user = (await s.execute(select(StaffUser).where(StaffUser.username == name))).scalar_one_or_none() \
            if name else None
        ok = await asyncio.to_thread(verify_password, user.password_hash if user else None, password)
        if user is None:
            # a password typed into the user-name field must not end up in the log
            shown = name if USERNAME_RE.match(name) else "(not a valid user name)"
            await audit(s, None, "login.failed", "staff_user", None, {"username": shown, "reason": "unknown_user"},
                        ip=ip)
            return LoginResult(None)
        if not user.active:
            await audit(s, user, "login.failed", "staff_user", user.id, {"reason": "disabled"}, ip=ip)
            return LoginResult(None)
        if user.locked_until is not None and core.aware(user.locked_until) > moment:
            await audit(s, user, "login.failed", "staff_user", user.id, {"reason": "locked"}, ip=ip)
            return LoginResult(None)
        if not ok:
            failed = (await s.execute(update(StaffUser).where(StaffUser.id == user.id)
                                      .values(failed_logins=StaffUser.failed_logins + 1)
                                      .returning(StaffUser.failed_logins))).scalar_one()
            await audit(s, user, "login.failed", "staff_user", user.id, {"reason": "wrong_password",
                                                                          "failed_in_a_row": failed}, ip=ip)
            if failed >= cfg.console_max_failed_logins:
                until = moment + dt.timedelta(minutes=cfg.console_lockout_minutes)
                await s.execute(update(StaffUser).where(StaffUser.id == user.id)
                                .values(failed_logins=0, locked_until=until))
                await audit(s, user, "user.locked", "staff_user", user.id,
                            {"minutes": cfg.console_lockout_minutes}, ip=ip)
                log.warning("console_account_locked", user=user.username, minutes=cfg.console_lockout_minutes)
            return LoginResult(None)
        user.failed_logins, user.locked_until, user.last_login_at = 0, None, moment
        if needs_rehash(user.password_hash):
            user.password_hash = await asyncio.to_thread(hash_password, password)
        token = secrets.token_urlsafe(32)
        await s.execute(delete(StaffSession).where(StaffSession.expires_at < moment))
        s.add(StaffSession(token_hash=core.token_hash(token), user_id=user.id, csrf_token=secrets.token_urlsafe(32),
                           ip=ip, created_at=moment, last_seen_at=moment,
                           expires_at=moment + dt.timedelta(minutes=cfg.console_session_minutes)))
        await audit(s, user, "login", "staff_user", user.id, {}, ip=ip)
    return LoginResult(user, token)


def _login_page(request: web.Request, *, error: str | None = None, username: str = "", next_path: str | None = None,
                status: int = 200) -> web.Response:
    cfg = core.settings(request)
    return render(request, "console/login.html", {
        "error": core.gettext(request, error) if error else None, "username": username,
        "next": safe_next(next_path) or "",
        "max_failed": cfg.console_max_failed_logins, "lockout_minutes": cfg.console_lockout_minutes,
    }, status=status)


@routes.get(PREFIX + "/login")
async def login_form(request: web.Request) -> web.Response:
    if await load_user(request) is not None:
        return redirect(request, safe_next(request.query.get("next")) or PREFIX)
    return _login_page(request, next_path=request.query.get("next"))


@routes.post(PREFIX + "/login")
async def login_submit(request: web.Request) -> web.Response:
    form = await request.post()
    if not await csrf_ok(request):
        return error_page(request, 403, "The form is out of date. Reload the page and try again.")
    username = str(form.get("username", ""))[:200]
    password = str(form.get("password", ""))[:1024]
    next_path = safe_next(str(form.get("next", "")))
    result = await attempt_login(core.sessions(request), core.settings(request), username, password,
                                 core.client_ip(request))
    if result.user is None:
        return _login_page(request, error=LOGIN_FAILED, username=username.strip()[:64], next_path=next_path,
                           status=401)
    cfg = core.settings(request)
    set_cookie(request, SESSION_COOKIE, result.token, max_age=cfg.console_session_minutes * 60)
    set_cookie(request, LOGIN_CSRF_COOKIE, None)
    log.info("console_login", user=result.user.username)
    return redirect(request, next_path or PREFIX)


@routes.post(PREFIX + "/logout")
@requires()
async def logout(request: web.Request) -> web.Response:
    user = current_user(request)
    async with core.sessions(request)() as s, s.begin():
        await s.execute(delete(StaffSession).where(StaffSession.id == request[core.SESSION].id))
        await audit_request(request, s, "logout", "staff_user", user.id, {})
        from bot.operators import go_offline

        await go_offline(s, user.username)  # no longer counted in the queue's waiting estimate
    set_cookie(request, SESSION_COOKIE, None)
    return redirect(request, PREFIX + "/login")


@routes.get(PREFIX)
@requires()
async def home(request: web.Request) -> web.Response:
    return render(request, "console/home.html")


@routes.get(PREFIX + "/")
async def home_slash(request: web.Request) -> web.Response:
    return redirect(request, PREFIX)


@routes.get(PREFIX + "/account")
@requires()
async def account(request: web.Request) -> web.Response:
    return render(request, "console/account.html", {"error": None})


@routes.post(PREFIX + "/account")
@requires()
async def account_password(request: web.Request) -> web.Response:
    form = await request.post()
    user = current_user(request)
    current, new, again = (str(form.get(k, "")) for k in ("current", "password", "password2"))
    error = None
    async with core.sessions(request)() as s, s.begin():
        row = await s.get(StaffUser, user.id)
        if not await asyncio.to_thread(verify_password, row.password_hash, current):
            error = core.gettext(request, "The current password is wrong.")
        elif new != again:
            error = core.gettext(request, "The two passwords differ.")
        else:
            try:
                check_password(new, row.username)
            except UserError as exc:
                error = core.gettext(request, exc.msgid, **exc.kwargs)
        if error is None:
            row.password_hash = await asyncio.to_thread(hash_password, new)
            # other sessions of this user end; this one stays
            await s.execute(delete(StaffSession).where(StaffSession.user_id == row.id,
                                                       StaffSession.id != request[core.SESSION].id))
            await audit_request(request, s, "user.password_change", "staff_user", row.id, {})
        else:
            await audit_request(request, s, "user.password_change_failed", "staff_user", row.id, {})
    if error:
        return render(request, "console/account.html", {"error": error}, status=400)
    return redirect(request, PREFIX + "/account", flash="Your password was changed.")

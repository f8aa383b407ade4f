"""The staff console foundation at /operator: staff users, login, lock-out, sessions, CSRF, roles,
admin pages, the audit log, languages, security headers, `estu users`, and the migrations on SQLite and
PostgreSQL — against the real aiohttp app and a real database."""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import re
import uuid

import pytest
from sqlalchemy import select, update

from bot.storage.db import make_engine, sessionmaker, upgrade
from bot.storage.staff import AuditLog, CannedReply, StaffSession, StaffUser
from bot.web.app import create_app

PASSWORD = "correct horse battery"
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


# -- helpers -------------------------------------------------------------------------------------------------
@pytest.fixture
def console_settings(small_settings, tmp_path):
    s = small_settings.model_copy(update={"database_url": f"sqlite+aiosqlite:///{tmp_path}/c.db",
                                          "console_max_failed_logins": 3, "console_lockout_minutes": 15})
    upgrade(s.db_url)
    return s


class DB:
    """Direct access to the test database (what the console wrote)."""

    def __init__(self, url: str) -> None:
        self.engine = make_engine(url)
        self.sessions = sessionmaker(self.engine)

    async def all(self, model, *where):
        async with self.sessions() as s:
            return (await s.execute(select(model).where(*where).order_by(model.id))).scalars().all()

    async def execute(self, stmt) -> None:
        async with self.sessions() as s, s.begin():
            await s.execute(stmt)

    async def add_user(self, username: str, role: str, password: str = PASSWORD, **kw) -> StaffUser:
        from bot.web.console.users import create_user

        async with self.sessions() as s, s.begin():
            return await create_user(s, username, password, role, **kw)

    async def actions(self) -> list[str]:
        return [r.action for r in await self.all(AuditLog)]


@pytest.fixture
async def db(console_settings):
    d = DB(console_settings.db_url)
    yield d
    await d.engine.dispose()


@pytest.fixture
async def client(aiohttp_client, console_settings, small_assistant):
    return await aiohttp_client(create_app(console_settings, small_assistant, with_dialogue=False))


async def csrf_of(client, path: str) -> str:
    resp = await client.get(path)
    assert resp.status == 200, path
    m = CSRF_RE.search(await resp.text())
    assert m, f"no CSRF field on {path}"
    return m.group(1)


async def login(client, username: str, password: str = PASSWORD, next_path: str | None = None):
    token = await csrf_of(client, "/operator/login")
    data = {"csrf_token": token, "username": username, "password": password}
    if next_path:
        data["next"] = next_path
    return await client.post("/operator/login", data=data, allow_redirects=False)


def login_error(html: str) -> str:
    m = re.search(r'<p class="error" role="alert" id="login-error">(.*?)</p>', html, re.S)
    assert m, "no login error shown"
    return m.group(1).strip()


def set_cookie_header(resp, name: str) -> str:
    for value in resp.headers.getall("Set-Cookie", []):
        if value.startswith(name + "="):
            return value
    raise AssertionError(f"no Set-Cookie for {name}")


def no_traceback(html: str) -> None:
    assert "Traceback" not in html and 'File "' not in html


# -- no default user, login --------------------------------------------------------------------------------------
async def test_no_default_user(client, db):
    assert await db.all(StaffUser) == []
    resp = await client.get("/operator", allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == "/operator/login"
    for name, pw in (("admin", "admin"), ("admin", ""), ("root", "root"), ("estu", "estu")):
        assert (await login(client, name, pw)).status == 401
    assert await db.all(StaffSession) == []


async def test_login_ok_sets_a_safe_cookie(client, db):
    await db.add_user("aigerim", "operator", display_name="Айгерим Сапарова")
    resp = await login(client, "Aigerim ", next_path="/operator/account")  # user names are case-insensitive
    assert resp.status == 303 and resp.headers["Location"] == "/operator/account"
    cookie = set_cookie_header(resp, "estu_console").lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "path=/operator" in cookie
    assert "secure" not in cookie.replace("samesite=strict", "")  # plain HTTP, setting off
    home = await client.get("/operator")
    assert home.status == 200 and "Айгерим Сапарова" in await home.text()
    # only the hash of the token is stored
    sessions = await db.all(StaffSession)
    token = resp.cookies["estu_console"].value
    assert len(sessions) == 1 and token not in sessions[0].token_hash and len(sessions[0].token_hash) == 64
    assert [a for a in await db.actions() if a.startswith("login")] == ["login"]


async def test_open_redirect_is_refused(client, db):
    await db.add_user("erlan", "operator")
    resp = await login(client, "erlan", next_path="https://evil.example/operator")
    assert resp.headers["Location"] == "/operator"
    await client.post("/operator/logout", data={"csrf_token": await csrf_of(client, "/operator/account")})
    resp = await login(client, "erlan", next_path="//evil.example/x")
    assert resp.headers["Location"] == "/operator"


async def test_secure_cookie_when_configured(aiohttp_client, console_settings, small_assistant, db):
    settings = console_settings.model_copy(update={"console_secure_cookies": True})
    client = await aiohttp_client(create_app(settings, small_assistant, with_dialogue=False))
    await db.add_user("dana", "admin")
    login_page = await client.get("/operator/login")
    login_cookie = set_cookie_header(login_page, "estu_console_login")
    assert "secure" in login_cookie.lower().split("; ")
    # the client's jar keeps Secure cookies away from plain http, so this test hands it over itself
    csrf = CSRF_RE.search(await login_page.text()).group(1)
    resp = await client.post("/operator/login", data={"csrf_token": csrf, "username": "dana", "password": PASSWORD},
                             headers={"Cookie": login_cookie.split(";")[0]}, allow_redirects=False)
    assert resp.status == 303
    flags = [f.strip() for f in set_cookie_header(resp, "estu_console").lower().split(";")]
    assert "secure" in flags and "httponly" in flags and "samesite=strict" in flags
    assert resp.headers["Strict-Transport-Security"].startswith("max-age=")


async def test_same_message_for_unknown_user_and_wrong_password(client, db):
    await db.add_user("bolat", "operator")
    unknown = await login(client, "nobody-here", "whatever-password")
    wrong = await login(client, "bolat", "wrong-password-1")
    assert unknown.status == wrong.status == 401
    text_unknown, text_wrong = login_error(await unknown.text()), login_error(await wrong.text())
    assert text_unknown == text_wrong and "Неверное имя" in text_wrong
    assert "set-cookie" not in {k.lower() for k in wrong.headers if "estu_console=" in wrong.headers.get(k, "")}
    rows = await db.all(AuditLog, AuditLog.action == "login.failed")
    assert [r.detail["reason"] for r in rows] == ["unknown_user", "wrong_password"]
    assert rows[0].actor == "-" and rows[1].actor == "bolat"
    assert "whatever-password" not in str([r.detail for r in rows])
    await login(client, "my secret pass phrase", "x")  # a password typed as the user name is not logged
    last = (await db.all(AuditLog, AuditLog.action == "login.failed"))[-1]
    assert last.detail["username"] == "(not a valid user name)"


async def test_lockout_after_failed_logins(client, db):
    await db.add_user("saule", "operator")
    for _ in range(3):  # console_max_failed_logins = 3 in this test
        assert (await login(client, "saule", "not-the-password")).status == 401
    user = (await db.all(StaffUser))[0]
    assert user.locked_until is not None and user.failed_logins == 0
    locked = await login(client, "saule")  # the right password is refused while locked …
    assert locked.status == 401
    unknown = await login(client, "ghost", "x")
    assert login_error(await locked.text()) == login_error(await unknown.text())  # … with the same message
    assert await db.all(StaffSession) == []
    actions = await db.actions()
    assert actions.count("user.locked") == 1
    assert [r.detail["reason"] for r in await db.all(AuditLog, AuditLog.action == "login.failed")] == \
        ["wrong_password"] * 3 + ["locked", "unknown_user"]
    # the lock-out ends when its time has passed
    await db.execute(update(StaffUser).values(locked_until=dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=1)))
    assert (await login(client, "saule")).status == 303


async def test_disabled_user_cannot_log_in(client, db):
    await db.add_user("marat", "operator")
    await db.execute(update(StaffUser).values(active=False))
    resp = await login(client, "marat")
    assert resp.status == 401
    assert [r.detail["reason"] for r in await db.all(AuditLog, AuditLog.action == "login.failed")] == ["disabled"]


# -- sessions ----------------------------------------------------------------------------------------------------
async def test_logout_invalidates_the_session(client, db):
    await db.add_user("nurlan", "admin")
    resp = await login(client, "nurlan")
    token = resp.cookies["estu_console"].value
    csrf = await csrf_of(client, "/operator/account")
    out = await client.post("/operator/logout", data={"csrf_token": csrf}, allow_redirects=False)
    assert out.status == 303 and out.headers["Location"] == "/operator/login"
    assert "estu_console=;" in set_cookie_header(out, "estu_console").replace('""', "")
    assert await db.all(StaffSession) == []
    # the old cookie, replayed, is worth nothing
    client.session.cookie_jar.update_cookies({"estu_console": token})
    again = await client.get("/operator/admin/users", allow_redirects=False)
    assert again.status == 303 and again.headers["Location"].startswith("/operator/login")
    assert (await db.actions())[-1] == "logout"


async def test_logout_needs_csrf(client, db):
    await db.add_user("nurlan", "operator")
    await login(client, "nurlan")
    resp = await client.post("/operator/logout", data={})
    assert resp.status == 403
    assert len(await db.all(StaffSession)) == 1


@pytest.mark.parametrize("column", ["expires_at", "last_seen_at"])
async def test_expired_or_idle_session_ends(client, db, column):
    await db.add_user("aliya", "operator")
    await login(client, "aliya")
    assert (await client.get("/operator")).status == 200
    past = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=2)
    await db.execute(update(StaffSession).values({column: past}))
    resp = await client.get("/operator", allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == "/operator/login"
    assert await db.all(StaffSession) == []


# -- CSRF --------------------------------------------------------------------------------------------------------
async def test_csrf_missing_or_wrong_is_403_and_nothing_changes(client, db):
    await db.add_user("admin1", "admin")
    await login(client, "admin1")
    new_user = {"username": "intruder", "role": "admin", "password": PASSWORD, "password2": PASSWORD}
    for data in (new_user, {**new_user, "csrf_token": "x" * 43}, {**new_user, "csrf_token": ""}):
        resp = await client.post("/operator/admin/users", data=data)
        assert resp.status == 403
        assert resp.content_type == "text/html"
        no_traceback(await resp.text())
    assert [u.username for u in await db.all(StaffUser)] == ["admin1"]
    canned = {"title": "t", "text_kk": "kk", "text_ru": "ru"}
    assert (await client.post("/operator/admin/canned", data=canned)).status == 403
    assert await db.all(CannedReply) == []
    # the same form with the page's token goes through
    token = await csrf_of(client, "/operator/admin/users")
    resp = await client.post("/operator/admin/users", data={**new_user, "csrf_token": token}, allow_redirects=False)
    assert resp.status == 303
    assert [u.username for u in await db.all(StaffUser)] == ["admin1", "intruder"]
    # the header works for scripts
    resp = await client.post("/operator/admin/canned", data=canned, headers={"X-CSRF-Token": token},
                             allow_redirects=False)
    assert resp.status == 303 and len(await db.all(CannedReply)) == 1


async def test_login_form_needs_csrf(client, db):
    await db.add_user("gulnar", "operator")
    resp = await client.post("/operator/login", data={"username": "gulnar", "password": PASSWORD})
    assert resp.status == 403
    assert await db.all(StaffSession) == []


# -- roles -----------------------------------------------------------------------------------------------------
ADMIN_PAGES = ["/operator/admin/users", "/operator/admin/canned", "/operator/admin/audit", "/operator/admin/settings"]


@pytest.mark.parametrize("role", ["operator", "editor"])
async def test_non_admin_gets_403_pages(client, db, role):
    await db.add_user("staff1", role)
    await login(client, "staff1")
    for path in ADMIN_PAGES:
        resp = await client.get(path)
        assert resp.status == 403, path
        html = await resp.text()
        assert resp.content_type == "text/html" and "нет доступа" in html
        no_traceback(html)
    token = await csrf_of(client, "/operator/account")
    resp = await client.post("/operator/admin/users", data={"csrf_token": token, "username": "x2", "role": "admin",
                                                            "password": PASSWORD, "password2": PASSWORD})
    assert resp.status == 403
    assert [u.username for u in await db.all(StaffUser)] == ["staff1"]
    home = await (await client.get("/operator")).text()
    assert "/operator/admin/users" not in home


async def test_admin_reaches_everything(client, db):
    await db.add_user("root1", "admin")
    await login(client, "root1")
    for path in ADMIN_PAGES + ["/operator", "/operator/account"]:
        resp = await client.get(path)
        assert resp.status == 200, path
    home = await (await client.get("/operator")).text()
    for label in ("Пользователи", "Шаблоны ответов", "Журнал действий", "Очередь", "Обращения", "База знаний"):
        assert label in home
    # the operator pages are built, so they are linked from the home page
    assert 'href="/operator/queue"' in home and 'href="/operator/appeals"' in home


async def test_anonymous_is_sent_to_login(client):
    resp = await client.get("/operator/admin/audit?page=2", allow_redirects=False)
    assert resp.status == 303
    assert resp.headers["Location"] == "/operator/login?next=%2Foperator%2Fadmin%2Faudit%3Fpage%3D2"
    resp = await client.post("/operator/admin/users", data={})
    assert resp.status == 403


async def test_unknown_console_page_is_an_html_404(client, db):
    resp = await client.get("/operator/no-such-page")
    assert resp.status == 404 and resp.content_type == "text/html"
    await db.add_user("root2", "admin")
    await login(client, "root2")
    resp = await client.get("/operator/admin/canned/999999")
    assert resp.status == 404 and resp.content_type == "text/html"
    no_traceback(await resp.text())
    assert (await client.get("/nope")).content_type == "application/json"  # the rest of the app is unchanged


# -- admin pages -----------------------------------------------------------------------------------------------
async def test_admin_manages_users(client, db, aiohttp_client, console_settings, small_assistant):
    await db.add_user("chief", "admin")
    await login(client, "chief")
    token = await csrf_of(client, "/operator/admin/users")
    form = {"csrf_token": token, "username": "Op.One", "display_name": "Оператор Один", "role": "operator",
            "agency": "akimat", "password": PASSWORD, "password2": PASSWORD}
    # validation: nothing is lost, the form comes back with the values
    bad = await client.post("/operator/admin/users", data={**form, "password2": "different-password"})
    assert bad.status == 400 and 'value="Op.One"' in await bad.text()
    short = await client.post("/operator/admin/users", data={**form, "password": "short", "password2": "short"})
    assert short.status == 400 and "10" in await short.text()
    assert (await client.post("/operator/admin/users", data=form, allow_redirects=False)).status == 303
    dup = await client.post("/operator/admin/users", data=form)
    assert dup.status == 400
    op = (await db.all(StaffUser, StaffUser.username == "op.one"))[0]
    assert op.role == "operator" and op.agency == "akimat" and op.password_hash.startswith("$argon2id$")

    # the operator logs in elsewhere
    other = await aiohttp_client(create_app(console_settings, small_assistant, with_dialogue=False))
    assert (await login(other, "op.one")).status == 303
    assert (await other.get("/operator/admin/users")).status == 403

    base = f"/operator/admin/users/{op.id}"
    assert (await client.post(base + "/role", data={"csrf_token": token, "role": "admin"})).status == 200
    assert (await other.get("/operator/admin/users")).status == 200  # the role applies at once
    await client.post(base + "/role", data={"csrf_token": token, "role": "editor"})
    assert (await db.all(StaffUser, StaffUser.id == op.id))[0].role == "editor"

    await client.post(base + "/password", data={"csrf_token": token, "password": "a new long password",
                                                "password2": "a new long password"})
    resp = await other.get("/operator", allow_redirects=False)
    assert resp.status == 303  # a password reset ends the user's sessions
    assert (await login(other, "op.one")).status == 401
    assert (await login(other, "op.one", "a new long password")).status == 303

    await client.post(base + "/active", data={"csrf_token": token, "active": "0"})
    assert (await other.get("/operator", allow_redirects=False)).status == 303  # disabling ends them too
    assert (await login(other, "op.one", "a new long password")).status == 401
    await client.post(base + "/active", data={"csrf_token": token, "active": "1"})
    assert (await login(other, "op.one", "a new long password")).status == 303

    me = (await db.all(StaffUser, StaffUser.username == "chief"))[0]
    resp = await client.post(f"/operator/admin/users/{me.id}/active", data={"csrf_token": token, "active": "0"})
    assert resp.status == 400 and (await db.all(StaffUser, StaffUser.id == me.id))[0].active
    resp = await client.post(f"/operator/admin/users/{me.id}/role", data={"csrf_token": token, "role": "operator"})
    assert resp.status == 400  # the last administrator stays one
    assert (await db.all(StaffUser, StaffUser.id == me.id))[0].role == "admin"

    actions = await db.actions()
    for action in ("user.create", "user.role", "user.password_reset", "user.disable", "user.enable"):
        assert action in actions
    details = str([r.detail for r in await db.all(AuditLog)])
    assert PASSWORD not in details and "a new long password" not in details  # no password is ever logged


async def test_admin_manages_canned_replies(client, db):
    await db.add_user("chief", "admin")
    await login(client, "chief")
    token = await csrf_of(client, "/operator/admin/canned")
    kk = "Сәлеметсіз бе! Өтінішіңіз тіркелді, нөмірі хабарламада."
    ru = "Здравствуйте! Ваше обращение зарегистрировано, номер в сообщении."
    only_ru = await client.post("/operator/admin/canned", data={"csrf_token": token, "title": "Приветствие",
                                                                "text_kk": "", "text_ru": ru})
    assert only_ru.status == 400 and ru in await only_ru.text()  # kept for the retry
    resp = await client.post("/operator/admin/canned", data={"csrf_token": token, "title": "Приветствие",
                                                             "text_kk": kk, "text_ru": ru}, allow_redirects=False)
    assert resp.status == 303
    reply = (await db.all(CannedReply))[0]
    assert (reply.text_kk, reply.text_ru, reply.active) == (kk, ru, True)
    page = await client.get(resp.headers["Location"])
    assert "Приветствие" in await page.text()

    edit = await client.get(f"/operator/admin/canned/{reply.id}")
    assert edit.status == 200 and kk in await edit.text()
    resp = await client.post(f"/operator/admin/canned/{reply.id}",
                             data={"csrf_token": token, "title": "Приветствие, звонить +7 701 234 56 78",
                                   "text_kk": kk + " Рахмет.", "text_ru": ru, "active": "1"},
                             allow_redirects=False)
    assert resp.status == 303
    reply = (await db.all(CannedReply))[0]
    assert reply.text_kk.endswith("Рахмет.") and reply.active
    await client.post(f"/operator/admin/canned/{reply.id}/active", data={"csrf_token": token, "active": "0"})
    assert not (await db.all(CannedReply))[0].active

    rows = await db.all(AuditLog, AuditLog.record_type == "canned_reply")
    assert [r.action for r in rows] == ["canned.create", "canned.update", "canned.deactivate"]
    assert rows[1].detail["changed"] == ["text_kk", "title"]
    assert "234 56 78" not in rows[1].detail["title"]  # audit details are PII-masked

    audit_page = await (await client.get("/operator/admin/audit?action=canned")).text()
    assert "canned.deactivate" in audit_page and "login" not in re.sub(r"<select.*?</select>", "", audit_page,
                                                                         flags=re.S)


async def test_own_password_change(client, db):
    await db.add_user("asel", "editor")
    await login(client, "asel")
    token = await csrf_of(client, "/operator/account")
    new = {"password": "another long one", "password2": "another long one"}
    wrong = await client.post("/operator/account", data={"csrf_token": token, "current": "nope", **new})
    assert wrong.status == 400
    ok = await client.post("/operator/account", data={"csrf_token": token, "current": PASSWORD,
                                                      "password": "another long one", "password2": "another long one"},
                           allow_redirects=False)
    assert ok.status == 303
    page = await client.get("/operator/account")  # this session stays, with a one-time notice
    assert page.status == 200 and "Пароль изменён" in await page.text()
    assert "Пароль изменён" not in await (await client.get("/operator/account")).text()
    assert "user.password_change" in await db.actions()
    await client.post("/operator/logout", data={"csrf_token": token})
    assert (await login(client, "asel")).status == 401
    assert (await login(client, "asel", "another long one")).status == 303


# -- audit -------------------------------------------------------------------------------------------------------
async def test_audit_helper_masks_details(db):
    from bot.web.console.audit import audit

    user = await db.add_user("auditor", "admin")
    async with db.sessions() as s, s.begin():
        await audit(s, user, "appeal.note", "appeal", "ЕТ-2026-000001",
                    {"note": "ИИН 900101300126, тел. +7 701 234 56 78", "password": "p", "nested": {"token": "t"}},
                    ip="10.0.0.1")
        await audit(s, "cli:someone", "test.cli")
    rows = await db.all(AuditLog)
    assert rows[0].actor_id == user.id and rows[0].actor == "auditor" and rows[0].ip == "10.0.0.1"
    assert "900101300126" not in rows[0].detail["note"] and "234 56 78" not in rows[0].detail["note"]
    assert rows[0].detail["password"] == "********" and rows[0].detail["nested"]["token"] == "********"
    assert (rows[1].actor, rows[1].actor_id, rows[1].detail) == ("cli:someone", None, {})


# -- languages, headers ---------------------------------------------------------------------------------------
async def test_language_switch(client, db):
    page = await client.get("/operator/login")
    assert 'lang="ru"' in await page.text() and "Войти" in await page.text()
    kk = await client.get("/operator/login?lang=kk")
    html = await kk.text()
    assert '<html lang="kk">' in html and "Кіру" in html
    assert "estu_console_lang=kk" in set_cookie_header(kk, "estu_console_lang")
    again = await client.get("/operator/login")  # the cookie keeps the choice
    assert '<html lang="kk">' in await again.text()
    await db.add_user("kairat", "admin")
    await login(client, "kairat")
    home = await (await client.get("/operator")).text()
    assert "Пайдаланушылар" in home and "Шығу" in home
    error = await client.get("/operator/nothing-here")
    assert "Мұндай бет жоқ" in await error.text()
    back = await (await client.get("/operator?lang=ru")).text()
    assert "Пользователи" in back


async def test_security_headers_and_no_inline_code(client, db):
    await db.add_user("headers", "admin")
    await login(client, "headers")
    for path in ["/operator/login"] + ADMIN_PAGES + ["/operator", "/operator/account", "/operator/missing"]:
        resp = await client.get(path)
        csp = resp.headers["Content-Security-Policy"]
        assert "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp and "script-src 'self'" in csp
        assert resp.headers["X-Frame-Options"] == "DENY"
        assert resp.headers["Referrer-Policy"] == "same-origin"
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
        assert resp.headers["Cache-Control"] == "no-store"
        html = await resp.text()
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), path  # no inline scripts
        assert " style=" not in html and "<style" not in html and " on" + "click=" not in html, path
    css = await client.get("/operator/static/console.css")
    assert css.status == 200 and "text/css" in css.headers["Content-Type"]
    assert (await client.get("/operator/static/console.js")).status == 200
    assert (await client.get("/operator/static/..%2Fapp.py")).status == 404
    assert (await client.get("/healthz")).headers.get("X-Frame-Options") is None  # console-only headers


# -- extending the console -------------------------------------------------------------------------------------
async def test_a_feature_can_add_a_page(aiohttp_client, console_settings, small_assistant, db):
    from aiohttp import web

    from bot.web.console import NavItem, audit_request, current_user, register_pages, render, requires, sessions
    from bot.web.console.nav import remove_nav

    routes = web.RouteTableDef()

    @routes.get("/operator/test-queue")
    @requires("operator")
    async def page(request):
        return render(request, "console/home.html")

    @routes.post("/operator/test-queue")
    @requires("operator")
    async def act(request):
        async with sessions(request)() as s, s.begin():
            await audit_request(request, s, "test.take", "conversation", 5, {"by": current_user(request).username})
        return web.Response(text="ok")

    app = create_app(console_settings, small_assistant, with_dialogue=False)
    register_pages(app, routes, [NavItem("test-queue", "Queue", "/operator/test-queue", roles=("operator",),
                                         order=11)])
    try:
        client = await aiohttp_client(app)
        await db.add_user("op", "operator")
        await db.add_user("ed", "editor")
        await login(client, "op")
        home = await (await client.get("/operator")).text()
        assert 'href="/operator/test-queue"' in home
        token = await csrf_of(client, "/operator/account")
        assert (await client.post("/operator/test-queue", data={"csrf_token": token})).status == 200
        assert (await client.post("/operator/test-queue", data={})).status == 403
        rows = await db.all(AuditLog, AuditLog.action == "test.take")
        assert len(rows) == 1 and rows[0].actor == "op" and rows[0].detail == {"by": "op"}
        await client.post("/operator/logout", data={"csrf_token": token})
        await login(client, "ed")
        assert (await client.get("/operator/test-queue")).status == 403
        assert "/operator/test-queue" not in await (await client.get("/operator")).text()
    finally:
        remove_nav("test-queue")
    with pytest.raises(ValueError):
        register_pages(create_app(console_settings, small_assistant, with_dialogue=False), _outside_routes())


def _outside_routes():
    from aiohttp import web

    routes = web.RouteTableDef()

    @routes.get("/not-console")
    async def h(request):
        return web.Response()

    return routes


# -- estu users ----------------------------------------------------------------------------------------------------
def test_cli_users(console_settings, monkeypatch, capsys):
    from bot.cli import main
    from bot.config import get_settings

    monkeypatch.setenv("ESTU_DATABASE_URL", console_settings.db_url)
    get_settings.cache_clear()
    try:
        assert main(["users", "list"]) == 0
        assert "no staff users yet" in capsys.readouterr().out
        monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
        assert main(["users", "add", "Zhanna", "--role", "admin", "--agency", "egov", "--display-name", "Жанна",
                     "--password-stdin"]) == 0
        monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
        assert main(["users", "add", "timur", "--role", "operator", "--password-stdin"]) == 1
        assert "at least 10" in capsys.readouterr().err
        monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
        assert main(["users", "add", "zhanna", "--role", "operator", "--password-stdin"]) == 1
        assert "already exists" in capsys.readouterr().err
        assert main(["users", "add", "timur", "--role", "boss", "--password-stdin"]) == 1
        assert "Unknown role boss" in capsys.readouterr().err
        monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
        assert main(["users", "add", "timur", "--role", "operator", "--password-stdin"]) == 0
        # prompting twice: the two entries must agree
        answers = iter(["first password!", "second password"])
        monkeypatch.setattr("getpass.getpass", lambda prompt="": next(answers))
        assert main(["users", "add", "aruzhan", "--role", "editor"]) == 1
        assert "differ" in capsys.readouterr().err
        assert main(["users", "set-role", "timur", "editor"]) == 0
        assert main(["users", "disable", "timur"]) == 0
        assert main(["users", "disable", "zhanna"]) == 1  # the last admin
        assert main(["users", "set-role", "nobody", "admin"]) == 1
        capsys.readouterr()
        assert main(["users", "list"]) == 0
        out = capsys.readouterr().out
        assert re.search(r"timur\s+editor\s+disabled", out) and re.search(r"zhanna\s+admin\s+active\s+egov", out)
    finally:
        get_settings.cache_clear()

    async def check():
        d = DB(console_settings.db_url)
        try:
            users = {u.username: u for u in await d.all(StaffUser)}
            from bot.web.console.users import verify_password

            assert set(users) == {"zhanna", "timur"}
            assert verify_password(users["zhanna"].password_hash, PASSWORD)
            assert users["zhanna"].display_name == "Жанна" and users["zhanna"].agency == "egov"
            actions = [(r.actor.split(":")[0], r.action) for r in await d.all(AuditLog)]
            assert actions == [("cli", "user.create"), ("cli", "user.create"), ("cli", "user.role"),
                               ("cli", "user.disable")]
        finally:
            await d.engine.dispose()

    asyncio.run(check())


# -- migrations ---------------------------------------------------------------------------------------------------
CONSOLE_TABLES = {"staff_users", "staff_sessions", "audit_log", "canned_replies"}


def _schema_diff(url: str) -> list:
    """Differences between the migrated database and the models, for the console's tables."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlalchemy.ext.asyncio import create_async_engine

    import bot.storage.staff  # noqa: F401
    from bot.storage.models import Base

    async def run():
        engine = create_async_engine(url)
        try:
            async with engine.connect() as conn:
                return await conn.run_sync(lambda c: compare_metadata(
                    MigrationContext.configure(c, opts={"compare_type": True}), Base.metadata))
        finally:
            await engine.dispose()

    diff = asyncio.run(run())
    return [d for d in diff if CONSOLE_TABLES & set(re.findall(r"'(\w+)'", repr(d)))]


def _tables(url: str) -> set[str]:
    from sqlalchemy import inspect
    from sqlalchemy.ext.asyncio import create_async_engine

    async def run():
        engine = create_async_engine(url)
        try:
            async with engine.connect() as conn:
                return set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
        finally:
            await engine.dispose()

    return asyncio.run(run())


def _migration_round_trip(url: str) -> None:
    from alembic import command

    from bot.storage.db import alembic_config

    upgrade(url)
    assert CONSOLE_TABLES <= _tables(url)
    assert _schema_diff(url) == []  # migration 0004 matches the models
    command.downgrade(alembic_config(url), "0003")
    assert not (CONSOLE_TABLES & _tables(url))
    upgrade(url)
    assert CONSOLE_TABLES <= _tables(url)


def test_migrations_on_fresh_sqlite(small_settings, tmp_path):
    settings = small_settings.model_copy(update={"database_url": f"sqlite+aiosqlite:///{tmp_path}/fresh.db"})
    _migration_round_trip(settings.db_url)


def test_migrations_on_postgresql():
    asyncpg = pytest.importorskip("asyncpg", reason="asyncpg is not installed (extra `pg`)")
    name = f"estu_console_test_{uuid.uuid4().hex[:10]}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(host="127.0.0.1", port=5432, user="postgres", database="postgres", timeout=5)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    try:
        asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    except (OSError, asyncpg.PostgresError, asyncio.TimeoutError) as exc:
        pytest.skip(f"PostgreSQL on 127.0.0.1:5432 (user postgres) is not reachable: {exc}")
    url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    try:
        _migration_round_trip(url)

        async def login_flow():
            from bot.web.console.auth import attempt_login

            d = DB(url)
            try:
                await d.add_user("pg.admin", "admin")
                from bot.config import Settings

                cfg = Settings(_env_file=None, console_max_failed_logins=2)
                assert (await attempt_login(d.sessions, cfg, "pg.admin", "bad", "127.0.0.1")).user is None
                assert (await attempt_login(d.sessions, cfg, "pg.admin", "bad", "127.0.0.1")).user is None
                locked = (await d.all(StaffUser))[0]
                assert locked.locked_until is not None and locked.locked_until.tzinfo is not None
                assert (await attempt_login(d.sessions, cfg, "pg.admin", PASSWORD, "127.0.0.1")).user is None
                await d.execute(update(StaffUser).values(locked_until=None))
                ok = await attempt_login(d.sessions, cfg, "pg.admin", PASSWORD, "127.0.0.1")
                assert ok.user is not None and ok.token
                assert [r.action for r in await d.all(AuditLog)] == [
                    "login.failed", "login.failed", "user.locked", "login.failed", "login"]
            finally:
                await d.engine.dispose()

        asyncio.run(login_flow())
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


# -- the browser ------------------------------------------------------------------------------------------------
def test_browser_login_and_language_switch(browser, small_settings, small_assistant, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    from tests.live import LiveServer, screenshot

    settings = small_settings.model_copy(update={"database_url": f"sqlite+aiosqlite:///{tmp_path}/browser.db"})
    upgrade(settings.db_url)

    async def add():
        d = DB(settings.db_url)
        try:
            await d.add_user("aizhan", "admin", display_name="Айжан Ермекова")
        finally:
            await d.engine.dispose()

    asyncio.run(add())
    wait = WebDriverWait(browser, 30)
    with LiveServer(settings, small_assistant) as srv:
        browser.delete_all_cookies()
        browser.get(srv.url + "/operator")
        wait.until(ec.presence_of_element_located((By.NAME, "username")))
        assert browser.current_url.endswith("/operator/login")
        browser.find_element(By.CSS_SELECTOR, ".langs a.lang-kk").click()
        wait.until(lambda d: d.find_element(By.TAG_NAME, "html").get_attribute("lang") == "kk")
        assert "Кіру" in browser.find_element(By.TAG_NAME, "h1").text
        browser.find_element(By.NAME, "username").send_keys("aizhan")
        browser.find_element(By.NAME, "password").send_keys(PASSWORD)
        screenshot(browser, "console-login")
        browser.find_element(By.CSS_SELECTOR, "form button.primary").click()
        wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "ul.cards")))
        assert browser.current_url.rstrip("/").endswith("/operator")
        body = browser.find_element(By.TAG_NAME, "body").text
        assert "Айжан Ермекова" in body and "Пайдаланушылар" in body
        cookies = {c["name"]: c for c in browser.get_cookies()}
        assert cookies["estu_console"]["httpOnly"] and cookies["estu_console"]["sameSite"] == "Strict"

        async def audit_actions(app):
            from bot.web.app import RUNTIME

            async with app[RUNTIME].sessions() as s:
                return (await s.execute(select(AuditLog.action))).scalars().all()

        assert srv.call(audit_actions) == ["login"]

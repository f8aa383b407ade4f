"""Plumbing shared by every console page: the database, the logged-in user, roles, CSRF, templates,
languages, error pages and security headers.

Pages live under ``/operator/``. A page is an aiohttp handler wrapped in :func:`requires`::

    from aiohttp import web
    from bot.web.console import requires, render, sessions, current_user, audit_request, redirect

    routes = web.RouteTableDef()

    @routes.get("/operator/queue")
    @requires("operator")
    async def queue(request):
        async with sessions(request)() as s:
            ...
        return render(request, "console/queue.html", {"items": items})

See ``docs/console.md`` for the whole recipe.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import hmac
import secrets
import zoneinfo
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlencode

import jinja2
from aiohttp import web
from markupsafe import Markup
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config import Settings
from bot.i18n import catalog, translator
from bot.logging import get_logger
from bot.storage.staff import ROLES, StaffSession, StaffUser

log = get_logger("estu.console")

PREFIX = "/operator"
SESSION_COOKIE = "estu_console"
LOGIN_CSRF_COOKIE = "estu_console_login"  # double-submit token of the login form (no session yet)
LANG_COOKIE = "estu_console_lang"
FLASH_COOKIE = "estu_console_flash"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
LANGUAGES = {"kk": "Қазақша", "ru": "Русский"}
ROLE_LABELS = {"operator": "Operator", "editor": "Editor", "admin": "Administrator"}
DEFAULT_LANGUAGE = "ru"
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
LOCAL_TZ = zoneinfo.ZoneInfo("Asia/Almaty")  # UTC+5, the single time zone of Kazakhstan since 2024

# what a request carries once the console has looked at it
_Key = getattr(web, "RequestKey", None)  # aiohttp >= 3.13; plain strings before


def _key(name: str, t: type):
    return _Key(name, t) if _Key is not None else name


USER = _key("console_user", object)  # StaffUser (detached snapshot) or None
SESSION = _key("console_session", object)  # StaffSession (detached) or None
LANG = _key("console_lang", str)
_AUTHED = _key("console_authed", bool)
_LOGIN_CSRF = _key("console_login_csrf", str)
_COOKIES = _key("console_cookies", list)  # [(name, value or None to delete, max_age, samesite)]

STATE = web.AppKey("console_state", dict)  # {"engine", "sessions", "routes"} owned by the console

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"
STATIC_DIR = Path(__file__).resolve().parent.parent / "static"

_t = translator("console")

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
       "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
    "Cross-Origin-Opener-Policy": "same-origin",
}


# -- time ----------------------------------------------------------------------------------------------------
def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def aware(value: dt.datetime | None) -> dt.datetime | None:
    """SQLite gives naive datetimes back; every stored time is UTC."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=dt.timezone.utc)
    return value


def local_time(value: dt.datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """A stored UTC time as Kazakhstan time (the ``localtime`` template filter)."""
    if value is None:
        return ""
    return aware(value).astimezone(LOCAL_TZ).strftime(fmt)


# -- settings, database ------------------------------------------------------------------------------------
def settings(request: web.Request) -> Settings:
    from bot.web.app import SETTINGS

    return request.app[SETTINGS]


def sessions(request: web.Request) -> async_sessionmaker[AsyncSession]:
    """The database session factory: the dialogue runtime's, or the console's own when the app runs
    without the runtime (``create_app(..., with_dialogue=False)``). Use ``async with sessions(request)() as s``."""
    return app_sessions(request.app)


def app_sessions(app: web.Application) -> async_sessionmaker[AsyncSession]:
    """:func:`sessions` for code that has the application but no request (start-up hooks, background tasks)."""
    from bot.web.app import RUNTIME, SETTINGS

    runtime = app.get(RUNTIME)
    if runtime is not None:
        return runtime.sessions
    state = app[STATE]
    if state.get("sessions") is None:
        from bot.storage.db import make_engine, sessionmaker

        state["engine"] = make_engine(app[SETTINGS].db_url)
        state["sessions"] = sessionmaker(state["engine"])
    return state["sessions"]


async def close_own_engine(app: web.Application) -> None:
    state = app[STATE]
    if state.get("engine") is not None:
        await state["engine"].dispose()
        state["engine"] = state["sessions"] = None


def client_ip(request: web.Request) -> str | None:
    return request.remote


# -- languages ---------------------------------------------------------------------------------------------
def language(request: web.Request) -> str:
    """``?lang=`` (kept in a cookie), else the cookie, else Russian."""
    lang = request.get(LANG)
    if lang:
        return lang
    lang = request.query.get("lang")
    if lang in LANGUAGES:
        set_cookie(request, LANG_COOKIE, lang, max_age=365 * 86400, samesite="Lax")
    else:
        lang = request.cookies.get(LANG_COOKIE)
        if lang not in LANGUAGES:
            lang = DEFAULT_LANGUAGE
    request[LANG] = lang
    return lang


def gettext(request: web.Request, msgid: str, **kwargs) -> str:
    """``msgid`` (English) in the request's language, from ``bot/locale/<lang>/LC_MESSAGES/console.po``."""
    return _t(language(request), msgid, **kwargs)


def known_msgid(msgid: str) -> bool:
    return msgid in catalog("ru", "console") or msgid in catalog("kk", "console")


# -- cookies -----------------------------------------------------------------------------------------------
def secure_cookies(request: web.Request) -> bool:
    return request.secure or settings(request).console_secure_cookies


def set_cookie(request: web.Request, name: str, value: str | None, *, max_age: int | None = None,
               samesite: str = "Strict") -> None:
    """Queue a cookie (``value=None`` deletes it); it is written on whatever response the request gets."""
    request.setdefault(_COOKIES, []).append((name, value, max_age, samesite))


def _cookie_header(name: str, value: str | None, max_age: int | None, samesite: str, secure: bool) -> str:
    jar = SimpleCookie()
    jar[name] = value or ""
    morsel = jar[name]
    morsel["path"] = PREFIX
    morsel["httponly"] = True
    morsel["samesite"] = samesite
    if secure:
        morsel["secure"] = True
    if value is None:
        morsel["max-age"] = 0
        morsel["expires"] = "Thu, 01 Jan 1970 00:00:00 GMT"
    elif max_age:
        morsel["max-age"] = str(max_age)
    return morsel.output(header="").lstrip()


def _apply_cookies(request: web.Request, response: web.StreamResponse) -> None:
    # written as headers: the response's own cookie jar is already serialised when on_response_prepare runs
    secure = secure_cookies(request)
    for name, value, max_age, samesite in request.get(_COOKIES, []):
        response.headers.add("Set-Cookie", _cookie_header(name, value, max_age, samesite, secure))


# -- sessions, users ---------------------------------------------------------------------------------------
def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


async def load_user(request: web.Request) -> StaffUser | None:
    """The logged-in staff user of this request (None if not logged in); looked up once per request.

    The session must exist, not be past ``expires_at``, have been used within ``console_idle_minutes``,
    and belong to an active user. ``last_seen_at`` is refreshed at most once a minute."""
    if _AUTHED in request:
        return request[USER]
    request[_AUTHED] = True
    request[USER] = request[SESSION] = None
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    cfg = settings(request)
    moment = now()
    async with sessions(request)() as s, s.begin():
        row = (await s.execute(select(StaffSession).where(StaffSession.token_hash == token_hash(token))
                               )).scalar_one_or_none()
        idle = dt.timedelta(minutes=cfg.console_idle_minutes)
        if row is None or aware(row.expires_at) <= moment or aware(row.last_seen_at) + idle <= moment \
                or not row.user.active:
            if row is not None:
                await s.execute(delete(StaffSession).where(StaffSession.id == row.id))
            set_cookie(request, SESSION_COOKIE, None)
            return None
        if moment - aware(row.last_seen_at) > dt.timedelta(seconds=60):
            row.last_seen_at = moment
        user = row.user
    request[USER], request[SESSION] = user, row
    return user


def current_user(request: web.Request) -> StaffUser:
    """The logged-in user inside a handler wrapped by :func:`requires` (a detached snapshot: read its
    columns; to change it, load it again in your own DB session)."""
    user = request.get(USER)
    if user is None:
        raise RuntimeError("current_user() needs a handler wrapped in @requires(...)")
    return user


# -- CSRF --------------------------------------------------------------------------------------------------
def csrf_token(request: web.Request) -> str:
    """The token every form must send back (field ``csrf_token`` or header ``X-CSRF-Token``): the session's
    own, or before login a random value also kept in a cookie (double submit)."""
    session = request.get(SESSION)
    if session is not None:
        return session.csrf_token
    token = request.get(_LOGIN_CSRF) or request.cookies.get(LOGIN_CSRF_COOKIE)
    if not token or len(token) < 32:
        token = secrets.token_urlsafe(32)
        set_cookie(request, LOGIN_CSRF_COOKIE, token, samesite="Strict")
    request[_LOGIN_CSRF] = token
    return token


def csrf_field(request: web.Request) -> Markup:
    return Markup('<input type="hidden" name="{}" value="{}">').format(CSRF_FIELD, csrf_token(request))


async def csrf_ok(request: web.Request) -> bool:
    """Does the POST carry the right token? Compared in constant time."""
    session = request.get(SESSION)
    expected = session.csrf_token if session is not None else request.cookies.get(LOGIN_CSRF_COOKIE)
    sent = request.headers.get(CSRF_HEADER)
    if sent is None and request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        sent = (await request.post()).get(CSRF_FIELD)
    return bool(expected) and isinstance(sent, str) and hmac.compare_digest(sent.encode(), expected.encode())


# -- roles ---------------------------------------------------------------------------------------------------
def requires(*roles: str):
    """Decorator for console handlers.

    * ``@requires()`` — any logged-in, active staff user;
    * ``@requires("operator")``, ``@requires("editor")``, ``@requires("operator", "editor")`` — one of these
      roles; ``admin`` passes every check; ``@requires("admin")`` — admins only.

    Not logged in: GET/HEAD redirect to the login page (and back afterwards); other methods get 403.
    Wrong role: a 403 page. POST/PUT/PATCH/DELETE without a valid CSRF token: a 403 page and the
    handler is not called. Inside the handler use :func:`current_user`."""
    unknown = set(roles) - set(ROLES)
    if unknown:
        raise ValueError(f"unknown role(s) {sorted(unknown)}; roles are {ROLES}")

    def decorate(handler):
        @functools.wraps(handler)
        async def wrapper(request: web.Request):
            user = await load_user(request)
            if user is None:
                if request.method in ("GET", "HEAD"):
                    return redirect(request, login_url(request.path_qs))
                return error_page(request, 403, "Your session has ended. Please log in again.")
            if not user.can(*roles):
                return error_page(request, 403, "You do not have access to this page.")
            if request.method not in SAFE_METHODS and not await csrf_ok(request):
                return error_page(request, 403, "The form is out of date. Reload the page and try again.")
            return await handler(request)

        wrapper.console_roles = roles
        return wrapper

    return decorate


def login_url(next_path: str | None = None) -> str:
    if next_path and safe_next(next_path) and next_path != PREFIX:
        return f"{PREFIX}/login?{urlencode({'next': next_path})}"
    return f"{PREFIX}/login"


def safe_next(path: str | None) -> str | None:
    """Only paths inside the console are followed after login (no open redirect)."""
    if not path or not isinstance(path, str):
        return None
    if (path == PREFIX or path.startswith(PREFIX + "/")) and "//" not in path and "\\" not in path \
            and not path.startswith(PREFIX + "/login") and not path.startswith(PREFIX + "/logout"):
        return path
    return None


# -- responses ---------------------------------------------------------------------------------------------
def redirect(request: web.Request, location: str, *, flash: str | None = None) -> web.Response:
    """A 303 to ``location`` (after a POST: the browser GETs it). ``flash``: an English msgid from
    console.po shown once on the next page ("Saved.")."""
    if flash:
        set_cookie(request, FLASH_COOKIE, flash.encode("utf-8").hex(), max_age=120)
    return web.Response(status=303, headers={"Location": location})


def _pop_flash(request: web.Request) -> str | None:
    raw = request.cookies.get(FLASH_COOKIE)
    if not raw:
        return None
    set_cookie(request, FLASH_COOKIE, None)
    try:
        msgid = bytes.fromhex(raw).decode("utf-8")
    except ValueError:
        return None
    return gettext(request, msgid) if known_msgid(msgid) else None


def static_url(name: str) -> str:
    """``/operator/static/<name>?v=<mtime>`` for a file in ``bot/web/static`` named ``console*``."""
    path = STATIC_DIR / name
    version = int(path.stat().st_mtime) if path.exists() else 0
    return f"{PREFIX}/static/{name}?v={version}"


_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(str(TEMPLATES_DIR)),
    autoescape=jinja2.select_autoescape(["html", "htm", "xml"], default_for_string=True),
    trim_blocks=True, lstrip_blocks=True,
)
_env.filters["localtime"] = local_time
_env.globals["static_url"] = static_url


def template_env() -> jinja2.Environment:
    """The console's Jinja2 environment (loader root: ``bot/web/templates``); add filters here if needed."""
    return _env


def lang_url(request: web.Request, code: str) -> str:
    query = {k: v for k, v in request.query.items() if k != "lang"}
    query["lang"] = code
    return f"{request.path}?{urlencode(query)}"


def base_context(request: web.Request) -> dict:
    from bot.web.console.nav import visible_nav

    lang = language(request)
    user = request.get(USER)

    def _(msgid: str, **kwargs) -> str:
        return _t(lang, msgid, **kwargs)

    return {
        "_": _,
        "lang": lang,
        "languages": LANGUAGES,
        "lang_url": lambda code: lang_url(request, code),
        "user": user,
        "csrf_token": lambda: csrf_token(request),
        "csrf_field": lambda: csrf_field(request),
        "nav": visible_nav(request, user) if user is not None else [],
        "path": request.path,
        "request": request,
        "flash": _pop_flash(request),
        "roles": ROLES,
        "role_label": lambda role: _t(lang, ROLE_LABELS.get(role, role)),
    }


def render(request: web.Request, template: str, context: dict | None = None, *, status: int = 200) -> web.Response:
    """Render ``template`` (e.g. ``"console/home.html"``, extending ``console/base.html``) with the base
    context (``_``, ``lang``, ``user``, ``nav``, ``csrf_field()``, ``flash`` …) plus ``context``."""
    ctx = base_context(request)
    ctx.update(context or {})
    html = _env.get_template(template).render(ctx)
    return web.Response(text=html, content_type="text/html", charset="utf-8", status=status)


ERROR_MESSAGES = {
    400: "The request could not be understood.",
    403: "You do not have access to this page.",
    404: "There is no such page.",
    405: "This action is not possible here.",
    413: "The form is too large.",
    500: "Something went wrong on our side. Nothing was saved; please try again.",
}


def error_page(request: web.Request, status: int, message: str | None = None) -> web.Response:
    """An HTML error page in the console's look, never a traceback."""
    msgid = message or ERROR_MESSAGES.get(status) or ERROR_MESSAGES[400 if status < 500 else 500]
    try:
        return render(request, "console/error.html", {"status": status, "message": gettext(request, msgid)},
                      status=status)
    except Exception:  # noqa: BLE001 - the error page itself must not fail
        log.exception("console_error_page_failed", path=request.path)
        return web.Response(text=f"{status}", status=status, content_type="text/plain")


# -- middleware, headers -------------------------------------------------------------------------------------
def is_console_path(path: str) -> bool:
    return path == PREFIX or path.startswith(PREFIX + "/")


@web.middleware
async def console_middleware(request: web.Request, handler):
    """For ``/operator/*``: HTML error pages (403/404/405/500) instead of JSON, never a traceback."""
    if not is_console_path(request.path):
        return await handler(request)
    language(request)
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            headers = {"Location": exc.headers["Location"]} if "Location" in exc.headers else {}
            return web.Response(status=exc.status, headers=headers)
        return error_page(request, exc.status)
    except Exception:  # noqa: BLE001
        log.exception("console_unhandled_error", path=request.path)
        return error_page(request, 500)


async def on_response_prepare(request: web.Request, response: web.StreamResponse) -> None:
    """Security headers and queued cookies on every console response (streamed ones included)."""
    if not is_console_path(request.path):
        return
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if secure_cookies(request):
        response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
    if not request.path.startswith(PREFIX + "/static/"):
        response.headers.setdefault("Cache-Control", "no-store")
    _apply_cookies(request, response)
    request[_COOKIES] = []


async def static_file(request: web.Request) -> web.StreamResponse:
    """``/operator/static/console*.{css,js,svg,png,woff2}`` from ``bot/web/static`` (public)."""
    name = request.match_info["name"]
    path = STATIC_DIR / name
    if not name.startswith("console") or "/" in name or path.suffix not in (".css", ".js", ".svg", ".png",
                                                                             ".woff2") \
            or not path.is_file():
        raise web.HTTPNotFound()
    return web.FileResponse(path, headers={"Cache-Control": "public, max-age=86400"})


def agency_name(request: web.Request, agency: str | None, lang: str) -> str | None:
    """An agency id in words, from the knowledge base the server is using (None if unknown)."""
    from bot.web.app import served_assistant

    if not agency:
        return None
    try:
        return served_assistant(request.app).agency_name(agency, lang)
    except Exception:  # noqa: BLE001 - a label is not worth an error page
        return None

"""The web chat page at ``/``: one Jinja2 template, plain CSS and vanilla JS from ``bot/web/static/``.

No build step and nothing from a CDN. The page talks to ``POST /api/v1/messages`` and polls
``GET /api/v1/notifications`` (both in ``bot/web/app.py``). UI strings come from the ``web`` gettext
domain (``bot/locale/{kk,ru}/LC_MESSAGES/web.po``); the page language is ``?lang=kk|ru``, remembered in a
cookie, Russian by default.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path

from aiohttp import web
from jinja2 import Environment, FileSystemLoader, select_autoescape

from bot.i18n import translator

WEB_DIR = Path(__file__).parent
TEMPLATES = WEB_DIR / "templates"
STATIC = WEB_DIR / "static"
LANGUAGES = ("kk", "ru")
DEFAULT_LANGUAGE = "ru"
LANG_COOKIE = "estu_lang"
POLL_SECONDS = 20
t = translator("web")

# strings the script needs at run time (rendered into the page as JSON, never as markup)
JS_STRINGS = (
    "You", "Estu", "Notification", "Sending…", "Recommended channel", "How to reach", "Links",
    "The server cannot be reached. Your message is kept; please try again.",
    "The server answered with an error ({status}). Your message is kept; please try again.",
    "The message is too long. Please shorten it and send again.",
    "The server cannot be reached. Please try again.",
    "The server answered with an error ({status}). Please try again.",
    "Write a message first.",
    "Start a new conversation? The history on this device will be cleared.",
)

# the page only ever loads its own script and styles and talks to its own API
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "base-uri 'none'; form-action 'self'; object-src 'none'")


@lru_cache(maxsize=1)
def _env() -> Environment:
    return Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]),
                       trim_blocks=True, lstrip_blocks=True)


@lru_cache(maxsize=8)
def _version(name: str) -> str:
    """A short content hash, appended to static URLs so a changed file is never served from a stale cache."""
    return hashlib.sha256((STATIC / name).read_bytes()).hexdigest()[:10]


def page_language(request: web.Request) -> str:
    lang = request.query.get("lang", "").lower()
    if lang in LANGUAGES:
        return lang
    cookie = request.cookies.get(LANG_COOKIE, "")
    return cookie if cookie in LANGUAGES else DEFAULT_LANGUAGE


async def chat_page(request: web.Request) -> web.Response:
    lang = page_language(request)

    def _(msgid: str, **kwargs) -> str:
        return t(lang, msgid, **kwargs)

    html = _env().get_template("chat.html").render(
        lang=lang, _=_, languages=[("kk", "Қазақша"), ("ru", "Русский")],
        strings={msgid: _(msgid) for msgid in JS_STRINGS}, poll_seconds=POLL_SECONDS,
        css_version=_version("chat.css"), js_version=_version("chat.js"))
    resp = web.Response(text=html, content_type="text/html", charset="utf-8")
    resp.headers["Content-Security-Policy"] = CSP
    resp.headers["X-Content-Type-Options"] = "nosniff"
    resp.headers["Referrer-Policy"] = "same-origin"
    resp.headers["Cache-Control"] = "no-cache"
    if request.query.get("lang", "").lower() in LANGUAGES:
        resp.set_cookie(LANG_COOKIE, lang, max_age=365 * 24 * 3600, samesite="Lax", httponly=True)
    return resp


def setup(app: web.Application) -> None:
    """Register the web chat page and its static files on ``app``."""
    app.router.add_get("/", chat_page)
    app.router.add_static("/static/", STATIC, name="static", append_version=False)

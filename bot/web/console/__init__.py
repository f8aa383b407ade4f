"""The staff console at ``/operator`` (server-rendered aiohttp + Jinja2; docs/console.md).

Building a page on top of it::

    # bot/web/console/queue.py  (or any module listed in PAGE_MODULES below)
    from aiohttp import web
    from bot.web.console import NavItem, audit_request, current_user, redirect, render, requires, sessions

    routes = web.RouteTableDef()
    nav = [NavItem("queue", "Queue", "/operator/queue", roles=("operator",), order=10,
                   description="Conversations waiting for an operator")]

    @routes.get("/operator/queue")
    @requires("operator")
    async def queue(request):
        ...
        return render(request, "console/queue.html", {"items": items})

then add ``"bot.web.console.queue"`` to ``PAGE_MODULES`` (or call :func:`register_pages` from your own
``setup(app)``, before the app starts).

The names below are imported lazily, so ``bot.web.console.cli`` (used by every ``estu`` run to build its
argument parser) stays cheap to import.
"""

from __future__ import annotations

import importlib

# Modules whose ``routes`` (an aiohttp RouteTableDef) and optional ``nav`` (a list of NavItem) make up the
# console; ``setup`` registers them in this order. Features built on the console add their module here.
PAGE_MODULES: list[str] = [
    "bot.web.console.auth",
    "bot.web.console.admin",
    "bot.web.console.conversations",
    "bot.web.console.appeals",
    "bot.web.console.ratings",
    "bot.web.console.insights",
    "bot.web.console.kb",
]

_EXPORTS = {
    "audit": "bot.web.console.audit", "audit_request": "bot.web.console.audit",
    "PREFIX": "bot.web.console.core", "current_user": "bot.web.console.core", "csrf_field": "bot.web.console.core",
    "csrf_token": "bot.web.console.core", "error_page": "bot.web.console.core", "gettext": "bot.web.console.core",
    "language": "bot.web.console.core", "redirect": "bot.web.console.core", "render": "bot.web.console.core",
    "requires": "bot.web.console.core", "sessions": "bot.web.console.core", "settings": "bot.web.console.core",
    "template_env": "bot.web.console.core",
    "NAV": "bot.web.console.nav", "NavItem": "bot.web.console.nav", "add_nav": "bot.web.console.nav",
}

__all__ = sorted([*_EXPORTS, "PAGE_MODULES", "register_pages", "setup"])


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def register_pages(app, routes, nav=()) -> None:
    """Add a feature's console routes (an aiohttp ``RouteTableDef``, paths under ``/operator/``) and its
    menu items (``NavItem``) to ``app``."""
    from bot.web.console.core import PREFIX
    from bot.web.console.nav import add_nav

    for route in routes:
        path = getattr(route, "path", "")
        if not (path == PREFIX or path.startswith(PREFIX + "/")):
            raise ValueError(f"console pages live under {PREFIX}/, not {path}")
    app.router.add_routes(routes)
    for item in nav:
        add_nav(item)


async def _warm_up(app) -> None:
    """Prepare the dummy hash an unknown user name is checked against (so its first check is not faster)."""
    import asyncio

    from bot.web.console.users import verify_password

    await asyncio.to_thread(verify_password, None, "")


def setup(app) -> None:
    """Register the console on ``app`` (called by ``create_app``): middleware (HTML error pages for
    /operator/*), security headers and cookies, static files, and the routes of ``PAGE_MODULES``."""
    from bot.web.console import core

    app[core.STATE] = {"engine": None, "sessions": None, "paths": None}
    app.middlewares.append(core.console_middleware)
    app.on_response_prepare.append(core.on_response_prepare)
    app.on_startup.append(_warm_up)
    app.on_cleanup.append(core.close_own_engine)
    app.router.add_get(core.PREFIX + "/static/{name}", core.static_file)
    for name in PAGE_MODULES:
        module = importlib.import_module(name)
        register_pages(app, module.routes, getattr(module, "nav", ()))

"""The console's navigation: one list every feature appends to.

    from bot.web.console.nav import NavItem, add_nav
    add_nav(NavItem("queue", "Queue", "/operator/queue", roles=("operator",), order=10,
                    description="Conversations waiting for an operator"))

``label`` and ``description`` are English msgids translated from ``console.po``. An item whose
``path`` has no route yet is shown greyed out ("not available yet"), never as a dead link; adding an
item with an existing ``key`` replaces it (so a feature can move a pre-registered item).
"""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web


@dataclass(frozen=True)
class NavItem:
    key: str  # unique id; also the CSS hook ``nav-<key>``
    label: str  # English msgid
    path: str  # URL path of the page, under /operator/
    roles: tuple[str, ...] = ()  # who sees it; () = every staff user; admin sees everything
    order: int = 100  # position in the menu, small first
    description: str = ""  # English msgid shown on the home page
    home: bool = True  # show a card on the home page


NAV: list[NavItem] = []


def add_nav(item: NavItem) -> NavItem:
    """Add (or replace, by ``key``) a menu item; items are kept sorted by ``order``."""
    NAV[:] = [i for i in NAV if i.key != item.key] + [item]
    NAV.sort(key=lambda i: (i.order, i.key))
    return item


def remove_nav(key: str) -> None:
    NAV[:] = [i for i in NAV if i.key != key]


def _routed_paths(app: web.Application) -> set[str]:
    from bot.web.console.core import STATE

    state = app[STATE]
    if app.frozen and state.get("paths") is not None:
        return state["paths"]
    paths = {r.canonical for r in app.router.resources()}
    if app.frozen:
        state["paths"] = paths
    return paths


def visible_nav(request: web.Request, user) -> list[dict]:
    """The items ``user`` may see, with ``label``/``description`` translated, ``available`` (a route
    exists) and ``active`` (the current page is inside it)."""
    from bot.web.console.core import gettext

    routed = _routed_paths(request.app)
    out = []
    for item in NAV:
        if user is None or not user.can(*item.roles):
            continue
        out.append({
            "key": item.key,
            "label": gettext(request, item.label),
            "description": gettext(request, item.description) if item.description else "",
            "path": item.path,
            "available": item.path in routed,
            "active": request.path == item.path or request.path.startswith(item.path.rstrip("/") + "/"),
            "home": item.home,
        })
    return out


# What each role reaches. The operator and editor pages are built by their own features: until one
# registers a route at the path below, its item shows as "not available yet".
for _item in (
    NavItem("queue", "Queue", "/operator/queue", roles=("operator",), order=10,
            description="Conversations waiting for an operator"),
    NavItem("appeals", "Appeals", "/operator/appeals", roles=("operator",), order=20,
            description="Appeals registered by the bot and their statuses"),
    NavItem("kb", "Knowledge base", "/operator/kb", roles=("editor",), order=30,
            description="Entries, phrasings and answers the bot uses"),
    NavItem("users", "Users", "/operator/admin/users", roles=("admin",), order=80,
            description="Staff accounts and roles"),
    NavItem("canned", "Canned replies", "/operator/admin/canned", roles=("admin",), order=81,
            description="Ready answers for operators in Kazakh and Russian"),
    NavItem("audit", "Audit log", "/operator/admin/audit", roles=("admin",), order=82,
            description="Who did what in the console"),
    NavItem("settings", "Settings", "/operator/admin/settings", roles=("admin",), order=83,
            description="The server's effective settings"),
):
    add_nav(_item)

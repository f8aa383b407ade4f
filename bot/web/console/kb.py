"""Knowledge-base pages for editors (role ``editor``; admins too): ``/operator/kb`` (docs/editing.md).

Entry list (search, stale flag, pending changes), the entry editor (Kazakh and Russian side by side, problems
shown next to the fields), new entry, retire / restore / discard, the routing rules, and the versions page
(diff, publish with a comment, roll back). Every change is audited (``kb.*``). The services are in
``bot/editorial/`` (``drafts``, ``checks``, ``versions``, ``publish``).
"""

from __future__ import annotations

import datetime as dt
import re

from aiohttp import web

from bot.editorial import checks, content, drafts, publish, versions
from bot.web.console import core
from bot.web.console.audit import audit_request
from bot.web.console.core import PREFIX, current_user, redirect, render, requires, sessions
from bot.web.console.nav import NavItem

routes = web.RouteTableDef()
ID_RE = re.compile(r"(channel|faq|service|agency)\.[a-z0-9_]+")
KB = PREFIX + "/kb"
# the menu item "Knowledge base" (key "kb", role editor) is pre-registered in bot/web/console/nav.py
nav: list[NavItem] = []

# flash messages (console.po msgids)
FLASH = {
    "saved": "Saved to the working copy.",
    "saved_problems": "Saved to the working copy. Fix the problems shown before publishing.",
    "retire": "The entry is retired: after publishing, the bot no longer answers with it.",
    "restore": "The entry is restored.",
    "discard": "The pending changes of the entry were discarded.",
    "nothing": "There is nothing to publish.",
    "published": "Published. The bot switches to the new version as soon as its index is built.",
    "rolled_back": "Rolled back: the old content is published again as a new version.",
    "discarded_all": "All pending changes were discarded.",
}
CODE_LABELS = {
    "schema": "Invalid value", "missing_twin": "Missing language version", "few_phrasings": "Too few phrasings",
    "duplicate_question": "Duplicate phrasing", "near_duplicate": "Near-duplicate phrasing",
    "self_retrieval": "Its phrasings do not find it", "duplicate_id": "Duplicate id", "routing": "Routing rules",
    "unknown_channel": "Unknown channel", "unknown_entry": "Unknown entry", "missing_channel": "No channel entry",
    "conflict": "Changed by another editor", "comment": "Comment needed", "bad_id": "Invalid id",
    "unknown_condition": "Unknown condition", "bad_condition": "Invalid condition",
}


# the problem's text in the editor's language (console.po msgids), from its params; other problems (e.g. a
# schema message from pydantic) keep the English text of `estu kb validate`
DETAILS = {
    "missing_twin": "There is no version in this language; both are needed to publish.",
    "few_phrasings": "{n} phrasing(s); at least {min} are needed.",
    "duplicate_question": "«{q}» is also a phrasing of {other}.",
    "near_duplicate": "«{q}» is nearly the same as «{other_q}» of {other} (word overlap {overlap}).",
    "self_retrieval": "Only {hits} of its {n} phrasings find this entry among the first {depth} results.",
    "unknown_channel": "Rule {rule}: unknown channel «{channel}».",
    "unknown_entry": "Rule {rule}: there is no entry {entry}.",
    "unknown_condition": "Rule {rule}: unknown condition «{condition}». Known conditions: {known}.",
    "bad_condition": "Rule {rule}: «{condition}» must be a number.",
    "conflict": "{who} saved this entry after you opened it. Your text is below, not saved: compare it with "
                "theirs (open the entry in another tab) and save again to replace it.",
    "comment": "Describe the change in a comment.",
    "bad_id": "Give the entry an id such as faq.pension: the kind, a dot, then Latin lower-case letters, digits "
              "and _.",
    "schema:missing": "This field is required.",
    "schema:too_short": "At least one is needed.",
}


def _problem_views(request, problems) -> list[dict]:
    out = []
    for p in problems:
        params = p.params or {}
        key = f"{p.code}:{params.get('kind')}" if p.code == "schema" else p.code
        message = core.gettext(request, DETAILS[key], **params) if key in DETAILS else p.message
        out.append({**p.to_dict(), "label": core.gettext(request, CODE_LABELS.get(p.code, p.code)),
                    "message": message})
    return out


def _entry_id(request) -> str:
    return request.match_info["entry_id"]


async def _seeded(request, s) -> None:
    """Before the first publication the knowledge base the server answers from becomes version 1."""
    from bot.web.app import served_assistant

    if await versions.live(s) is None:
        await versions.ensure_seeded(s, data=content.from_corpus(served_assistant(request.app).corpus))


async def _overview(request, s) -> tuple[dict, list, object]:
    await _seeded(request, s)
    data = await drafts.working(s)
    return data, await drafts.changed(s), await versions.live(s)


def _editing(request):
    """Changes to the working copy go one at a time (see ``publish.editing_lock``)."""
    return publish.editing_lock(request.app)


# -- list -------------------------------------------------------------------------------------------------------
@routes.get(KB)
@requires("editor")
async def entry_list(request: web.Request) -> web.Response:
    cfg = core.settings(request)
    q = request.query.get("q", "").strip()[:200]
    show = request.query.get("show", "")
    async with _editing(request), sessions(request)() as s, s.begin():
        data, changed, live = await _overview(request, s)
    problems = checks.check(data)
    rows = drafts.rows(data, q, max_age_days=cfg.review_max_age_days, problems=problems, changed_ids=changed)
    if show == "stale":
        rows = [r for r in rows if r["stale"] and not r["retired"]]
    elif show == "changed":
        rows = [r for r in rows if r["changed"]]
    elif show == "retired":
        rows = [r for r in rows if r["retired"]]
    return render(request, "console/kb/list.html", {
        "rows": rows, "q": q, "show": show, "changed": changed, "live": live,
        "errors": len(checks.errors(problems)), "max_age": cfg.review_max_age_days,
        "stale_count": sum(1 for r in drafts.rows(data, max_age_days=cfg.review_max_age_days)
                           if r["stale"] and not r["retired"])})


# -- one entry --------------------------------------------------------------------------------------------------
def _entry_page(request, form: dict, problems, *, new: bool, retired: bool = False, changed: bool = False,
                status: int = 200, live_answer: dict | None = None, base: str = "") -> web.Response:
    views = _problem_views(request, problems)
    return render(request, "console/kb/entry.html", {
        "form": form, "new": new, "retired": retired, "changed": changed, "problems": views, "base": base,
        "general": [p for p in views if not p["language"]], "live_answer": live_answer or {},
        "by_lang": {lang: [p for p in views if p["language"] == lang] for lang in content.LANGUAGES}},
        status=status)


@routes.get(KB + "/new")
@requires("editor")
async def new_entry_form(request: web.Request) -> web.Response:
    form = drafts.raw_to_form({"id": "faq.", "kind": "faq", "reviewed": dt.date.today().isoformat()})
    return _entry_page(request, form, [], new=True)


@routes.post(KB + "/new")
@requires("editor")
async def new_entry(request: web.Request) -> web.Response:
    post = await request.post()
    raw = drafts.form_to_raw(post)
    user = current_user(request)
    eid = raw.get("id", "")
    if not ID_RE.fullmatch(eid):
        problems = [checks.Problem("error", "bad_id", eid, "id", None, "give the entry an id such as faq.pension "
                                   "(Latin lower-case letters, digits and _ after the kind)")]
        return _entry_page(request, drafts.raw_to_form(raw), problems, new=True, status=422)
    async with _editing(request), sessions(request)() as s, s.begin():
        await _seeded(request, s)
        try:
            problems = await drafts.save_entry(s, raw, user.username, create=True, **_self_test(request))
        except drafts.NotSaved as exc:
            return _entry_page(request, drafts.raw_to_form(raw), [exc.problem], new=True, status=422)
        await audit_request(request, s, "kb.entry.create", "kb_entry", eid, {"errors": len(checks.errors(
            checks.for_entry(problems, eid)))})
    return redirect(request, f"{KB}/entry/{eid}", flash=_saved_flash(problems, eid))


@routes.get(KB + "/entry/{entry_id}")
@requires("editor")
async def entry_page(request: web.Request) -> web.Response:
    eid = _entry_id(request)
    async with _editing(request), sessions(request)() as s, s.begin():
        data, changed, live = await _overview(request, s)
        raw = drafts.get_entry(data, eid)
        if raw is None:
            return core.error_page(request, 404)
        problems = await drafts.entry_problems(s, data, eid)
    return _entry_page(request, drafts.raw_to_form(raw), problems, new=False,
                       retired=eid in data.get("retired", []), changed=eid in changed,
                       live_answer=_live_answer(live, eid), base=drafts.fingerprint(raw))


def _live_answer(live, eid: str) -> dict:
    live_raw = content.find(live.data, eid) if live else None
    return {lang: (live_raw.get(lang) or {}).get("answer", "") for lang in content.LANGUAGES} if live_raw else {}


def _self_test(request) -> dict:
    """Arguments for ``drafts.save_entry``: run the self-retrieval check with the embedder the server uses."""
    from bot.web.app import served_assistant

    return {"settings": core.settings(request), "embedder": served_assistant(request.app).embedder}


def _saved_flash(problems, eid: str) -> str:
    return FLASH["saved_problems"] if checks.errors(checks.for_entry(problems, eid)) else FLASH["saved"]


@routes.post(KB + "/entry/{entry_id}")
@requires("editor")
async def save_entry(request: web.Request) -> web.Response:
    eid = _entry_id(request)
    post = await request.post()
    user = current_user(request)
    raw = drafts.form_to_raw(post)
    new_id = raw.get("id") or eid
    if not ID_RE.fullmatch(new_id):
        problems = [checks.Problem("error", "bad_id", eid, "id", None, "give the entry an id such as faq.pension "
                                   "(Latin lower-case letters, digits and _ after the kind)")]
        return _entry_page(request, drafts.raw_to_form(raw), problems, new=False, status=422,
                           base=str(post.get("base", "")))
    async with _editing(request), sessions(request)() as s, s.begin():
        data, changed, live = await _overview(request, s)
        current = drafts.get_entry(data, eid)
        if current is None:
            return core.error_page(request, 404)
        try:
            problems = await drafts.save_entry(s, raw, user.username, old_id=eid, base=str(post.get("base", "")) or None,
                                               **_self_test(request))
        except drafts.NotSaved as exc:
            # shown as typed; the form now carries the current fingerprint, so saving again replaces theirs
            return _entry_page(request, drafts.raw_to_form(raw), [exc.problem], new=False, status=409,
                               changed=eid in changed, live_answer=_live_answer(live, eid),
                               base=drafts.fingerprint(current))
        await audit_request(request, s, "kb.entry.save", "kb_entry", new_id,
                            {"from_id": eid if new_id != eid else None,
                             "errors": len(checks.errors(checks.for_entry(problems, new_id)))})
    return redirect(request, f"{KB}/entry/{new_id}", flash=_saved_flash(problems, new_id))


@routes.post(KB + "/entry/{entry_id}/{action:retire|restore|discard}")
@requires("editor")
async def entry_action(request: web.Request) -> web.Response:
    """Retire (hidden from the bot after publishing, kept), restore, or discard the entry's pending changes."""
    eid, action = _entry_id(request), request.match_info["action"]
    user = current_user(request)
    async with _editing(request), sessions(request)() as s, s.begin():
        await _seeded(request, s)
        if action in ("retire", "restore"):
            ok = await drafts.set_retired(s, eid, action == "retire", user.username)
            if not ok:
                return core.error_page(request, 404)
        else:
            await drafts.discard_entry(s, eid, user.username)
        await audit_request(request, s, f"kb.entry.{action}", "kb_entry", eid, {})
        still = drafts.get_entry(await drafts.working(s), eid) is not None
    return redirect(request, f"{KB}/entry/{eid}" if still else KB, flash=FLASH[action])


# -- routing rules ----------------------------------------------------------------------------------------------
@routes.get(KB + "/routing")
@requires("editor")
async def routing_page(request: web.Request) -> web.Response:
    async with _editing(request), sessions(request)() as s, s.begin():
        data, _, _ = await _overview(request, s)
    problems = [p for p in checks.check(data) if p.entry == "routing"]
    return render(request, "console/kb/routing.html", {"text": content.routing_yaml(data.get("routing") or {}),
                                                       "problems": _problem_views(request, problems)})


@routes.post(KB + "/routing")
@requires("editor")
async def save_routing(request: web.Request) -> web.Response:
    post = await request.post()
    text = str(post.get("routing", ""))
    user = current_user(request)
    async with _editing(request), sessions(request)() as s, s.begin():
        await _seeded(request, s)
        problems = await drafts.save_routing(s, text, user.username)
        stored = not checks.errors(problems) or all(p.code != "routing" for p in problems)
        await audit_request(request, s, "kb.routing.save", "kb_routing", None,
                            {"stored": stored, "errors": len(checks.errors(problems))})
    if not stored:
        return render(request, "console/kb/routing.html", {"text": text, "problems": _problem_views(request, problems),
                                                           "not_saved": True}, status=422)
    return redirect(request, KB + "/routing", flash=FLASH["saved"])


# -- versions, publishing -----------------------------------------------------------------------------------------
async def _versions_page(request, problems=None, comment: str = "", status: int = 200) -> web.Response:
    async with _editing(request), sessions(request)() as s, s.begin():
        data, changed, live = await _overview(request, s)
        rows = await versions.listing(s)
    pending = content.diff(live.data if live else None, data, "live", "working copy") if changed else ""
    st = publish.state(request.app)
    return render(request, "console/kb/versions.html", {
        "versions": rows, "live": live, "changed": changed, "pending_diff": pending, "comment": comment,
        "problems": _problem_views(request, problems or []), "serving": st.get("serving"),
        "building": st.get("building"), "build_error": st.get("error")}, status=status)


@routes.get(KB + "/versions")
@requires("editor")
async def versions_page(request: web.Request) -> web.Response:
    return await _versions_page(request)


@routes.get(KB + "/versions/{number:\\d+}")
@requires("editor")
async def version_page(request: web.Request) -> web.Response:
    async with sessions(request)() as s:
        row = await versions.get(s, int(request.match_info["number"]))
    if row is None:
        return core.error_page(request, 404)
    return render(request, "console/kb/version.html", {"v": row, "serving": publish.state(request.app).get("serving")})


@routes.post(KB + "/publish")
@requires("editor")
async def publish_draft(request: web.Request) -> web.Response:
    post = await request.post()
    comment = str(post.get("comment", "")).strip()[:2000]
    user = current_user(request)
    cfg = core.settings(request)
    if not comment:
        problems = [checks.Problem("error", "comment", None, "comment", None, "describe the change in a comment")]
        return await _versions_page(request, problems, comment, status=422)
    async with _editing(request), sessions(request)() as s, s.begin():
        if not await drafts.changed(s):
            return redirect(request, KB + "/versions", flash=FLASH["nothing"])
        data = await drafts.working(s)
        row, problems = await versions.publish_data(s, data, cfg, user.username, comment,
                                                    embedder=_self_test(request)["embedder"])
        await audit_request(request, s, "kb.publish", "kb_version", row.number if row else None,
                            {"comment": comment, "published": row is not None,
                             "errors": len(checks.errors(problems))})
        number, vdata = (row.number, row.data) if row else (None, None)
    if number is None:
        return await _versions_page(request, checks.errors(problems), comment, status=422)
    publish.activate(request.app, number, vdata)
    return redirect(request, KB + "/versions", flash=FLASH["published"])


@routes.post(KB + "/versions/{number:\\d+}/rollback")
@requires("editor")
async def rollback(request: web.Request) -> web.Response:
    number = int(request.match_info["number"])
    post = await request.post()
    user = current_user(request)
    async with _editing(request), sessions(request)() as s, s.begin():
        try:
            row = await versions.rollback(s, number, user.username, str(post.get("comment", "")).strip()[:2000],
                                          keep_draft=True)
        except LookupError:
            return core.error_page(request, 404)
        await audit_request(request, s, "kb.rollback", "kb_version", row.number, {"to": number})
        new_number, vdata = row.number, row.data
    publish.activate(request.app, new_number, vdata)
    return redirect(request, KB + "/versions", flash=FLASH["rolled_back"])


@routes.post(KB + "/discard")
@requires("editor")
async def discard_all(request: web.Request) -> web.Response:
    async with _editing(request), sessions(request)() as s, s.begin():
        changed = await drafts.changed(s)
        await drafts.discard_all(s)
        await audit_request(request, s, "kb.discard", "kb_draft", None, {"entries": changed})
    return redirect(request, KB + "/versions", flash=FLASH["discarded_all"])

"""Editing the knowledge base: one **shared working copy** (table ``kb_drafts``, row 1) = the live version's
data plus every editor's pending changes. Saving an entry stores it there at once (also with errors, so no work
is lost) and returns the problems found by the same checks as ``estu kb validate``; publishing
(:func:`bot.editorial.versions.create`) turns the working copy into the next live version.

Also the API of the "Unanswered" page: :func:`add_phrasings` and :func:`new_entry_draft`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import re

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.editorial import checks, content, versions
from bot.editorial.review import is_stale
from bot.storage.editorial import KbDraft



def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


async def _draft_row(session: AsyncSession) -> KbDraft | None:
    return (await session.execute(select(KbDraft).where(KbDraft.id == 1))).scalar_one_or_none()


async def working(session: AsyncSession) -> dict:
    """The working copy (a deep copy: change it and :func:`store` it): the live version plus the pending changes.

    Takes the editing lock on PostgreSQL (the live version's row, ``FOR UPDATE``) so that read-change-store
    sequences of several workers do not overwrite each other. If the live version changed since the pending
    changes were made (a roll-back, an import, another worker's publication), they are carried over: each
    changed entry (and the routing rules, if changed) as the editor left it, everything else from the new live
    version."""
    live = await versions.live(session, lock=True)
    draft = await _draft_row(session)
    base = content.clone(live.data) if live else content.empty()
    if draft is None or not draft.changed:
        return base
    if live is None or draft.base_version_id == live.id:
        return content.clone(draft.data)
    data = rebase(draft.data, base, draft.changed)
    draft.data, draft.base_version_id = content.clone(data), live.id
    await session.flush()
    return data


def rebase(pending: dict, live: dict, changed_ids: list[str]) -> dict:
    """``live`` with the entries in ``changed_ids`` (and the rules, if ``"routing"`` is listed) as in ``pending``."""
    data = content.clone(live)
    retired = set(data.get("retired", []))
    pending_retired = set(pending.get("retired", []))
    for eid in changed_ids:
        if eid == "routing":
            data["routing"] = content.clone(pending.get("routing") or {})
            continue
        mine = content.find(pending, eid)
        data["entries"] = [e for e in data["entries"] if e.get("id") != eid]
        if mine is not None:
            content.put(data, content.clone(mine))
        retired = (retired | {eid}) if eid in pending_retired else (retired - {eid})
    data["retired"] = sorted(retired)
    return data


async def changed(session: AsyncSession) -> list[str]:
    draft = await _draft_row(session)
    return list(draft.changed or []) if draft is not None else []


async def store(session: AsyncSession, data: dict, author: str, touched: list[str]) -> None:
    draft = await _draft_row(session)
    live = await versions.live(session)
    if draft is None:
        draft = KbDraft(id=1, data={}, changed=[], self_test={})
        session.add(draft)
    elif not draft.changed:  # left over with nothing pending: start afresh on the live version
        draft.self_test = {}
    draft.base_version_id = live.id if live else None
    draft.data = content.clone(data)
    draft.changed = sorted(set(draft.changed or []) | {t for t in touched if t})
    draft.updated_by = author[:120]
    draft.updated_at = now()
    await session.flush()


async def discard_all(session: AsyncSession) -> None:
    draft = await _draft_row(session)
    if draft is not None:
        await session.delete(draft)


# -- reading ----------------------------------------------------------------------------------------------------
def rows(data: dict, query: str = "", today: dt.date | None = None, max_age_days: int = 365,
         problems: list | None = None, changed_ids=()) -> list[dict]:
    """The entry list: id, kind, titles kk/ru, reviewed, stale, retired, changed, errors; filtered by ``query``
    (any word of the id, the titles or the phrasings, case-insensitive)."""
    today = today or dt.date.today()
    retired = set(data.get("retired", []))
    errs: dict[str, int] = {}
    for p in problems or []:
        if p.level == "error" and p.entry:
            errs[p.entry] = errs.get(p.entry, 0) + 1
    terms = query.casefold().split()
    out = []
    for raw in data.get("entries", []):
        blocks = {lang: raw.get(lang) if isinstance(raw.get(lang), dict) else {} for lang in content.LANGUAGES}
        if terms:
            hay = " ".join([str(raw.get("id", ""))] + [str(b.get("title", "")) + " " + " ".join(
                map(str, b.get("questions") or [])) + " " + str(b.get("answer", "")) for b in blocks.values()]
                           ).casefold()
            if not all(t in hay for t in terms):
                continue
        out.append({"id": raw.get("id"), "kind": raw.get("kind"), "title_kk": blocks["kk"].get("title", ""),
                    "title_ru": blocks["ru"].get("title", ""), "reviewed": raw.get("reviewed"),
                    "stale": is_stale(raw.get("reviewed"), today, max_age_days),
                    "retired": raw.get("id") in retired, "changed": raw.get("id") in set(changed_ids),
                    "errors": errs.get(raw.get("id"), 0)})
    return out


def get_entry(data: dict, entry_id: str) -> dict | None:
    return content.find(data, entry_id)


def fingerprint(raw: dict | None) -> str:
    """A short hash of an entry as stored: the entry form carries the one it was opened with, and a save is
    refused (nothing lost: the form comes back as typed) if another editor saved the entry in between."""
    text = json.dumps(raw, sort_keys=True, ensure_ascii=False, default=str) if raw is not None else ""
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:16]


# -- the entry form ---------------------------------------------------------------------------------------------
def _lines(text) -> list[str]:
    return [ln.strip() for ln in str(text or "").replace("\r", "").split("\n") if ln.strip()]


def _ids(text) -> list[str]:
    return [t for t in re.split(r"[\s,;]+", str(text or "").strip()) if t]


def form_to_raw(form) -> dict:
    """An entry dict from the console form (fields ``id, agency, channels, url, reviewed, sources, notes`` and
    per language ``kk_title, kk_questions, kk_answer`` …, and the contact block ``contact_phone``,
    ``contact_url``, ``contact_hours_kk`` …). A language block left entirely empty is absent."""
    eid = str(form.get("id", "")).strip()
    raw: dict = {"id": eid, "kind": eid.split(".", 1)[0] if "." in eid else str(form.get("kind", "faq"))}
    if str(form.get("agency", "")).strip():
        raw["agency"] = str(form.get("agency")).strip()
    raw["channels"] = _ids(form.get("channels"))
    if str(form.get("url", "")).strip():
        raw["url"] = str(form.get("url")).strip()
    raw["reviewed"] = str(form.get("reviewed", "")).strip()
    raw["sources"] = _lines(form.get("sources"))
    if str(form.get("notes", "")).strip():
        raw["notes"] = str(form.get("notes")).strip()
    contact = _contact_from_form(form)
    if contact:
        raw["contact"] = contact
    for lang in content.LANGUAGES:
        title = str(form.get(f"{lang}_title", "")).strip()
        questions = _lines(form.get(f"{lang}_questions"))
        answer = str(form.get(f"{lang}_answer", "")).replace("\r", "").strip()
        if title or questions or answer:
            raw[lang] = {"title": title, "questions": questions, "answer": answer}
    entry, _ = content.parse(raw)
    return content.entry_dict(entry) if entry is not None else content.ordered(raw)


CONTACT_TEXT = ("phone", "url")
CONTACT_LOCALIZED = ("hours", "deadline")


def _contact_from_form(form) -> dict:
    """The contact block (phone, link, hours and answer time in kk/ru) from fields ``contact_phone`` …"""
    contact: dict = {}
    for key in CONTACT_TEXT:
        value = str(form.get(f"contact_{key}", "")).strip()
        if value:
            contact[key] = value
    for key in CONTACT_LOCALIZED:
        texts = {lang: str(form.get(f"contact_{key}_{lang}", "")).strip() for lang in content.LANGUAGES}
        if any(texts.values()):
            contact[key] = {lang: t for lang, t in texts.items() if t}
    return contact


def raw_to_form(raw: dict) -> dict:
    """The console form's field values for an entry."""
    form = {"id": raw.get("id", ""), "kind": raw.get("kind", ""), "agency": raw.get("agency") or "",
            "channels": ", ".join(raw.get("channels") or []), "url": raw.get("url") or "",
            "reviewed": str(raw.get("reviewed") or ""), "sources": "\n".join(raw.get("sources") or []),
            "notes": raw.get("notes") or ""}
    contact = raw.get("contact") if isinstance(raw.get("contact"), dict) else {}
    for key in CONTACT_TEXT:
        form[f"contact_{key}"] = contact.get(key) or ""
    for key in CONTACT_LOCALIZED:
        block = contact.get(key) if isinstance(contact.get(key), dict) else {}
        for lang in content.LANGUAGES:
            form[f"contact_{key}_{lang}"] = block.get(lang) or ""
    for lang in content.LANGUAGES:
        b = raw.get(lang) if isinstance(raw.get(lang), dict) else {}
        form[f"{lang}_title"] = b.get("title", "")
        form[f"{lang}_questions"] = "\n".join(b.get("questions") or [])
        form[f"{lang}_answer"] = b.get("answer", "")
    return form


# -- changing ---------------------------------------------------------------------------------------------------
class NotSaved(Exception):
    """The entry was not stored; ``problem`` says why (the page shows the form again, as typed)."""

    def __init__(self, problem: checks.Problem) -> None:
        super().__init__(problem.message)
        self.problem = problem


async def save_entry(session: AsyncSession, raw: dict, author: str, old_id: str | None = None,
                     create: bool = False, base: str | None = None, settings=None,
                     embedder=None) -> list[checks.Problem]:
    """Store ``raw`` in the working copy (replacing ``old_id`` or the entry with the same id) and return the
    problems of the whole working copy (the page shows those of this entry next to the fields): the checks of
    ``estu kb validate``, with the self-retrieval test for this entry when ``settings`` is given.

    Raises :class:`NotSaved` when the id is taken, or when ``base`` (the entry's :func:`fingerprint` when
    the form was opened) no longer matches because someone else saved the entry in between."""
    data = await working(session)
    eid = raw.get("id")
    if create or (old_id and old_id != eid):
        if content.find(data, eid) is not None:
            raise NotSaved(checks.Problem("error", "duplicate_id", eid, "id", None,
                                          "an entry with this id already exists"))
    if base is not None and old_id and fingerprint(content.find(data, old_id)) != base:
        draft = await _draft_row(session)
        who = draft.updated_by if draft is not None else "?"
        raise NotSaved(checks.Problem("error", "conflict", old_id, None, None,
                                      f"{who} saved this entry after you opened it. Your text is below, not "
                                      f"saved: compare it with theirs (open the entry in another tab) and save "
                                      f"again to replace it.", {"who": who}))
    content.put(data, raw, old_id=old_id)
    if old_id and old_id != eid:
        data["retired"] = [eid if r == old_id else r for r in data.get("retired", [])]
    await store(session, data, author, [eid, old_id])
    problems = await asyncio.to_thread(checks.check, data, settings, settings is not None, {eid}, embedder)
    draft = await _draft_row(session)
    results = {k: v for k, v in (draft.self_test or {}).items() if k not in (eid, old_id)}
    results[eid] = [p.to_dict() for p in problems if p.code == "self_retrieval" and p.entry == eid]
    draft.self_test = results
    await session.flush()
    return problems


async def entry_problems(session: AsyncSession, data: dict, entry_id: str) -> list[checks.Problem]:
    """The problems of one entry of the working copy: the checks (without the self-retrieval test, which is
    slow) plus the self-retrieval result of its last save."""
    problems = checks.for_entry(checks.check(data), entry_id)
    draft = await _draft_row(session)
    saved = (draft.self_test or {}).get(entry_id, []) if draft is not None else []
    return problems + [checks.Problem(**p) for p in saved]


async def set_retired(session: AsyncSession, entry_id: str, retired: bool, author: str) -> bool:
    """Retire (hidden from retrieval, kept) or restore an entry. False if there is no such entry."""
    data = await working(session)
    if content.find(data, entry_id) is None:
        return False
    ids = set(data.get("retired", []))
    ids = ids | {entry_id} if retired else ids - {entry_id}
    data["retired"] = sorted(ids)
    await store(session, data, author, [entry_id])
    return True


async def discard_entry(session: AsyncSession, entry_id: str, author: str) -> None:
    """Undo the pending changes of one entry: back to the live version's copy (a new entry is removed)."""
    data = await working(session)
    live = await versions.live(session)
    old = content.find(live.data, entry_id) if live else None
    data["entries"] = [e for e in data["entries"] if e.get("id") != entry_id]
    if old is not None:
        content.put(data, content.clone(old))
    was_retired = live is not None and entry_id in live.data.get("retired", [])
    ids = set(data.get("retired", [])) - {entry_id}
    data["retired"] = sorted(ids | ({entry_id} if was_retired else set()))
    await store(session, data, author, [])
    draft = await _draft_row(session)
    draft.self_test = {k: v for k, v in (draft.self_test or {}).items() if k != entry_id}
    draft.changed = [c for c in draft.changed or [] if c != entry_id]


async def save_routing(session: AsyncSession, text: str, author: str) -> list[checks.Problem]:
    """Replace the routing rules with the YAML ``text`` if it is valid; else store nothing, return problems."""
    routing, problems = checks.parse_routing(text)
    if routing is None:
        return problems
    data = await working(session)
    data["routing"] = routing
    await store(session, data, author, ["routing"])
    return [p for p in checks.check(data) if p.entry == "routing"]


# -- the "Unanswered" page's API --------------------------------------------------------------------------------
async def add_phrasings(session: AsyncSession, entry_id: str, language: str, texts: list[str], author: str) -> int:
    """Add citizens' questions as phrasings of ``entry_id`` in ``language`` to the working copy (the caller's
    transaction commits). Returns how many were new. Raises LookupError for an unknown entry."""
    if language not in content.LANGUAGES:
        raise ValueError(f"language must be kk or ru, not {language!r}")
    data = await working(session)
    raw = content.find(data, entry_id)
    if raw is None:
        raise LookupError(f"no entry {entry_id}")
    block = raw.get(language) if isinstance(raw.get(language), dict) else None
    if block is None:
        block = raw[language] = {"title": "", "questions": [], "answer": ""}
    have = {q.casefold() for q in block.get("questions") or []}
    new = [t.strip() for t in texts if t and t.strip() and t.strip().casefold() not in have]
    new = list(dict.fromkeys(new))
    block["questions"] = list(block.get("questions") or []) + new
    await store(session, data, author, [entry_id])
    return len(new)


async def new_entry_draft(session: AsyncSession, texts_by_language: dict[str, list[str]], author: str) -> dict:
    """Start a new FAQ entry in the working copy from citizens' questions (its phrasings, per language); the
    editor completes it on the knowledge-base pages (answer, sources, the other language), where it shows
    with its problems until then. The same questions give the same entry (id ``faq.new_<hash>``). Returns it."""
    blocks = {}
    for language, texts in texts_by_language.items():
        if language not in content.LANGUAGES:
            raise ValueError(f"language must be kk or ru, not {language!r}")
        texts = list(dict.fromkeys(t.strip() for t in texts if t and t.strip()))
        if texts:
            blocks[language] = {"title": texts[0][:120], "questions": texts, "answer": ""}
    if not blocks:
        raise ValueError("no questions")
    digest = hashlib.sha1(json.dumps(blocks, sort_keys=True, ensure_ascii=False).encode("utf-8")).hexdigest()[:8]
    data = await working(session)
    existing = content.find(data, f"faq.new_{digest}")
    if existing is not None:
        return existing
    raw = {"id": f"faq.new_{digest}", "kind": "faq", "channels": [], "reviewed": dt.date.today().isoformat(),
           "sources": [], **blocks}
    content.put(data, raw)
    await store(session, data, author, [raw["id"]])
    return raw

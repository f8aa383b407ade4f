"""Published versions of the knowledge base (table ``kb_versions``).

Publishing appends version N+1 (all entries, retired ids, routing rules; author, time, comment and the unified
diff of the YAML against the previous live version) and makes it the only live one. A **roll-back publishes the
old content again** as a new version (comment "Roll-back to version K"), so history is never rewritten and the
diff of the roll-back shows exactly what changed back.
"""

from __future__ import annotations

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.editorial import content
from bot.logging import get_logger
from bot.storage.editorial import CorpusVersion, KbDraft
from knowledge.corpus import load_corpus

log = get_logger("estu.editorial")


async def live(session: AsyncSession, lock: bool = False) -> CorpusVersion | None:
    """The live version. ``lock``: on PostgreSQL, lock its row until the transaction ends (``SELECT … FOR
    UPDATE``) — the mutex every change of the working copy and every publication takes, across workers."""
    stmt = select(CorpusVersion).where(CorpusVersion.is_live.is_(True)).order_by(CorpusVersion.number.desc())
    if lock and session.bind is not None and session.bind.dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    return (await session.execute(stmt.limit(1))).scalar_one_or_none()


async def get(session: AsyncSession, number: int) -> CorpusVersion | None:
    return (await session.execute(select(CorpusVersion).where(CorpusVersion.number == number))).scalar_one_or_none()


async def listing(session: AsyncSession, limit: int = 100) -> list[CorpusVersion]:
    return list((await session.execute(select(CorpusVersion).order_by(CorpusVersion.number.desc())
                                       .limit(limit))).scalars())


async def count(session: AsyncSession) -> int:
    return (await session.execute(select(func.count()).select_from(CorpusVersion))).scalar_one()


async def create(session: AsyncSession, data: dict, author: str, comment: str = "",
                 keep_draft: bool = False) -> CorpusVersion:
    """Append a version with ``data`` and make it live (the caller commits). The shared working copy is dropped
    when its changes are the ones published (``keep_draft=False``); kept otherwise (a roll-back, an import), and
    then its pending entries are carried onto the new version the next time it is read."""
    current = await live(session, lock=True)
    last = (await session.execute(select(func.max(CorpusVersion.number)))).scalar_one() or 0
    data = content.clone(data)
    data["retired"] = sorted(set(data.get("retired", [])))
    row = CorpusVersion(number=last + 1, data=data, corpus_hash=content.to_corpus(data).version,
                        author=author[:120], comment=comment or "", parent_id=current.id if current else None,
                        diff=content.diff(current.data if current else None, data,
                                          f"v{current.number}" if current else "empty", f"v{last + 1}"),
                        is_live=True)
    await session.execute(update(CorpusVersion).where(CorpusVersion.is_live.is_(True)).values(is_live=False))
    session.add(row)
    await session.flush()
    draft = await session.get(KbDraft, 1)
    if draft is not None and not keep_draft:
        await session.delete(draft)
    log.info("kb_version_created", number=row.number, author=author, entries=len(data.get("entries", [])))
    return row


async def rollback(session: AsyncSession, number: int, author: str, comment: str = "",
                   keep_draft: bool = True) -> CorpusVersion:
    """Publish version ``number``'s content again. The working copy (pending changes) is kept unless
    ``keep_draft`` is False; the versions page offers to discard it."""
    old = await get(session, number)
    if old is None:
        raise LookupError(f"no version {number}")
    note = f"Roll-back to version {number}" + (f": {comment}" if comment else "")
    return await create(session, old.data, author, note, keep_draft=keep_draft)


def seed_data(corpus_dir) -> dict:
    """The repository's YAML knowledge base as version data (entries that do not load are left out)."""
    corpus = load_corpus(corpus_dir)
    for err in corpus.errors:
        log.warning("kb_seed_error", error=str(err))
    return content.from_corpus(corpus)


async def ensure_seeded(session: AsyncSession, corpus_dir=None, data: dict | None = None) -> CorpusVersion:
    """On first use (no versions yet) the knowledge base becomes version 1, live: ``data`` (the server passes
    the corpus it loaded and serves) or else the YAML seed in ``corpus_dir``. Returns the live version."""
    row = await live(session)
    if row is not None:
        return row
    if await count(session) == 0:
        return await create(session, data if data is not None else seed_data(corpus_dir), "system",
                            "Initial import of the YAML knowledge base")
    # versions but none live (should not happen): the newest becomes live again
    newest = (await listing(session, 1))[0]
    newest.is_live = True
    return newest


async def publish_data(session: AsyncSession, data: dict, settings, author: str, comment: str = "",
                       self_test: bool = True, embedder=None, keep_draft: bool = False):
    """Check ``data`` with every check of ``estu kb validate`` (the self-retrieval test too, in a thread) and,
    if there is no error, append it as the new live version. Returns ``(version or None, problems)``."""
    import asyncio

    from bot.editorial import checks

    problems = await asyncio.to_thread(checks.check, data, settings, self_test, None, embedder)
    if checks.errors(problems):
        return None, problems
    return await create(session, data, author, comment, keep_draft=keep_draft), problems

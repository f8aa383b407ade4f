"""Serving a version: build its index in the background and swap the running assistant atomically.

An index is kept per corpus content, ``<index_dir>/versions/<corpus version>`` (the hash of the entries and
rules), so a roll-back to content served before loads its index instead of rebuilding it; the embedder, the NLU
models and the vector cache are shared with the running assistant, so a new build embeds only new texts. The
newest few directories are kept, older ones deleted.

When the index is ready the new :class:`bot.assistant.Assistant` replaces the old one in the app's
:class:`bot.web.app.Served` holder and in ``runtime.engine``, one reference assignment each. A message being
answered keeps the assistant it started with (``Engine.handle`` pins it; a web request reads the holder once),
so nothing is dropped or answered half from one version and half from the other.

On start-up (with the dialogue runtime) the live version in the database is served before the first message; on
the very first start the knowledge base the server loaded (the YAML seed) becomes version 1. Afterwards the server
checks every ``ESTU_KB_FOLLOW_SECONDS`` whether another process (another worker, ``estu kb import``) published a
newer version, and serves it the same way.
"""

from __future__ import annotations

import asyncio
import shutil

from aiohttp import web

from bot.assistant import Assistant
from bot.editorial import content, versions
from bot.logging import get_logger

log = get_logger("estu.editorial")

EDITORIAL = web.AppKey("editorial", dict)
KEEP_INDEXES = 4  # index directories of recent versions kept on disk (a roll-back to them loads, not rebuilds)


def index_dir(settings, corpus_version: str):
    return settings.index_dir / "versions" / corpus_version


def build_assistant(settings, data: dict, base: Assistant) -> Assistant:
    """An assistant answering from ``data`` (CPU-bound: run it in an executor)."""
    from knowledge.embeddings import VectorCache
    from knowledge.index import KnowledgeIndex
    from knowledge.retrieval import build_index, index_is_current

    corpus = content.to_corpus(data)
    directory = index_dir(settings, corpus.version)
    if index_is_current(directory, corpus.version, base.embedder.name):
        index = KnowledgeIndex.load(directory)
        log.info("kb_version_index_loaded", corpus_version=corpus.version)
    else:
        cache = VectorCache(settings.cache_path, base.embedder.name)
        index = build_index(corpus, base.embedder, cache=cache)
        cache.save()
        index.save(directory)
        log.info("kb_version_index_built", passages=len(index.passages), seconds=index.meta.build_seconds,
                 corpus_version=corpus.version)
    _prune(directory.parent, keep=directory)
    return Assistant(settings, corpus, index, base.embedder, base.nlu)


def _prune(root, keep) -> None:
    """Delete all but the ``KEEP_INDEXES`` most recently used index directories (never ``keep``)."""
    keep.touch()  # a directory's mtime says when it was last served
    dirs = sorted((d for d in root.iterdir() if d.is_dir()), key=lambda d: d.stat().st_mtime, reverse=True)
    for old in dirs[KEEP_INDEXES:]:
        if old != keep:
            shutil.rmtree(old, ignore_errors=True)


def install(app: web.Application, assistant: Assistant) -> None:
    """Swap the assistant the app and the dialogue engine answer with."""
    from bot.web.app import RUNTIME, SERVED

    app[SERVED].assistant = assistant
    runtime = app.get(RUNTIME)
    if runtime is not None:
        runtime.engine.assistant = assistant


def state(app: web.Application) -> dict:
    return app[EDITORIAL]


def editing_lock(app: web.Application) -> asyncio.Lock:
    """Serialises changes to the shared working copy within this server (two editors saving at the same moment
    would otherwise both read, then both write: one change lost, or "database is locked" on SQLite)."""
    st = state(app)
    if st.get("lock") is None:
        st["lock"] = asyncio.Lock()
    return st["lock"]


async def _activate(app: web.Application, number: int, data: dict, previous: asyncio.Task | None) -> bool:
    from bot.web.app import SETTINGS, served_assistant

    if previous is not None:  # publications are served in order
        await asyncio.gather(previous, return_exceptions=True)
    st = state(app)
    if (st.get("serving") or 0) >= number:
        return True
    st["building"] = number
    try:
        assistant = await asyncio.get_running_loop().run_in_executor(
            None, build_assistant, app[SETTINGS], data, served_assistant(app))
    except Exception as exc:  # noqa: BLE001 - the old version keeps answering
        log.exception("kb_version_build_failed", number=number)
        st["error"] = f"v{number}: {exc}"
        return False
    finally:
        st["building"] = None
    install(app, assistant)
    st["serving"], st["error"] = number, None
    log.info("kb_version_serving", number=number, corpus_version=assistant.corpus.version)
    return True


def activate(app: web.Application, number: int, data: dict) -> asyncio.Task:
    """Start serving version ``number`` in the background; returns the task (``await wait(app)`` for it)."""
    st = state(app)
    st["wanted"] = max(number, st.get("wanted") or 0)
    task = asyncio.get_running_loop().create_task(_activate(app, number, data, st.get("task")))
    st["task"] = task
    return task


async def _follow(app: web.Application, interval: float) -> None:
    """Every ``interval`` seconds, serve the live version if another process published it (another worker,
    ``estu kb import``): a cheap query of the live version's number, the data only when it changed."""
    from sqlalchemy import select

    from bot.storage.editorial import CorpusVersion
    from bot.web.console.core import app_sessions

    st = state(app)
    while True:
        await asyncio.sleep(interval)
        try:
            async with app_sessions(app)() as s:
                number = (await s.execute(select(CorpusVersion.number).where(CorpusVersion.is_live.is_(True))
                                          .order_by(CorpusVersion.number.desc()).limit(1))).scalar_one_or_none()
                if number is None or number <= (st.get("wanted") or 0):
                    continue
                row = await versions.get(s, number)
                data = row.data
            log.info("kb_version_published_elsewhere", number=number)
            activate(app, number, data)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - keep following; the current version keeps answering
            log.exception("kb_follow_failed")


async def wait(app: web.Application) -> bool:
    """Wait until the latest publication is served (tests, the CLI); True if it is."""
    task = state(app).get("task")
    return True if task is None else await task


async def _startup(app: web.Application) -> None:
    from bot.web.app import RUNTIME, SETTINGS, served_assistant
    from bot.web.console.core import app_sessions

    if app.get(RUNTIME) is None:  # an app without the dialogue (tests): the pages seed on first use
        return
    served = served_assistant(app)
    try:
        async with app_sessions(app)() as s, s.begin():
            row = await versions.ensure_seeded(s, data=content.from_corpus(served.corpus))
            number, data = row.number, row.data
    except Exception:  # noqa: BLE001 - e.g. the tables are missing: serve what was loaded
        log.exception("kb_versions_unavailable")
        return
    st = state(app)
    if content.to_corpus(data).version == served.corpus.version:
        st["serving"] = st["wanted"] = number
    else:  # the database holds another version than the YAML the server loaded: serve it before answering
        await activate(app, number, data)
    interval = app[SETTINGS].kb_follow_seconds
    if interval > 0:
        st["follow"] = asyncio.get_running_loop().create_task(_follow(app, interval))


async def _cleanup(app: web.Application) -> None:
    st = state(app)
    if st.get("follow") is not None:
        st["follow"].cancel()
        await asyncio.gather(st["follow"], return_exceptions=True)
    if st.get("task") is not None:
        await asyncio.gather(st["task"], return_exceptions=True)


def setup(app: web.Application) -> None:
    """Called by ``create_app``: serve the live version from the database and allow publishing."""
    app[EDITORIAL] = {"serving": None, "wanted": None, "building": None, "error": None, "task": None, "lock": None,
                      "follow": None}
    app.on_startup.append(_startup)
    app.on_cleanup.append(_cleanup)

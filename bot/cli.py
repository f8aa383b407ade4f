"""The one console command: ``estu``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from bot.config import Settings, get_settings


def _settings(args) -> Settings:
    s = get_settings()
    if getattr(args, "data_dir", None):
        s = s.model_copy(update={"data_dir": Path(args.data_dir)})
    if getattr(args, "corpus", None):
        s = s.model_copy(update={"corpus_dir": Path(args.corpus)})
    return s


def _progress_bar(total: int, desc: str):
    from tqdm import tqdm

    bar = tqdm(total=total, desc=desc, unit="passage", file=sys.stderr, leave=False,
               disable=not sys.stderr.isatty() and total < 1)
    return bar


def _load_assistant(settings: Settings):
    from bot.assistant import Assistant
    from bot.logging import configure

    configure(settings.log_level, settings.log_json)
    return Assistant.load(settings)


def _print(obj) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False) + "\n")
    sys.stdout.flush()


# -- ask -----------------------------------------------------------------------------------------------
def cmd_ask(args) -> int:
    settings = _settings(args)
    assistant = _load_assistant(settings)
    if args.jsonl:
        for lineno, line in enumerate(sys.stdin, 1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
                if not isinstance(item, dict) or not isinstance(item.get("text"), str):
                    raise ValueError('each line must be an object with a string "text"')
            except (ValueError, json.JSONDecodeError) as exc:
                _print({"id": None, "line": lineno, "error": f"bad input line: {exc}"})
                continue
            try:
                _print(assistant.ask(item["text"], previous_language=item.get("language"), id=item.get("id")))
            except Exception as exc:  # noqa: BLE001 - one bad line must not stop the batch
                _print({"id": item.get("id"), "line": lineno, "error": f"could not process: {type(exc).__name__}"})
        return 0
    text = " ".join(args.text) if args.text else ""
    result = assistant.ask(text)
    if args.json:
        _print(result)
    else:
        sys.stdout.write(result["answer"] + "\n")
    return 0


# -- serve -----------------------------------------------------------------------------------------------
def cmd_serve(args) -> int:
    from aiohttp import web

    from bot.web.app import create_app

    settings = _settings(args)
    host = args.host or settings.host
    port = args.port or settings.port
    assistant = _load_assistant(settings)
    web.run_app(create_app(settings, assistant), host=host, port=port, print=lambda m: print(m, file=sys.stderr))
    return 0


def cmd_config(args) -> int:
    settings = _settings(args)
    for k, v in settings.public_dict().items():
        print(f"ESTU_{k.upper()}={'' if v is None else v}")
    return 0


# -- kb ----------------------------------------------------------------------------------------------------
def cmd_kb_validate(args) -> int:
    from knowledge.validate import validate_corpus

    settings = _settings(args)
    report = validate_corpus(settings, self_test=not args.no_self_test)
    for issue in report.issues:
        print(f"{issue.level.upper():7} {issue.code:22} {issue.where}: {issue.message}")
    errors = sum(1 for i in report.issues if i.level == "error")
    warnings = sum(1 for i in report.issues if i.level == "warning")
    print(f"{report.entries} entries checked: {errors} error(s), {warnings} warning(s)"
          + (f"; self-test top-1 {report.self_test_top1:.3f}" if report.self_test_top1 is not None else ""))
    return 1 if errors else 0


def cmd_kb_build(args) -> int:
    from bot.assistant import ensure_index, ensure_nlu
    from knowledge.corpus import load_corpus
    from knowledge.embeddings import make_embedder
    from knowledge.index import passages_from_corpus

    settings = _settings(args)
    corpus = load_corpus(settings.corpus_dir)
    if corpus.errors:
        for e in corpus.errors:
            print(f"ERROR {e}", file=sys.stderr)
        print("fix the corpus errors above (estu kb validate) before building", file=sys.stderr)
        return 1
    embedder = make_embedder(settings.embedder, settings.embedder_model, settings.embedder_threads)
    from tqdm import tqdm

    total = len(passages_from_corpus(corpus))
    with tqdm(total=total, desc="embedding passages", unit="passage", file=sys.stderr) as bar:
        index = ensure_index(settings, corpus, embedder, progress=bar.update, force=args.force)
    print(f"index: {index.meta.passages} passages, {index.meta.entries} entries, {index.meta.dense_kind} faiss, "
          f"corpus {index.meta.corpus_version}, embedder {index.meta.embedder}, built in "
          f"{index.meta.build_seconds}s -> {settings.index_dir}")
    cal = index.meta.calibration
    if cal.get("self_top1") is not None:
        print(f"calibration: {cal.get('samples')} leave-one-out phrasings, self top-1 {cal['self_top1']}; "
              f"fusion {cal.get('fusion')}")
    models = ensure_nlu(settings, embedder, force=args.force)
    if models:
        print(f"nlu: intents {models.counts['intents']}")
    return 0


def cmd_kb_stats(args) -> int:
    from knowledge.corpus import load_corpus

    settings = _settings(args)
    corpus = load_corpus(settings.corpus_dir)
    counts = corpus.counts()
    print(f"{'kind':10} {'total':>6} {'kk':>6} {'ru':>6} {'kk phrasings':>13} {'ru phrasings':>13}")
    for kind in ("channel", "agency", "faq", "service"):
        row = counts.get(kind, {"total": 0, "kk": 0, "ru": 0})
        entries = [e for e in corpus.entries if e.kind == kind]
        pk = sum(len(e.kk.questions) for e in entries if e.kk)
        pr = sum(len(e.ru.questions) for e in entries if e.ru)
        print(f"{kind:10} {row['total']:>6} {row['kk']:>6} {row['ru']:>6} {pk:>13} {pr:>13}")
    print(f"{'all':10} {len(corpus.entries):>6} {corpus.language_counts()['kk']:>6} "
          f"{corpus.language_counts()['ru']:>6}")
    print(f"corpus version {corpus.version}; {len(corpus.routing.get('rules', []))} routing rules; "
          f"{len(corpus.errors)} load error(s)")
    return 0


def cmd_nlu_train(args) -> int:
    from bot.assistant import ensure_nlu
    from knowledge.embeddings import make_embedder

    settings = _settings(args)
    embedder = make_embedder(settings.embedder, settings.embedder_model, settings.embedder_threads)
    models = ensure_nlu(settings, embedder, force=True)
    if models is None:
        print(f"no training data in {settings.nlu_data_dir}", file=sys.stderr)
        return 1
    print(f"trained on {models.counts}; saved to {settings.index_dir / 'nlu.joblib'}")
    return 0


def cmd_eval(args) -> int:
    from bot.evaluate import run_eval

    settings = _settings(args)
    assistant = _load_assistant(settings)
    report = run_eval(assistant, Path(args.path), markdown=args.markdown)
    print(report)
    return 0


def cmd_bench(args) -> int:
    from bot.bench import run_bench

    settings = _settings(args)
    print(run_bench(settings, sizes=[int(s) for s in args.sizes.split(",") if s], queries=args.queries))
    return 0


# -- conversations, database, appeals ------------------------------------------------------------------
def _run(coro):
    import asyncio

    return asyncio.run(coro)


def cmd_chat(args) -> int:
    """A conversation in the terminal against the same engine and database."""
    import getpass

    from bot.dialogue.setup import build_runtime
    from bot.messages import Incoming

    settings = _settings(args)
    assistant = _load_assistant(settings)

    async def main() -> None:
        rt = await build_runtime(settings, assistant)
        user = args.user or getpass.getuser()
        buttons: list = []
        print("Estu — /help, /lang, /status, /cancel; a number presses a button; Ctrl-D to quit.")
        try:
            first = True
            while True:
                if first:
                    msg = Incoming(user_id=user, channel="cli", text="/start")
                    first = False
                else:
                    try:
                        line = input("> ")
                    except EOFError:
                        break
                    if line.strip().isdigit() and 0 < int(line) <= len(buttons):
                        msg = Incoming(user_id=user, channel="cli", button=buttons[int(line) - 1].id)
                    else:
                        msg = Incoming(user_id=user, channel="cli", text=line)
                replies = await rt.engine.handle(msg)
                await rt.worker.run_once()
                replies += await rt.engine.pending_notifications("cli", user)
                buttons = []
                for r in replies:
                    print(r.text)
                    for b in r.buttons:
                        buttons.append(b)
                        print(f"  [{len(buttons)}] {b.label}")
        finally:
            await rt.close()

    _run(main())
    return 0


def cmd_db_upgrade(args) -> int:
    from bot.storage.db import upgrade

    settings = _settings(args)
    upgrade(settings.db_url)
    print(f"database at revision head ({settings.public_dict().get('database_url') or 'SQLite in the data dir'})")
    return 0


def _iso_date(value: str):
    """An argparse type: a YYYY-MM-DD date, or a clear usage error."""
    import datetime as dt

    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date; use YYYY-MM-DD") from None


def cmd_appeals(args) -> int:
    from sqlalchemy import select

    from bot.intake import registry
    from bot.intake.connectors import OutboxWorker
    from bot.storage.db import make_engine, sessionmaker, upgrade
    from bot.storage.models import Appeal

    settings = _settings(args)
    upgrade(settings.db_url)

    async def main() -> int:
        db = make_engine(settings.db_url)
        sessions = sessionmaker(db)
        try:
            async with sessions() as session, session.begin():
                if args.appeals_cmd == "list":
                    q = select(Appeal).order_by(Appeal.id.desc()).limit(args.limit)
                    if args.status:
                        q = q.where(Appeal.status == args.status)
                    for a in (await session.execute(q)).scalars():
                        print(f"{a.number}  {a.status:11} {a.appeal_type:9} due {a.due_date}  {a.addressee}")
                    return 0
                appeal = (await session.execute(select(Appeal).where(Appeal.number == args.number))).scalar_one_or_none()
                if appeal is None:
                    print(f"no appeal {args.number}", file=sys.stderr)
                    return 1
                if args.appeals_cmd == "show":
                    from nlu.pii import mask

                    print(json.dumps({
                        "number": appeal.number, "status": appeal.status, "type": appeal.appeal_type,
                        "addressee": appeal.addressee, "due_date": appeal.due_date.isoformat(),
                        "applicant": f"{appeal.surname} {appeal.name}", "iin": mask(appeal.iin),
                        "channel": appeal.channel, "text": appeal.text,
                        "events": [{"at": e.created_at.isoformat(), "status": e.status, "actor": e.actor,
                                    "note": e.note} for e in appeal.events]}, ensure_ascii=False, indent=2))
                    return 0
                try:
                    await registry.set_status(session, appeal, args.status, actor=args.actor, note=args.note,
                                              new_due_date=args.new_date, redirected_to=args.to, on=args.on)
                except registry.TransitionError as exc:
                    print(f"estu: {exc}", file=sys.stderr)
                    return 1
                print(f"{appeal.number}: {appeal.status}; the citizen will be notified")
            await OutboxWorker(sessions).run_once()  # pull channels get it now; push channels via serve
            return 0
        finally:
            await db.dispose()

    return _run(main())


def cmd_users(args) -> int:
    """``estu users add|list|set-role|disable|enable|reset-password|unlock`` (staff console accounts)."""
    from bot.web.console.cli import run_cli

    return run_cli(_settings(args), args)


def cmd_outbox_run(args) -> int:
    from bot.dialogue.setup import build_runtime

    settings = _settings(args)
    assistant = _load_assistant(settings)

    async def main() -> int:
        rt = await build_runtime(settings, assistant)
        try:
            n = await rt.worker.run_once()
            print(f"delivered {n}")
        finally:
            await rt.close()
        return 0

    return _run(main())


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="estu", description="Estu — bilingual (kk/ru) citizen assistant")
    p.add_argument("--data-dir", help="index, caches and database (default: ESTU_DATA_DIR or ./var)")
    p.add_argument("--corpus", help="knowledge-base directory (default: the shipped corpus)")
    sub = p.add_subparsers(dest="command", required=True)

    a = sub.add_parser("ask", help="answer one message (or JSON lines from stdin with --jsonl)")
    a.add_argument("text", nargs="*")
    a.add_argument("--json", action="store_true", help="print one JSON object")
    a.add_argument("--jsonl", action="store_true", help='read {"id","text"} lines from stdin, write one per line')
    a.set_defaults(func=cmd_ask)

    s = sub.add_parser("serve", help="start the HTTP server")
    s.add_argument("--host")
    s.add_argument("--port", type=int)
    s.set_defaults(func=cmd_serve)

    c = sub.add_parser("config", help="print the effective settings (secrets hidden)")
    c.set_defaults(func=cmd_config)

    kb = sub.add_parser("kb", help="knowledge base: validate, build, stats").add_subparsers(dest="kb_cmd",
                                                                                           required=True)
    v = kb.add_parser("validate", help="check the corpus; non-zero exit on errors")
    v.add_argument("--no-self-test", action="store_true", help="skip the self-retrieval test (no embedder needed)")
    v.set_defaults(func=cmd_kb_validate)
    b = kb.add_parser("build", help="build the retrieval index (and train the NLU)")
    b.add_argument("--force", action="store_true", help="rebuild even if up to date")
    b.set_defaults(func=cmd_kb_build)
    kb.add_parser("stats", help="entries per kind and language").set_defaults(func=cmd_kb_stats)
    from bot.editorial.cli import add_commands as add_editorial_commands  # export, import, stale

    add_editorial_commands(kb)

    n = sub.add_parser("nlu", help="NLU models").add_subparsers(dest="nlu_cmd", required=True)
    n.add_parser("train", help="retrain the intent and appeal-type classifiers").set_defaults(func=cmd_nlu_train)

    e = sub.add_parser("eval", help="accuracy on the labelled evaluation set")
    e.add_argument("--path", default=str(Path(__file__).resolve().parent.parent / "tests" / "eval"))
    e.add_argument("--markdown", action="store_true", help="print Markdown tables")
    e.set_defaults(func=cmd_eval)

    ch = sub.add_parser("chat", help="talk to Estu in the terminal (same engine and database)")
    ch.add_argument("--user", help="your identity in the cli channel (default: your login name)")
    ch.set_defaults(func=cmd_chat)

    db = sub.add_parser("db", help="database").add_subparsers(dest="db_cmd", required=True)
    db.add_parser("upgrade", help="apply Alembic migrations").set_defaults(func=cmd_db_upgrade)

    ap = sub.add_parser("appeals", help="staff: list, show, set-status").add_subparsers(dest="appeals_cmd",
                                                                                        required=True)
    al = ap.add_parser("list")
    al.add_argument("--status")
    al.add_argument("--limit", type=int, default=50)
    al.set_defaults(func=cmd_appeals)
    ash = ap.add_parser("show")
    ash.add_argument("number")
    ash.set_defaults(func=cmd_appeals)
    ss = ap.add_parser("set-status", help="change status (the citizen is notified)")
    ss.add_argument("number")
    ss.add_argument("status", help="sent | in_progress | answered | closed | extended | redirected | rejected")
    ss.add_argument("--note", help="answer text, reason of extension or rejection")
    ss.add_argument("--new-date", type=_iso_date, help="extended: the new deadline, YYYY-MM-DD")
    ss.add_argument("--to", help="redirected: the body it went to")
    ss.add_argument("--on", type=_iso_date, help="extended: the day of the decision; redirected: the day the body "
                    "received it (YYYY-MM-DD, default today); a redirection starts the term anew (APPC Art. 76)")
    ss.add_argument("--actor", default="staff")
    ss.set_defaults(func=cmd_appeals)

    ob = sub.add_parser("outbox", help="deliver queued notifications and intake posts").add_subparsers(
        dest="outbox_cmd", required=True)
    ob.add_parser("run", help="one delivery round").set_defaults(func=cmd_outbox_run)

    from bot.web.console.cli import add_arguments as add_users_arguments

    us = sub.add_parser("users", help="staff console accounts: add, list, set-role, disable …")
    us.set_defaults(func=cmd_users)
    add_users_arguments(us.add_subparsers(dest="users_cmd", required=True))

    bn = sub.add_parser("bench", help="latency and index build time (shipped + synthetic corpora)")
    bn.add_argument("--sizes", default="10000,100000", help="synthetic corpus sizes in passages")
    bn.add_argument("--queries", type=int, default=200)
    bn.set_defaults(func=cmd_bench)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except RuntimeError as exc:
        print(f"estu: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

"""``estu kb export | import | stale`` (registered by ``bot/cli.py`` through :func:`add_commands`)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path


def _settings(args):
    from bot.cli import _settings as settings_of

    return settings_of(args)


async def _with_session(settings, fn):
    from bot.storage.db import make_engine, sessionmaker

    engine = make_engine(settings.db_url)
    try:
        async with sessionmaker(engine)() as s, s.begin():
            return await fn(s)
    finally:
        await engine.dispose()


async def live_data(settings) -> tuple[dict, str]:
    """The live version's data from the database (seeding version 1 on first use), and its label."""
    from bot.editorial import versions
    from bot.storage.db import upgrade_async

    Path(settings.data_dir).mkdir(parents=True, exist_ok=True)  # the default SQLite database lives there
    await upgrade_async(settings.db_url)

    async def fn(s):
        row = await versions.ensure_seeded(s, settings.corpus_dir)
        return row.data, f"version {row.number}"

    return await _with_session(settings, fn)


def cmd_export(args) -> int:
    from bot.editorial import transfer

    settings = _settings(args)
    data, label = asyncio.run(live_data(settings))
    written = transfer.export_yaml(data, Path(args.dir))
    print(f"{label}: {len(written)} file(s) written to {args.dir}")
    if args.csv:
        Path(args.csv).write_text(transfer.export_csv(data), encoding="utf-8")
        print(f"{label}: CSV written to {args.csv}")
    return 0


def cmd_import(args) -> int:
    from bot.editorial import transfer, versions

    settings = _settings(args)
    if bool(args.dir) == bool(args.csv):
        print("give a directory or --csv FILE (one of them)", file=sys.stderr)
        return 2
    current, _ = asyncio.run(live_data(settings))
    if args.csv:
        try:
            text = Path(args.csv).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            print(f"cannot read {args.csv}: {exc}", file=sys.stderr)
            return 1
        data, errors = transfer.import_csv(text, current.get("routing"))
    else:
        data, errors = transfer.import_yaml(Path(args.dir))
    for e in errors:
        print(f"ERROR   {e}", file=sys.stderr)
    if errors:
        return 1
    if not data["entries"]:
        print("nothing to import: no entries found", file=sys.stderr)
        return 1

    async def fn(s):
        return await versions.publish_data(s, data, settings, args.author, args.comment or "Import",
                                           self_test=not args.no_self_test, keep_draft=True)

    row, problems = asyncio.run(_with_session(settings, fn))
    for p in problems:
        where = " ".join(x for x in (p.entry, p.language, p.field) if x)
        print(f"{p.level.upper():7} {p.code:22} {where}: {p.message}", file=sys.stderr if row is None else sys.stdout)
    if row is None:
        print("not imported: fix the errors above", file=sys.stderr)
        return 1
    print(f"imported {len(data['entries'])} entries as version {row.number} (live; a running server on this "
          f"database serves it within ESTU_KB_FOLLOW_SECONDS, {settings.kb_follow_seconds:g} s)")
    return 0


def cmd_stale(args) -> int:
    from bot.editorial.review import stale_entries

    settings = _settings(args)
    days = args.days or settings.review_max_age_days
    data, label = asyncio.run(live_data(settings))
    rows = stale_entries(data, days)
    for r in rows:
        age = f"{r['age_days']} days" if r["age_days"] is not None else "no valid date"
        print(f"{r['id']:40} reviewed {r['reviewed'] or '-':10}  ({age})")
    print(f"{label}: {len(rows)} entr{'y' if len(rows) == 1 else 'ies'} reviewed more than {days} days ago")
    return 1 if rows and args.fail else 0


def add_commands(kb) -> None:
    e = kb.add_parser("export", help="write the live knowledge base as YAML (and CSV)")
    e.add_argument("dir", help="directory for the YAML files (the seed's layout)")
    e.add_argument("--csv", help="also write a CSV file (one row per entry and language)")
    e.set_defaults(func=cmd_export)
    i = kb.add_parser("import", help="check YAML files or a CSV and publish them as a new version")
    i.add_argument("dir", nargs="?", help="directory of YAML files (the seed's layout)")
    i.add_argument("--csv", help="a CSV file as written by `estu kb export --csv`")
    i.add_argument("--comment", default="", help="the version's comment")
    i.add_argument("--author", default="cli", help="the version's author (default: cli)")
    i.add_argument("--no-self-test", action="store_true", help="skip the self-retrieval test")
    i.set_defaults(func=cmd_import)
    s = kb.add_parser("stale", help="entries whose review is older than ESTU_REVIEW_MAX_AGE_DAYS")
    s.add_argument("--days", type=int, help="override the maximum age in days")
    s.add_argument("--fail", action="store_true", help="exit 1 when there are stale entries")
    s.set_defaults(func=cmd_stale)

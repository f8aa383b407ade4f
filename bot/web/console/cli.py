"""``estu users …``: staff accounts from the command line (wired into ``bot/cli.py``).

Kept free of heavy imports at module level: ``bot/cli.py`` builds its parser on every ``estu`` run.
"""

from __future__ import annotations

import getpass
import sys

ROLES_HELP = "operator | editor | admin"


def read_password(args, stdin=None) -> str:
    """``--password-stdin``: the first line of stdin; otherwise prompt twice (no echo)."""
    from bot.web.console.users import UserError

    if getattr(args, "password_stdin", False):
        line = (stdin or sys.stdin).readline()
        return line[:-1] if line.endswith("\n") else line
    first = getpass.getpass("Password: ")
    second = getpass.getpass("Repeat the password: ")
    if first != second:
        raise UserError("The two passwords differ.")
    return first


def _cli_actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:  # noqa: BLE001 - no login name in some containers
        return "cli"


def run_cli(settings, args, stdin=None) -> int:
    """``estu users add|list|set-role|disable|enable|reset-password|unlock``; every change is audited
    with the actor ``cli:<login name>``."""
    import asyncio

    from sqlalchemy import select

    from bot.storage.db import make_engine, sessionmaker, upgrade
    from bot.storage.staff import StaffUser
    from bot.web.console.audit import audit
    from bot.web.console.users import (UserError, check_password, check_role, create_user, get_user,
                                       normalize_username, set_active, set_password, set_role, unlock)

    cmd = args.users_cmd
    password = None
    try:
        if cmd in ("add", "set-role"):
            check_role(args.role)
        if cmd in ("add", "reset-password"):
            password = read_password(args, stdin)
            check_password(password, normalize_username(args.name))
    except UserError as exc:
        print(f"estu: {exc}", file=sys.stderr)
        return 1
    upgrade(settings.db_url)

    async def main() -> int:
        db = make_engine(settings.db_url)
        try:
            async with sessionmaker(db)() as s, s.begin():
                actor = _cli_actor()
                if cmd == "list":
                    rows = (await s.execute(select(StaffUser).order_by(StaffUser.username))).scalars().all()
                    if not rows:
                        print("no staff users yet; create the first admin: estu users add NAME --role admin")
                    for u in rows:
                        state = "active" if u.active else "disabled"
                        print(f"{u.username:24} {u.role:9} {state:9} {u.agency or '-':14} {u.display_name}")
                    return 0
                if cmd == "add":
                    user = await create_user(s, args.name, password, args.role, display_name=args.display_name or "",
                                             agency=args.agency, queue=args.queue)
                    await audit(s, actor, "user.create", "staff_user", user.id,
                                {"username": user.username, "role": user.role, "agency": user.agency})
                    print(f"created {user.username} ({user.role})")
                    return 0
                user = await get_user(s, args.name)
                if user is None:
                    print(f"estu: no staff user {args.name}", file=sys.stderr)
                    return 1
                if cmd == "set-role":
                    old = user.role
                    await set_role(s, user, args.role)
                    await audit(s, actor, "user.role", "staff_user", user.id, {"from": old, "to": args.role})
                    print(f"{user.username}: {old} -> {user.role}")
                elif cmd in ("disable", "enable"):
                    await set_active(s, user, cmd == "enable")
                    await audit(s, actor, f"user.{cmd}", "staff_user", user.id, {"username": user.username})
                    print(f"{user.username}: {'active' if user.active else 'disabled'}")
                elif cmd == "reset-password":
                    await set_password(s, user, password)
                    await audit(s, actor, "user.password_reset", "staff_user", user.id, {"username": user.username})
                    print(f"{user.username}: password changed; their sessions were ended")
                elif cmd == "unlock":
                    await unlock(s, user)
                    await audit(s, actor, "user.unlock", "staff_user", user.id, {"username": user.username})
                    print(f"{user.username}: unlocked")
                return 0
        except UserError as exc:
            print(f"estu: {exc}", file=sys.stderr)
            return 1
        finally:
            await db.dispose()

    return asyncio.run(main())


def add_arguments(users_sub) -> None:
    """The ``estu users`` sub-commands, added to ``users_sub`` (an argparse sub-parsers object)."""
    add = users_sub.add_parser("add", help="create a staff user (prompts for the password twice)")
    add.add_argument("name", help="user name: Latin letters, digits, . _ @ -")
    add.add_argument("--role", required=True, help=ROLES_HELP)
    add.add_argument("--agency", help="agency id (optional)")
    add.add_argument("--queue", help="operator queue (optional)")
    add.add_argument("--display-name", help="name shown in the console")
    add.add_argument("--password-stdin", action="store_true", help="read the password from the first line of stdin")
    users_sub.add_parser("list", help="list staff users")
    sr = users_sub.add_parser("set-role", help="change a user's role")
    sr.add_argument("name")
    sr.add_argument("role", help=ROLES_HELP)
    for verb, text in (("disable", "disable a user (ends their sessions)"), ("enable", "enable a user again"),
                       ("unlock", "lift a lock-out after failed logins")):
        users_sub.add_parser(verb, help=text).add_argument("name")
    rp = users_sub.add_parser("reset-password", help="set a new password (ends the user's sessions)")
    rp.add_argument("name")
    rp.add_argument("--password-stdin", action="store_true", help="read the password from the first line of stdin")

"""Staff accounts: argon2 passwords, creation and changes (shared by the admin pages and ``estu users``).

There is no default user and no default password: the first admin is created with
``estu users add NAME --role admin`` (docs/console.md).
"""

from __future__ import annotations

import asyncio
import re

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.storage.staff import ROLES, StaffSession, StaffUser

USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9._@-]{1,63}$")
MIN_PASSWORD = 10
MAX_PASSWORD = 256

_hasher = PasswordHasher()  # argon2id, library defaults (RFC 9106 low-memory profile)
_dummy_hash: str | None = None


class UserError(ValueError):
    """A refused change. ``msgid`` is an English console.po msgid, ``kwargs`` its parameters."""

    def __init__(self, msgid: str, **kwargs) -> None:
        super().__init__(msgid.format(**kwargs) if kwargs else msgid)
        self.msgid = msgid
        self.kwargs = kwargs


# -- passwords ---------------------------------------------------------------------------------------------
def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """Constant work whether or not the hash exists (an unknown user costs the same as a wrong password)."""
    global _dummy_hash
    if not password_hash:
        if _dummy_hash is None:
            _dummy_hash = _hasher.hash("estu-no-such-user")
        password_hash, password = _dummy_hash, password + "\x00"
        try:
            _hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            pass
        return False
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    try:
        return _hasher.check_needs_rehash(password_hash)
    except InvalidHashError:
        return True


def check_password(password: str, username: str = "") -> None:
    if not isinstance(password, str) or len(password) < MIN_PASSWORD:
        raise UserError("The password must be at least {n} characters long.", n=MIN_PASSWORD)
    if len(password) > MAX_PASSWORD:
        raise UserError("The password must be at most {n} characters long.", n=MAX_PASSWORD)
    if username and password.strip().lower() == username.lower():
        raise UserError("The password must not be the user name.")


def normalize_username(username: str) -> str:
    return (username or "").strip().lower()


def check_username(username: str) -> str:
    name = normalize_username(username)
    if not USERNAME_RE.match(name):
        raise UserError("A user name is 2–64 characters: Latin letters, digits and . _ @ - .")
    return name


def check_role(role: str) -> str:
    if role not in ROLES:
        raise UserError("Unknown role {role}.", role=role)
    return role


# -- accounts ------------------------------------------------------------------------------------------------
async def get_user(session: AsyncSession, username: str) -> StaffUser | None:
    return (await session.execute(select(StaffUser).where(StaffUser.username == normalize_username(username)))
            ).scalar_one_or_none()


async def create_user(session: AsyncSession, username: str, password: str, role: str, *, display_name: str = "",
                      agency: str | None = None, queue: str | None = None) -> StaffUser:
    name = check_username(username)
    check_role(role)
    check_password(password, name)
    if await get_user(session, name) is not None:
        raise UserError("A user with this name already exists.")
    user = StaffUser(username=name, display_name=(display_name or "").strip()[:120],
                     password_hash=await asyncio.to_thread(hash_password, password), role=role,
                     agency=(agency or "").strip()[:32] or None, queue=(queue or "").strip()[:64] or None,
                     active=True, failed_logins=0)
    session.add(user)
    await session.flush()
    return user


async def active_admins(session: AsyncSession) -> int:
    return (await session.execute(select(func.count()).select_from(StaffUser)
                                  .where(StaffUser.role == "admin", StaffUser.active.is_(True)))).scalar_one()


async def _guard_last_admin(session: AsyncSession, user: StaffUser) -> None:
    if user.role == "admin" and user.active and await active_admins(session) <= 1:
        raise UserError("This is the last active administrator; make someone else an administrator first.")


async def set_role(session: AsyncSession, user: StaffUser, role: str) -> None:
    check_role(role)
    if role != user.role:
        await _guard_last_admin(session, user)
    user.role = role


async def end_sessions(session: AsyncSession, user: StaffUser) -> None:
    await session.execute(delete(StaffSession).where(StaffSession.user_id == user.id))


async def set_active(session: AsyncSession, user: StaffUser, active: bool) -> None:
    """Disabling ends the user's sessions at once; enabling also lifts a lock-out."""
    if not active:
        await _guard_last_admin(session, user)
        await end_sessions(session, user)
    else:
        user.failed_logins, user.locked_until = 0, None
    user.active = active


async def set_password(session: AsyncSession, user: StaffUser, password: str) -> None:
    """A new password ends every session of the user and lifts a lock-out."""
    check_password(password, user.username)
    user.password_hash = await asyncio.to_thread(hash_password, password)
    user.failed_logins, user.locked_until = 0, None
    await end_sessions(session, user)


async def unlock(session: AsyncSession, user: StaffUser) -> None:
    user.failed_logins, user.locked_until = 0, None

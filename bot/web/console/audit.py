"""The audit log: every console action writes one row, in the same transaction as the change.

    from bot.web.console.audit import audit, audit_request
    async with sessions(request)() as s, s.begin():
        appeal.status = "in_progress"
        await audit_request(request, s, "appeal.status", "appeal", appeal.number, {"from": old, "to": new})

``detail`` is cleaned before it is stored: values under keys that look secret (password, token,
secret, csrf, hash) become ``"********"``, every string is PII-masked (``nlu.pii.mask``: IIN/BIN, card
numbers, phones, e-mails) and cut to 500 characters.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from bot.storage.staff import AuditLog, StaffUser
from nlu.pii import mask

SECRET_KEYS = ("password", "token", "secret", "csrf", "hash")
MAX_STRING = 500


def clean_detail(value: Any, _depth: int = 0) -> Any:
    """JSON-safe, secret-free, PII-masked copy of ``value``."""
    if _depth > 6:
        return "…"
    if isinstance(value, dict):
        return {str(k): ("********" if any(s in str(k).lower() for s in SECRET_KEYS) else
                         clean_detail(v, _depth + 1)) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [clean_detail(v, _depth + 1) for v in value]
    if value is None or isinstance(value, (bool, int, float)):
        return value
    text = mask(str(value))
    return text if len(text) <= MAX_STRING else text[:MAX_STRING] + "…"


async def audit(session: AsyncSession, actor: StaffUser | str | None, action: str, record_type: str | None = None,
          record_id: str | int | None = None, detail: dict | None = None, *, ip: str | None = None) -> AuditLog:
    """Add an audit row to ``session`` (committed with the caller's transaction).

    ``actor``: the StaffUser, or a string ("cli:alice"), or None (unknown, e.g. a failed login);
    ``action``: dotted verb such as ``login``, ``user.create``, ``canned.update``, ``appeal.status``;
    ``record_type``/``record_id``: what was touched (``"staff_user"``, 7)."""
    if isinstance(actor, StaffUser):
        actor_id, actor_name = actor.id, actor.username
    else:
        actor_id, actor_name = None, (actor or "-")
    row = AuditLog(actor_id=actor_id, actor=actor_name[:120], action=action[:64],
                   record_type=record_type[:40] if record_type else None,
                   record_id=str(record_id)[:64] if record_id is not None else None,
                   detail=clean_detail(detail or {}), ip=ip[:64] if ip else None)
    session.add(row)
    return row


async def audit_request(request: web.Request, session: AsyncSession, action: str, record_type: str | None = None,
                  record_id: str | int | None = None, detail: dict | None = None) -> AuditLog:
    """:func:`audit` with the logged-in user as actor and the client's address."""
    from bot.web.console.core import USER, client_ip

    return await audit(session, request.get(USER), action, record_type, record_id, detail, ip=client_ip(request))

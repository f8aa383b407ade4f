"""WhatsApp Cloud API ↔ neutral messages.

* The webhook (``webhook.py``) checks the ``X-Hub-Signature-256`` HMAC of the raw body, answers 200 at
  once and hands the payload to :meth:`WhatsAppAdapter.accept`, which processes it in a background task
  (the tasks are kept, errors are logged masked, :meth:`drain` waits for them).
* Each message id is processed once (``bot/channels/dedup.py``); messages of one user are processed one
  at a time, in order (a lock per user), so the conversation state and the remembered options never race.
* Replies are rendered by ``render.py`` (text, reply buttons, lists, numbered options) and sent through
  ``POST /{version}/{phone_number_id}/messages``, paced by ``bot/channels/ratelimit.py`` and retried on
  throttling (429, 130429, 131056, 80007, 4; ``Retry-After`` honoured), 5xx and network errors.
* The 24-hour customer-service window: the time of the citizen's last message is kept in the user's
  ``profile["whatsapp"]["last_inbound"]``. Inside the window messages are free-form; outside it (an
  appeal status change or an operator reply after a day) the approved notification template is sent
  with the text as its body parameter, in the user's language (kk / ru).
* Numbered options: when options had to be written as ``1. …`` lines, their ids are kept in
  ``profile["whatsapp"]["options"]`` (replaced by every later answer), and a bare "2" from the citizen
  becomes a press of the second option.
* Delivery statuses (sent / delivered / read / failed) are logged masked. A ``failed`` one is written
  into the conversation's transcript (``payload.system = "whatsapp_failed"``, visible to operators in
  the console); if the failed message was a notification (the last ten are remembered in the profile),
  it is queued once more in the outbox, which sends it again — as a template if the window has closed
  (error 131047 closes it at once).
* A reply that cannot be sent after the retries is queued in the outbox when the error is temporary
  (throttling, 5xx, network), or recorded in the transcript when it is not (a 400), so nothing is lost
  silently.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import time
import uuid
from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from bot.channels.dedup import DatabaseDeduplicator
from bot.channels.ratelimit import RateLimiter, send_with_retries
from bot.channels.whatsapp.graph import GraphClient, whatsapp_retry_delay
from bot.channels.whatsapp.render import CHANNEL, numbered_choice, render, reply_text, template, to_incoming
from bot.logging import get_logger
from bot.messages import Button, Reply
from bot.operators.delivery import language_of
from bot.storage.models import Conversation, Message, Outbox, User
from nlu.pii import mask

log = get_logger("estu.whatsapp")
PROFILE_KEY = "whatsapp"
RECENT_NOTIFICATIONS = 10
REENGAGEMENT = 131047  # "more than 24 hours have passed since the recipient last replied"
# failures a second attempt cannot fix: undeliverable, unsupported, recipient is the sender, media,
# template problems, the user stopped marketing messages / ecosystem limit
PERMANENT_FAILURES = frozenset({131021, 131026, 131049, 131050, 131051, 131052, 131053, 132000, 132001,
                                132005, 132007, 132012, 132015, 132016, 132068, 132069})


def hid(value: str | None) -> str:
    """A short, stable stand-in for a phone number or message id in logs (a message id encodes the phone)."""
    return hashlib.sha256((value or "").encode()).hexdigest()[:12] if value else "-"


class SendFailed(Exception):
    def __init__(self, index: int, error: BaseException) -> None:
        super().__init__(str(error))
        self.index = index  # which reply of the batch failed (the earlier ones were delivered)
        self.error = error


class WhatsAppAdapter:
    def __init__(self, runtime, *, token: str, phone_number_id: str, app_secret: str, verify_token: str,
                 api_url: str = "https://graph.facebook.com", api_version: str = "v23.0",
                 template_name: str = "appeal_status_update", template_languages: dict[str, str] | None = None,
                 window_hours: float = 24.0, dedup=None, limiter=None, retries: int = 4,
                 clock: Callable[[], float] = time.time) -> None:
        self.runtime = runtime
        self.phone_number_id = str(phone_number_id)
        self.graph = GraphClient(token, self.phone_number_id, api_url, api_version)
        self._app_secret = app_secret.encode()
        self._verify_token = verify_token
        self.template_name = template_name
        self.template_languages = {"kk": "kk", "ru": "ru", **(template_languages or {})}
        self.window_seconds = window_hours * 3600
        self.dedup = dedup or DatabaseDeduplicator(runtime.sessions)
        self.limiter = limiter or RateLimiter(80.0, 1 / 6, per_chat_burst=5)
        self.retries = retries
        self.clock = clock
        self._tasks: set[asyncio.Task] = set()
        self._locks: dict[str, list] = {}

    @classmethod
    def from_settings(cls, runtime, settings) -> "WhatsAppAdapter":
        from bot.channels.dedup import make_deduplicator
        from bot.channels.ratelimit import make_limiter

        limiter = make_limiter(settings.redis_url, "estu:rl:whatsapp", settings.whatsapp_rate_overall,
                               settings.whatsapp_rate_per_chat, per_chat_burst=settings.whatsapp_burst_per_chat)
        return cls(runtime, token=settings.whatsapp_token.get_secret_value(),
                   phone_number_id=settings.whatsapp_phone_number_id,
                   app_secret=settings.whatsapp_app_secret.get_secret_value(),
                   verify_token=settings.whatsapp_verify_token.get_secret_value(),
                   api_url=settings.whatsapp_api_url, api_version=settings.whatsapp_api_version,
                   template_name=settings.whatsapp_template_notification,
                   template_languages={"kk": settings.whatsapp_template_language_kk,
                                       "ru": settings.whatsapp_template_language_ru},
                   window_hours=settings.whatsapp_window_hours,
                   dedup=make_deduplicator(settings, runtime.sessions), limiter=limiter,
                   retries=settings.send_retries)

    # -- the webhook side ----------------------------------------------------------------------
    def verify_challenge(self, query) -> str | None:
        """The ``hub.challenge`` to echo when Meta's verification request carries our verify token."""
        token = query.get("hub.verify_token") or ""
        if query.get("hub.mode") != "subscribe" or not token:
            return None
        if not hmac.compare_digest(token.encode(), self._verify_token.encode()):
            return None
        return query.get("hub.challenge")

    def signature_ok(self, raw: bytes, header: str | None) -> bool:
        """``X-Hub-Signature-256: sha256=<hex>`` is the HMAC-SHA256 of the raw body with the app secret."""
        if not header or not header.startswith("sha256="):
            return False
        expected = hmac.new(self._app_secret, raw, hashlib.sha256).hexdigest()
        given = header[len("sha256="):].strip().lower().encode("utf-8", "replace")
        return hmac.compare_digest(expected.encode(), given)

    def accept(self, body: dict) -> None:
        """Process a verified webhook payload in the background (the webhook has answered already)."""
        task = asyncio.create_task(self.process(body))
        self._tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            log.error("whatsapp_webhook_failed", error=f"{type(exc).__name__}: {mask(str(exc))}")

    async def drain(self) -> None:
        """Wait until every webhook payload received so far has been processed."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def process(self, body: dict) -> None:
        """Messages first, then statuses, in the order Meta sent them; one failure does not stop the rest."""
        if not isinstance(body, dict) or body.get("object") != "whatsapp_business_account":
            kind = body.get("object") if isinstance(body, dict) else type(body).__name__
            log.warning("whatsapp_unexpected_payload", object=str(kind))
            return
        for entry in body.get("entry") or []:
            for change in (entry or {}).get("changes") or []:
                value = (change or {}).get("value") or {}
                if (change or {}).get("field") != "messages":
                    continue
                number = str((value.get("metadata") or {}).get("phone_number_id") or "")
                if number and number != self.phone_number_id:
                    log.info("whatsapp_other_number", phone_number_id=hid(number))
                    continue
                for message in value.get("messages") or []:
                    await self._guarded(self.handle_message, message)
                for status in value.get("statuses") or []:
                    await self._guarded(self.handle_status, status)

    async def _guarded(self, fn, item: dict) -> None:
        try:
            await fn(item)
        except Exception as exc:  # noqa: BLE001 - logged, the next item is processed
            log.exception("whatsapp_item_failed", message=hid(str(item.get("id") or "")),
                          user=hid(str(item.get("from") or item.get("recipient_id") or "")),
                          error=f"{type(exc).__name__}: {mask(str(exc))}")

    # -- incoming messages ---------------------------------------------------------------------
    async def handle_message(self, message: dict) -> None:
        incoming = to_incoming(message)
        if incoming is None:
            log.info("whatsapp_ignored", kind=str(message.get("type")), message=hid(message.get("id")))
            return
        key = incoming.message_id or hashlib.sha256(repr(sorted(message.items())).encode()).hexdigest()
        if not await self.dedup.first_time(CHANNEL, key):
            log.info("whatsapp_duplicate", message=hid(key))
            return
        wa_id = incoming.user_id
        sent_at = self._timestamp(message)

        def seen(wa: dict) -> None:
            wa["last_inbound"] = max(float(wa.get("last_inbound") or 0), sent_at)

        async with self._user_lock(wa_id):
            state, _ = await self._state(wa_id, seen, create=True)
            choice = numbered_choice(incoming.text, state.get("options") or [])
            if choice:
                incoming.button, incoming.text = choice, None
            log.info("whatsapp_message", user=hid(wa_id), message=hid(key), kind=str(message.get("type")))
            replies = await self.runtime.engine.handle(incoming)
            # recorded again after the engine: registering an appeal replaces the user's profile
            state, lang = await self._state(wa_id, seen)
            await self._answer(wa_id, replies, state, lang)

    def _timestamp(self, message: dict) -> float:
        now = self.clock()
        try:
            return min(float(message.get("timestamp")), now)
        except (TypeError, ValueError):
            return now

    async def _answer(self, wa_id: str, replies: list[Reply], state: dict, lang: str) -> None:
        batches, options = self._plan(replies, state, lang)
        await self._state(wa_id, lambda wa: wa.__setitem__("options", options))
        try:
            await self._send_batches(wa_id, batches)
        except SendFailed as failed:
            await self._undelivered(wa_id, [r for r, _ in batches][failed.index:], failed.error)

    def _plan(self, replies: list[Reply], state: dict, lang: str) -> tuple[list[tuple[Reply, list[dict]]], list[str]]:
        """Payloads per reply and the ids a numbered answer will stand for. Outside the window the
        replies are joined into one template message."""
        replies = [r for r in replies if (r.text or "").strip() or r.buttons or r.card]
        if not replies:
            return [], []
        if not self._in_window(state):
            text = "\n".join(reply_text(r) for r in replies)
            buttons = next((r.buttons for r in reversed(replies) if r.buttons), [])
            payload, options = template(self.template_name, self._template_language(lang), text, buttons, lang)
            return [(Reply(text, buttons=list(buttons)), [payload])], options
        batches, options = [], []
        for reply in replies:
            payloads, numbered = render(reply, lang)
            if reply.buttons:
                options = numbered
            batches.append((reply, payloads))
        return batches, options

    def _in_window(self, state: dict) -> bool:
        return self.clock() - float(state.get("last_inbound") or 0) < self.window_seconds

    def _template_language(self, lang: str) -> str:
        return self.template_languages.get(lang) or self.template_languages["ru"]

    # -- sending -------------------------------------------------------------------------------
    async def _send(self, wa_id: str, payload: dict) -> str:
        return await send_with_retries(lambda: self.graph.send({"to": wa_id, **payload}),
                                       retry_delay=whatsapp_retry_delay, retries=self.retries,
                                       limiter=self.limiter, chat_id=wa_id)

    async def _send_batches(self, wa_id: str, batches: list[tuple[Reply, list[dict]]]) -> list[str]:
        ids = []
        for i, (_, payloads) in enumerate(batches):
            for payload in payloads:
                try:
                    ids.append(await self._send(wa_id, payload))
                except Exception as exc:  # noqa: BLE001 - classified by the caller
                    raise SendFailed(i, exc) from exc
        return ids

    async def _undelivered(self, wa_id: str, replies: list[Reply], error: BaseException) -> None:
        """Replies that could not be sent: temporary errors go to the outbox (sent again later),
        the others are written into the transcript for the operators."""
        temporary = whatsapp_retry_delay(error, 1) is not None
        log.error("whatsapp_send_failed", user=hid(wa_id), error=mask(str(error)), queued=temporary,
                  replies=len(replies))
        async with self.runtime.sessions() as session, session.begin():
            if temporary:
                for reply in replies:
                    session.add(Outbox(kind="notify", idempotency_key=f"wa-{uuid.uuid4()}", payload={
                        "channel": CHANNEL, "user_id": wa_id, "text": reply_text(reply),
                        "buttons": [{"id": b.id, "label": b.label} for b in reply.buttons]}))
            await self._note(session, wa_id, f"[WhatsApp: {len(replies)} message(s) not sent — {error}"
                             + ("; queued to be sent again]" if temporary else "]"),
                             {"error": str(getattr(error, "code", "") or type(error).__name__)})

    async def notify(self, channel: str, user_id: str, text: str, buttons: list[Button] | None = None) -> None:
        """Outbox sender: appeal notifications and operator messages, free-form inside the 24-hour
        window, the approved template outside it. Raises when sending fails (the outbox tries later)."""
        async with self._user_lock(user_id):
            state, lang = await self._state(user_id)
            batches, options = self._plan([Reply(text, buttons=list(buttons or []))], state, lang)
            try:
                ids = await self._send_batches(user_id, batches)
            except SendFailed as failed:
                raise failed.error from None
            entry = {"m": [hid(i) for i in ids], "text": text,
                     "buttons": [{"id": b.id, "label": b.label} for b in buttons or []]}

            def remember(wa: dict) -> None:
                wa["options"] = options
                wa["recent"] = (list(wa.get("recent") or []) + [entry])[-RECENT_NOTIFICATIONS:]

            await self._state(user_id, remember)
            log.info("whatsapp_notified", user=hid(user_id), template=not self._in_window(state))

    # -- delivery statuses ---------------------------------------------------------------------
    async def handle_status(self, status: dict) -> None:
        kind = str(status.get("status") or "")
        wa_id = str(status.get("recipient_id") or "")
        wamid = str(status.get("id") or "")
        errors = [e for e in status.get("errors") or [] if isinstance(e, dict)]
        error = errors[0] if errors else {}
        code = error.get("code")
        log.info("whatsapp_status", status=kind, user=hid(wa_id), message=hid(wamid),
                 error=str(code) if code is not None else None)
        if kind != "failed" or not wa_id:
            return
        if not await self.dedup.first_time(CHANNEL, f"failed:{wamid or uuid.uuid4()}"):
            return
        details = (error.get("error_data") or {}).get("details") if isinstance(error.get("error_data"), dict) else None
        title = " — ".join(str(p) for p in (error.get("title") or error.get("message"), details) if p)
        log.warning("whatsapp_delivery_failed", user=hid(wa_id), message=hid(wamid), code=str(code), title=mask(title))
        async with self._user_lock(wa_id):
            found: dict = {}

            def change(wa: dict) -> None:
                if code == REENGAGEMENT:
                    wa["last_inbound"] = 0  # the window is closed: the next messages go as templates
                for item in wa.get("recent") or []:
                    if hid(wamid) in item.get("m", []):
                        found.update(item)

            await self._state(wa_id, change)
            queued = False
            if found and code not in PERMANENT_FAILURES:
                queued = await self._queue_again(wa_id, found)
            async with self.runtime.sessions() as session, session.begin():
                note = f"[WhatsApp: message not delivered — error {code}: {title}" + (
                    "; the notification is queued to be sent again]" if queued else "]")
                await self._note(session, wa_id, note, {"error": str(code), "message": hid(wamid),
                                                       "queued": queued})

    async def _queue_again(self, wa_id: str, item: dict) -> bool:
        """One more attempt through the outbox; the key is derived from the text, so a notification that
        fails again is not queued a third time."""
        key = "wa-again-" + hashlib.sha256(f"{wa_id}\n{item.get('text')}".encode()).hexdigest()[:48]
        try:
            async with self.runtime.sessions() as session, session.begin():
                session.add(Outbox(kind="notify", idempotency_key=key, payload={
                    "channel": CHANNEL, "user_id": wa_id, "text": item.get("text") or "",
                    "buttons": item.get("buttons") or []}))
        except IntegrityError:
            return False
        return True

    async def _note(self, session, wa_id: str, text: str, extra: dict) -> None:
        """A system line in the citizen's latest conversation (operators see it in the console)."""
        conv_id = (await session.execute(
            select(Conversation.id).join(User, Conversation.user_id == User.id)
            .where(User.channel == CHANNEL, User.external_id == wa_id)
            .order_by(Conversation.id.desc()).limit(1))).scalar_one_or_none()
        if conv_id is None:
            return
        session.add(Message(conversation_id=conv_id, direction="out", text_masked=mask(text),
                            answer_status="whatsapp_failed", payload={"system": "whatsapp_failed", **extra},
                            delivered=True))

    # -- per-user state and ordering -------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def _user_lock(self, wa_id: str):
        entry = self._locks.setdefault(wa_id, [asyncio.Lock(), 0])
        entry[1] += 1
        try:
            async with entry[0]:
                yield
        finally:
            entry[1] -= 1
            if entry[1] == 0:
                self._locks.pop(wa_id, None)

    async def _state(self, wa_id: str, change: Callable[[dict], None] | None = None,
                     create: bool = False) -> tuple[dict, str]:
        """The user's ``profile["whatsapp"]`` (changed by ``change`` and saved, if given) and language."""
        for attempt in (1, 2):
            try:
                return await self._state_once(wa_id, change, create)
            except IntegrityError:  # another worker created the user at the same moment
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    async def _state_once(self, wa_id: str, change, create: bool) -> tuple[dict, str]:
        async with self.runtime.sessions() as session, session.begin():
            user = (await session.execute(select(User).where(User.channel == CHANNEL, User.external_id == wa_id)
                                          .with_for_update())).scalar_one_or_none()
            if user is None:
                if not create:
                    return {}, "ru"
                user = User(channel=CHANNEL, external_id=wa_id, language=None, profile={})
                session.add(user)
                await session.flush()
            conv = (await session.execute(select(Conversation).where(Conversation.user_id == user.id)
                                          .order_by(Conversation.id.desc()).limit(1))).scalar_one_or_none()
            wa = dict((user.profile or {}).get(PROFILE_KEY) or {})
            if change is not None:
                change(wa)
                user.profile = {**(user.profile or {}), PROFILE_KEY: wa}
            return wa, language_of(conv, user)

    async def close(self) -> None:
        await self.drain()
        await self.graph.close()
        for resource in (self.dedup, self.limiter):
            closer = getattr(resource, "close", None)  # the Redis-backed ones hold a connection
            if closer is not None:
                await closer()

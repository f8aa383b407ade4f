"""``/webhooks/whatsapp``: Meta's verification request (GET) and signed updates (POST).

* ``GET ?hub.mode=subscribe&hub.verify_token=…&hub.challenge=…`` answers the challenge as text/plain
  when the token equals ``ESTU_WHATSAPP_VERIFY_TOKEN``, else 403.
* ``POST`` requires ``X-Hub-Signature-256: sha256=<hex>``, the HMAC-SHA256 of the raw body with
  ``ESTU_WHATSAPP_APP_SECRET``: missing → 401, wrong → 403, and nothing is processed. A good request is
  answered 200 at once; the adapter processes it in the background.

``setup(app)`` registers the routes and a start-up hook that, when WhatsApp is configured (token,
phone number id, app secret and verify token all set), builds the adapter on the app's dialogue runtime
and registers it as the ``whatsapp`` notification sender of the outbox worker.
"""

from __future__ import annotations

import json

from aiohttp import web

from bot.logging import get_logger

log = get_logger("estu.whatsapp")
WHATSAPP = web.AppKey("whatsapp", object)
PATH = "/webhooks/whatsapp"
MAX_WEBHOOK_BODY = 1024 * 1024  # Meta batches updates; larger than the API's 64 KB limit
REQUIRED = {"whatsapp_token": "ESTU_WHATSAPP_TOKEN", "whatsapp_phone_number_id": "ESTU_WHATSAPP_PHONE_NUMBER_ID",
            "whatsapp_app_secret": "ESTU_WHATSAPP_APP_SECRET", "whatsapp_verify_token": "ESTU_WHATSAPP_VERIFY_TOKEN"}


def missing_settings(settings) -> list[str]:
    """The environment variables still needed to enable WhatsApp (empty: it is configured)."""
    out = []
    for field, env in REQUIRED.items():
        value = getattr(settings, field, None)
        if hasattr(value, "get_secret_value"):
            value = value.get_secret_value()
        if not value or not str(value).strip():
            out.append(env)
    return out


def is_configured(settings) -> bool:
    return not missing_settings(settings)


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


async def verify(request: web.Request) -> web.Response:
    adapter = request.app.get(WHATSAPP)
    if adapter is None:
        return _error(404, "the WhatsApp webhook is not enabled")
    challenge = adapter.verify_challenge(request.query)
    if challenge is None:
        log.warning("whatsapp_verification_refused", mode=request.query.get("hub.mode", ""))
        return web.Response(status=403, text="forbidden", content_type="text/plain")
    return web.Response(text=challenge, content_type="text/plain")


async def receive(request: web.Request) -> web.Response:
    adapter = request.app.get(WHATSAPP)
    if adapter is None:
        return _error(404, "the WhatsApp webhook is not enabled")
    if request.content_length is not None and request.content_length > MAX_WEBHOOK_BODY:
        return _error(413, "request body too large")
    chunks, size = [], 0
    while chunk := await request.content.read(64 * 1024):  # read() returns what has arrived so far
        size += len(chunk)
        if size > MAX_WEBHOOK_BODY:
            return _error(413, "request body too large")
        chunks.append(chunk)
    raw = b"".join(chunks)
    signature = request.headers.get("X-Hub-Signature-256")
    if not signature:
        log.warning("whatsapp_unsigned_webhook", remote=request.remote or "")
        return _error(401, "missing X-Hub-Signature-256")
    if not adapter.signature_ok(raw, signature):
        log.warning("whatsapp_bad_signature", remote=request.remote or "")
        return _error(403, "bad signature")
    try:
        body = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        log.warning("whatsapp_bad_json", size=len(raw))
        return _error(400, "body must be JSON")
    adapter.accept(body)
    return web.Response(text="OK", content_type="text/plain")


async def _start(app: web.Application) -> None:
    from bot.web.app import RUNTIME, SETTINGS

    settings = app[SETTINGS]
    missing = missing_settings(settings)
    if missing:
        if len(missing) < len(REQUIRED):
            log.warning("channel_disabled", channel="whatsapp", missing=", ".join(missing))
        else:
            log.info("channel_disabled", channel="whatsapp")
        return
    runtime = app.get(RUNTIME)
    if runtime is None:  # create_app(with_dialogue=False)
        return
    from bot.channels.whatsapp.adapter import WhatsAppAdapter

    adapter = WhatsAppAdapter.from_settings(runtime, settings)
    runtime.worker.senders["whatsapp"] = adapter.notify
    app[WHATSAPP] = adapter
    log.info("channel_enabled", channel="whatsapp", webhook=PATH, api_version=settings.whatsapp_api_version)


async def _shutdown(app: web.Application) -> None:
    """Finish the messages already accepted before the runtime (database) is closed."""
    adapter = app.get(WHATSAPP)
    if adapter is not None:
        await adapter.drain()


async def _cleanup(app: web.Application) -> None:
    adapter = app.get(WHATSAPP)
    if adapter is not None:
        await adapter.close()


def setup(app: web.Application) -> None:
    """Register the WhatsApp routes and start-up hooks on ``app``."""
    app.router.add_get(PATH, verify)
    app.router.add_post(PATH, receive)
    app.on_startup.append(_start)
    app.on_shutdown.append(_shutdown)
    app.on_cleanup.append(_cleanup)

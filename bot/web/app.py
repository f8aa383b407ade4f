"""The aiohttp application behind ``estu serve``."""

from __future__ import annotations

import asyncio
import json

from aiohttp import web

from bot.assistant import Assistant
from bot.config import Settings
from bot.logging import get_logger

log = get_logger("estu.web")


class Served:
    """The assistant the server answers with. Publishing a knowledge-base version replaces it while the server
    runs (``bot/editorial/publish.py``); a request reads it once and keeps that one to the end."""

    def __init__(self, assistant: Assistant) -> None:
        self.assistant = assistant


SERVED = web.AppKey("served", Served)
SETTINGS = web.AppKey("settings", Settings)
RUNTIME = web.AppKey("runtime", object)
STOP = web.AppKey("stop", object)
WORKER_TASK = web.AppKey("worker_task", object)
TELEGRAM = web.AppKey("telegram", object)
TG_HANDLER = web.AppKey("telegram_handler", object)
TG_POLLING = web.AppKey("telegram_polling", object)
MAX_BODY = 64 * 1024


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


@web.middleware
async def errors_middleware(request: web.Request, handler):
    """No traceback ever reaches a client: unexpected errors become a JSON 500."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status >= 400 and exc.content_type != "application/json":
            return _error(exc.status, exc.reason)
        raise
    except Exception:  # noqa: BLE001
        log.exception("unhandled_error", path=request.path)
        return _error(500, "internal error; the message was not processed, please try again")


def served_assistant(app: web.Application) -> Assistant:
    """The assistant answering now (take it once per request)."""
    return app[SERVED].assistant


async def healthz(request: web.Request) -> web.Response:
    from bot.editorial.publish import state

    a = served_assistant(request.app)
    return web.json_response({
        "status": "ok",
        "kb_version": state(request.app).get("serving"),  # the published version served (docs/editing.md)
        "corpus_version": a.corpus.version,
        "index_corpus_version": a.index.meta.corpus_version,
        "entries": a.corpus.language_counts(),
        "entries_total": len(a.corpus.entries),
        "embedder": a.embedder.name,
        "nlu": "rasa" if a.rasa else ("local" if a.nlu else "none"),
    })


class BadRequest(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.response = _error(status, message)


async def read_json(request: web.Request, shape: str):
    """The request's JSON body, at most MAX_BODY bytes; ``shape`` describes it in the error."""
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise BadRequest(413, f"request body larger than {MAX_BODY} bytes")
    raw = bytearray()
    while len(raw) <= MAX_BODY:  # a body may arrive in several chunks
        chunk = await request.content.read(MAX_BODY + 1 - len(raw))
        if not chunk:
            break
        raw += chunk
    if len(raw) > MAX_BODY:
        raise BadRequest(413, f"request body larger than {MAX_BODY} bytes")
    try:
        return json.loads(bytes(raw).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise BadRequest(400, f"body must be JSON: {shape}") from None


async def ask(request: web.Request) -> web.Response:
    try:
        body = await read_json(request, '{"text": "...", "id": optional, "language": optional}')
    except BadRequest as exc:
        return exc.response
    if not isinstance(body, dict) or not isinstance(body.get("text"), str):
        return _error(400, 'field "text" (a string) is required')
    a = served_assistant(request.app)
    # the models are CPU-bound: keep the event loop free
    result = await asyncio.get_running_loop().run_in_executor(
        None, lambda: a.ask(body["text"], previous_language=body.get("language"), id=body.get("id")))
    return web.json_response(result, dumps=lambda o: json.dumps(o, ensure_ascii=False))


async def messages(request: web.Request) -> web.Response:
    """``{"user_id", "text"}`` or ``{"user_id", "button"}`` → ``{"replies": [...]}`` (web chat, tests)."""
    runtime = request.app.get(RUNTIME)
    if runtime is None:
        return _error(503, "the dialogue engine is not running")
    try:
        body = await read_json(request, '{"user_id": "...", "text": "..."} or {"user_id", "button"}')
    except BadRequest as exc:
        return exc.response
    if not isinstance(body, dict) or not isinstance(body.get("user_id"), str) or not body["user_id"].strip():
        return _error(400, 'field "user_id" (a non-empty string) is required')
    text, button = body.get("text"), body.get("button")
    if text is not None and not isinstance(text, str) or button is not None and not isinstance(button, str):
        return _error(400, '"text" and "button" must be strings')
    if text is None and button is None:
        return _error(400, 'one of "text" or "button" is required')
    from bot.messages import Incoming

    channel = body.get("channel") if body.get("channel") in ("web", "api", "test") else "web"
    replies = await runtime.engine.handle(Incoming(user_id=body["user_id"][:128], channel=channel, text=text,
                                                   button=button, language_hint=body.get("language")))
    return web.json_response({"replies": [r.to_dict() for r in replies]},
                             dumps=lambda o: json.dumps(o, ensure_ascii=False))


async def notifications(request: web.Request) -> web.Response:
    """Pending notifications (appeal status changes) for a web-chat user."""
    runtime = request.app.get(RUNTIME)
    user_id = request.query.get("user_id", "")
    if runtime is None or not user_id:
        return _error(400, "user_id is required")
    await runtime.worker.run_once()
    replies = await runtime.engine.pending_notifications(request.query.get("channel", "web"), user_id)
    return web.json_response({"replies": [r.to_dict() for r in replies]},
                             dumps=lambda o: json.dumps(o, ensure_ascii=False))


async def _start_runtime(app: web.Application) -> None:
    import asyncio

    from bot.dialogue.setup import build_runtime

    settings = app[SETTINGS]
    runtime = await build_runtime(settings, served_assistant(app))
    app[RUNTIME] = runtime
    app[STOP] = asyncio.Event()
    app[WORKER_TASK] = asyncio.create_task(runtime.worker.run_forever(stop=app[STOP]))
    token = settings.telegram_token.get_secret_value() if settings.telegram_token else ""
    if not token:
        log.info("channel_disabled", channel="telegram", missing=["ESTU_TELEGRAM_TOKEN"])
    if token:
        from aiogram.webhook.aiohttp_server import SimpleRequestHandler

        from bot.channels.telegram.adapter import TelegramAdapter

        secret = settings.telegram_webhook_secret.get_secret_value() if settings.telegram_webhook_secret else None
        from bot.channels.dedup import make_deduplicator
        from bot.channels.ratelimit import make_limiter

        limiter = make_limiter(settings.redis_url, "estu:rl:telegram", settings.telegram_rate_overall,
                               settings.telegram_rate_per_chat, per_chat_burst=settings.telegram_burst_per_chat)
        adapter = TelegramAdapter(runtime, token, api_url=settings.telegram_api_url,
                                  webhook_url=settings.telegram_webhook_url, webhook_secret=secret,
                                  dedup=make_deduplicator(settings, runtime.sessions), limiter=limiter,
                                  retries=settings.send_retries)
        runtime.worker.senders["telegram"] = adapter.notify
        app[TELEGRAM] = adapter
        await adapter.set_commands()
        log.info("channel_enabled", channel="telegram", mode="webhook" if settings.telegram_webhook_url else "polling")
        if settings.telegram_webhook_url:
            if not secret:
                raise RuntimeError("ESTU_TELEGRAM_WEBHOOK_SECRET is required with a webhook")
            app[TG_HANDLER] = SimpleRequestHandler(adapter.dp, adapter.bot, handle_in_background=True,
                                                   secret_token=secret)
            await adapter.set_webhook()
        else:
            app[TG_POLLING] = asyncio.create_task(adapter.start_polling())


async def telegram_webhook(request: web.Request) -> web.Response:
    handler = request.app.get(TG_HANDLER)
    if handler is None:
        return _error(404, "the Telegram webhook is not enabled")
    return await handler.handle(request)


async def _stop_runtime(app: web.Application) -> None:
    if TELEGRAM in app:
        await app[TELEGRAM].stop_polling()
        if TG_POLLING in app:
            app[TG_POLLING].cancel()
        await app[TELEGRAM].close()
    if STOP in app:
        app[STOP].set()
        await app[WORKER_TASK]
    if RUNTIME in app:
        await app[RUNTIME].close()


def create_app(settings: Settings, assistant: Assistant, with_dialogue: bool = True) -> web.Application:
    app = web.Application(middlewares=[errors_middleware], client_max_size=MAX_BODY)
    app[SETTINGS] = settings
    app[SERVED] = Served(assistant)
    app.router.add_get("/healthz", healthz)
    app.router.add_post("/api/v1/ask", ask)
    app.router.add_post("/api/v1/messages", messages)
    app.router.add_get("/api/v1/notifications", notifications)
    app.router.add_post("/webhooks/telegram", telegram_webhook)
    if with_dialogue:
        app.on_startup.append(_start_runtime)
        app.on_cleanup.append(_stop_runtime)
    # features register their own routes and start-up hooks (which run after the runtime's)
    from bot.channels.whatsapp import webhook as whatsapp
    from bot.editorial import publish as editorial
    from bot.web import chat, console

    for feature in (whatsapp, chat, console, editorial):
        feature.setup(app)
    return app

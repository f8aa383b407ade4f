"""The aiohttp application behind ``estu serve``."""

from __future__ import annotations

import asyncio
import json

from aiohttp import web

from bot.assistant import Assistant
from bot.config import Settings
from bot.logging import get_logger

log = get_logger("estu.web")
ASSISTANT = web.AppKey("assistant", Assistant)
SETTINGS = web.AppKey("settings", Settings)
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


async def healthz(request: web.Request) -> web.Response:
    a = request.app[ASSISTANT]
    return web.json_response({
        "status": "ok",
        "corpus_version": a.corpus.version,
        "index_corpus_version": a.index.meta.corpus_version,
        "entries": a.corpus.language_counts(),
        "entries_total": len(a.corpus.entries),
        "embedder": a.embedder.name,
        "nlu": "rasa" if a.rasa else ("local" if a.nlu else "none"),
    })


async def ask(request: web.Request) -> web.Response:
    if request.content_length is not None and request.content_length > MAX_BODY:
        return _error(413, f"request body larger than {MAX_BODY} bytes")
    raw = await request.content.read(MAX_BODY + 1)
    if len(raw) > MAX_BODY:
        return _error(413, f"request body larger than {MAX_BODY} bytes")
    try:
        body = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return _error(400, 'body must be JSON: {"text": "...", "id": optional, "language": optional}')
    if not isinstance(body, dict) or not isinstance(body.get("text"), str):
        return _error(400, 'field "text" (a string) is required')
    a = request.app[ASSISTANT]
    # the models are CPU-bound: keep the event loop free
    result = await asyncio.get_running_loop().run_in_executor(
        None, lambda: a.ask(body["text"], previous_language=body.get("language"), id=body.get("id")))
    return web.json_response(result, dumps=lambda o: json.dumps(o, ensure_ascii=False))


def create_app(settings: Settings, assistant: Assistant) -> web.Application:
    app = web.Application(middlewares=[errors_middleware], client_max_size=MAX_BODY)
    app[SETTINGS] = settings
    app[ASSISTANT] = assistant
    app.router.add_get("/healthz", healthz)
    app.router.add_post("/api/v1/ask", ask)
    return app

"""Telegram ↔ neutral messages.

* Routers per feature (messages, button presses); an outer middleware injects the dialogue runtime
  and drops duplicate updates (``update_id``), like aiogram's service-injection middlewares.
* Buttons become inline keyboards; answers longer than 4096 characters are split on sentence
  boundaries; text is sent without a parse mode, so nothing needs escaping.
* Outgoing calls that address a chat pass a request middleware that paces them (about 30/s for the
  bot, 1/s per chat, ``bot/channels/ratelimit.py``) and retries "429 Too Many Requests" after the
  ``retry_after`` Telegram gives, and 5xx/network errors with back-off.
* ``ESTU_TELEGRAM_API_URL`` points aiogram at another Bot API server (a self-hosted
  ``telegram-bot-api``, or the tests' local fake server).
"""

from __future__ import annotations

from typing import Any

from aiogram import BaseMiddleware, Bot, Dispatcher, F, Router
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.session.middlewares.base import BaseRequestMiddleware
from aiogram.exceptions import TelegramNetworkError, TelegramRetryAfter, TelegramServerError
from aiogram.client.telegram import TelegramAPIServer
from aiogram.types import BotCommand, CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message, Update

from bot.channels.dedup import DatabaseDeduplicator
from bot.channels.ratelimit import RateLimiter, backoff, send_with_retries
from bot.channels.text import split_message
from bot.logging import get_logger
from bot.messages import Attachment, Incoming, Reply

log = get_logger("estu.telegram")
CHANNEL = "telegram"
MAX_TEXT = 4096

COMMANDS = {
    "ru": [("start", "Начать"), ("help", "Что умеет Estu"), ("lang", "Язык / Тіл"), ("status", "Мои обращения"),
           ("operator", "Живой оператор"), ("cancel", "Отменить")],
    "kk": [("start", "Бастау"), ("help", "Estu не істей алады"), ("lang", "Тіл / Язык"),
           ("status", "Менің өтініштерім"), ("operator", "Оператор"), ("cancel", "Тоқтату")],
}


def keyboard(reply: Reply) -> InlineKeyboardMarkup | None:
    if not reply.buttons:
        return None
    rows, row = [], []
    for b in reply.buttons:
        row.append(InlineKeyboardButton(text=b.label[:64], callback_data=b.id[:64]))
        if len(row) == 2:
            rows.append(row)
            row = []
    if row:
        rows.append(row)
    return InlineKeyboardMarkup(inline_keyboard=rows)


def reply_text(reply: Reply) -> str:
    text = reply.text
    if reply.card and reply.card.contact and not all(c in text for c in reply.card.contact):
        text += "\n" + " · ".join(reply.card.contact)
    return text


async def send_replies(bot: Bot, chat_id: int | str, replies: list[Reply]) -> None:
    for reply in replies:
        chunks = split_message(reply_text(reply), MAX_TEXT) or ["…"]
        for i, chunk in enumerate(chunks):
            markup = keyboard(reply) if i == len(chunks) - 1 else None
            await bot.send_message(chat_id, chunk, reply_markup=markup)


class RuntimeMiddleware(BaseMiddleware):
    """Injects the dialogue runtime and skips updates already processed."""

    def __init__(self, runtime, dedup: DatabaseDeduplicator) -> None:
        self.runtime = runtime
        self.dedup = dedup

    async def __call__(self, handler, event: Update, data: dict[str, Any]):
        if not await self.dedup.first_time(CHANNEL, str(event.update_id)):
            log.info("duplicate_update", update_id=event.update_id)
            return None
        data["runtime"] = self.runtime
        return await handler(event, data)


def _attachments(message: Message) -> list[Attachment]:
    out = []
    if message.photo:
        out.append(Attachment("photo", message.photo[-1].file_id))
    if message.document:
        out.append(Attachment("document", message.document.file_id, message.document.file_name,
                              message.document.mime_type))
    return out


async def on_message(message: Message, bot: Bot, runtime) -> None:
    incoming = Incoming(user_id=str(message.chat.id), channel=CHANNEL, text=message.text or message.caption,
                        language_hint=message.from_user.language_code if message.from_user else None,
                        attachments=_attachments(message), message_id=str(message.message_id))
    await send_replies(bot, message.chat.id, await runtime.engine.handle(incoming))


async def on_other(message: Message, bot: Bot, runtime) -> None:
    """Stickers, voice, locations …: answered through the engine as an empty message."""
    incoming = Incoming(user_id=str(message.chat.id), channel=CHANNEL, text="",
                        language_hint=message.from_user.language_code if message.from_user else None)
    await send_replies(bot, message.chat.id, await runtime.engine.handle(incoming))


async def on_button(query: CallbackQuery, bot: Bot, runtime) -> None:
    await query.answer()
    chat_id = query.message.chat.id if query.message else query.from_user.id
    incoming = Incoming(user_id=str(chat_id), channel=CHANNEL, button=query.data,
                        language_hint=query.from_user.language_code)
    await send_replies(bot, chat_id, await runtime.engine.handle(incoming))


def build_routers() -> list[Router]:
    """A router per feature (a router can belong to one dispatcher only, so they are built per adapter)."""
    messages = Router(name="telegram-messages")
    messages.message.register(on_message, F.text | F.photo | F.document | F.caption)
    messages.message.register(on_other)
    buttons = Router(name="telegram-buttons")
    buttons.callback_query.register(on_button)
    return [messages, buttons]


def telegram_retry_delay(error: BaseException, attempt: int) -> float | None:
    """How long to wait before retrying a Bot API call, or None when retrying cannot help."""
    if isinstance(error, TelegramRetryAfter):
        return float(error.retry_after)
    if isinstance(error, (TelegramServerError, TelegramNetworkError)):
        return backoff(attempt)
    return None


class PacingMiddleware(BaseRequestMiddleware):
    """Rate limits and retries every Bot API call that addresses a chat (sendMessage, …)."""

    def __init__(self, limiter, retries: int = 4) -> None:
        self.limiter = limiter
        self.retries = retries

    async def __call__(self, make_request, bot, method):
        chat_id = getattr(method, "chat_id", None)
        if chat_id is None:  # getUpdates, answerCallbackQuery, setWebhook …
            return await make_request(bot, method)
        return await send_with_retries(lambda: make_request(bot, method), retry_delay=telegram_retry_delay,
                                       retries=self.retries, limiter=self.limiter, chat_id=chat_id)


class TelegramAdapter:
    def __init__(self, runtime, token: str, api_url: str | None = None, webhook_url: str | None = None,
                 webhook_secret: str | None = None, *, dedup=None, limiter=None, retries: int = 4) -> None:
        session = AiohttpSession(api=TelegramAPIServer.from_base(api_url)) if api_url else AiohttpSession()
        self.limiter = limiter or RateLimiter(30.0, 1.0, per_chat_burst=3)
        session.middleware(PacingMiddleware(self.limiter, retries))
        self.bot = Bot(token, session=session)
        self.runtime = runtime
        self.webhook_url = webhook_url
        self.webhook_secret = webhook_secret
        self.dp = Dispatcher()
        self.dedup = dedup or DatabaseDeduplicator(runtime.sessions)
        self.dp.update.outer_middleware(RuntimeMiddleware(runtime, self.dedup))
        self.dp.include_routers(*build_routers())

    async def notify(self, channel: str, user_id: str, text: str, buttons=None) -> None:
        """Outbox sender: appeal notifications, operator replies and rating questions go back to the
        chat they belong to (``buttons``: neutral Buttons, e.g. the 1–5 rating)."""
        await send_replies(self.bot, int(user_id), [Reply(text, buttons=list(buttons or []))])

    async def set_commands(self) -> None:
        for lang, cmds in COMMANDS.items():
            await self.bot.set_my_commands([BotCommand(command=c, description=d) for c, d in cmds],
                                           language_code=lang)
        await self.bot.set_my_commands([BotCommand(command=c, description=d) for c, d in COMMANDS["ru"]])

    async def start_polling(self) -> None:
        await self.bot.delete_webhook(drop_pending_updates=False)
        await self.dp.start_polling(self.bot, handle_signals=False)

    async def stop_polling(self) -> None:
        try:
            await self.dp.stop_polling()
        except RuntimeError:
            pass

    def register_webhook(self, app, path: str = "/webhooks/telegram") -> None:
        """The webhook route: rejects requests without the right X-Telegram-Bot-Api-Secret-Token and
        answers Telegram at once, processing the update in the background."""
        from aiogram.webhook.aiohttp_server import SimpleRequestHandler

        SimpleRequestHandler(self.dp, self.bot, handle_in_background=True,
                             secret_token=self.webhook_secret).register(app, path=path)

    async def set_webhook(self) -> None:
        await self.bot.set_webhook(self.webhook_url, secret_token=self.webhook_secret,
                                   allowed_updates=["message", "callback_query"])

    async def close(self) -> None:
        await self.bot.session.close()
        for resource in (self.dedup, self.limiter):
            closer = getattr(resource, "close", None)  # the Redis-backed ones hold a connection
            if closer is not None:
                await closer()

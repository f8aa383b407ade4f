"""A small fake Telegram Bot API server on 127.0.0.1 for end-to-end tests with real aiogram over real HTTP.

It serves ``getUpdates`` from a queue (long-poll style), records ``sendMessage`` and the other calls, and
can answer 429 (Too Many Requests with ``retry_after``) or a 5xx error to the next N sends."""

from __future__ import annotations

import asyncio
import json
import time

from aiohttp import web


class FakeBotAPI:
    def __init__(self) -> None:
        self.updates: list[dict] = []
        self.sent: list[dict] = []
        self.calls: list[str] = []
        self.fail_next_sends = 0
        self.fail_status = 429
        self._new = asyncio.Event()
        self._next_message_id = 1000
        self.update_id = 0

    # -- building updates -------------------------------------------------------------------
    def message(self, chat_id: int, text: str, lang: str = "ru", update_id: int | None = None) -> dict:
        self.update_id = update_id or self.update_id + 1
        return {"update_id": self.update_id, "message": {
            "message_id": self.update_id, "date": int(time.time()), "text": text,
            "chat": {"id": chat_id, "type": "private"},
            "from": {"id": chat_id, "is_bot": False, "first_name": "Test", "language_code": lang}}}

    def button(self, chat_id: int, data: str) -> dict:
        self.update_id += 1
        return {"update_id": self.update_id, "callback_query": {
            "id": str(self.update_id), "data": data, "chat_instance": "ci",
            "from": {"id": chat_id, "is_bot": False, "first_name": "Test"},
            "message": {"message_id": 1, "date": int(time.time()), "chat": {"id": chat_id, "type": "private"},
                        "text": "…"}}}

    def push(self, update: dict) -> None:
        self.updates.append(update)
        self._new.set()

    def sent_to(self, chat_id: int) -> list[dict]:
        return [m for m in self.sent if str(m.get("chat_id")) == str(chat_id)]

    async def wait_sent(self, chat_id: int, count: int, timeout: float = 30.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        while len(self.sent_to(chat_id)) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"expected {count} messages to {chat_id}, got {self.sent_to(chat_id)}")
            await asyncio.sleep(0.05)
        return self.sent_to(chat_id)

    # -- the HTTP side ----------------------------------------------------------------------------
    async def handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        self.calls.append(method)
        if request.content_type == "application/json":
            params = await request.json()
        else:
            params = dict(await request.post())
        if method == "getMe":
            return self.ok({"id": 1, "is_bot": True, "first_name": "Estu", "username": "estu_test_bot"})
        if method == "getUpdates":
            offset = int(params.get("offset") or 0)
            pending = [u for u in self.updates if u["update_id"] >= offset]
            if not pending:
                self._new.clear()
                try:
                    await asyncio.wait_for(self._new.wait(), timeout=min(float(params.get("timeout") or 0), 1.0))
                except asyncio.TimeoutError:
                    pass
                pending = [u for u in self.updates if u["update_id"] >= offset]
            return self.ok(pending)
        if method == "sendMessage":
            if self.fail_next_sends > 0:
                self.fail_next_sends -= 1
                if self.fail_status >= 500:
                    return web.json_response({"ok": False, "error_code": self.fail_status,
                                              "description": "Bad Gateway"}, status=self.fail_status)
                return web.json_response({"ok": False, "error_code": 429, "description": "Too Many Requests",
                                          "parameters": {"retry_after": 1}}, status=429)
            markup = params.get("reply_markup")
            if isinstance(markup, str):
                markup = json.loads(markup)
            self.sent.append({"chat_id": params["chat_id"], "text": params["text"], "reply_markup": markup})
            self._next_message_id += 1
            return self.ok({"message_id": self._next_message_id, "date": int(time.time()), "text": params["text"],
                            "chat": {"id": int(params["chat_id"]), "type": "private"}})
        return self.ok(True)  # setMyCommands, setWebhook, deleteWebhook, answerCallbackQuery …

    @staticmethod
    def ok(result) -> web.Response:
        return web.json_response({"ok": True, "result": result})

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/bot{token}/{method}", self.handle)
        return app

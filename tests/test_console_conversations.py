"""Operator pages for conversations (bot/web/console/conversations.py): the queue, one conversation, take /
reply / transfer / hand back / close / reveal — against the real app with its dialogue runtime and a fresh
SQLite database; and the whole hand-off in headless Chromium with a citizen on a fake Telegram Bot API.

The desk's clock is injected (a Wednesday morning in Astana), so working hours never decide a test."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import threading
import time

import pytest
from aiohttp import web
from sqlalchemy import func, select

from bot.operators.desk import Desk
from bot.storage.db import upgrade
from bot.storage.models import Conversation, Feedback, Handoff, Message, OperatorPresence, Outbox, User
from bot.storage.staff import AuditLog, CannedReply
from bot.web.app import RUNTIME, create_app

PASSWORD = "correct horse battery"
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')
KZ = dt.timezone(dt.timedelta(hours=5))
WEDNESDAY_10 = dt.datetime(2026, 11, 25, 10, 0, tzinfo=KZ)  # an ordinary working morning
VALID_IIN = "900101300126"


class Clock:
    """The desk's clock: a fixed working morning, moving on with real time (waiting minutes stay real)."""

    def __init__(self, at: dt.datetime) -> None:
        self.at, self.t0 = at, time.monotonic()

    def __call__(self) -> dt.datetime:
        return self.at + dt.timedelta(seconds=time.monotonic() - self.t0)


# -- helpers -------------------------------------------------------------------------------------------------
@pytest.fixture
def conv_settings(small_settings, tmp_path):
    s = small_settings.model_copy(update={"database_url": f"sqlite+aiosqlite:///{tmp_path}/conv.db"})
    upgrade(s.db_url)
    return s


class Env:
    """The test client of the real app, its runtime (database, engine) and a few shortcuts."""

    def __init__(self, client, runtime) -> None:
        self.client, self.rt = client, runtime

    # the citizen, through the web chat API
    async def say(self, user_id: str, text: str | None = None, button: str | None = None,
                  language: str | None = None) -> list[dict]:
        body = {"user_id": user_id, **({"text": text} if text is not None else {}),
                **({"button": button} if button else {}), **({"language": language} if language else {})}
        resp = await self.client.post("/api/v1/messages", json=body)
        assert resp.status == 200, await resp.text()
        return (await resp.json())["replies"]

    async def inbox(self, user_id: str) -> list[dict]:
        resp = await self.client.get("/api/v1/notifications", params={"user_id": user_id})
        return (await resp.json())["replies"]

    # the database
    async def all(self, model, *where, order=None):
        async with self.rt.sessions() as s:
            stmt = select(model).where(*where).order_by(order if order is not None else model.id)
            return (await s.execute(stmt)).scalars().all()

    async def count(self, model, *where) -> int:
        async with self.rt.sessions() as s:
            return (await s.execute(select(func.count()).select_from(model).where(*where))).scalar_one()

    async def conversation(self, user_id: str) -> Conversation:
        async with self.rt.sessions() as s:
            return (await s.execute(select(Conversation).join(User).where(User.external_id == user_id)
                                    .order_by(Conversation.id.desc()).limit(1))).scalar_one()

    async def handoff(self, conv_id: int) -> Handoff:
        async with self.rt.sessions() as s:
            return (await s.execute(select(Handoff).where(Handoff.conversation_id == conv_id)
                                    .order_by(Handoff.id.desc()).limit(1))).scalar_one()

    async def actions(self) -> list[str]:
        return [a.action for a in await self.all(AuditLog)]

    async def add_user(self, username: str, role: str, **kw) -> None:
        from bot.web.console.users import create_user

        async with self.rt.sessions() as s, s.begin():
            await create_user(s, username, PASSWORD, role, **kw)

    # the console
    async def login(self, username: str) -> None:
        self.client.session.cookie_jar.clear()
        resp = await self.client.get("/operator/login")
        token = CSRF_RE.search(await resp.text()).group(1)
        resp = await self.client.post("/operator/login", allow_redirects=False,
                                      data={"csrf_token": token, "username": username, "password": PASSWORD})
        assert resp.status == 303, await resp.text()

    async def page(self, path: str) -> tuple[str, str]:
        resp = await self.client.get(path)
        assert resp.status == 200, path
        html = await resp.text()
        return html, CSRF_RE.search(html).group(1)

    async def post(self, path: str, data: dict | None = None, csrf: str | None = None):
        data = dict(data or {})
        if csrf:
            data["csrf_token"] = csrf
        return await self.client.post(path, data=data, allow_redirects=False)


@pytest.fixture
async def env(aiohttp_client, conv_settings, small_assistant):
    app = create_app(conv_settings, small_assistant)
    client = await aiohttp_client(app)
    runtime = app[RUNTIME]
    runtime.engine.operators = Desk(conv_settings, clock=Clock(WEDNESDAY_10))
    e = Env(client, runtime)
    await e.add_user("aigerim", "operator", display_name="Айгерим")
    await e.add_user("erlan", "operator", display_name="Ерлан")
    return e


def row_order(html: str) -> list[int]:
    return [int(n) for n in re.findall(r'<tr id="q-(\d+)"', html)]


def no_traceback(html: str) -> None:
    assert "Traceback" not in html and 'File "' not in html


# -- the queue -------------------------------------------------------------------------------------------------
async def test_queue_lists_a_handed_off_conversation_in_priority_order(env):
    await env.say("citizen-1", "Как получить ЭЦП?")
    await env.say("citizen-1", "/operator")
    await env.say("citizen-1", "Какие документы нужны для ЭЦП?")           # while waiting: shown as the preview
    first = await env.conversation("citizen-1")
    await env.say("citizen-2", "У соседей пожар, дым в подъезде!")          # an emergency …
    await env.say("citizen-2", "/operator")                                   # … goes to the front
    second = await env.conversation("citizen-2")
    assert (await env.handoff(second.id)).emergency

    await env.login("aigerim")
    html, _ = await env.page("/operator/queue")
    assert row_order(html) == [second.id, first.id]
    row = html[html.index(f'id="q-{first.id}"'):html.index("</tr>", html.index(f'id="q-{first.id}"'))]
    for shown in ("Русский", "Веб-чат", "Попросил оператора", "digital", "Какие документы нужны для ЭЦП?",
                  "/operator/conversations/%d/take" % first.id):
        assert shown in row, shown
    assert "Экстренно" in html and "console-queue.js" in html and 'href="/operator/queue?queue=all"' in html
    # the operator counts as online: the estimate is minutes, not "nobody online"
    assert [p.operator for p in await env.all(OperatorPresence, order=OperatorPresence.operator)] == ["aigerim"]
    assert "≈ 1 мин" in row
    # the live fragment for console-queue.js: the same rows, no page layout, the count in a header
    live = await env.client.get("/operator/queue/live?queue=all")
    assert live.status == 200 and live.headers["X-Estu-Waiting"] == "2"
    fragment = await live.text()
    assert row_order(fragment) == [second.id, first.id] and "<html" not in fragment
    # a filter by queue
    html, _ = await env.page("/operator/queue?queue=health")
    assert row_order(html) == [] and "Сейчас никто не ждёт" in html
    # in Kazakh
    html, _ = await env.page("/operator/queue?lang=kk")
    assert "Кезек" in html and "Орысша" in html


async def test_roles_and_login(env):
    resp = await env.client.get("/operator/queue", allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"].startswith("/operator/login")
    live = await env.client.get("/operator/queue/live", allow_redirects=False)
    assert live.status == 303  # console-queue.js sees an opaque redirect and stops polling
    await env.add_user("editor1", "editor")
    await env.login("editor1")
    for path in ("/operator/queue", "/operator/conversations/1"):
        resp = await env.client.get(path)
        assert resp.status == 403
    await env.login("aigerim")
    resp = await env.client.get("/operator/conversations/999")
    assert resp.status == 404 and "text/html" in resp.headers["Content-Type"]
    no_traceback(await resp.text())
    assert (await env.client.get("/operator/conversations/abc")).status == 404


# -- take, reply, transfer, close ------------------------------------------------------------------------------
async def test_take_reply_transfer_close_and_the_rating(env):
    await env.say("citizen-1", "Как получить ЭЦП?")
    await env.say("citizen-1", "/operator")
    conv = await env.conversation("citizen-1")
    await env.login("aigerim")
    html, csrf = await env.page(f"/operator/conversations/{conv.id}")
    # the transcript: the citizen's question, the bot's answer with its intent and knowledge-base entry
    assert "Как получить ЭЦП?" in html and "msg-bot" in html and "Источник" in html
    entry = (await env.all(Message, Message.conversation_id == conv.id, Message.entry_id.is_not(None)))[0].entry_id
    assert f"<code>{entry}</code>" in html
    assert "Ожидание оператора" in html and f"/operator/conversations/{conv.id}/take" in html

    resp = await env.post(f"/operator/conversations/{conv.id}/take", csrf=csrf)
    assert resp.status == 303 and resp.headers["Location"] == f"/operator/conversations/{conv.id}#reply"
    h = await env.handoff(conv.id)
    assert h.taken_by == "aigerim" and (await env.conversation("citizen-1")).status == "operator"
    joined = await env.inbox("citizen-1")
    assert any("Айгерим" in r["text"] for r in joined)

    # the bot stays silent while the operator owns the conversation; the operator sees the message
    assert await env.say("citizen-1", "Мне нужна ЭЦП для ИП, ИИН 900101300126") == []
    html, csrf = await env.page(f"/operator/conversations/{conv.id}")
    assert "Вы отвечаете" in html and 'id="reply-text"' in html and "Мне нужна ЭЦП для ИП" in html
    assert VALID_IIN not in html  # stored masked
    live = await env.client.get(f"/operator/conversations/{conv.id}/live")
    assert "Мне нужна ЭЦП для ИП" in await live.text()
    assert live.headers["X-Estu-State"] == "owned" and live.headers["X-Estu-Owner"] == "aigerim"

    # an empty reply: a clear message, nothing sent
    resp = await env.post(f"/operator/conversations/{conv.id}/reply", {"text": "   "}, csrf=csrf)
    assert resp.status == 400 and "Сначала напишите ответ" in await resp.text()
    resp = await env.post(f"/operator/conversations/{conv.id}/reply",
                          {"text": "Здравствуйте! Подайте заявку на egov.kz, раздел «ЭЦП»."}, csrf=csrf)
    assert resp.status == 303
    replies = await env.inbox("citizen-1")
    assert [r["text"] for r in replies] == ["Айгерим: Здравствуйте! Подайте заявку на egov.kz, раздел «ЭЦП»."]

    # a colleague may not reply to aigerim's conversation
    await env.login("erlan")
    html, csrf_erlan = await env.page(f"/operator/conversations/{conv.id}")
    assert "Занят: Айгерим" in html and 'id="reply-text"' not in html
    resp = await env.post(f"/operator/conversations/{conv.id}/reply", {"text": "Я тоже тут"}, csrf=csrf_erlan)
    assert resp.status == 403 and "только оператор, ведущий разговор" in await resp.text()
    resp = await env.post(f"/operator/conversations/{conv.id}/transfer", {"to_queue": "health"}, csrf=csrf_erlan)
    assert resp.status == 403 and (await env.handoff(conv.id)).taken_by == "aigerim"
    resp = await env.post(f"/operator/conversations/{conv.id}/take", csrf=csrf_erlan)   # too late: a clear message
    assert resp.status == 409 and "изменился" in await resp.text()
    assert (await env.handoff(conv.id)).taken_by == "aigerim"

    # aigerim passes it to erlan, erlan to the health queue, aigerim takes it again
    await env.login("aigerim")
    html, csrf = await env.page(f"/operator/conversations/{conv.id}")
    resp = await env.post(f"/operator/conversations/{conv.id}/transfer", {"to_operator": "nobody"}, csrf=csrf)
    assert resp.status == 400 and (await env.handoff(conv.id)).taken_by == "aigerim"
    resp = await env.post(f"/operator/conversations/{conv.id}/transfer", {"to_operator": "erlan"}, csrf=csrf)
    assert resp.status == 303 and resp.headers["Location"] == "/operator/queue"
    assert (await env.handoff(conv.id)).taken_by == "erlan"
    await env.login("erlan")
    html, csrf = await env.page(f"/operator/conversations/{conv.id}")
    resp = await env.post(f"/operator/conversations/{conv.id}/transfer", {"to_queue": "health"}, csrf=csrf)
    assert resp.status == 303
    h = await env.handoff(conv.id)
    assert (h.taken_by, h.queue) == (None, "health")
    await env.login("aigerim")
    html, csrf = await env.page("/operator/queue?queue=health")
    assert row_order(html) == [conv.id]
    resp = await env.post(f"/operator/conversations/{conv.id}/take", csrf=csrf)
    assert resp.status == 303

    # close without a resolution: refused; with one: closed, the bot is back, the citizen is asked to rate
    html, csrf = await env.page(f"/operator/conversations/{conv.id}")
    assert (await env.post(f"/operator/conversations/{conv.id}/close", {"resolution": "solved-ish"},
                           csrf=csrf)).status == 400
    resp = await env.post(f"/operator/conversations/{conv.id}/close", {"resolution": "answered",
                                                                       "note": "Объяснила порядок"}, csrf=csrf)
    assert resp.status == 303 and resp.headers["Location"] == "/operator/queue"
    h = await env.handoff(conv.id)
    assert h.closed_at is not None and (h.resolution, h.closed_by) == ("answered", "aigerim")
    notes = await env.inbox("citizen-1")
    prompt = notes[-1]
    assert [b["id"] for b in prompt["buttons"]] == [f"csat:{n}" for n in range(1, 6)]
    await env.say("citizen-1", button="csat:4")
    fb = (await env.all(Feedback, Feedback.kind == "operator"))[0]
    assert (fb.rating, fb.operator, fb.handoff_id) == (4, "aigerim", h.id)
    # the bot answers again
    assert await env.say("citizen-1", "Как получить ЭЦП?") != []

    rows = [a for a in await env.all(AuditLog)
            if a.action.startswith("conversation.") and a.action != "conversation.view"]
    assert [(a.actor, a.action) for a in rows] == [
        ("aigerim", "conversation.take"), ("aigerim", "conversation.reply"), ("aigerim", "conversation.transfer"),
        ("erlan", "conversation.transfer"), ("aigerim", "conversation.take"), ("aigerim", "conversation.close")]
    assert all(a.record_type == "conversation" and a.record_id == str(conv.id) for a in rows)
    assert rows[2].detail["to_operator"] == "erlan" and rows[3].detail["to_queue"] == "health"
    assert rows[5].detail["resolution"] == "answered" and rows[1].detail["chars"] > 0
    assert "conversation.view" in await env.actions()


async def test_without_csrf_nothing_changes(env):
    await env.say("citizen-1", "/operator")
    conv = await env.conversation("citizen-1")
    await env.login("aigerim")
    path = f"/operator/conversations/{conv.id}"
    outbox_before = await env.count(Outbox)
    for action, data in (("take", {}), ("close", {"resolution": "spam"}), ("hand-back", {}),
                         ("transfer", {"to_queue": "health"})):
        for token in (None, "x" * 43):
            resp = await env.post(f"{path}/{action}", data, csrf=token)
            assert resp.status == 403, action
            no_traceback(await resp.text())
    h = await env.handoff(conv.id)
    assert (h.taken_by, h.closed_at, h.queue) == (None, None, "general")
    _, csrf = await env.page(path)
    assert (await env.post(f"{path}/take", csrf=csrf)).status == 303
    outbox_after_take = await env.count(Outbox)
    assert outbox_after_take == outbox_before + 1  # "an operator has joined"
    for action, data in (("reply", {"text": "Здравствуйте"}), ("close", {"resolution": "answered"}),
                         ("hand-back", {}), ("transfer", {"to_operator": "erlan"}), ("reveal", {"appeal": "1"})):
        resp = await env.post(f"{path}/{action}", data)
        assert resp.status == 403, action
    h = await env.handoff(conv.id)
    assert (h.taken_by, h.closed_at) == ("aigerim", None)
    assert await env.count(Outbox) == outbox_after_take
    assert await env.count(Message, Message.conversation_id == conv.id, Message.answer_status == "operator") == 0
    assert [a for a in await env.actions() if a not in ("login", "conversation.view")] == ["conversation.take"]


async def test_hand_back_gives_the_conversation_to_the_bot(env):
    await env.say("citizen-1", "/operator")
    conv = await env.conversation("citizen-1")
    await env.login("aigerim")
    _, csrf = await env.page(f"/operator/conversations/{conv.id}")
    await env.post(f"/operator/conversations/{conv.id}/take", csrf=csrf)
    assert await env.say("citizen-1", "Алло?") == []
    resp = await env.post(f"/operator/conversations/{conv.id}/hand-back", csrf=csrf)
    assert resp.status == 303
    h = await env.handoff(conv.id)
    assert h.resolution == "handed_back" and (await env.conversation("citizen-1")).status == "bot"
    assert "/operator" in (await env.inbox("citizen-1"))[-1]["text"]
    assert await env.say("citizen-1", "Как получить ЭЦП?") != []
    html, _ = await env.page(f"/operator/conversations/{conv.id}")
    assert "Отвечает бот" in html and "Перехватить у бота" in html
    assert (await env.all(AuditLog, AuditLog.action == "conversation.hand_back"))[0].detail["owner"] == "aigerim"


async def test_canned_replies_in_the_citizens_language(env):
    async with env.rt.sessions() as s, s.begin():
        s.add(CannedReply(title="Приветствие", text_kk="Сәлеметсіз бе! Қалай көмектесе аламын?",
                          text_ru="Здравствуйте! Чем могу помочь?"))
        s.add(CannedReply(title="Старый", text_kk="ескі", text_ru="старый", active=False))
    await env.say("citizen-kk", "Сәлеметсіз бе, маған оператор керек", language="kk")
    await env.say("citizen-kk", "/operator", language="kk")
    conv = await env.conversation("citizen-kk")
    assert conv.language == "kk"
    await env.login("aigerim")
    _, csrf = await env.page(f"/operator/conversations/{conv.id}")
    await env.post(f"/operator/conversations/{conv.id}/take", csrf=csrf)
    html, _ = await env.page(f"/operator/conversations/{conv.id}")
    canned = (await env.all(CannedReply))[0]
    assert 'data-insert="Сәлеметсіз бе! Қалай көмектесе аламын?"' in html and "старый" not in html
    assert "Казахский" in html
    # without script, the link fills the reply box
    html, _ = await env.page(f"/operator/conversations/{conv.id}?canned={canned.id}")
    assert re.search(r'<textarea name="text" id="reply-text"[^>]*>Сәлеметсіз бе! Қалай көмектесе аламын\?</textarea>',
                     html)


# -- reveal ----------------------------------------------------------------------------------------------------
async def test_reveal_shows_the_appeal_iin_and_is_audited(env):
    from bot.intake import registry

    await env.say("citizen-1", "/operator")
    conv = await env.conversation("citizen-1")
    async with env.rt.sessions() as s, s.begin():
        user = await s.get(User, conv.user_id)
        appeal = await registry.register(
            s, user=user, conversation_id=conv.id, channel="web", language="ru", appeal_type="complaint",
            agency="akimat", addressee="Акимат", surname="Иванова", name="Анна", patronymic=None, iin=VALID_IIN,
            address="г. Астана, ул. Абая, 10", phone=None, email="a@example.kz", text="Во дворе ямы",
            attachments=[], consent=True)
        number, appeal_id = appeal.number, appeal.id
    await env.login("aigerim")
    path = f"/operator/conversations/{conv.id}"
    html, csrf = await env.page(path)
    assert number in html and VALID_IIN not in html and "••••" in html
    # only the operator who owns the conversation may reveal
    resp = await env.post(f"{path}/reveal", {"appeal": str(appeal_id)}, csrf=csrf)
    assert resp.status == 403 and VALID_IIN not in await resp.text()
    assert await env.count(AuditLog, AuditLog.action == "appeal.reveal_iin") == 0
    await env.post(f"{path}/take", csrf=csrf)
    resp = await env.post(f"{path}/reveal", {"appeal": str(appeal_id)}, csrf=csrf)
    assert resp.status == 200 and "no-store" in resp.headers["Cache-Control"]
    html = await resp.text()
    assert f'<code class="iin revealed">{VALID_IIN}</code>' in html
    rows = await env.all(AuditLog, AuditLog.action == "appeal.reveal_iin")
    assert [(r.actor, r.record_type, r.record_id) for r in rows] == [("aigerim", "appeal", number)]
    assert VALID_IIN not in str(rows[0].detail) and rows[0].detail["conversation"] == conv.id
    # the next plain view is masked again; an appeal of somebody else cannot be revealed through this page
    html, csrf = await env.page(path)
    assert VALID_IIN not in html
    assert (await env.post(f"{path}/reveal", {"appeal": "999"}, csrf=csrf)).status == 404


# -- the browser, with a citizen in Telegram --------------------------------------------------------------------
class FakeTelegram:
    """tests/fake_telegram.FakeBotAPI served from its own thread and event loop (the LiveServer has its own)."""

    def __init__(self) -> None:
        from tests.fake_telegram import FakeBotAPI
        from tests.live import free_port

        self.loop = asyncio.new_event_loop()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._runner = None
        self.api = None
        self._make = FakeBotAPI

    def __enter__(self) -> "FakeTelegram":
        self._thread.start()

        async def start():
            self.api = self._make()
            self._runner = web.AppRunner(self.api.app())
            await self._runner.setup()
            await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

        asyncio.run_coroutine_threadsafe(start(), self.loop).result(timeout=30)
        return self

    def __exit__(self, *exc) -> None:
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self.loop).result(timeout=30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)

    def message(self, chat_id: int, text: str, lang: str = "ru") -> None:
        self.loop.call_soon_threadsafe(lambda: self.api.push(self.api.message(chat_id, text, lang=lang)))

    def button(self, chat_id: int, data: str) -> None:
        self.loop.call_soon_threadsafe(lambda: self.api.push(self.api.button(chat_id, data)))

    def wait_sent(self, chat_id: int, count: int) -> list[dict]:
        return asyncio.run_coroutine_threadsafe(self.api.wait_sent(chat_id, count, timeout=60),
                                                self.loop).result(timeout=90)

    def sent_to(self, chat_id: int) -> list[dict]:
        async def read():
            return list(self.api.sent_to(chat_id))

        return asyncio.run_coroutine_threadsafe(read(), self.loop).result(timeout=30)


def test_browser_operator_takes_replies_and_closes_a_telegram_conversation(browser, settings, assistant, tmp_path):
    """The shipped corpus (real agency names in the queue); a citizen in Telegram (real aiogram polling a fake
    Bot API): /operator → the operator takes it in the browser → the bot is silent → the operator's reply and,
    after closing, the rating question reach Telegram → the citizen's rating is stored."""
    from pydantic import SecretStr
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import Select, WebDriverWait

    from tests.live import LiveServer, screenshot

    citizen, other, urgent = 7001, 7002, 7003
    wait = WebDriverWait(browser, 60)

    with FakeTelegram() as tg:
        cfg = settings.model_copy(update={
            "database_url": f"sqlite+aiosqlite:///{tmp_path}/browser.db", "telegram_token": SecretStr("123456:TEST"),
            "telegram_api_url": tg.url, "telegram_webhook_url": None})
        upgrade(cfg.db_url)
        with LiveServer(cfg, assistant) as srv:
            async def prepare(app):
                from bot.web.console.users import create_user

                runtime = app[RUNTIME]
                runtime.engine.operators = Desk(cfg, clock=Clock(WEDNESDAY_10))
                async with runtime.sessions() as s, s.begin():
                    await create_user(s, "aigerim", PASSWORD, "operator", display_name="Айгерим Сапарова")
                    await create_user(s, "erlan", PASSWORD, "operator", display_name="Ерлан Ахметов")
                    s.add(CannedReply(title="Приветствие",
                                      text_kk="Сәлеметсіз бе! Мен операторомын, қазір көмектесемін.",
                                      text_ru="Здравствуйте! Я оператор, сейчас помогу."))
                    s.add(CannedReply(title="Номер заявки", text_kk="Өтініш нөмірін жазыңызшы.",
                                      text_ru="Напишите, пожалуйста, номер вашей заявки."))
                    s.add(CannedReply(title="Прощание", text_kk="Хабарласқаныңызға рахмет!",
                                      text_ru="Спасибо за обращение! Хорошего дня."))

            srv.call(prepare)

            def query(fn):
                async def run(app):
                    async with app[RUNTIME].sessions() as s:
                        return await fn(s)

                return srv.call(run)

            def say(chat: int, text: str, lang: str = "ru") -> None:
                """The citizen writes and the bot answers (one message each time in these steps)."""
                n = len(tg.sent_to(chat))
                tg.message(chat, text, lang=lang)
                tg.wait_sent(chat, n + 1)

            # three citizens in Telegram ask for an operator and describe their question; one mentions a fire
            say(citizen, "Как получить ЭЦП?")
            say(citizen, "/operator")
            say(citizen, "Не получается получить ЭЦП для ИП, что делать?")
            say(other, "Балабақшаға кезекке қалай тұрамын?", lang="kk")
            say(other, "/operator", lang="kk")
            say(other, "Балабақша кезегіндегі орнымды қалай білемін?", lang="kk")
            say(urgent, "Пожар в подъезде, дым!")
            say(urgent, "/operator")
            say(urgent, "Дым уже на лестнице, соседи не открывают дверь")
            before_take = len(tg.sent_to(citizen))

            async def conv_of(s, chat):
                return (await s.execute(select(Conversation.id).join(User).where(
                    User.channel == "telegram", User.external_id == str(chat)))).scalar_one()

            conv_id = query(lambda s: conv_of(s, citizen))
            urgent_id = query(lambda s: conv_of(s, urgent))

            # the operator logs in and sees the queue, the fire first
            browser.delete_all_cookies()
            browser.get(srv.url + "/operator/queue")
            wait.until(ec.presence_of_element_located((By.NAME, "username")))
            browser.find_element(By.NAME, "username").send_keys("aigerim")
            browser.find_element(By.NAME, "password").send_keys(PASSWORD)
            browser.find_element(By.CSS_SELECTOR, "form button.primary").click()
            wait.until(ec.presence_of_element_located((By.ID, f"q-{conv_id}")))
            assert browser.current_url.endswith("/operator/queue")
            rows = [r.get_attribute("id") for r in browser.find_elements(By.CSS_SELECTOR, "table.waiting tbody tr")]
            assert rows[0] == f"q-{urgent_id}" and len(rows) == 3
            row = browser.find_element(By.ID, f"q-{conv_id}").text
            assert "Telegram" in row and "Русский" in row and "Не получается получить ЭЦП" in row
            wait.until(lambda d: "Обновлено" in d.find_element(By.CSS_SELECTOR, "[data-live-status]").text)
            assert browser.title.startswith("(3) ")

            # take it
            browser.find_element(By.CSS_SELECTOR, f"#q-{conv_id} button.take").click()
            wait.until(ec.presence_of_element_located((By.ID, "reply-text")))
            assert browser.current_url.split("#")[0].endswith(f"/operator/conversations/{conv_id}")
            joined = tg.wait_sent(citizen, before_take + 1)[-1]
            assert "Айгерим Сапарова" in joined["text"]

            # the citizen writes again: the bot stays silent, the operator sees the message appear (live refresh)
            tg.message(citizen, "Я уже зарегистрирован на egov.kz, ИИН 900101300126, но заявка не проходит")
            wait.until(lambda d: "заявка не проходит" in d.find_element(By.ID, "history").text)
            assert VALID_IIN not in browser.find_element(By.ID, "history").text

            # a canned reply goes into the box, the operator adds to it and sends it
            browser.find_element(By.XPATH, "//a[contains(@class, 'insert')][strong[text()='Приветствие']]").click()
            box = browser.find_element(By.ID, "reply-text")
            assert box.get_attribute("value") == "Здравствуйте! Я оператор, сейчас помогу."
            box.send_keys(" Проверьте срок регистрационного свидетельства ЭЦП и подайте заявку на egov.kz заново.")
            browser.find_element(By.CSS_SELECTOR, ".reply-form button.primary").click()
            wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, ".flash")))
            answered = tg.wait_sent(citizen, before_take + 2)[-1]
            assert answered["text"].startswith("Айгерим Сапарова: Здравствуйте! Я оператор")
            wait.until(lambda d: "Проверьте срок" in d.find_element(By.ID, "history").text)
            browser.set_window_size(1280, 1450)
            try:
                browser.execute_script("document.getElementById('history').scrollTop = 1e6; window.scrollTo(0, 0);")
                screenshot(browser, "console-conversation")
            finally:
                browser.set_window_size(1280, 900)
            # the queue now: two waiting, one of mine
            browser.get(srv.url + "/operator/queue")
            wait.until(ec.presence_of_element_located((By.ID, f"m-{conv_id}")))
            wait.until(lambda d: "Обновлено" in d.find_element(By.CSS_SELECTOR, "[data-live-status]").text)
            assert browser.title.startswith("(2) ")
            screenshot(browser, "console-queue")

            # back to the conversation; close it: the citizen is asked for a rating in Telegram, presses 5
            browser.find_element(By.CSS_SELECTOR, f"#m-{conv_id} a.open").click()
            wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, ".close-form")))
            Select(browser.find_element(By.CSS_SELECTOR, ".close-form select[name=resolution]")
                   ).select_by_value("answered")
            browser.find_element(By.CSS_SELECTOR, ".close-form button.primary").click()
            wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, ".flash")))
            assert browser.current_url.endswith("/operator/queue")
            sent = tg.wait_sent(citizen, before_take + 4)
            prompt = sent[-1]
            buttons = [b["callback_data"] for r in prompt["reply_markup"]["inline_keyboard"] for b in r]
            assert buttons == [f"csat:{n}" for n in range(1, 6)]
            tg.button(citizen, "csat:5")
            thanks = tg.wait_sent(citizen, before_take + 5)[-1]
            assert "Спасибо" in thanks["text"]

            async def rating(s):
                return (await s.execute(select(Feedback.rating, Feedback.operator).where(
                    Feedback.kind == "operator"))).one()

            assert tuple(query(rating)) == (5, "aigerim")
            # while the operator owned the conversation the bot said nothing: after "Operator … joined"
            # came only the operator's reply, the closing note, the rating question and the thanks
            after = [m["text"] for m in tg.sent_to(citizen)[before_take:]]
            assert len(after) == 5
            assert after[0].startswith("Оператор Айгерим Сапарова") and after[1].startswith("Айгерим Сапарова:")
            assert "завершил" in after[2] and "оцениваете" in after[3]

            async def audit_actions(s):
                return (await s.execute(select(AuditLog.action).order_by(AuditLog.id))).scalars().all()

            actions = [a for a in query(audit_actions) if a != "conversation.view"]
            assert actions == ["login", "conversation.take", "conversation.reply", "conversation.close"]

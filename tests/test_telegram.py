"""End to end through the Telegram adapter: real aiogram, real HTTP, a local fake Bot API server."""

from __future__ import annotations

import asyncio
import re

import pytest
from aiohttp import web

from bot.channels.telegram.adapter import TelegramAdapter
from bot.channels.text import split_message
from bot.dialogue.setup import build_runtime
from bot.intake import registry
from bot.storage.models import Appeal
from sqlalchemy import select
from tests.fake_telegram import FakeBotAPI

TOKEN = "123456:TEST-token"
VALID_IIN = "900101300126"


@pytest.fixture
async def tg(aiohttp_server, settings, assistant, tmp_path):
    fake = FakeBotAPI()
    server = await aiohttp_server(fake.app())
    s = settings.model_copy(update={"database_url": f"sqlite+aiosqlite:///{tmp_path / 'tg.db'}"})
    adapter_box = {}

    async def notify(channel, user_id, text, buttons=None):
        await adapter_box["a"].notify(channel, user_id, text, buttons=buttons)

    runtime = await build_runtime(s, assistant, senders={"telegram": notify})
    adapter = TelegramAdapter(runtime, TOKEN, api_url=str(server.make_url("")).rstrip("/"),
                              webhook_secret="s3cret-token")
    adapter_box["a"] = adapter
    yield fake, adapter, runtime
    await adapter.stop_polling()
    await adapter.close()
    await runtime.close()


@pytest.fixture
async def polling(tg):
    fake, adapter, runtime = tg
    task = asyncio.create_task(adapter.start_polling())
    yield fake, adapter, runtime
    await adapter.stop_polling()
    task.cancel()
    try:
        await task
    except (asyncio.CancelledError, Exception):  # noqa: BLE001
        pass


def buttons_of(msg) -> list[str]:
    markup = msg.get("reply_markup") or {}
    return [b["callback_data"] for row in markup.get("inline_keyboard", []) for b in row]


async def test_start_questions_and_a_button(polling):
    fake, adapter, _ = polling
    fake.push(fake.message(42, "/start", lang="kk"))
    msgs = await fake.wait_sent(42, 2)
    assert "Estu" in msgs[0]["text"] and "lang:kk" in buttons_of(msgs[1])
    fake.push(fake.button(42, "lang:kk"))
    await fake.wait_sent(42, 3)
    fake.push(fake.message(42, "ЭЦҚ-ны қалай аламын?", lang="kk"))
    msgs = await fake.wait_sent(42, 4)
    assert "Дереккөз" in msgs[-1]["text"] and any(b.startswith("fb:yes:") for b in buttons_of(msgs[-1]))
    fake.push(fake.message(43, "Как получить справку о несудимости?"))
    msgs = await fake.wait_sent(43, 1)
    assert "Источник" in msgs[-1]["text"]


async def test_duplicate_update_is_processed_once(polling):
    fake, adapter, _ = polling
    update = fake.message(50, "/help")
    fake.push(update)
    await fake.wait_sent(50, 1)
    fake.push(dict(update))  # the same update_id again (a redelivery)
    fake.push(fake.message(50, "/lang"))
    msgs = await fake.wait_sent(50, 2)
    await asyncio.sleep(0.5)
    assert len(fake.sent_to(50)) == 2 and "lang:kk" in buttons_of(msgs[1])


async def test_full_appeal_and_a_status_notification_pushed_later(polling):
    fake, adapter, runtime = polling
    chat = 77
    n = 0

    async def say(text=None, button=None):
        nonlocal n
        fake.push(fake.button(chat, button) if button else fake.message(chat, text))
        before = n
        msgs = await fake.wait_sent(chat, before + 1)
        await asyncio.sleep(0.3)  # a turn may send several messages
        msgs = fake.sent_to(chat)
        n = len(msgs)
        return msgs[before:]

    await say("Хочу подать жалобу на акимат: во дворе полгода не ремонтируют дорогу, сплошные ямы")
    await say(button="type:complaint")
    await say(button="agency:akimat")
    for answer in ("Иванова", "Анна"):
        await say(answer)
    await say(button="form:skip")
    for answer in (VALID_IIN, "г. Астана, ул. Абая, д. 10, кв. 5", "+7 701 123 45 67"):
        await say(answer)
    await say(button="form:done")
    await say(button="form:yes")
    out = await say(button="form:confirm")
    number = re.search(r"ЕТ-\d{4}-\d{6}", out[-1]["text"]).group(0)
    async with runtime.sessions() as s, s.begin():
        appeal = (await s.execute(select(Appeal).where(Appeal.number == number))).scalar_one()
        assert appeal.channel == "telegram"
        await registry.set_status(s, appeal, "in_progress", actor="op")
    await runtime.worker.run_once()
    msgs = await fake.wait_sent(chat, n + 1)
    assert number in msgs[-1]["text"] and "на рассмотрении" in msgs[-1]["text"]


async def test_webhook_rejects_a_forged_request_and_accepts_the_real_one(tg, aiohttp_client):
    fake, adapter, _ = tg
    app = web.Application()
    adapter.register_webhook(app)
    client = await aiohttp_client(app)
    update = fake.message(60, "/help")
    bad = await client.post("/webhooks/telegram", json=update)
    assert bad.status == 401
    wrong = await client.post("/webhooks/telegram", json=update,
                              headers={"X-Telegram-Bot-Api-Secret-Token": "wrong"})
    assert wrong.status == 401
    await asyncio.sleep(0.3)
    assert fake.sent_to(60) == []  # nothing was processed
    good = await client.post("/webhooks/telegram", json=update,
                             headers={"X-Telegram-Bot-Api-Secret-Token": "s3cret-token"})
    assert good.status == 200
    msgs = await fake.wait_sent(60, 1)
    assert "Estu" in msgs[0]["text"]


def test_long_answers_split_on_sentence_boundaries():
    text = " ".join(f"Предложение номер {i} о получении справки." for i in range(400))
    chunks = split_message(text, 4096)
    assert len(chunks) > 1 and all(len(c) <= 4096 for c in chunks)
    assert all(c.endswith(".") for c in chunks)
    assert " ".join(chunks) == text


async def test_estu_serve_with_a_telegram_webhook(aiohttp_server, aiohttp_client, settings, assistant, tmp_path):
    """The whole server: settings → adapter → webhook route with the secret → reply at the fake Bot API."""
    from pydantic import SecretStr

    from bot.web.app import create_app

    fake = FakeBotAPI()
    api = await aiohttp_server(fake.app())
    s = settings.model_copy(update={
        "database_url": f"sqlite+aiosqlite:///{tmp_path / 'serve.db'}", "telegram_token": SecretStr(TOKEN),
        "telegram_api_url": str(api.make_url("")).rstrip("/"), "telegram_webhook_url": "https://estu.example/wh",
        "telegram_webhook_secret": SecretStr("s3cret")})
    client = await aiohttp_client(create_app(s, assistant))
    assert "setWebhook" in fake.calls and "setMyCommands" in fake.calls
    assert (await client.post("/webhooks/telegram", json=fake.message(9, "/start"))).status == 401
    ok = await client.post("/webhooks/telegram", json=fake.message(9, "/start"),
                           headers={"X-Telegram-Bot-Api-Secret-Token": "s3cret"})
    assert ok.status == 200
    assert "Estu" in (await fake.wait_sent(9, 1))[0]["text"]


@pytest.mark.parametrize("status", [429, 502])
async def test_telegram_throttling_and_server_errors_are_retried(polling, status):
    """A 429 is retried after Telegram's retry_after, a 5xx after a back-off; the citizen gets the answer once."""
    fake, adapter, _ = polling
    fake.fail_status, fake.fail_next_sends = status, 2
    fake.push(fake.message(88, "/help"))
    msgs = await fake.wait_sent(88, 1)
    assert "Estu" in msgs[0]["text"]
    assert fake.calls.count("sendMessage") == 3 and fake.fail_next_sends == 0
    await asyncio.sleep(0.3)
    assert len(fake.sent_to(88)) == 1


async def test_with_redis_duplicate_updates_are_dropped_across_workers(aiohttp_server, aiohttp_client, settings,
                                                                      assistant, tmp_path):
    """Two `estu serve` workers behind one webhook URL, sharing Redis: a redelivered update is answered once."""
    import uuid

    from pydantic import SecretStr
    from redis.asyncio import Redis

    from bot.web.app import create_app

    redis_url = "redis://127.0.0.1:6379/0"
    probe = Redis.from_url(redis_url)
    try:
        await probe.ping()
    except Exception as exc:  # noqa: BLE001
        pytest.skip(f"Redis is not reachable at {redis_url}: {exc}")
    fake = FakeBotAPI()
    api = await aiohttp_server(fake.app())
    s = settings.model_copy(update={
        "database_url": f"sqlite+aiosqlite:///{tmp_path / 'redis.db'}", "telegram_token": SecretStr(TOKEN),
        "telegram_api_url": str(api.make_url("")).rstrip("/"), "telegram_webhook_url": "https://estu.example/wh",
        "telegram_webhook_secret": SecretStr("s3cret"), "redis_url": redis_url})
    worker1 = await aiohttp_client(create_app(s, assistant))
    worker2 = await aiohttp_client(create_app(s, assistant))
    update = fake.message(9000 + uuid.uuid4().int % 100000, "/help", update_id=uuid.uuid4().int % 10**9)
    chat = update["message"]["chat"]["id"]
    headers = {"X-Telegram-Bot-Api-Secret-Token": "s3cret"}
    assert (await worker1.post("/webhooks/telegram", json=update, headers=headers)).status == 200
    await fake.wait_sent(chat, 1)
    assert (await worker2.post("/webhooks/telegram", json=update, headers=headers)).status == 200
    await asyncio.sleep(0.5)
    assert len(fake.sent_to(chat)) == 1
    assert await probe.exists(f"estu:dedup:telegram:{update['update_id']}")
    await probe.aclose()

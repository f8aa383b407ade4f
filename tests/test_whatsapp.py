"""End to end through the WhatsApp adapter: the whole `estu serve` app (create_app), signed webhooks
built with the real HMAC posted over real HTTP, and a local fake Graph API server that records what
Estu sends. ``adapter.drain()`` waits for the background processing, so nothing here is timed."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

import pytest
from pydantic import SecretStr
from sqlalchemy import func, select

from bot.channels.ratelimit import send_with_retries
from bot.channels.whatsapp import render as wr
from bot.channels.whatsapp.graph import GraphAPIError, GraphClient, parse_retry_after, whatsapp_retry_delay
from bot.channels.whatsapp.webhook import WHATSAPP, missing_settings
from bot.intake import registry
from bot.messages import Button, Card, Reply
from bot.storage.models import Appeal, Feedback, Message, Outbox, ProcessedUpdate, User
from bot.web.app import RUNTIME, STOP, WORKER_TASK, create_app
from tests import fake_whatsapp as fw
from tests.fake_whatsapp import FakeGraphAPI

VALID_IIN = "900101300126"
DAY = 24 * 3600
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


def wa_settings(settings, tmp_path, api_url: str, **extra):
    return settings.model_copy(update={
        "database_url": f"sqlite+aiosqlite:///{tmp_path / 'wa.db'}",
        "whatsapp_token": SecretStr(fw.TOKEN), "whatsapp_phone_number_id": fw.PHONE_NUMBER_ID,
        "whatsapp_app_secret": SecretStr(fw.APP_SECRET), "whatsapp_verify_token": SecretStr(fw.VERIFY_TOKEN),
        "whatsapp_api_url": api_url,
        # the tests' conversations are fast; production paces one user at 1 message / 6 s
        "whatsapp_rate_per_chat": 1000.0, "whatsapp_burst_per_chat": 100, **extra})


@dataclass
class Env:
    fake: FakeGraphAPI
    client: object
    adapter: object
    runtime: object

    async def post(self, body: dict):
        raw, headers = fw.signed(body)
        resp = await self.client.post("/webhooks/whatsapp", data=raw, headers=headers)
        assert resp.status == 200, await resp.text()
        return resp

    async def send(self, *messages: dict) -> list[dict]:
        """Post the messages in one signed webhook, wait for the processing; the new outgoing messages."""
        wa_id = messages[0]["from"]
        before = len(self.fake.sent_to(wa_id))
        await self.post(fw.envelope(list(messages)))
        await self.adapter.drain()
        return self.fake.sent_to(wa_id)[before:]

    async def say(self, wa_id: str, text: str) -> list[dict]:
        return await self.send(fw.text(wa_id, text))

    async def deliver(self, wa_id: str) -> list[dict]:
        """One outbox round (status notifications); the new outgoing messages."""
        before = len(self.fake.sent_to(wa_id))
        await self.runtime.worker.run_once()
        return self.fake.sent_to(wa_id)[before:]

    async def profile(self, wa_id: str) -> dict:
        async with self.runtime.sessions() as s:
            user = (await s.execute(select(User).where(User.channel == "whatsapp", User.external_id == wa_id))
                    ).scalar_one()
            return dict(user.profile.get("whatsapp") or {})

    async def shift_window(self, wa_id: str, seconds: float) -> None:
        """Move the citizen's last message back in time."""
        async with self.runtime.sessions() as s, s.begin():
            user = (await s.execute(select(User).where(User.channel == "whatsapp", User.external_id == wa_id))
                    ).scalar_one()
            wa = dict(user.profile["whatsapp"])
            wa["last_inbound"] = float(wa["last_inbound"]) - seconds
            user.profile = {**user.profile, "whatsapp": wa}


async def _pg_database() -> str | None:
    """A fresh PostgreSQL database on 127.0.0.1:5432, or None when the server is not there."""
    import asyncio
    import uuid

    try:
        import asyncpg

        conn = await asyncio.wait_for(asyncpg.connect(PG_ADMIN), 3)
    except Exception:  # noqa: BLE001
        return None
    name = f"estu_wa_{uuid.uuid4().hex[:10]}"
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    return name


@pytest.fixture
async def wa(request, aiohttp_server, aiohttp_client, settings, assistant, tmp_path):
    """The app on SQLite (default) or, with ``indirect`` parametrisation, on PostgreSQL."""
    fake = FakeGraphAPI()
    api = await aiohttp_server(fake.app())
    extra, dbname = {}, None
    if getattr(request, "param", "sqlite") == "postgresql":
        dbname = await _pg_database()
        if dbname is None:
            pytest.skip("PostgreSQL is not reachable on 127.0.0.1:5432 (CI machines run it)")
        extra["database_url"] = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{dbname}"
    s = wa_settings(settings, tmp_path, str(api.make_url("")).rstrip("/"), **extra)
    client = await aiohttp_client(create_app(s, assistant))
    app = client.server.app
    # the tests run the outbox rounds themselves (run_once), so stop the background loop
    app[STOP].set()
    await app[WORKER_TASK]
    yield Env(fake, client, app[WHATSAPP], app[RUNTIME])
    await client.close()
    if dbname:
        import asyncpg

        conn = await asyncpg.connect(PG_ADMIN)
        await conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
        await conn.close()


def body_of(m: dict) -> str:
    if m["type"] == "text":
        return m["text"]["body"]
    if m["type"] == "interactive":
        return m["interactive"]["body"]["text"]
    return " ".join(p["text"] for c in m["template"]["components"] for p in c["parameters"])


def ids_of(m: dict) -> list[str]:
    if m["type"] != "interactive":
        return []
    action = m["interactive"]["action"]
    if m["interactive"]["type"] == "button":
        return [b["reply"]["id"] for b in action["buttons"]]
    return [r["id"] for s in action["sections"] for r in s["rows"]]


def all_text(msgs: list[dict]) -> str:
    return "\n".join(body_of(m) for m in msgs)


# -- webhook verification and signatures -----------------------------------------------------------
async def test_get_verification_answers_the_challenge_or_403(wa):
    ok = await wa.client.get("/webhooks/whatsapp", params={
        "hub.mode": "subscribe", "hub.verify_token": fw.VERIFY_TOKEN, "hub.challenge": "1158201444"})
    assert ok.status == 200 and await ok.text() == "1158201444"
    assert ok.content_type == "text/plain"
    for params in ({"hub.mode": "subscribe", "hub.verify_token": "wrong", "hub.challenge": "1"},
                   {"hub.mode": "unsubscribe", "hub.verify_token": fw.VERIFY_TOKEN, "hub.challenge": "1"},
                   {"hub.challenge": "1"}):
        bad = await wa.client.get("/webhooks/whatsapp", params=params)
        assert bad.status == 403 and "1158201444" not in await bad.text()


async def test_forged_webhooks_are_rejected_and_nothing_is_processed(wa):
    wa_id = "77010000001"
    message = fw.text(wa_id, "/help", message_id="wamid.forged.1")
    raw, good_headers = fw.signed(fw.envelope([message]))
    missing = await wa.client.post("/webhooks/whatsapp", data=raw, headers={"Content-Type": "application/json"})
    assert missing.status == 401
    other_secret = fw.signed(fw.envelope([message]), secret="not-the-app-secret")[1]
    tampered = raw.replace(b"/help", b"/lang")
    for data, headers in ((raw, other_secret),
                          (tampered, good_headers),  # the signature of another body
                          (raw, {"X-Hub-Signature-256": "sha256=" + "0" * 64}),
                          (raw, {"X-Hub-Signature-256": "sha1=" + good_headers["X-Hub-Signature-256"][7:]}),
                          (raw, {"X-Hub-Signature-256": "sha256=zz"})):
        resp = await wa.client.post("/webhooks/whatsapp", data=data, headers=headers)
        assert resp.status == 403
    await wa.adapter.drain()
    assert wa.fake.sent == [] and wa.fake.attempts == 0
    async with wa.runtime.sessions() as s:
        assert (await s.execute(select(func.count()).select_from(User))).scalar_one() == 0
        assert (await s.execute(select(func.count()).select_from(ProcessedUpdate))).scalar_one() == 0
    # the genuine delivery of the same message is still processed (its id was not used up)
    resp = await wa.client.post("/webhooks/whatsapp", data=raw, headers=good_headers)
    assert resp.status == 200
    await wa.adapter.drain()
    assert "Estu" in all_text(wa.fake.sent_to(wa_id))


async def test_signed_but_malformed_bodies_get_a_clear_answer(wa):
    raw = b"{not json"
    resp = await wa.client.post("/webhooks/whatsapp", data=raw, headers={"X-Hub-Signature-256": fw.sign(raw)})
    assert resp.status == 400 and "JSON" in (await resp.json())["error"]
    # a well-formed payload of another kind is acknowledged and ignored
    await wa.post({"object": "page", "entry": []})
    await wa.post(fw.envelope([fw.text("77010000009", "/help")], phone_number_id="999"))  # another number
    await wa.adapter.drain()
    assert wa.fake.sent == []


async def test_large_batches_are_read_whole_and_oversized_bodies_refused(wa):
    """A signed body larger than the API's 64 KB request limit (it arrives in several chunks) is read
    whole, so its signature checks out; beyond 1 MB it is refused."""
    wa_id = "77010000091"
    body = fw.envelope([fw.text(wa_id, "Как получить справку о несудимости? " + "Подробно. " * 9000)])
    raw, headers = fw.signed(body)
    assert len(raw) > 64 * 1024
    assert (await wa.client.post("/webhooks/whatsapp", data=raw, headers=headers)).status == 200
    await wa.adapter.drain()
    assert wa.fake.sent_to(wa_id)
    huge, headers = fw.signed(fw.envelope([fw.text("77010000092", "ы" * 600_000)]))
    assert (await wa.client.post("/webhooks/whatsapp", data=huge, headers=headers)).status == 413
    await wa.adapter.drain()
    assert wa.fake.sent_to("77010000092") == []


# -- conversations ---------------------------------------------------------------------------------
async def test_greeting_and_questions_in_kazakh_and_russian(wa):
    kk, ru = "77010000011", "77010000012"
    out = await wa.say(kk, "Сәлеметсіз бе")
    assert out and re.search(r"[әіңғүұқөһ]", all_text(out).lower())
    out = await wa.say(kk, "ЭЦҚ-ны қалай аламын?")
    assert "Дереккөз" in all_text(out)
    last = out[-1]
    assert last["type"] == "interactive" and last["interactive"]["type"] == "button"
    assert any(i.startswith("fb:yes:") for i in ids_of(last))
    out = await wa.say(ru, "Здравствуйте")
    assert out and "Estu" in all_text(out)
    out = await wa.say(ru, "Как получить справку о несудимости?")
    assert "Источник" in all_text(out)
    assert any(i.startswith("fb:no:") for i in ids_of(out[-1]))
    # a voice message gets a prompt to write; a reaction needs no answer
    voice = {"from": ru, "id": "wamid.voice.1", "timestamp": str(int(time.time())), "type": "audio",
             "audio": {"id": "media-voice", "mime_type": "audio/ogg"}}
    assert (await wa.send(voice))
    reaction = {"from": ru, "id": "wamid.reaction.1", "timestamp": str(int(time.time())), "type": "reaction",
                "reaction": {"message_id": out[-1]["id"], "emoji": "👍"}}
    assert await wa.send(reaction) == []
    for m in wa.fake.sent:  # every message went to the right number through our phone number id
        assert m["to"] in (kk, ru) and m["messaging_product"] == "whatsapp"


async def test_a_button_reply_and_a_list_reply(wa):
    wa_id = "77010000021"
    out = await wa.say(wa_id, "/start")
    menu = next(m for m in out if "menu:appeal" in ids_of(m))
    assert menu["interactive"]["type"] == "list"  # four options: a list message
    assert menu["interactive"]["action"]["button"] == "Выбрать"
    languages = next(m for m in out if "lang:ru" in ids_of(m))
    assert languages["interactive"]["type"] == "button"  # two short options: reply buttons
    out = await wa.send(fw.list_reply(wa_id, "lang:kk", "Қазақша"))
    assert re.search(r"[әіңғүұқөһ]", all_text(out).lower())
    out = await wa.say(wa_id, "Балабақшаға кезекке қалай тұрамын?")
    yes = next(i for i in ids_of(out[-1]) if i.startswith("fb:yes:"))
    out = await wa.send(fw.button_reply(wa_id, yes, "Пайдалы"))
    assert out
    async with wa.runtime.sessions() as s:
        votes = (await s.execute(select(Feedback.helpful).where(Feedback.entry_id == yes.split(":", 2)[2]))).all()
    assert votes == [(True,)]


async def test_duplicate_message_ids_are_processed_once(wa):
    wa_id = "77010000031"
    first = fw.text(wa_id, "/help", message_id="wamid.dup.1")
    out = await wa.send(first)
    assert out
    again = await wa.send(dict(first))  # Meta redelivers the same message
    assert again == []
    both = await wa.send(fw.text(wa_id, "/help", message_id="wamid.dup.2"), fw.text(wa_id, "/help",
                                                                                   message_id="wamid.dup.2"))
    assert len(both) == len(out)  # the second copy in one batch is dropped too


@pytest.mark.parametrize("wa", ["sqlite", "postgresql"], indirect=True)
async def test_full_appeal_then_status_notifications_inside_and_outside_the_window(wa):
    wa_id = "77010000041"
    out = await wa.say(wa_id, "Хочу подать жалобу на акимат: во дворе полгода не ремонтируют дорогу, сплошные ямы")
    types = out[-1]
    assert types["interactive"]["type"] == "list" and "type:complaint" in ids_of(types)
    out = await wa.send(fw.list_reply(wa_id, "type:complaint"))
    agencies = out[-1]
    assert agencies["interactive"]["type"] == "list" and "agency:akimat" in ids_of(agencies)
    rows = agencies["interactive"]["action"]["sections"][0]["rows"]
    assert all(len(r["title"]) <= 24 for r in rows)
    await wa.send(fw.list_reply(wa_id, "agency:akimat"))
    for answer in ("Иванова", "Анна"):
        await wa.say(wa_id, answer)
    out = await wa.send(fw.button_reply(wa_id, "form:skip"))
    assert out[-1]["type"] == "interactive"
    for answer in (VALID_IIN, "г. Астана, ул. Абая, д. 10, кв. 5", "+7 701 123 45 67"):
        out = await wa.say(wa_id, answer)
    assert "form:done" in ids_of(out[-1])
    out = await wa.send(fw.image(wa_id, "media-1001", caption="яма у подъезда"))
    assert "Приложено файлов: 1." in all_text(out)
    await wa.send(fw.button_reply(wa_id, "form:done"))
    await wa.send(fw.button_reply(wa_id, "form:yes"))
    out = await wa.send(fw.button_reply(wa_id, "form:confirm"))
    number = re.search(r"ЕТ-\d{4}-\d{6}", all_text(out)).group(0)
    async with wa.runtime.sessions() as s, s.begin():
        appeal = (await s.execute(select(Appeal).where(Appeal.number == number))).scalar_one()
        assert appeal.channel == "whatsapp" and appeal.iin == VALID_IIN
        assert [(a["kind"], a["file_id"], a["mime_type"]) for a in appeal.attachments] == [
            ("photo", "media-1001", "image/jpeg")]
        await registry.set_status(s, appeal, "in_progress", actor="op")
    # inside the 24-hour window: a free-form text message
    out = await wa.deliver(wa_id)
    assert len(out) == 1 and out[0]["type"] == "text"
    assert number in body_of(out[0]) and "на рассмотрении" in body_of(out[0])
    # a day later the window is closed: the approved template, in Russian, the text as its parameter
    await wa.shift_window(wa_id, 25 * 3600)
    async with wa.runtime.sessions() as s, s.begin():
        appeal = (await s.execute(select(Appeal).where(Appeal.number == number))).scalar_one()
        await registry.set_status(s, appeal, "answered", actor="op", note="Дорогу отремонтируют до 1 июня.")
    out = await wa.deliver(wa_id)
    assert out and all(m["type"] == "template" for m in out)
    assert {m["template"]["name"] for m in out} == {"appeal_status_update"}
    assert {m["template"]["language"]["code"] for m in out} == {"ru"}
    status_text = body_of(out[0])
    assert number in status_text and "отремонтируют" in status_text
    # the rating prompt's five options are numbered inside the template; "5" answers it
    rating = body_of(out[-1])
    assert "1." in rating and "5." in rating
    assert (await wa.profile(wa_id))["options"] == [f"csat:{n}" for n in range(1, 6)]
    out = await wa.say(wa_id, "5")
    assert out and out[0]["type"] != "template"  # the citizen wrote: the window is open again
    async with wa.runtime.sessions() as s:
        assert (await s.execute(select(Feedback.rating).where(Feedback.kind == "appeal"))).scalar_one() == 5


async def test_numbered_options_and_a_kazakh_template(wa):
    """More than ten options are written as numbers and a bare number presses the option; a Kazakh-speaking
    user outside the window gets the template in Kazakh."""
    from bot.operators.delivery import push

    wa_id = "77010000051"
    await wa.say(wa_id, "Сәлеметсіз бе, ЭЦҚ туралы сұрағым бар")
    options = [Button(f"opt:{i}", f"Нұсқа {i}") for i in range(1, 12)]
    options[1] = Button("lang:ru", "Русский")
    async with wa.runtime.sessions() as s, s.begin():
        user = (await s.execute(select(User).where(User.external_id == wa_id))).scalar_one()
        push(s, user, "Таңдаңыз:", buttons=options)
    out = await wa.deliver(wa_id)
    assert len(out) == 1 and out[0]["type"] == "text"
    text = body_of(out[0])
    assert "1. Нұсқа 1" in text and "2. Русский" in text and "11. Нұсқа 11" in text
    assert (await wa.profile(wa_id))["options"][1] == "lang:ru"
    out = await wa.say(wa_id, "2")  # = the "Русский" option: the bot switches to Russian
    assert not re.search(r"[әіңғүұқөһ]", all_text(out).lower())
    assert (await wa.profile(wa_id))["options"] == []  # the options are forgotten once answered
    await wa.send(fw.list_reply(wa_id, "lang:kk"))
    await wa.shift_window(wa_id, 25 * 3600)
    async with wa.runtime.sessions() as s, s.begin():
        user = (await s.execute(select(User).where(User.external_id == wa_id))).scalar_one()
        push(s, user, "Өтінішіңіз бойынша жаңалық бар.\nТолығырақ: /status")
    out = await wa.deliver(wa_id)
    assert len(out) == 1 and out[0]["type"] == "template"
    assert out[0]["template"]["language"]["code"] == "kk"
    assert "\n" not in body_of(out[0]) and "Толығырақ" in body_of(out[0])


# -- failures, retries and statuses ------------------------------------------------------------------
async def test_a_429_is_retried_and_delivered_once(wa):
    wa.fake.fail_status, wa.fake.fail_next_sends, wa.fake.retry_after = 429, 2, "1"
    out = await wa.say("77010000061", "/help")
    assert out and "Estu" in all_text(out)
    assert wa.fake.fail_next_sends == 0 and wa.fake.attempts == len(wa.fake.sent) + 2


async def test_a_500_is_retried_with_back_off(wa):
    wa.fake.fail_status, wa.fake.fail_next_sends = 500, 1
    out = await wa.say("77010000062", "/help")
    assert out and wa.fake.attempts == len(wa.fake.sent) + 1


async def test_a_400_is_not_retried_and_is_recorded_for_operators(wa):
    wa_id = "77010000063"
    wa.fake.fail_status, wa.fake.fail_next_sends = 400, 1
    out = await wa.say(wa_id, "/help")
    assert out == [] and wa.fake.attempts == 1  # one attempt, no retry
    async with wa.runtime.sessions() as s:
        notes = (await s.execute(select(Message).where(Message.answer_status == "whatsapp_failed"))).scalars().all()
        queued = (await s.execute(select(func.count()).select_from(Outbox))).scalar_one()
    assert len(notes) == 1 and "131009" in notes[0].text_masked and notes[0].payload["system"] == "whatsapp_failed"
    assert queued == 0


async def test_a_reply_that_keeps_failing_goes_to_the_outbox_and_is_sent_later(wa):
    wa_id = "77010000064"
    wa.fake.fail_status, wa.fake.fail_next_sends = 503, 100
    out = await wa.say(wa_id, "/help")
    assert out == [] and wa.fake.attempts == 4  # ESTU_SEND_RETRIES attempts
    async with wa.runtime.sessions() as s:
        rows = (await s.execute(select(Outbox))).scalars().all()
    assert rows and all(r.payload["channel"] == "whatsapp" and r.payload["user_id"] == wa_id for r in rows)
    wa.fake.fail_next_sends = 0
    out = await wa.deliver(wa_id)
    assert out and "Estu" in all_text(out)


async def test_statuses_are_logged_and_a_failed_notification_is_queued_again_as_a_template(wa):
    from bot.operators.delivery import push

    wa_id = "77010000071"
    await wa.say(wa_id, "/help")
    async with wa.runtime.sessions() as s, s.begin():
        user = (await s.execute(select(User).where(User.external_id == wa_id))).scalar_one()
        push(s, user, "Ваше обращение ЕТ-2026-000123: на рассмотрении.")
    out = await wa.deliver(wa_id)
    wamid = out[0]["id"]
    await wa.post(fw.envelope(statuses=[fw.status(wa_id, wamid, s) for s in ("sent", "delivered", "read")]))
    await wa.adapter.drain()
    async with wa.runtime.sessions() as s:
        assert (await s.execute(select(func.count()).select_from(Message)
                                .where(Message.answer_status == "whatsapp_failed"))).scalar_one() == 0
    # Meta reports that the message could not be delivered: the 24-hour window had closed
    failed = fw.status(wa_id, wamid, "failed", code=131047, title="Re-engagement message")
    await wa.post(fw.envelope(statuses=[failed]))
    await wa.post(fw.envelope(statuses=[dict(failed)]))  # a redelivered status is counted once
    await wa.adapter.drain()
    assert (await wa.profile(wa_id))["last_inbound"] == 0
    async with wa.runtime.sessions() as s:
        notes = (await s.execute(select(Message).where(Message.answer_status == "whatsapp_failed"))).scalars().all()
    assert len(notes) == 1 and "131047" in notes[0].text_masked and notes[0].payload["queued"] is True
    again = await wa.deliver(wa_id)
    assert len(again) == 1 and again[0]["type"] == "template" and "ЕТ-2026-000123" in body_of(again[0])
    # if the template fails too, it is recorded but not queued a third time
    await wa.post(fw.envelope(statuses=[fw.status(wa_id, again[0]["id"], "failed", code=131000, title="Error")]))
    await wa.adapter.drain()
    assert await wa.deliver(wa_id) == []
    async with wa.runtime.sessions() as s:
        notes = (await s.execute(select(Message).where(Message.answer_status == "whatsapp_failed")
                                 .order_by(Message.id))).scalars().all()
    assert len(notes) == 2 and notes[1].payload["queued"] is False


async def test_with_whatsapp_not_configured_the_webhook_is_off(aiohttp_client, settings, assistant, tmp_path):
    s = settings.model_copy(update={"database_url": f"sqlite+aiosqlite:///{tmp_path / 'off.db'}",
                                    "whatsapp_token": SecretStr(fw.TOKEN)})
    assert missing_settings(s) == ["ESTU_WHATSAPP_PHONE_NUMBER_ID", "ESTU_WHATSAPP_APP_SECRET",
                                   "ESTU_WHATSAPP_VERIFY_TOKEN"]
    client = await aiohttp_client(create_app(s, assistant))
    assert WHATSAPP not in client.server.app
    assert "whatsapp" not in client.server.app[RUNTIME].worker.senders
    raw, headers = fw.signed(fw.envelope([fw.text("77010000081", "/help")]))
    assert (await client.post("/webhooks/whatsapp", data=raw, headers=headers)).status == 404
    assert (await client.get("/webhooks/whatsapp", params={"hub.mode": "subscribe"})).status == 404


async def test_with_redis_duplicates_are_dropped_across_workers(aiohttp_server, aiohttp_client, settings, assistant,
                                                                tmp_path):
    """Two `estu serve` workers sharing Redis (de-duplication and the rate limiter): a redelivered message
    is answered once."""
    import uuid

    from redis.asyncio import Redis

    redis_url = "redis://127.0.0.1:6379/0"
    probe = Redis.from_url(redis_url)
    try:
        await probe.ping()
    except Exception as exc:  # noqa: BLE001
        pytest.skip(f"Redis is not reachable at {redis_url}: {exc}")
    fake = FakeGraphAPI()
    api = await aiohttp_server(fake.app())
    s = wa_settings(settings, tmp_path, str(api.make_url("")).rstrip("/"), redis_url=redis_url)
    workers = [await aiohttp_client(create_app(s, assistant)) for _ in range(2)]
    wa_id = f"7701{uuid.uuid4().int % 10**7:07d}"
    message = fw.text(wa_id, "/help", message_id=f"wamid.redis.{uuid.uuid4().hex}")
    raw, headers = fw.signed(fw.envelope([message]))
    counts = []
    for worker in workers:
        assert (await worker.post("/webhooks/whatsapp", data=raw, headers=headers)).status == 200
        await worker.server.app[WHATSAPP].drain()
        counts.append(len(fake.sent_to(wa_id)))
    assert counts[0] >= 1 and counts[1] == counts[0]  # the second worker dropped the redelivery
    assert await probe.exists(f"estu:dedup:whatsapp:{message['id']}")
    await probe.aclose()


# -- rendering, parsing and the retry rules (no server) ------------------------------------------------
def test_layout_follows_the_cloud_api_limits():
    short = [Button("a", "Да"), Button("b", "Нет")]
    assert wr.layout(short) == "buttons"
    assert wr.layout(short + [Button("c", "Возможно"), Button("d", "Позже")]) == "list"
    assert wr.layout([Button("a", "Зарегистрировать обращение"), Button("b", "Назад")]) == "list"  # > 20
    assert wr.layout([Button(str(i), f"Вариант {i}") for i in range(11)]) == "numbered"
    assert wr.layout([Button("a", "x" * 80)]) == "numbered"  # too long even for a row description
    assert wr.layout([Button("a", "Да"), Button("b", "Да")]) == "list"  # reply button titles must differ


def test_render_text_buttons_list_and_numbered():
    payloads, options = wr.render(Reply("Привет"))
    assert payloads == [{"type": "text", "text": {"body": "Привет", "preview_url": False}}] and options == []
    long = " ".join(f"Предложение номер {i} о получении справки." for i in range(300))
    payloads, _ = wr.render(Reply(long, buttons=[Button("fb:yes:x", "Помогло"), Button("fb:no:x", "Не помогло")]))
    assert all(fw.check({"messaging_product": "whatsapp", "to": "1", **p}) is None for p in payloads)
    assert payloads[-1]["interactive"]["type"] == "button"
    assert len(payloads[-1]["interactive"]["body"]["text"]) <= 1024
    assert " ".join(body_of(p) for p in payloads) == long  # nothing lost in the split
    agency = "Министерство труда и социальной защиты населения Республики Казахстан"
    payloads, _ = wr.render(Reply("Кому?", buttons=[Button("agency:labour", agency), Button("form:back", "Назад")]),
                            "kk")
    row = payloads[-1]["interactive"]["action"]["sections"][0]["rows"][0]
    assert len(row["title"]) <= 24 and row["title"].endswith("…") and row["description"] == agency
    assert payloads[-1]["interactive"]["action"]["button"] == "Таңдау"
    many = [Button(f"o{i}", f"Вариант {i}") for i in range(1, 13)]
    payloads, options = wr.render(Reply("Выберите:", buttons=many))
    assert options == [b.id for b in many] and payloads[0]["type"] == "text"
    assert "12. Вариант 12" in body_of(payloads[0]) and "номер" in body_of(payloads[0])


def test_cards_are_written_as_text():
    card = Card(title="E-otinish", why="Будет номер и законный срок.", contact=["eotinish.kz", "109"],
                alternative="Без интернета — приёмная акимата.")
    text = wr.reply_text(Reply("Подайте жалобу.", card=card))
    assert text.startswith("E-otinish\nБудет номер") and "eotinish.kz · 109" in text and "приёмная" in text
    already = wr.reply_text(Reply("Рекомендуемый канал: E-otinish.\nБудет номер и законный срок.\neotinish.kz · 109",
                                  card=Card("E-otinish", "Будет номер и законный срок.", ["eotinish.kz", "109"])))
    assert already.count("E-otinish") == 1 and already.count("109") == 1


def test_template_parameters_have_no_new_lines():
    payload, options = wr.template("appeal_status_update", "kk", "Бірінші жол\n\nЕкінші\tжол     соңы",
                                   [Button("csat:1", "1"), Button("csat:2", "2")], "kk")
    param = payload["template"]["components"][0]["parameters"][0]["text"]
    assert "\n" not in param and "\t" not in param and "  " not in param
    assert options == ["csat:1", "csat:2"] and payload["template"]["language"]["code"] == "kk"
    assert len(wr.template_param("ы " * 2000)) <= wr.MAX_TEMPLATE_PARAM


def test_numbered_choice_and_incoming_parsing():
    assert wr.numbered_choice("2", ["a", "b"]) == "b" and wr.numbered_choice(" 1. ", ["a"]) == "a"
    assert wr.numbered_choice("3", ["a", "b"]) is None and wr.numbered_choice("2", []) is None
    assert wr.numbered_choice("900101300126", ["a"]) is None and wr.numbered_choice("2 дома", ["a", "b"]) is None
    inc = wr.to_incoming(fw.image("7701", "m-1", caption="фото"))
    assert inc.text == "фото" and inc.attachments[0].kind == "photo" and inc.attachments[0].file_id == "m-1"
    doc = wr.to_incoming(fw.document("7701", "m-2", "scan.pdf")).attachments[0]
    assert (doc.kind, doc.file_id, doc.name, doc.mime_type) == ("document", "m-2", "scan.pdf", "application/pdf")
    assert wr.to_incoming(fw.list_reply("7701", "type:complaint")).button == "type:complaint"
    assert wr.to_incoming(fw.button_reply("7701", "form:yes")).button == "form:yes"
    assert wr.to_incoming({"from": "7701", "id": "x", "type": "reaction", "reaction": {"emoji": "👍"}}) is None
    voice = wr.to_incoming({"from": "7701", "id": "y", "type": "audio", "audio": {"id": "a"}})
    assert voice.text == "" and voice.button is None


def test_which_errors_are_retried():
    assert whatsapp_retry_delay(GraphAPIError(429, 130429, retry_after=7.0), 1) == 7.0
    assert whatsapp_retry_delay(GraphAPIError(400, 131056), 2) == 1.0  # pair rate, no header: back-off
    assert whatsapp_retry_delay(GraphAPIError(400, 80007), 1) == 0.5
    assert whatsapp_retry_delay(GraphAPIError(403, 4), 1) == 0.5
    assert whatsapp_retry_delay(GraphAPIError(502), 3) == 2.0
    assert whatsapp_retry_delay(GraphAPIError(400, 131009, "Parameter value is not valid"), 1) is None
    assert whatsapp_retry_delay(GraphAPIError(401, 190), 1) is None
    assert whatsapp_retry_delay(ConnectionResetError(), 1) == 0.5
    assert whatsapp_retry_delay(ValueError("bug"), 1) is None
    assert "131009" in str(GraphAPIError(400, 131009, "Parameter value is not valid"))
    assert parse_retry_after("3") == 3.0 and parse_retry_after(None) is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # a date in the past


async def test_graph_client_raises_a_clear_error_over_real_http(aiohttp_server):
    fake = FakeGraphAPI()
    api = await aiohttp_server(fake.app())
    client = GraphClient(fw.TOKEN, fw.PHONE_NUMBER_ID, str(api.make_url("")).rstrip("/"), fw.VERSION)
    wrong = GraphClient("bad-token", fw.PHONE_NUMBER_ID, str(api.make_url("")).rstrip("/"), fw.VERSION)
    try:
        wamid = await client.send({"to": "7701", "type": "text", "text": {"body": "Сәлем"}})
        assert wamid.startswith("wamid.") and fake.sent[0]["text"]["body"] == "Сәлем"
        with pytest.raises(GraphAPIError) as err:
            await wrong.send({"to": "7701", "type": "text", "text": {"body": "x"}})
        assert err.value.status == 401 and err.value.code == 190
        fake.fail_status, fake.fail_next_sends, fake.retry_after = 429, 1, "0"
        calls = []

        async def no_sleep(seconds):
            calls.append(seconds)

        await send_with_retries(lambda: client.send({"to": "7701", "type": "text", "text": {"body": "ещё"}}),
                                retry_delay=whatsapp_retry_delay, sleep=no_sleep)
        assert calls == [0.0] and fake.sent[-1]["text"]["body"] == "ещё"
    finally:
        await client.close()
        await wrong.close()


def test_the_window_is_measured_from_the_citizens_last_message():
    from bot.channels.whatsapp.adapter import WhatsAppAdapter

    class _Runtime:
        sessions = None

    now = time.time()
    adapter = WhatsAppAdapter(_Runtime(), token="t", phone_number_id="1", app_secret="s", verify_token="v",
                              dedup=object(), clock=lambda: now)
    assert adapter._in_window({"last_inbound": now - 23 * 3600})
    assert not adapter._in_window({"last_inbound": now - DAY - 1})
    assert not adapter._in_window({})

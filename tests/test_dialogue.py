"""Whole conversations through the dialogue engine, on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import uuid

import pytest
from aiohttp import web
from sqlalchemy import func, select

from bot.dialogue.setup import build_runtime
from bot.intake import registry
from bot.intake.deadlines import due_date, today
from bot.messages import Attachment, Incoming
from bot.storage.models import Appeal, AppealEvent, Conversation, Feedback, Handoff, Message, Outbox

VALID_IIN = "900101300126"
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


async def _pg_available() -> bool:
    try:
        import asyncpg

        conn = await asyncio.wait_for(asyncpg.connect(PG_ADMIN), 3)
        await conn.close()
        return True
    except Exception:  # noqa: BLE001
        return False


@pytest.fixture(params=["sqlite", "postgresql"])
async def rt(request, settings, assistant, tmp_path):
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'estu.db'}"
        dbname = None
    else:
        if not await _pg_available():
            pytest.skip("PostgreSQL is not reachable on 127.0.0.1:5432 (CI machines run it)")
        import asyncpg

        dbname = f"estu_test_{uuid.uuid4().hex[:10]}"
        conn = await asyncpg.connect(PG_ADMIN)
        await conn.execute(f'CREATE DATABASE "{dbname}"')
        await conn.close()
        url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{dbname}"
    s = settings.model_copy(update={"database_url": url})
    runtime = await build_runtime(s, assistant)
    yield runtime
    await runtime.close()
    if dbname:
        import asyncpg

        conn = await asyncpg.connect(PG_ADMIN)
        await conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
        await conn.close()


class Chat:
    def __init__(self, rt, user="u1", channel="test"):
        self.rt, self.user, self.channel = rt, user, channel

    async def say(self, text=None, button=None, attachments=None):
        return await self.rt.engine.handle(Incoming(user_id=self.user, channel=self.channel, text=text,
                                                    button=button, attachments=attachments or []))

    async def press(self, button):
        return await self.say(button=button)


def ids(replies):
    return [b.id for r in replies for b in r.buttons]


def text(replies):
    return "\n".join(r.text for r in replies)


async def test_faq_answer_with_feedback_in_kk_and_ru(rt):
    chat = Chat(rt)
    out = await chat.say("Балабақшаға кезекке қалай тұрамын?")
    assert "Дереккөз" in text(out)
    fb = [i for i in ids(out) if i.startswith("fb:yes:")]
    assert fb and fb[0].endswith("service.kindergarten_queue")
    out = await chat.press(fb[0])
    assert "Рахмет" in text(out)
    out = await chat.say("Как получить справку о несудимости?")
    assert "Источник" in text(out)
    no = [i for i in ids(out) if i.startswith("fb:no:")][0]
    out = await chat.press(no)
    assert "act:operator" in ids(out)
    async with rt.sessions() as s:
        votes = (await s.execute(select(Feedback.helpful).order_by(Feedback.id))).scalars().all()
    assert votes == [True, False]


async def test_clarification_offers_two_candidates(rt):
    rt.engine.assistant.settings = rt.engine.assistant.settings.model_copy(
        update={"answer_threshold": 1.01, "clarify_threshold": 0.0})
    try:
        chat = Chat(rt)
        out = await chat.say("ЭЦП")
        picks = [i for i in ids(out) if i.startswith("pick:")]
        assert len(picks) == 2 and "act:operator" in ids(out)
        out = await chat.press(picks[0])
        assert "Источник" in text(out) or "Дереккөз" in text(out)
    finally:
        rt.engine.assistant.settings = rt.engine.assistant.settings.model_copy(
            update={"answer_threshold": 0.5, "clarify_threshold": 0.2})


async def test_did_you_mean_appeal_or_answer(rt, monkeypatch):
    """When filing and getting an answer are both likely, the bot asks; each button does what it says.
    (The thresholds are lowered so that ordinary messages are ambiguous enough for the test.)"""
    from bot.dialogue import flows

    monkeypatch.setattr(flows, "INTENT_CLARIFY_BELOW", 1.01)
    monkeypatch.setattr(flows, "INTENT_CLARIFY_OTHER", 0.0)
    chat = Chat(rt)
    lamp = "у нас во дворе третью неделю не горят фонари, дети ходят в темноте"
    out = await chat.say(lamp)
    assert "Вы имели в виду" in text(out) and {"intent:appeal", "intent:answer", "act:operator"} <= set(ids(out))
    out = await chat.press("intent:answer")
    assert out[0].card is not None and "109" in out[0].card.title + " ".join(out[0].card.contact)
    out = await chat.say(lamp + ", телефон 8 701 123 45 67")
    out = await chat.press("intent:appeal")
    assert "type:complaint" in ids(out) or any(i.startswith("type:") for i in ids(out)), text(out)
    async with rt.sessions() as s:
        conv = (await s.execute(select(Conversation))).scalars().one()
        assert "clarify_text" not in conv.state and "intent_chosen" not in conv.state
    await chat.press("form:cancel")
    # a new message instead of a click drops the question: the old button no longer acts
    await chat.say(lamp)
    await chat.say("спасибо")
    out = await chat.press("intent:appeal")
    assert "больше недоступен" in text(out), text(out)


async def test_channel_card(rt):
    out = await Chat(rt).say("У нас на улице не горят фонари уже неделю, куда обращаться?")
    card = out[0].card
    assert card is not None and "109" in card.title + " ".join(card.contact)
    assert card.why and card.alternative
    assert "Рекомендуемый канал" in out[0].text


# one answer policy: the chat shows the channel and queues for the agency that `estu ask` reports
SAME_ADVICE = [
    "У нас на улице не горят фонари уже неделю, куда обращаться?",
    "Көшемізде бір аптадан бері шам жанбайды, қайда хабарласу керек?",
    "Куда обратиться, если полицейский вымогает деньги?",
    "Где получить справку о несудимости?",
    "Мектептегі тамақтандыру сапасы туралы кімге жазуға болады?",
]


@pytest.mark.parametrize("message", SAME_ADVICE)
async def test_chat_and_ask_give_the_same_advice(rt, message):
    a = rt.engine.assistant
    asked = a.ask(message)
    out = await Chat(rt, user=f"same-{SAME_ADVICE.index(message)}").say(message)
    async with rt.sessions() as s:
        conv = (await s.execute(select(Conversation))).scalars().one()
    assert conv.state.get("last_agency") == asked["agency"]
    if asked["intent"] == "channel" and out[0].card is not None:
        assert out[0].card.title == a._title(f"channel.{asked['channel']}", conv.language or "ru")
        assert out[0].card.title in asked["answer"]  # the same card text in both
    if asked["intent"] == "faq":
        assert out[0].card is None


async def test_appeal_form_suggests_the_agency_ask_names(rt):
    message = "Хочу подать жалобу на акимат: во дворе полгода не ремонтируют дорогу, сплошные ямы"
    asked = rt.engine.assistant.ask(message)
    assert asked["intent"] == "appeal" and asked["agency"] == "akimat"
    out = await Chat(rt, user="form-agency").say(message)
    await Chat(rt, user="form-agency").press("type:complaint")
    async with rt.sessions() as s:
        conv = (await s.execute(select(Conversation))).scalars().one()
    assert conv.state["form"]["suggested_agency"] == asked["agency"]
    assert any(i.startswith("type:") for i in ids(out))


async def file_appeal(chat: Chat, lang="ru", appeal_type="complaint"):
    first = ("Хочу подать жалобу на акимат: во дворе полгода не ремонтируют дорогу, сплошные ямы, машины ломаются"
             if lang == "ru" else
             "Әкімдікке шағым бергім келеді: аулада жарты жылдан бері жол жөнделмейді, шұңқыр толы, көліктер бұзылады")
    out = await chat.say(first)
    assert any(i.startswith("type:") for i in ids(out))
    out = await chat.press(f"type:{appeal_type}")
    assert any(i.startswith("agency:") for i in ids(out))
    out = await chat.press("agency:akimat")
    out = await chat.say("Иванова" if lang == "ru" else "Серікова")       # surname (substance was in the 1st message)
    out = await chat.say("Анна" if lang == "ru" else "Айгүл")              # name
    assert "form:skip" in ids(out)                                          # patronymic is optional
    out = await chat.press("form:skip")
    out = await chat.say("900101300123")                                    # wrong checksum
    assert "ИИН" in text(out) or "ЖСН" in text(out)
    out = await chat.say(VALID_IIN)
    out = await chat.say("г. Астана, ул. Абая, д. 10, кв. 5")
    out = await chat.say("+7 701 123 45 67")
    assert "form:done" in ids(out)
    out = await chat.say(attachments=[Attachment("photo", "AgACAgIAAxk-photo-1")])
    assert "1" in text(out)
    out = await chat.press("form:done")
    assert "form:yes" in ids(out)
    out = await chat.press("form:yes")
    assert "form:confirm" in ids(out) and "••••" in text(out)
    out = await chat.press("form:confirm")
    number = re.search(r"ЕТ-\d{4}-\d{6}", text(out)).group(0)
    return number, out


async def test_full_appeal_in_russian(rt):
    chat = Chat(rt)
    number, out = await file_appeal(chat, "ru")
    # a complaint: 20 working days from registration (APPC Art. 99)
    assert "Законный срок" in text(out) and "20 рабочих дней" in text(out) and "ст. 99" in text(out)
    async with rt.sessions() as s:
        appeal = (await s.execute(select(Appeal).where(Appeal.number == number))).scalar_one()
        assert appeal.appeal_type == "complaint" and appeal.agency == "akimat" and appeal.iin == VALID_IIN
        assert appeal.attachments[0]["file_id"] == "AgACAgIAAxk-photo-1"
        assert appeal.phone == "+77011234567" and appeal.consent
        assert "ямы" in appeal.text
        assert appeal.due_date > appeal.received_at.date()
        events = (await s.execute(select(AppealEvent.status).where(AppealEvent.appeal_id == appeal.id))).scalars()
        assert list(events) == ["registered"]
        # conversation messages are stored masked
        logged = " ".join((await s.execute(select(Message.text_masked))).scalars())
        assert VALID_IIN not in logged and "701 123 45 67" not in logged


async def test_full_appeal_in_kazakh_and_known_fields_not_asked_again(rt):
    chat = Chat(rt, user="kk-user")
    number, out = await file_appeal(chat, "kk")
    assert "тіркелді" in text(out)
    # a second appeal: name, IIN, address and phone are remembered
    out = await chat.say("Ұсыныс жібергім келеді: біздің ауданда жаңа балабақша салу керек, балалар көп, орын жетпейді")
    out = await chat.press("type:proposal")
    out = await chat.press("agency:education")
    assert "form:done" in ids(out)  # straight to attachments: nothing asked twice


@pytest.mark.parametrize("lang, wish, lines", [
    ("ru", "Хочу подать жалобу на акимат: во дворе полгода не ремонтируют дорогу, сплошные ямы",
     ["Заявление —", "Жалоба —", "Предложение —", "Запрос —", "Отклик —", "Сообщение —", "20 рабочих дней"]),
    ("kk", "Әкімдікке шағым бергім келеді: аулада жарты жылдан бері жол жөнделмейді, шұңқыр толы",
     ["Арыз (өтініш) —", "Шағым —", "Ұсыныс —", "Сұрау салу —", "Үн қату (пікір) —", "Хабар (хабарлама) —",
      "20 жұмыс күні"]),
])
async def test_the_type_step_explains_each_type(rt, lang, wish, lines):
    out = await Chat(rt, user=f"types-{lang}").say(wish)
    assert any(i.startswith("type:") for i in ids(out))
    shown = text(out)
    for line in lines:
        assert line in shown
    # the suggested type (a complaint here) is listed first, as its button is
    assert shown.index(lines[1]) < shown.index(lines[0]) and ids(out)[0] == "type:complaint"


async def test_status_only_for_the_owner(rt):
    number, _ = await file_appeal(Chat(rt, user="owner"))
    out = await Chat(rt, user="owner").say(f"Какой статус у обращения {number}?")
    assert number in text(out) and "зарегистрировано" in text(out)
    out = await Chat(rt, user="stranger").say(f"Какой статус у обращения {number}?")
    assert "не найдено" in text(out) and "Иванова" not in text(out)
    out = await Chat(rt, user="owner").say("/status")
    assert number in text(out)


async def test_status_changes_notify_in_the_citizens_language(rt):
    number, out = await file_appeal(Chat(rt, user="kz", channel="test"), "kk", appeal_type="statement")
    assert "15 жұмыс күні" in text(out) and "ӘРПК 76-бабы" in text(out)
    async with rt.sessions() as s, s.begin():
        appeal = (await s.execute(select(Appeal).where(Appeal.number == number))).scalar_one()
        await registry.set_status(s, appeal, "in_progress", actor="op1")
        cap = registry.latest_extension(appeal)      # two months from today's decision (APPC Art. 76 §3)
        with pytest.raises(registry.TransitionError, match="two months"):
            await registry.set_status(s, appeal, "extended", actor="op1", note="x", new_due_date=cap + dt.timedelta(1))
        await registry.set_status(s, appeal, "extended", actor="op1", note="Қосымша тексеру қажет", new_due_date=cap)
        with pytest.raises(registry.TransitionError):
            await registry.set_status(s, appeal, "rejected", actor="op1")  # a rejection needs a motivated reason
    assert await rt.worker.run_once() == 2
    notes = text(await rt.engine.pending_notifications("test", "kz"))
    assert number in notes and "қаралуда" in notes and "мерзімі ұзартылды" in notes
    assert await rt.engine.pending_notifications("test", "kz") == []  # delivered once


async def test_cancel_and_resume(rt):
    chat = Chat(rt, user="c1")
    await chat.say("Хочу подать заявление")
    out = await chat.press("form:cancel")
    assert "Ничего не отправлено" in text(out)
    out = await chat.say("/cancel")
    assert "нечего" in text(out)
    out = await chat.say("Хочу подать заявление")
    out = await chat.press("type:statement")
    out = await chat.press("agency:education")
    out = await chat.press("form:back")          # back to the body
    assert any(i.startswith("agency:") for i in ids(out))
    out = await chat.press("agency:health")
    assert "суть" in text(out).lower()


async def test_switch_language_mid_form(rt):
    chat = Chat(rt, user="lang")
    await chat.say("Хочу подать заявление")
    out = await chat.press("lang:kk")
    assert "қазақшаға" in text(out) and "Өтініштің түрі" in text(out)
    out = await chat.press("type:statement")
    assert "орган" in text(out)


async def test_emergency_in_the_middle_of_a_form(rt):
    chat = Chat(rt, user="em")
    await chat.say("Хочу подать жалобу")
    await chat.press("type:complaint")
    out = await chat.say("помогите, у соседей пожар, дым в подъезде!")
    assert out[0].text.startswith("Похоже на экстренную ситуацию") and "112" in out[0].text
    assert "сохранён" in text(out)
    out = await chat.press("agency:akimat")        # the form goes on where it was
    assert "суть" in text(out).lower()


async def test_question_in_the_middle_of_a_form_is_answered(rt):
    chat = Chat(rt, user="q")
    await chat.say("Хочу подать жалобу на поликлинику")
    await chat.press("type:complaint")
    await chat.press("agency:health")
    await chat.say("Врач в поликлинике № 5 третий раз отказывает в направлении к кардиологу")
    out = await chat.say("Сколько рабочих дней рассматривают обращение?")       # asked at the surname step
    assert "15" in text(out) and "вернёмся к обращению" in text(out) and "фамилия" in text(out).lower()


@pytest.mark.parametrize("bad", ["", "   ", "а" * 10_000, "😀😀😀", "12345"])
async def test_bad_input_at_every_step_keeps_the_form(rt, bad):
    chat = Chat(rt, user=f"bad-{len(bad)}-{bad[:1]}")
    await chat.say("Хочу подать жалобу")
    steps = [("type", None, "type:complaint"), ("agency", None, "agency:akimat"),
             ("text", None, "Во дворе не вывозят мусор уже месяц, контейнеры переполнены"),
             ("surname", None, "Петров"), ("name", None, "Иван"), ("patronymic", None, "form:skip"),
             ("iin", None, VALID_IIN), ("address", None, "г. Алматы, ул. Толе би, 1"),
             ("contact", None, "ivan@example.kz"), ("attachments", None, "form:done"), ("consent", None, "form:yes")]
    for step, _, good in steps:
        out = await chat.say(bad) if bad.strip() else await chat.say(bad)
        assert out and all(r.text for r in out)
        assert "Traceback" not in text(out)
        out = await (chat.press(good) if good.startswith(("type:", "agency:", "form:")) else chat.say(good))
    assert "form:confirm" in ids(out)
    out = await chat.press("form:confirm")
    assert re.search(r"ЕТ-\d{4}-\d{6}", text(out))


async def test_operator_request_creates_a_handoff(rt):
    out = await Chat(rt, user="op").say("/operator")
    assert "оператор" in text(out).lower()
    async with rt.sessions() as s:
        assert (await s.execute(select(func.count(Handoff.id)))).scalar_one() == 1


async def test_start_help_in_both_languages(rt):
    out = await Chat(rt, user="new").say("/start")
    assert "Estu" in text(out) and "lang:kk" in ids(out)
    out = await Chat(rt, user="new").press("lang:kk")
    out = await Chat(rt, user="new").say("/help")
    assert "Сәлеметсіз бе" in text(out)


# -- the HTTP connector and its outbox ------------------------------------------------------------
@pytest.fixture
async def flaky_intake(aiohttp_server):
    state = {"calls": 0, "accepted": {}, "fail_first": 2}

    async def intake(request):
        state["calls"] += 1
        if state["calls"] <= state["fail_first"]:
            return web.json_response({"error": "down"}, status=503)
        key = request.headers["Idempotency-Key"]
        body = await request.json()
        if key in state["accepted"]:
            return web.json_response({"status": "duplicate"}, status=409)
        state["accepted"][key] = body
        return web.json_response({"status": "accepted"}, status=201)

    app = web.Application()
    app.router.add_post("/intake", intake)
    server = await aiohttp_server(app)
    state["url"] = str(server.make_url("/intake"))
    return state


async def test_outbox_delivers_exactly_once_despite_failures(settings, assistant, tmp_path, flaky_intake):
    s = settings.model_copy(update={"database_url": f"sqlite+aiosqlite:///{tmp_path / 'o.db'}",
                                    "intake_url": flaky_intake["url"]})
    runtime = await build_runtime(s, assistant)
    runtime.worker.base_delay = 0.0
    try:
        number, _ = await file_appeal(Chat(runtime, user="http"))
        for _ in range(5):
            await runtime.worker.run_once()
        assert flaky_intake["calls"] == 3 and list(flaky_intake["accepted"]) == [f"appeal-{number}"]
        body = flaky_intake["accepted"][f"appeal-{number}"]
        assert body["number"] == number and body["applicant"]["iin"] == VALID_IIN and body["type"] == "complaint"
        async with runtime.sessions() as ses:
            row = (await ses.execute(select(Outbox).where(Outbox.kind == "intake_http"))).scalar_one()
            assert row.delivered_at is not None and row.attempts == 3
            appeal = (await ses.execute(select(Appeal).where(Appeal.number == number))).scalar_one()
            assert appeal.status == "sent"
    finally:
        await runtime.close()


async def test_outbox_survives_a_restart(settings, assistant, tmp_path, flaky_intake):
    flaky_intake["fail_first"] = 100  # the endpoint is down for now
    db = tmp_path / "r.db"
    s = settings.model_copy(update={"database_url": f"sqlite+aiosqlite:///{db}", "intake_url": flaky_intake["url"]})
    first = await build_runtime(s, assistant)
    first.worker.base_delay = 0.0
    number, _ = await file_appeal(Chat(first, user="restart"))
    await first.worker.run_once()
    await first.close()                      # the process stops with the appeal undelivered
    flaky_intake["fail_first"] = 0
    second = await build_runtime(s, assistant)
    second.worker.base_delay = 0.0
    try:
        await second.worker.run_once()
        assert list(flaky_intake["accepted"]) == [f"appeal-{number}"]
    finally:
        await second.close()


async def test_every_status_change_is_an_event_and_a_notification(rt):
    number, _ = await file_appeal(Chat(rt, user="life"))
    async with rt.sessions() as s, s.begin():
        appeal = (await s.execute(select(Appeal).where(Appeal.number == number))).scalar_one()
        await registry.set_status(s, appeal, "sent", actor="op")
        await registry.set_status(s, appeal, "redirected", actor="op", redirected_to="Управление образования")
        # the term starts anew on the day after the competent body received it (APPC Art. 76 §2)
        restarted = due_date(today(), "complaint", redirected=True)
        assert appeal.due_date == restarted
        await registry.set_status(s, appeal, "answered", actor="op", note="Ответ: ремонт запланирован")
        with pytest.raises(registry.TransitionError):
            await registry.set_status(s, appeal, "in_progress", actor="op")   # answered → in_progress is not allowed
        await registry.set_status(s, appeal, "closed", actor="op")
        events = (await s.execute(select(AppealEvent.status, AppealEvent.actor).where(
            AppealEvent.appeal_id == appeal.id).order_by(AppealEvent.id))).all()
    assert [e[0] for e in events] == ["registered", "sent", "redirected", "answered", "closed"]
    await rt.worker.run_once()
    notes = text(await rt.engine.pending_notifications("test", "life"))
    for word in ("направлено адресату", "перенаправлено", "Управление образования", "ремонт запланирован", "закрыто",
                 f"Новый срок: {restarted:%d.%m.%Y}"):
        assert word in notes


async def test_rejection_needs_a_motivated_reason(rt):
    number, _ = await file_appeal(Chat(rt, user="rej"))
    async with rt.sessions() as s, s.begin():
        appeal = (await s.execute(select(Appeal).where(Appeal.number == number))).scalar_one()
        with pytest.raises(registry.TransitionError):
            await registry.set_status(s, appeal, "rejected", actor="op")
        await registry.set_status(s, appeal, "rejected", actor="op", note="Вопрос не входит в компетенцию органа")
    await rt.worker.run_once()
    assert "отказано" in text(await rt.engine.pending_notifications("test", "rej"))

"""Hand-off to human operators (bot/operators), on SQLite and on PostgreSQL.

The clock is injected (``Desk(clock=...)``): every test says what time it is in Astana."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid

import pytest
from sqlalchemy import func, select

from bot.dialogue.setup import build_runtime
from bot.intake import registry
from bot.messages import Incoming
from bot.operators import service
from bot.operators.desk import Desk, load_resolutions
from bot.operators.hours import WorkingHours, kz_timezone
from bot.operators.queue import handling_minutes, heartbeat, list_queue, wait_minutes
from bot.operators.topics import Topics
from bot.storage.models import Appeal, Conversation, Feedback, Handoff, Message, User

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
KZ = dt.timezone(dt.timedelta(hours=5))
WEDNESDAY_11 = dt.datetime(2026, 11, 25, 11, 0, tzinfo=KZ)   # an ordinary working morning
VALID_IIN = "900101300126"


class Clock:
    def __init__(self, at: dt.datetime) -> None:
        self.at = at

    def __call__(self) -> dt.datetime:
        return self.at

    def advance(self, **kw) -> None:
        self.at += dt.timedelta(**kw)


class Recorder:
    """A push channel's sender (like the Telegram adapter's): records what it was asked to send."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, str, list]] = []

    async def __call__(self, channel: str, user_id: str, text: str, buttons=None) -> None:
        self.sent.append((channel, user_id, text, list(buttons or [])))


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
    runtime = await build_runtime(s, assistant, senders={"telegram": Recorder()})
    runtime.clock = Clock(WEDNESDAY_11)
    runtime.engine.operators = Desk(s, clock=runtime.clock)
    runtime.desk = runtime.engine.operators
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

    async def say(self, text=None, button=None):
        return await self.rt.engine.handle(Incoming(user_id=self.user, channel=self.channel, text=text, button=button))

    async def press(self, button):
        return await self.say(button=button)

    async def conversation(self) -> Conversation:
        async with self.rt.sessions() as s:
            return (await s.execute(select(Conversation).join(User).where(
                User.external_id == self.user, User.channel == self.channel)
                .order_by(Conversation.id.desc()).limit(1))).scalar_one()

    async def handoff(self) -> Handoff:
        conv = await self.conversation()
        async with self.rt.sessions() as s:
            return (await s.execute(select(Handoff).where(Handoff.conversation_id == conv.id)
                                    .order_by(Handoff.id.desc()).limit(1))).scalar_one()


def ids(replies):
    return [b.id for r in replies for b in r.buttons]


def text(replies):
    return "\n".join(r.text for r in replies)


async def call(rt, fn, *args, **kw):
    """A console call in its own transaction, with the test's clock."""
    async with rt.sessions() as s, s.begin():
        return await fn(s, *args, now=rt.clock(), desk=rt.desk, **kw)


async def online(rt, *operators, queues=None):
    for op in operators:
        await call(rt, heartbeat, op, queues)


async def count(rt, model, *where):
    async with rt.sessions() as s:
        return (await s.execute(select(func.count()).select_from(model).where(*where))).scalar_one()


# -- triggers ---------------------------------------------------------------------------------
async def test_citizen_request_is_queued_with_place_and_estimate(rt):
    await online(rt, "op1")
    chat = Chat(rt, "asker")
    out = await chat.say("/operator")
    assert "Передаю разговор живому оператору" in text(out)
    assert "место в очереди: 1" in text(out) and "около 1 мин" in text(out)   # one operator online, free
    assert "op:cancel" in ids(out)
    h = await chat.handoff()
    assert h.reason == "citizen_request" and h.queue == "general" and h.taken_by is None
    assert (await chat.conversation()).status == "waiting_operator"
    # the next message is for the operator: acknowledged and stored, not answered by the bot
    out = await chat.say("У меня вопрос про пособие, мне отказали без объяснений")
    assert "Ваше сообщение передано оператору" in text(out)
    out = await chat.press("act:operator")
    assert "Вы уже в очереди" in text(out)
    assert await count(rt, Handoff) == 1
    # by intent, in Kazakh, from another citizen; no operator online: said honestly
    async with rt.sessions() as s, s.begin():
        await service_go_offline(s, "op1")
    out = await Chat(rt, "kk-asker").say("Операторға қосыңызшы")
    assert "Қазір желіде оператор жоқ" in text(out) and "кезектегі орныңыз: 2" in text(out)
    assert (await Chat(rt, "kk-asker").handoff()).reason == "citizen_request"


async def service_go_offline(session, operator):
    from bot.operators.queue import go_offline

    await go_offline(session, operator)


async def test_leaving_the_queue(rt):
    chat = Chat(rt, "leaver")
    await chat.say("/operator")
    out = await chat.press("op:cancel")
    assert "Запрос оператора отменён" in text(out)
    h = await chat.handoff()
    assert h.closed_at is not None and h.resolution == "cancelled"
    out = await chat.say("Как получить справку о несудимости?")
    assert "Источник" in text(out)          # the bot answers again


async def test_two_low_confidence_turns_in_a_row_hand_off(rt):
    a = rt.engine.assistant
    a.settings = a.settings.model_copy(update={"answer_threshold": 1.01, "clarify_threshold": 1.01})
    try:
        chat = Chat(rt, "unsure")
        out = await chat.say("Как получить справку о несудимости?")
        assert "не уверен" in text(out) and await count(rt, Handoff) == 0
        # a confident answer in between breaks the run
        a.settings = a.settings.model_copy(update={"answer_threshold": 0.5, "clarify_threshold": 0.2})
        out = await chat.say("Как получить справку о несудимости?")
        assert "Источник" in text(out)
        a.settings = a.settings.model_copy(update={"answer_threshold": 1.01, "clarify_threshold": 1.01})
        await chat.say("Как продлить ЭЦП?")
        assert await count(rt, Handoff) == 0
        out = await chat.say("Где взять справку с места жительства?")
        assert "не уверен" in text(out) and "Передаю разговор живому оператору" in text(out)
        assert (await chat.handoff()).reason == "low_confidence"
    finally:
        a.settings = a.settings.model_copy(update={"answer_threshold": 0.5, "clarify_threshold": 0.2})


async def test_negative_feedback_twice_hands_off(rt):
    chat = Chat(rt, "unhappy")
    out = await chat.say("Как получить справку о несудимости?")
    out = await chat.press([i for i in ids(out) if i.startswith("fb:no:")][0])
    assert await count(rt, Handoff) == 0 and "act:operator" in ids(out)
    out = await chat.say("Как получить ЭЦП?")
    out = await chat.press([i for i in ids(out) if i.startswith("fb:no:")][0])
    assert "снова не помогло" in text(out) and "место в очереди" in text(out)
    assert (await chat.handoff()).reason == "negative_feedback"
    assert await count(rt, Feedback, Feedback.helpful.is_(False)) == 2


async def test_editor_topic_requires_an_operator(rt, tmp_path):
    topics = tmp_path / "topics.yml"
    topics.write_text("entries:\n  - id: service.kindergarten_queue\n    queue: education\nagencies: []\n")
    rt.desk.topics = Topics(topics)
    chat = Chat(rt, "parent")
    out = await chat.say("Балабақшаға кезекке қалай тұрамын?")
    assert "Дереккөз" in text(out)                                    # the answer is still given …
    assert "Сөйлесуді операторға беремін" in text(out)                # … and an operator takes over
    h = await chat.handoff()
    assert h.reason == "topic" and h.queue == "education" and h.topic == "entry:service.kindergarten_queue"
    async with rt.sessions() as s:
        m = (await s.execute(select(Message).where(Message.direction == "out").order_by(Message.id.desc())
                             .limit(1))).scalar_one()
    assert m.entry_id == "service.kindergarten_queue"


def test_shipped_data_files_are_valid(assistant):
    topics = Topics()
    assert topics.entries and topics.unknown_entries(assistant.corpus) == []
    codes = load_resolutions()
    assert {"answered", "redirected", "no_response", "spam", "duplicate"} <= set(codes)
    hours = WorkingHours()
    assert hours.lunch is not None and hours.open_weekdays() == [0, 1, 2, 3, 4]
    # Kazakhstan is on UTC+5 since 1 March 2024
    assert dt.datetime(2026, 6, 1, tzinfo=kz_timezone()).utcoffset() == dt.timedelta(hours=5)


def test_bad_data_files_are_rejected(tmp_path):
    bad = tmp_path / "t.yml"
    bad.write_text("entries:\n  - id: faq.x\n    queue: nowhere\n")
    with pytest.raises(ValueError, match="unknown queue"):
        Topics(bad)
    hours = tmp_path / "h.yml"
    hours.write_text("timezone: Asia/Almaty\ndays:\n  mon: '9-18'\n")
    with pytest.raises(ValueError, match="HH:MM"):
        WorkingHours(hours)


# -- ownership --------------------------------------------------------------------------------
async def test_bot_is_silent_while_an_operator_owns_the_conversation(rt):
    chat = Chat(rt, "owned")
    await chat.say("/operator")
    conv = await chat.conversation()
    await call(rt, service.take, conv.id, "op1")
    assert (await chat.conversation()).status == "operator"
    assert await chat.say("Мой телефон +7 701 123 45 67, перезвоните") == []
    assert await chat.say("Как получить справку о несудимости?") == []
    # safety before silence: an emergency still gets 112 at once, and the operator sees it flagged
    advice = await chat.say("помогите, в подъезде пожар")
    assert len(advice) == 1 and "112" in advice[0].text and "101" in advice[0].text
    h = await chat.handoff()
    assert h.emergency and h.taken_by == "op1"
    async with rt.sessions() as s:
        lines = await service.transcript(s, conv.id)
    citizen = [x["text"] for x in lines if x["who"] == "citizen"]
    assert "Как получить справку о несудимости?" in citizen
    assert any("перезвоните" in x for x in citizen)
    assert not any("701 123 45 67" in x for x in citizen)          # stored masked
    assert [x["who"] for x in lines].count("bot") == 2               # the hand-off message and the 112 advice


async def test_take_conflicts_and_owner_rules(rt):
    chat = Chat(rt, "rules")
    await chat.say("/operator")
    conv = await chat.conversation()
    with pytest.raises(service.NotOwner):
        await call(rt, service.reply, conv.id, "op1", "Здравствуйте")  # not taken yet
    await call(rt, service.take, conv.id, "op1")
    await call(rt, service.take, conv.id, "op1")                        # taking one's own again: no-op
    with pytest.raises(service.Conflict):
        await call(rt, service.take, conv.id, "op2")
    with pytest.raises(service.NotOwner):
        await call(rt, service.close, conv.id, "op2", "answered")
    with pytest.raises(service.InvalidInput):
        await call(rt, service.close, conv.id, "op1", "solved-ish")
    with pytest.raises(service.InvalidInput):
        await call(rt, service.reply, conv.id, "op1", "   ")
    with pytest.raises(service.NotFound):
        await call(rt, service.take, 999_999, "op1")


async def test_operator_reply_reaches_a_push_channel(rt):
    chat = Chat(rt, "4242", channel="telegram")
    await chat.say("/operator")
    conv = await chat.conversation()
    await call(rt, service.take, conv.id, "op1", display_name="Айгерим")
    msg = await call(rt, service.reply, conv.id, "op1", "Здравствуйте! Уточните, пожалуйста, номер заявки.")
    assert msg.payload["operator"] == "op1"
    assert await rt.worker.run_once() == 2
    sent = rt.worker.senders["telegram"].sent
    assert [x[:2] for x in sent] == [("telegram", "4242")] * 2
    assert "Оператор Айгерим подключился" in sent[0][2]
    assert sent[1][2] == "Оператор: Здравствуйте! Уточните, пожалуйста, номер заявки."


async def test_operator_reply_reaches_the_web_chat(rt):
    chat = Chat(rt, "browser-1", channel="web")
    await chat.say("/operator")
    conv = await chat.conversation()
    await call(rt, service.take, conv.id, "op1")
    await call(rt, service.reply, conv.id, "op1", "Добрый день, чем помочь?")
    await rt.worker.run_once()
    notes = await rt.engine.pending_notifications("web", "browser-1")
    assert [n.text for n in notes] == ["К разговору подключился оператор, он ответит вам здесь.",
                                       "Оператор: Добрый день, чем помочь?"]
    assert await rt.engine.pending_notifications("web", "browser-1") == []


async def test_close_asks_for_a_rating_stored_with_the_operator(rt):
    chat = Chat(rt, "kz-rate")
    await chat.say("Сәлеметсіз бе, маған оператор керек")
    await chat.say("/operator")
    conv = await chat.conversation()
    await call(rt, service.transfer, conv.id, by="op1", to_queue="health")
    await call(rt, service.take, conv.id, "op7")
    await call(rt, service.reply, conv.id, "op7", "Сұрағыңызға жауап бердім.")
    await call(rt, service.close, conv.id, "op7", "answered")
    assert (await chat.conversation()).status == "bot"
    await rt.worker.run_once()
    notes = await rt.engine.pending_notifications("test", "kz-rate")
    prompt = notes[-1]
    assert "Оператордың көмегін қалай бағалайсыз" in prompt.text
    assert [b.id for b in prompt.buttons] == ["csat:1", "csat:2", "csat:3", "csat:4", "csat:5"]
    assert prompt.buttons[4].label == "5 — өте жақсы"
    out = await chat.press("csat:4")
    assert "Бағаңызға рахмет" in text(out)
    async with rt.sessions() as s:
        fb = (await s.execute(select(Feedback).where(Feedback.kind == "operator"))).scalar_one()
    assert (fb.rating, fb.operator, fb.agency) == (4, "op7", "health")
    h = await chat.handoff()
    assert h.resolution == "answered" and h.closed_by == "op7"
    out = await chat.say("Балабақшаға кезекке қалай тұрамын?")
    assert "Дереккөз" in text(out)                       # the bot is back


async def test_rating_by_digit_and_no_rating_for_spam(rt):
    chat = Chat(rt, "digit")
    await chat.say("/operator")
    conv = await chat.conversation()
    await call(rt, service.take, conv.id, "op1")
    await call(rt, service.close, conv.id, "op1", "redirected")
    out = await chat.say("2")
    assert "Спасибо за оценку" in text(out) and "/operator" in text(out)   # a low rating: what next
    async with rt.sessions() as s:
        assert (await s.execute(select(Feedback.rating, Feedback.operator))).one() == (2, "op1")
    out = await chat.say("3")                             # the prompt was answered: a digit is a question again
    assert "Спасибо за оценку" not in text(out)
    spam = Chat(rt, "spammer")
    await spam.say("/operator")
    conv = await spam.conversation()
    await call(rt, service.close, conv.id, "op1", "spam")  # closed straight from the queue
    assert await count(rt, Feedback, Feedback.kind == "operator") == 1


async def test_rating_after_an_appeal_is_answered(rt):
    chat = Chat(rt, "appellant")
    await chat.say("Здравствуйте")
    conv = await chat.conversation()
    async with rt.sessions() as s, s.begin():
        user = await s.get(User, conv.user_id)
        appeal = await registry.register(
            s, user=user, conversation_id=conv.id, channel="test", language="ru", appeal_type="complaint",
            agency="akimat", addressee="Акимат", surname="Иванова", name="Анна", patronymic=None, iin=VALID_IIN,
            address="г. Астана, ул. Абая, 10", phone=None, email="a@example.kz", text="Во дворе ямы, просим ремонт",
            attachments=[], consent=True)
        await registry.set_status(s, appeal, "answered", actor="akimat", note="Ремонт запланирован на май")
        number = appeal.number
    await rt.worker.run_once()
    notes = await rt.engine.pending_notifications("test", "appellant")
    assert number in notes[-1].text and "довольны" in notes[-1].text and len(notes[-1].buttons) == 5
    out = await chat.press("csat:5")
    assert "Спасибо за оценку" in text(out)
    async with rt.sessions() as s:
        fb = (await s.execute(select(Feedback).where(Feedback.kind == "appeal"))).scalar_one()
        assert (fb.rating, fb.agency) == (5, "akimat")
        assert fb.appeal_id == (await s.execute(select(Appeal.id))).scalar_one()


async def test_hand_back_and_transfer(rt):
    chat = Chat(rt, "moved")
    await chat.say("/operator")
    conv = await chat.conversation()
    await call(rt, service.take, conv.id, "op1")
    await call(rt, service.transfer, conv.id, by="op1", to_operator="op2")
    h = await chat.handoff()
    assert h.taken_by == "op2" and (await chat.conversation()).status == "operator"
    await call(rt, service.transfer, conv.id, by="op2", to_queue="education")
    h = await chat.handoff()
    assert h.taken_by is None and h.queue == "education" and (await chat.conversation()).status == "waiting_operator"
    with pytest.raises(service.InvalidInput):
        await call(rt, service.transfer, conv.id, by="op2", to_queue="nowhere")
    await call(rt, service.take, conv.id, "op1")                        # op1 again, after the round trip
    await call(rt, service.hand_back, conv.id, by="op1")
    h = await chat.handoff()
    assert h.resolution == "handed_back" and [e["action"] for e in h.history] == [
        "requested", "taken", "transferred", "transferred", "taken", "handed_back"]
    out = await chat.say("Как получить справку о несудимости?")
    assert "Источник" in text(out)
    await rt.worker.run_once()
    notes = text(await rt.engine.pending_notifications("test", "moved"))
    assert "передан другому оператору" in notes and "вернул разговор мне, боту" in notes


# -- idle time-out ----------------------------------------------------------------------------
async def test_idle_operator_gives_the_bot_back_on_the_next_message(rt):
    chat = Chat(rt, "idle")
    await chat.say("/operator")
    conv = await chat.conversation()
    await call(rt, service.take, conv.id, "op1")
    rt.clock.advance(minutes=10)
    assert await chat.say("Алло?") == []                         # not idle yet
    rt.clock.advance(minutes=rt.desk.settings.operator_idle_minutes)
    out = await chat.say("Как получить справку о несудимости?")
    assert out[0].text.startswith("Оператор давно не отвечает") and "Источник" in text(out)
    h = await chat.handoff()
    assert h.resolution == "idle_timeout" and (await chat.conversation()).status == "bot"


async def test_idle_release_in_the_worker_loop(rt):
    chat = Chat(rt, "idle-loop")
    await chat.say("/operator")
    conv = await chat.conversation()
    await call(rt, service.take, conv.id, "op1")
    await call(rt, service.reply, conv.id, "op1", "Пришлите, пожалуйста, фото документа.")
    rt.clock.advance(minutes=25)
    assert await chat.say("Сейчас найду и пришлю") == []          # the citizen answers; now the operator owes a reply
    rt.clock.advance(minutes=15)                                   # operator idle 40 min, citizen waiting 15
    await rt.worker.run_periodic(force=True)
    assert (await chat.handoff()).closed_at is None
    rt.clock.advance(minutes=16)                                   # citizen waiting 31 min
    await rt.worker.run_periodic(force=True)
    h = await chat.handoff()
    assert h.resolution == "idle_timeout" and (await chat.conversation()).status == "bot"
    await rt.worker.run_once()
    notes = text(await rt.engine.pending_notifications("test", "idle-loop"))
    assert "Оператор давно не отвечает" in notes


# -- working hours ----------------------------------------------------------------------------
async def test_friday_evening_takes_contact_and_description(rt):
    rt.clock.at = dt.datetime(2026, 11, 27, 19, 30, tzinfo=KZ)     # Friday, after hours
    chat = Chat(rt, "friday")
    out = await chat.say("/operator")
    assert "сейчас нерабочее время" in text(out) and "30.11.2026 (понедельник) в 09:00" in text(out)
    assert "op:here" in ids(out)
    out = await chat.say("Мой номер +7 701 123 45 67")
    assert "коротко опишите вопрос" in text(out)
    out = await chat.say("Не приходит пособие на ребёнка второй месяц")
    assert "ваш запрос в очереди" in text(out) and "позвонит вам по номеру +77011234567" in text(out)
    assert "30.11.2026 (понедельник)" in text(out)
    h = await chat.handoff()
    assert h.contact == "+77011234567" and "пособие" in h.description
    assert h.scheduled_for.replace(tzinfo=dt.timezone.utc) == dt.datetime(2026, 11, 30, 4, 0, tzinfo=dt.timezone.utc)
    # it waits in the queue for Monday; further messages are acknowledged with the opening time
    out = await chat.say("И ещё: номер заявления у меня есть")
    assert "возьмёт ваш запрос в работу 30.11.2026" in text(out)
    async with rt.sessions() as s:
        queue = await list_queue(s, now=rt.clock(), desk=rt.desk)
    assert queue[0].contact == "+77011234567" and queue[0].scheduled_for is not None


async def test_holiday_eve_in_kazakh_reply_here(rt):
    rt.clock.at = dt.datetime(2026, 12, 15, 18, 30, tzinfo=KZ)      # 16 December is Independence Day
    chat = Chat(rt, "dec15")
    await chat.say("Сәлеметсіз бе, көмек керек")
    out = await chat.say("/operator")
    assert "17.12.2026 (бейсенбі)" in text(out) and "09:00" in text(out)
    out = await chat.press("op:here")
    out = await chat.say("Әлеуметтік көмек туралы сұрағым бар")
    assert "Рахмет, сұранысыңыз кезекке қойылды" in text(out) and "осы чатта жауап береді" in text(out)
    h = await chat.handoff()
    assert h.contact is None and h.description


async def test_nauryz_eve_queues_until_after_the_holidays(rt):
    rt.clock.at = dt.datetime(2026, 3, 20, 18, 5, tzinfo=KZ)        # Friday before Nauryz (21-25 March off)
    out = await Chat(rt, "nauryz").say("/operator")
    assert "26.03.2026 (четверг)" in text(out)
    # during lunch the request waits until the break ends, the same day
    rt.clock.at = dt.datetime(2026, 11, 25, 13, 20, tzinfo=KZ)
    out = await Chat(rt, "lunch").say("/operator")
    assert "25.11.2026 (среда) в 14:00" in text(out)


# -- queue ------------------------------------------------------------------------------------
def test_wait_formula():
    assert wait_minutes(0, 0, 0, 10) is None          # nobody online
    assert wait_minutes(0, 0, 1, 10) == 1              # a free operator
    assert wait_minutes(0, 1, 1, 10) == 10             # the only operator is busy
    assert wait_minutes(1, 1, 2, 10) == 5
    assert wait_minutes(3, 0, 2, 10) == 10


async def test_queue_order_and_estimates(rt):
    await online(rt, "op1", "op2")
    normal_early = Chat(rt, "early")
    await normal_early.say("/operator")
    rt.clock.advance(minutes=5)
    deadline = Chat(rt, "deadline")
    await deadline.say("Здравствуйте")
    conv = await deadline.conversation()
    async with rt.sessions() as s, s.begin():
        user = await s.get(User, conv.user_id)
        appeal = await registry.register(
            s, user=user, conversation_id=None, channel="test", language="ru", appeal_type="complaint",
            agency="akimat", addressee="Акимат", surname="Петров", name="Иван", patronymic=None, iin=VALID_IIN,
            address="г. Алматы, ул. Толе би, 1", phone=None, email="p@example.kz", text="Не вывозят мусор месяц",
            attachments=[], consent=True)
        appeal.due_date = dt.date(2026, 11, 26)                      # due tomorrow
        number = appeal.number
    await deadline.say(f"Что с моим обращением {number}?")
    await deadline.say("/operator")
    rt.clock.advance(minutes=5)
    emergency = Chat(rt, "emergency")
    await emergency.say("/operator")
    out = await emergency.say("помогите, у соседей пожар, дым в подъезде!")
    assert "112" in text(out)
    rt.clock.advance(minutes=5)
    normal_late = Chat(rt, "late")
    await normal_late.say("/operator")
    await online(rt, "op1", "op2")                 # the console's heartbeat (online = seen in the last 5 min)
    async with rt.sessions() as s:
        queue = await list_queue(s, now=rt.clock(), desk=rt.desk)
    conv_ids = {(await c.conversation()).id: c.user for c in (normal_early, deadline, emergency, normal_late)}
    assert [conv_ids[i.conversation_id] for i in queue] == ["emergency", "deadline", "early", "late"]
    assert [i.priority_label for i in queue] == ["emergency", "deadline", "normal", "normal"]
    assert queue[1].appeal_number == number and queue[2].waiting_minutes == 15
    # the appeal's agency gives the conversation its own queue; places count per queue
    assert [i.queue for i in queue] == ["general", "akimat", "general", "general"]
    assert [i.position for i in queue] == [1, 1, 2, 3]
    # two operators online, nobody busy, H = 10 (no history): 1, 1, 1, ceil(10·(2+0+1−2)/2) = 5
    assert [i.estimate_minutes for i in queue] == [1, 1, 1, 5]
    # an operator serving only "health" does not count for "general"; one more in "general" does
    await online(rt, "op-health", queues=["health"])
    async with rt.sessions() as s:
        assert [i.estimate_minutes for i in await list_queue(s, queues=["general"], now=rt.clock(), desk=rt.desk)] \
            == [1, 1, 5]
    await call(rt, service.take, queue[0].conversation_id, "op1")   # one operator busy now
    async with rt.sessions() as s:
        general = await list_queue(s, queues=["general"], now=rt.clock(), desk=rt.desk)
    assert [i.estimate_minutes for i in general] == [1, 5]         # 0+1 < 2; ceil(10·(1+1+1−2)/2)
    await online(rt, "op3", queues=["general", "akimat"])
    async with rt.sessions() as s:
        general = await list_queue(s, queues=["general"], now=rt.clock(), desk=rt.desk)
    assert [i.estimate_minutes for i in general] == [1, 1]         # three online, one busy


async def test_handling_time_is_the_median_of_recent_closures(rt):
    durations = [4, 6, 20]
    for n, minutes in enumerate(durations):
        chat = Chat(rt, f"h{n}")
        await chat.say("/operator")
        conv = await chat.conversation()
        await call(rt, service.transfer, conv.id, by="sup", to_queue="health")
        await call(rt, service.take, conv.id, "op1")
        rt.clock.advance(minutes=minutes)
        await call(rt, service.close, conv.id, "op1", "answered")
    async with rt.sessions() as s:
        assert await handling_minutes(s, "health", now=rt.clock(), desk=rt.desk) == 6
        assert await handling_minutes(s, "education", now=rt.clock(), desk=rt.desk) == 6   # falls back to all queues
    rt.clock.advance(days=30)                                  # too old: the configured default
    async with rt.sessions() as s:
        assert await handling_minutes(s, "health", now=rt.clock(), desk=rt.desk) == 10


async def test_migration_matches_the_models(rt):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from bot.storage.models import Base

    def diff(sync_conn):
        mc = MigrationContext.configure(sync_conn, opts={"compare_type": True})
        return compare_metadata(mc, Base.metadata)

    async with rt.db.connect() as conn:
        changes = await conn.run_sync(diff)
    mine = {"handoffs", "feedback", "operator_presence", "conversations"}
    relevant = [c for c in changes if any(t in repr(c) for t in mine)]
    assert relevant == []

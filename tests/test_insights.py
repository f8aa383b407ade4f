"""Learning from traffic: answer statuses written by the dialogue, clusters of unanswered questions (Kazakh and
Russian together), the analytics tables and their CSV export, the editors' pages (roles, audit) and a browser
run — real engine, real SQLite database, real aiohttp app, real E5 embedder."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import re
from contextlib import contextmanager

import pytest
from sqlalchemy import select

from bot.dialogue.setup import build_runtime
from bot.editorial import insights
from bot.intake.deadlines import default_calendar
from bot.messages import Incoming
from bot.storage.db import make_engine, sessionmaker, upgrade
from bot.storage.models import Appeal, AppealEvent, Feedback, Message, User
from bot.storage.editorial import KbDraft
from bot.storage.staff import AuditLog
from bot.web.app import create_app

PASSWORD = "correct horse battery"
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')
LOCAL = insights.LOCAL_TZ

FISHING = [  # one unanswered question, paraphrased in Russian and Kazakh
    "Как получить лицензию на рыбалку?",
    "где оформить разрешение на рыбную ловлю",
    "Балық аулауға рұқсатты қалай аламын?",
    "Балық аулау лицензиясы қайда беріледі?",
]
OTHER_TOPIC = "Как перерегистрировать автомобиль после покупки?"


@pytest.fixture
def db_settings(small_settings, tmp_path):
    s = small_settings.model_copy(update={"database_url": f"sqlite+aiosqlite:///{tmp_path}/insights.db"})
    upgrade(s.db_url)
    return s


@pytest.fixture
async def rt(db_settings, small_assistant):
    runtime = await build_runtime(db_settings, small_assistant)
    yield runtime
    await runtime.close()


@contextmanager
def thresholds(assistant, answer: float, clarify: float):
    """The assistant's confidence thresholds for a while (the small corpus answers almost anything confidently;
    raising them is how an unanswerable question is produced deterministically)."""
    saved = assistant.settings
    assistant.settings = saved.model_copy(update={"answer_threshold": answer, "clarify_threshold": clarify})
    try:
        yield
    finally:
        assistant.settings = saved


class Chat:
    def __init__(self, rt, user, channel="test"):
        self.rt, self.user, self.channel = rt, user, channel

    async def say(self, text=None, button=None):
        return await self.rt.engine.handle(Incoming(user_id=self.user, channel=self.channel, text=text,
                                                    button=button))


def buttons(replies) -> list[str]:
    return [b.id for r in replies for b in r.buttons]


async def out_messages(rt, user: str) -> list[Message]:
    from bot.storage.models import Conversation

    async with rt.sessions() as s:
        return (await s.execute(
            select(Message).join(Conversation, Message.conversation_id == Conversation.id)
            .join(User, Conversation.user_id == User.id)
            .where(User.external_id == user, Message.direction == "out").order_by(Message.id))).scalars().all()


def since_yesterday() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=1)


# -- 1. answer statuses ---------------------------------------------------------------------------------------
async def test_each_kind_of_reply_records_its_status(rt, small_assistant):
    a = small_assistant
    out = await Chat(rt, "answered").say("Как получить ЭЦП?")
    no = [b for b in buttons(out) if b.startswith("fb:no:")]
    assert no
    await Chat(rt, "answered").say(button=no[0])
    await Chat(rt, "scope").say("Расскажи анекдот про политику")
    await Chat(rt, "human").say("/operator")
    card = await Chat(rt, "lamp").say("У нас на улице не горят фонари уже неделю, куда обращаться?")
    assert card[0].card is not None
    with thresholds(a, 1.01, 0.0):
        out = await Chat(rt, "clarify").say("ЭЦП")
        assert any(b.startswith("pick:") for b in buttons(out))
    with thresholds(a, 1.01, 1.01):
        await Chat(rt, "unsure").say(FISHING[0])
        await Chat(rt, "unsure").say(FISHING[1])  # the second in a row: handed to an operator

    statuses = {u: [m.answer_status for m in await out_messages(rt, u)]
                for u in ("answered", "scope", "human", "lamp", "clarify", "unsure")}
    assert statuses["answered"] == ["answered", "feedback_negative"]
    assert statuses["scope"] == ["out_of_scope"]
    assert set(statuses["human"]) == {"handed_off"}
    assert statuses["lamp"][0] == "answered"
    assert statuses["clarify"] == ["clarified"]
    assert statuses["unsure"][0] == "low_confidence"
    assert set(statuses["unsure"][1:]) == {"handed_off"}

    # the channel recommendation shown to the citizen is recorded with the reply that shows the card
    lamp = await out_messages(rt, "lamp")
    assert lamp[0].payload.get("channel") == "contact_center"
    assert all("channel" not in m.payload for m in await out_messages(rt, "answered"))
    # an unanswered question stays marked as such when a hand-off follows
    unsure = await out_messages(rt, "unsure")
    assert unsure[0].payload.get("unanswered") == "low_confidence"
    assert all(m.payload.get("unanswered") == "low_confidence" for m in unsure[1:])

    async with rt.sessions() as s:
        rows = await insights.turns(s, since_yesterday())
    by_text = {t.text: t for t in rows}
    assert by_text["Как получить ЭЦП?"].answered and by_text[FISHING[1]].unanswered == "low_confidence"
    assert by_text[FISHING[1]].status == "handed_off"


# -- 2. clusters --------------------------------------------------------------------------------------------------
async def test_clusters_put_paraphrases_together_in_both_languages(rt, small_assistant):
    with thresholds(small_assistant, 1.01, 1.01):
        for i, text in enumerate(FISHING):
            await Chat(rt, f"fish{i}").say(text)
        await Chat(rt, "car").say(OTHER_TOPIC)
    answered = await Chat(rt, "kids").say("Как получить ЭЦП?")  # answered, but the citizen is not helped
    await Chat(rt, "kids").say(button=[b for b in buttons(answered) if b.startswith("fb:no:")][0])
    await Chat(rt, "fine").say("У нас на улице не горят фонари уже неделю, куда обращаться?")  # answered, fine

    async with rt.sessions() as s:
        clusters = await insights.unanswered_clusters(s, small_assistant.embedder, since_yesterday())
    texts = [set(c.examples) for c in clusters]
    fishing = next(c for c in clusters if FISHING[0] in c.examples)
    assert set(FISHING) <= set(fishing.examples) and fishing.size == 4
    assert fishing.languages == {"ru": 2, "kk": 2}
    assert fishing.reasons == {"low_confidence": 4}
    assert clusters[0] is fishing  # the largest first
    assert OTHER_TOPIC not in fishing.examples and {OTHER_TOPIC} in texts
    negative = next(c for c in clusters if "Как получить ЭЦП?" in c.examples)
    assert negative.reasons == {"feedback_negative": 1} and negative.entries == {"faq.eds": 1}
    assert not any("фонари" in e for c in clusters for e in c.examples)  # a helped citizen is not listed
    assert sum(c.size for c in clusters) == 6

    async with rt.sessions() as s:
        repeated = await insights.unanswered_clusters(s, small_assistant.embedder, since_yesterday(), min_size=2)
        later = await insights.unanswered_clusters(s, small_assistant.embedder,
                                                   dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=1))
    assert [c.size for c in repeated] == [4] and later == []


# -- 3. analytics -------------------------------------------------------------------------------------------------
async def seed(rt, small_assistant) -> None:
    """Conversations through the engine, plus ratings and appeals in every deadline state."""
    out = await Chat(rt, "u1").say("Как получить ЭЦП?")
    await Chat(rt, "u1").say(button=[b for b in buttons(out) if b.startswith("fb:yes:")][0])
    out = await Chat(rt, "u2").say("Балабақшаға кезекке қалай тұрамын?")
    await Chat(rt, "u2").say(button=[b for b in buttons(out) if b.startswith("fb:no:")][0])
    await Chat(rt, "u3").say("У нас на улице не горят фонари уже неделю, куда обращаться?")
    await Chat(rt, "u4").say("/operator")
    await Chat(rt, "u5").say("Расскажи анекдот про политику")
    with thresholds(small_assistant, 1.01, 1.01):
        await Chat(rt, "u6").say(FISHING[0])

    async with rt.sessions() as s, s.begin():
        await seed_records(s)


async def seed_records(s) -> None:
    """Ratings (CSAT) and appeals in every deadline state, written directly."""
    today = dt.datetime.now(LOCAL).date()
    cal = default_calendar()

    def noon(d: dt.date) -> dt.datetime:
        return dt.datetime.combine(d, dt.time(12), LOCAL).astimezone(dt.timezone.utc)

    conv = (await s.execute(select(Message.conversation_id).limit(1))).scalar_one()
    for kind, rating in (("operator", 5), ("operator", 3), ("appeal", 4)):
        s.add(Feedback(conversation_id=conv, rating=rating, kind=kind))
    s.add(Feedback(conversation_id=conv, rating=None, kind="operator"))  # asked, never given: not counted
    user = (await s.execute(select(User).limit(1))).scalar_one()
    plan = [  # type, agency, status, due date, answered on
        ("statement", "akimat", "registered", today + dt.timedelta(days=30), None),
        ("statement", "akimat", "sent", cal.add_working_days(today, 2), None),
        ("complaint", "health", "in_progress", today - dt.timedelta(days=2), None),
        ("complaint", "health", "answered", today - dt.timedelta(days=5), today - dt.timedelta(days=10)),
        ("statement", "akimat", "closed", today - dt.timedelta(days=10), today - dt.timedelta(days=3)),
    ]
    for i, (kind, agency, status, due, done) in enumerate(plan):
        appeal = Appeal(number=f"ЕТ-2026-9{i:05d}", user_id=user.id, channel="test", language="ru",
                        appeal_type=kind, agency=agency, addressee="Акимат", surname="Иванова", name="Анна",
                        iin="900101300126", address="Астана", text="…", consent=True, status=status,
                        due_date=due)
        s.add(appeal)
        await s.flush()
        if done:
            s.add(AppealEvent(appeal_id=appeal.id, status="answered", actor="op", created_at=noon(done)))


async def test_analytics_numbers_on_a_seeded_database(rt, small_assistant):
    await seed(rt, small_assistant)
    async with rt.sessions() as s:
        data = await insights.report(s, since_yesterday())
    check_seeded_report(data)

    # a period that ends before the traffic has none of it
    async with rt.sessions() as s:
        empty = await insights.report(s, since_yesterday(), since_yesterday() + dt.timedelta(hours=1))
    assert empty["messages"] == [] and empty["answer_rate"][0]["questions"] == 0
    assert empty["answer_rate"][0]["answer_rate"] is None


async def test_analytics_on_postgresql(small_settings, small_assistant, pg_url):
    settings = small_settings.model_copy(update={"database_url": pg_url})
    await asyncio.to_thread(upgrade, settings.db_url)  # upgrade runs its own event loop
    runtime = await build_runtime(settings, small_assistant)
    try:
        await seed(runtime, small_assistant)
        async with runtime.sessions() as s:
            check_seeded_report(await insights.report(s, since_yesterday()))
            questions = insights.unanswered_questions(await insights.turns(s, since_yesterday()))
        assert {(q.text, frozenset(q.reasons)) for q in questions} == {
            (FISHING[0], frozenset({"low_confidence"})),
            ("Балабақшаға кезекке қалай тұрамын?", frozenset({"feedback_negative"}))}
    finally:
        await runtime.close()


def check_seeded_report(data: dict) -> None:
    per_lang = {}
    for r in data["messages"]:
        assert r["channel"] == "test" and r["day"] == dt.datetime.now(LOCAL).date().isoformat()
        per_lang[r["language"]] = per_lang.get(r["language"], 0) + r["messages"]
    assert per_lang == {"ru": 6, "kk": 2}  # u1 and u2 pressed a button too
    assert {r["status"]: r["turns"] for r in data["statuses"]} == {
        "answered": 3, "feedback_positive": 1, "feedback_negative": 1, "handed_off": 1, "out_of_scope": 1,
        "low_confidence": 1}
    assert data["answer_rate"] == [{"questions": 4, "answered": 3, "clarified": 0, "unanswered": 1,
                                    "answer_rate": 75.0, "unanswered_rate": 25.0}]
    assert {r["intent"]: r["turns"] for r in data["intents"]} == {"faq": 3, "channel": 1, "operator": 1,
                                                                   "out_of_scope": 1}
    entries = {r["entry_id"]: r for r in data["entries"]}
    assert entries["faq.eds"] == {"entry_id": "faq.eds", "answers": 1, "helpful": 1, "not_helpful": 0}
    assert entries["faq.kindergarten"]["not_helpful"] == 1 and entries["faq.street_lamp"]["answers"] == 1
    handoffs = {r["reason"]: r for r in data["handoffs"]}
    assert handoffs["citizen_request"]["handoffs"] == 1
    assert handoffs["all"] == {"reason": "all", "handoffs": 1, "conversations": 1, "rate": 16.7}  # 1 of 6
    csat = {r["kind"]: r for r in data["csat"]}
    assert csat["all"] == {"kind": "all", "ratings": 3, "average": 4.0, "satisfied": 66.7}
    assert csat["operator"]["average"] == 4.0 and csat["appeal"]["ratings"] == 1
    assert {r["appeal_type"]: r["appeals"] for r in data["appeal_types"]} == {"statement": 3, "complaint": 2}
    assert {r["agency"]: r["appeals"] for r in data["appeal_agencies"]} == {"akimat": 3, "health": 2}
    assert {r["state"]: r["appeals"] for r in data["appeal_deadlines"]} == {
        "answered_on_time": 1, "answered_late": 1, "in_time": 1, "due_soon": 1, "overdue": 1}
    # the card with the street-lamp answer, and the one offered with the unanswered fishing question
    assert {r["channel"]: r["recommendations"] for r in data["channels"]} == {"contact_center": 1, "egov_portal": 1}


def test_to_csv_round_trips():
    rows = [{"a": "x, \"y\"", "b": 1, "c": None}, {"a": "Қазақша", "b": 2.5, "c": "ok"}]
    parsed = list(csv.DictReader(io.StringIO(insights.to_csv(rows, ("a", "b", "c")))))
    assert parsed == [{"a": "x, \"y\"", "b": "1", "c": ""}, {"a": "Қазақша", "b": "2.5", "c": "ok"}]


# -- 4. pages -------------------------------------------------------------------------------------------------------
async def add_staff(settings, username: str, role: str) -> None:
    from bot.web.console.users import create_user

    engine = make_engine(settings.db_url)
    try:
        async with sessionmaker(engine)() as s, s.begin():
            await create_user(s, username, PASSWORD, role)
    finally:
        await engine.dispose()


async def login(client, username: str) -> None:
    page = await client.get("/operator/login")
    token = CSRF_RE.search(await page.text()).group(1)
    resp = await client.post("/operator/login", data={"csrf_token": token, "username": username,
                                                      "password": PASSWORD}, allow_redirects=False)
    assert resp.status == 303


async def test_pages_roles_charts_and_csv(aiohttp_client, rt, db_settings, small_assistant):
    await seed(rt, small_assistant)
    with thresholds(small_assistant, 1.01, 1.01):
        for i, text in enumerate(FISHING):
            await Chat(rt, f"fish{i}").say(text)
    await add_staff(db_settings, "olzhas", "operator")
    await add_staff(db_settings, "dana", "editor")
    pages = ("/operator/unanswered", "/operator/analytics", "/operator/analytics/statuses.csv")

    client = await aiohttp_client(create_app(db_settings, small_assistant, with_dialogue=False))
    for path in pages:  # anonymous: the login page
        resp = await client.get(path, allow_redirects=False)
        assert resp.status == 303 and resp.headers["Location"].startswith("/operator/login")
    await login(client, "olzhas")
    for path in pages:
        resp = await client.get(path)
        assert resp.status == 403, path
    home = await client.get("/operator")
    assert "/operator/analytics" not in await home.text()

    client = await aiohttp_client(create_app(db_settings, small_assistant, with_dialogue=False))
    await login(client, "dana")
    home = await (await client.get("/operator")).text()
    assert 'href="/operator/unanswered"' in home and 'href="/operator/analytics"' in home

    resp = await client.get("/operator/unanswered?days=7")
    html = await resp.text()
    assert resp.status == 200
    first = html.index('id="cluster-1"')
    cluster1 = html[first:html.index("</li>", html.index("cluster-meta", first))]
    for text in FISHING:  # the four paraphrases, first, as one group of 4 (Kazakh and Russian)
        assert text in html[first:html.index('id="cluster-2"')]
    assert '<strong class="cluster-size"' in cluster1 and ">5<" in cluster1  # + the question from the seed
    assert "Қазақша · 2" in cluster1 and "Русский · 3" in cluster1
    # each group can become phrasings of an entry or a new entry (the flow itself: tests/test_editorial.py)
    assert html.count('action="/operator/unanswered/phrasings') == html.count('class="cluster card"')
    token = CSRF_RE.search(html).group(1)
    resp = await client.post("/operator/unanswered/phrasings",
                             data={"csrf_token": token, "text": FISHING[0], "entry_id": "faq.nope"})
    assert resp.status == 200 and '<p class="flash"' in await resp.text()
    engine = make_engine(db_settings.db_url)
    async with sessionmaker(engine)() as s:  # nothing changed in the editors' working copy
        assert (await s.execute(select(KbDraft))).scalars().all() == []
    await engine.dispose()

    resp = await client.get("/operator/analytics?lang=kk")
    html = await resp.text()
    assert resp.status == 200 and "Аналитика" in html
    assert html.count("<svg") >= 5 and 'class="chart days"' in html and "style=" not in html
    assert "37,5 %" in html  # 3 of 8 questions answered: the seed's 4 and the 4 fishing questions
    csp = resp.headers["Content-Security-Policy"]
    assert "unsafe-inline" not in csp
    for name in insights.TABLES:
        assert f'href="/operator/analytics/{name}.csv?days=30"' in html

    async with rt.sessions() as s:
        data = await insights.report(s, since_yesterday())
    for name, columns in insights.TABLES.items():
        resp = await client.get(f"/operator/analytics/{name}.csv?days=30")
        assert resp.status == 200 and resp.content_type == "text/csv"
        assert resp.headers["Content-Disposition"].startswith(f'attachment; filename="estu-{name}-')
        body = (await resp.read()).decode("utf-8-sig")
        rows = list(csv.DictReader(io.StringIO(body)))
        assert tuple(csv.reader(io.StringIO(body)).__next__()) == columns
        expected = [{c: "" if r.get(c) is None else str(r[c]) for c in columns} for r in data[name]]
        assert rows == expected, name
    assert (await client.get("/operator/analytics/nothing.csv")).status == 404
    # odd period parameters are shown as a normal page, never a traceback
    for q in ("days=abc", "from=2026-13-45", "from=2030-01-01&to=2020-01-01", "days=5"):
        resp = await client.get(f"/operator/analytics?{q}")
        assert resp.status == 200 and "Traceback" not in await resp.text()

    engine = make_engine(db_settings.db_url)
    async with sessionmaker(engine)() as s:
        exports = (await s.execute(select(AuditLog).where(AuditLog.action == "insights.export"))).scalars().all()
    await engine.dispose()
    assert len(exports) == len(insights.TABLES) and {e.actor for e in exports} == {"dana"}
    assert {e.record_id for e in exports} == set(insights.TABLES)


# -- 5. browser ---------------------------------------------------------------------------------------------------
def test_browser_editor_sees_unanswered_clusters_and_charts(browser, small_settings, small_assistant, tmp_path):
    import json
    import urllib.request

    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    from tests.live import LiveServer, screenshot

    settings = small_settings.model_copy(update={"database_url": f"sqlite+aiosqlite:///{tmp_path}/browser.db"})
    wait = WebDriverWait(browser, 120)

    def post(base, body):
        req = urllib.request.Request(base + "/api/v1/messages", data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=120) as resp:
            return json.loads(resp.read())["replies"]

    with LiveServer(settings, small_assistant) as srv:
        post(srv.url, {"user_id": "web-a", "text": "Как получить ЭЦП?"})
        post(srv.url, {"user_id": "web-b", "text": "У нас на улице не горят фонари уже неделю, куда обращаться?"})
        post(srv.url, {"user_id": "web-c", "text": "Балабақшаға кезекке қалай тұрамын?"})
        post(srv.url, {"user_id": "web-d", "text": "/operator"})
        with thresholds(small_assistant, 1.01, 1.01):
            for i, text in enumerate(FISHING + [OTHER_TOPIC]):
                post(srv.url, {"user_id": f"web-fish-{i}", "text": text})

        async def prepare(app):
            from bot.web.app import RUNTIME
            from bot.web.console.users import create_user

            async with app[RUNTIME].sessions() as s, s.begin():
                await create_user(s, "dana", PASSWORD, "editor", display_name="Дана Омарова")
                await seed_records(s)  # ratings and appeals, so that every chart has something to show

        srv.call(prepare)
        browser.delete_all_cookies()
        browser.get(srv.url + "/operator/unanswered")
        wait.until(ec.presence_of_element_located((By.NAME, "username")))
        browser.find_element(By.NAME, "username").send_keys("dana")
        browser.find_element(By.NAME, "password").send_keys(PASSWORD)
        browser.find_element(By.CSS_SELECTOR, "form button.primary").click()
        wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "ol.clusters")))
        first = browser.find_element(By.ID, "cluster-1")
        assert first.find_element(By.CSS_SELECTOR, ".cluster-size").text == "4"
        for text in FISHING:
            assert text in first.text
        assert OTHER_TOPIC not in first.text
        screenshot(browser, "console-unanswered")

        browser.find_element(By.CSS_SELECTOR, "a.nav-analytics").click()
        wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "svg.chart.days")))
        charts = browser.find_elements(By.CSS_SELECTOR, "svg.chart")
        assert len(charts) >= 4 and all(c.size["width"] > 100 for c in charts)
        assert browser.find_elements(By.CSS_SELECTOR, "svg.chart.days rect.bar")
        assert browser.find_element(By.ID, "stat-messages").find_element(By.CSS_SELECTOR, "strong").text == "9"
        browser.set_window_size(1280, 2300)  # the whole page: figures, charts and tables
        try:
            screenshot(browser, "console-analytics")
        finally:
            browser.set_window_size(1280, 900)


async def test_no_answer_replies_are_unanswered_questions(rt):
    """``no_answer`` (retrieval found nothing at all: only with an empty index, so written here directly)."""
    from bot.storage.models import Conversation

    async with rt.sessions() as s, s.begin():
        user = User(channel="web", external_id="direct", language="kk")
        s.add(user)
        await s.flush()
        conv = Conversation(user_id=user.id, language="kk", state={})
        s.add(conv)
        await s.flush()
        s.add(Message(conversation_id=conv.id, direction="in", text_masked="Түнгі дүкен қашан ашылады?"))
        await s.flush()
        s.add(Message(conversation_id=conv.id, direction="out", text_masked="…", intent="faq",
                      answer_status="no_answer", payload={"buttons": [], "unanswered": "no_answer"}))
    async with rt.sessions() as s:
        questions = insights.unanswered_questions(await insights.turns(s, since_yesterday()))
        data = await insights.report(s, since_yesterday())
    assert [(q.text, q.language, q.reasons) for q in questions] == [
        ("Түнгі дүкен қашан ашылады?", "kk", {"no_answer"})]
    assert data["answer_rate"][0]["unanswered"] == 1 and data["statuses"][0]["status"] == "no_answer"

"""Operator pages for appeals and CSAT ratings (bot/web/console/appeals.py, ratings.py): the list with its
filters and deadline colours, one appeal with its status changes (through the real registry: event, outbox
notification in the citizen's language, audit row), bad input, CSRF, roles, the ratings figures — against the
real app with its dialogue runtime and a fresh SQLite database; and an operator in headless Chromium moving
an appeal filed in the web chat to "in progress", the citizen getting the notification."""

from __future__ import annotations

import datetime as dt
import json
import re
import urllib.request

import pytest
from sqlalchemy import func, select

from bot.intake import registry
from bot.intake.deadlines import default_calendar, due_date, today
from bot.storage.db import upgrade
from bot.storage.models import Appeal, AppealEvent, Conversation, Feedback, Outbox, User
from bot.storage.staff import AuditLog
from bot.web.app import RUNTIME, create_app
from bot.web.console.appeals import today

PASSWORD = "correct horse battery"
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')
VALID_IIN = "900101300126"
ADMIN_PAGES = ["/operator/admin/users", "/operator/admin/canned", "/operator/admin/audit", "/operator/admin/settings"]


# -- helpers -------------------------------------------------------------------------------------------------
@pytest.fixture
def appeals_settings(small_settings, tmp_path):
    s = small_settings.model_copy(update={"database_url": f"sqlite+aiosqlite:///{tmp_path}/appeals.db"})
    upgrade(s.db_url)
    return s


class Env:
    """The test client of the real app, its runtime (database, engine) and a few shortcuts."""

    def __init__(self, client, runtime) -> None:
        self.client, self.rt = client, runtime

    # the citizen, through the web chat API
    async def say(self, user_id: str, text: str | None = None, button: str | None = None) -> list[dict]:
        body = {"user_id": user_id, **({"text": text} if text is not None else {}),
                **({"button": button} if button else {})}
        resp = await self.client.post("/api/v1/messages", json=body)
        assert resp.status == 200, await resp.text()
        return (await resp.json())["replies"]

    async def inbox(self, user_id: str) -> list[str]:
        resp = await self.client.get("/api/v1/notifications", params={"user_id": user_id})
        assert resp.status == 200
        return [r["text"] for r in (await resp.json())["replies"]]

    async def file(self, user_id: str, lang: str = "ru", *, agency: str | None = "akimat",
                   appeal_type: str = "complaint", addressee: str | None = None, due: dt.date | None = None,
                   attachments: list | None = None, phone: str | None = "+77011234567",
                   email: str | None = None, status: str | None = None) -> str:
        """A web-chat citizen (created by talking to the bot) files an appeal through the real registry."""
        await self.say(user_id, "Здравствуйте" if lang == "ru" else "Сәлеметсіз бе")
        async with self.rt.sessions() as s, s.begin():
            user = (await s.execute(select(User).where(User.channel == "web", User.external_id == user_id))
                    ).scalar_one()
            conv = (await s.execute(select(Conversation).where(Conversation.user_id == user.id)
                                    .order_by(Conversation.id.desc()).limit(1))).scalar_one()
            appeal = await registry.register(
                s, user=user, conversation_id=conv.id, channel="web", language=lang, appeal_type=appeal_type,
                agency=agency, addressee=addressee or agency or "Акимат района", surname="Иванова", name="Анна",
                patronymic=None, iin=VALID_IIN, address="г. Астана, ул. Абая, д. 10, кв. 5", phone=phone,
                email=email, text="Во дворе полгода не ремонтируют дорогу, сплошные ямы.",
                attachments=attachments or [], consent=True)
            if due is not None:
                appeal.due_date = due
            if status is not None:
                await registry.set_status(s, appeal, status, actor="test", note="Ответ дан письмом.")
            return appeal.number

    # the database
    async def all(self, model, *where, order=None):
        async with self.rt.sessions() as s:
            stmt = select(model).where(*where).order_by(order if order is not None else model.id)
            return (await s.execute(stmt)).scalars().all()

    async def count(self, model, *where) -> int:
        async with self.rt.sessions() as s:
            return (await s.execute(select(func.count()).select_from(model).where(*where))).scalar_one()

    async def appeal(self, number: str) -> Appeal:
        async with self.rt.sessions() as s:
            return (await s.execute(select(Appeal).where(Appeal.number == number))).scalar_one()

    async def notices(self, number: str) -> list[str]:
        rows = await self.all(Outbox, Outbox.kind == "notify", Outbox.idempotency_key.like(f"status-{number}-%"))
        return [r.payload["text"] for r in rows]

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

    async def page(self, path: str, params: dict | None = None) -> tuple[str, str]:
        resp = await self.client.get(path, params=params)
        assert resp.status == 200, path
        html = await resp.text()
        return html, CSRF_RE.search(html).group(1)

    async def post(self, path: str, data: dict | None = None, csrf: str | None = None):
        data = dict(data or {})
        if csrf:
            data["csrf_token"] = csrf
        return await self.client.post(path, data=data, allow_redirects=False)


@pytest.fixture
async def env(aiohttp_client, appeals_settings, small_assistant):
    app = create_app(appeals_settings, small_assistant)
    client = await aiohttp_client(app)
    e = Env(client, app[RUNTIME])
    await e.add_user("aigerim", "operator", display_name="Айгерим Сапарова")
    await e.add_user("root", "admin", display_name="Админ")
    return e


def url(number: str) -> str:
    from urllib.parse import quote

    return "/operator/appeals/" + quote(number)


def listed(html: str) -> list[str]:
    """The appeal numbers in the list, in their order."""
    return re.findall(r'class="number">([^<]+)</a>', html)


def row_of(html: str, number: str) -> str:
    for m in re.finditer(r"<tr id=\"appeal-\d+\" class=\"([^\"]+)\">(.*?)</tr>", html, re.S):
        if f">{number}</a>" in m.group(2):
            return m.group(1) + " " + m.group(2)
    raise AssertionError(f"{number} is not listed")


def error_of(html: str) -> str:
    m = re.search(r'<p class="error" role="alert" id="action-error">(.*?)</p>', html, re.S)
    assert m, "no inline error shown"
    return m.group(1).strip()


def no_traceback(html: str) -> None:
    assert "Traceback" not in html and 'File "' not in html


# -- the list --------------------------------------------------------------------------------------------------
async def test_list_sorts_by_deadline_colours_and_masks(env):
    on = today()
    soon = default_calendar().add_working_days(on, 1)
    late = await env.file("web-a", due=on - dt.timedelta(days=3))
    near = await env.file("web-b", "kk", agency="health", appeal_type="proposal", addressee="Денсаулық сақтау басқармасы",
                          due=soon)
    far = await env.file("web-c", due=on + dt.timedelta(days=40))
    done = await env.file("web-d", due=on - dt.timedelta(days=10), status="answered")
    await env.login("aigerim")
    html, _ = await env.page("/operator/appeals")
    # open appeals only, the soonest deadline first
    assert listed(html) == [late, near, far]
    # colour and a text label: overdue, due soon; none for the far one
    row = row_of(html, late)
    assert "deadline-overdue" in row and "Просрочено" in row and "просрочено на 3 дн." in row
    row = row_of(html, near)
    assert "deadline-soon" in row and "Срок скоро" in row and "осталось рабочих дней: 1" in row
    row = row_of(html, far)
    assert "deadline-ok" in row and "Просрочено" not in row and "Срок скоро" not in row
    # the IIN is masked
    assert VALID_IIN not in html and "••26" in html
    # an answered appeal is not overdue, whatever its date
    html, _ = await env.page("/operator/appeals", {"status": "all"})
    assert listed(html) == [done, late, near, far]
    assert "deadline-done" in row_of(html, done) and "Просрочено" not in row_of(html, done)


async def test_list_filters(env, monkeypatch):
    on = today()
    soon = default_calendar().add_working_days(on, 2)
    late = await env.file("web-a", due=on - dt.timedelta(days=1))
    near = await env.file("web-b", "kk", agency="health", appeal_type="proposal", due=soon)
    far = await env.file("web-c", appeal_type="request", due=on + dt.timedelta(days=40))
    done = await env.file("web-d", status="answered")
    await env.login("aigerim")

    async def numbers(**params) -> list[str]:
        html, _ = await env.page("/operator/appeals", {k: str(v) for k, v in params.items()})
        no_traceback(html)
        return listed(html)

    assert await numbers(deadline="overdue") == [late]
    assert await numbers(deadline="soon", within=1) == []
    assert await numbers(deadline="soon", within=2) == [near]
    assert await numbers(deadline="soon", within=60) == [near, far]
    assert await numbers(deadline="overdue", status="all") == [late]  # an answered appeal is never overdue
    assert await numbers(agency="health") == [near]
    assert await numbers(type="request") == [far]
    assert await numbers(status="answered") == [done]
    assert await numbers(status="all", agency="akimat", type="complaint") == [late, done]
    # the number, in any spelling or in part
    assert await numbers(q=near) == [near]
    assert await numbers(q=near.replace("ЕТ", "et").replace("-", " ")) == [near]
    assert await numbers(q=far[-6:]) == [far]
    assert await numbers(q="ЕТ-1999-000001") == []
    # nonsense values fall back to the defaults instead of failing
    assert await numbers(status="deleted", deadline="yesterday", within="many", page="x", agency="nasa") == \
        [late, near, far]
    # paging keeps the filters
    monkeypatch.setattr("bot.web.console.appeals.PAGE_SIZE", 2)
    html, _ = await env.page("/operator/appeals", {"status": "all"})
    assert listed(html) == [late, near] and "Страница 1 из 2" in html
    next_link = re.search(r'href="([^"]+)" rel="next"', html).group(1).replace("&amp;", "&")
    assert "status=all" in next_link and "page=2" in next_link
    html, _ = await env.page(next_link)
    assert listed(html) == [done, far]  # answered, due in 15 working days; then the one due in 40 days


async def test_an_operator_with_an_agency_sees_it_first(env):
    a = await env.file("web-a", agency="akimat")
    h = await env.file("web-b", agency="health")
    await env.add_user("dana", "operator", agency="health")
    await env.login("dana")
    html, _ = await env.page("/operator/appeals")
    assert listed(html) == [h]
    html, _ = await env.page("/operator/appeals", {"agency": "all"})
    assert set(listed(html)) == {a, h}


# -- one appeal ---------------------------------------------------------------------------------------------
async def test_detail_masks_the_iin_and_reveal_is_audited(env):
    number = await env.file("web-a", email="anna@example.kz",
                            attachments=[{"kind": "photo", "file_id": "AgACAgIAAxk-photo-1", "name": "yama.jpg",
                                          "mime_type": "image/jpeg"}])
    await env.login("aigerim")
    html, csrf = await env.page(url(number))
    assert f"Обращение {number}" in html and "сплошные ямы" in html and "ул. Абая, д. 10" in html
    assert "AgACAgIAAxk-photo-1" in html and "yama.jpg" in html
    assert "Зарегистрировано" in html and "Иванова Анна" in html
    assert VALID_IIN not in html and "+77011234567" not in html and "anna@example.kz" not in html
    assert await env.count(AuditLog, AuditLog.action == "appeal.view") == 1
    # reveal needs the form's token
    assert (await env.post(url(number) + "/reveal")).status == 403
    assert await env.count(AuditLog, AuditLog.action == "appeal.reveal_iin") == 0
    resp = await env.post(url(number) + "/reveal", csrf=csrf)
    html = await resp.text()
    assert resp.status == 200 and VALID_IIN in html and "+77011234567" in html and "anna@example.kz" in html
    rows = await env.all(AuditLog, AuditLog.action == "appeal.reveal_iin")
    assert [(r.actor, r.record_type, r.record_id, r.detail["fields"]) for r in rows] == \
        [("aigerim", "appeal", number, ["iin", "phone", "email"])]
    # the next plain view is masked again; the full IIN never reaches the audit log
    html, _ = await env.page(url(number))
    assert VALID_IIN not in html
    assert VALID_IIN not in json.dumps([r.detail for r in await env.all(AuditLog)], ensure_ascii=False)
    # a Latin spelling of the number finds it; an unknown one is a 404 page
    assert (await env.client.get("/operator/appeals/ET-" + number[3:])).status == 200
    resp = await env.client.get("/operator/appeals/ЕТ-1999-000001")
    assert resp.status == 404 and "Такого обращения нет" in await resp.text()


async def test_only_allowed_transitions_are_offered(env):
    number = await env.file("web-a", appeal_type="statement")
    await env.login("aigerim")
    html, _ = await env.page(url(number))
    offered = re.findall(r'name="status" value="(\w+)"', html)
    assert offered == ["sent", "in_progress", "answered", "extended", "redirected", "rejected", "closed"]
    # a complaint's term cannot be extended (APPC Art. 99): no such action, and the page says why
    complaint = await env.file("web-a2", appeal_type="complaint")
    html, _ = await env.page(url(complaint))
    assert re.findall(r'name="status" value="(\w+)"', html) == ["sent", "in_progress", "answered", "redirected",
                                                                "rejected", "closed"]
    assert "Закон не допускает продления срока" in html and "ст. 99" in html
    answered = await env.file("web-b", status="answered")
    html, _ = await env.page(url(answered))
    assert re.findall(r'name="status" value="(\w+)"', html) == ["closed"]
    closed = await env.file("web-c", status="answered")
    async with env.rt.sessions() as s, s.begin():
        appeal = (await s.execute(select(Appeal).where(Appeal.number == closed))).scalar_one()
        await registry.set_status(s, appeal, "closed", actor="test")
    html, _ = await env.page(url(closed))
    assert re.findall(r'name="status" value="(\w+)"', html) == []
    assert "статус больше не меняется" in html


ACTIONS = [
    ("ru", "sent", {}, None),
    ("kk", "in_progress", {}, None),
    ("ru", "answered", {"answer": "Ремонт дороги включён в план на май."}, "Ремонт дороги включён в план на май."),
    ("kk", "extended", {"reason": "Қосымша тексеру қажет."}, "Жаңа мерзім"),
    ("ru", "redirected", {"redirected_to": "Управление пассажирского транспорта", "reason": "Это их вопрос."},
     "Управление пассажирского транспорта"),
    ("kk", "rejected", {"reason": "Өтініште мекенжай көрсетілмеген."}, "мекенжай көрсетілмеген"),
    ("ru", "closed", {"note": "Спасибо за обращение."}, "Спасибо за обращение."),
]


@pytest.mark.parametrize("lang,status,data,expected", ACTIONS, ids=[a[1] for a in ACTIONS])
async def test_each_action_changes_the_status_notifies_and_audits(env, lang, status, data, expected):
    citizen = f"web-{status}"
    number = await env.file(citizen, lang, appeal_type="statement" if status == "extended" else "complaint")
    before = await env.appeal(number)
    data = dict(data)
    if status == "extended":
        new = before.due_date + dt.timedelta(days=7)
        data["new_due_date"] = new.isoformat()
    await env.inbox(citizen)  # nothing pending before the change
    await env.login("aigerim")
    _, csrf = await env.page(url(number))
    resp = await env.post(url(number) + "/status", {"status": status, "expected": "registered", **data}, csrf=csrf)
    assert resp.status == 303 and resp.headers["Location"] == url(number)
    after = await env.appeal(number)
    assert after.status == status
    events = await env.all(AppealEvent, AppealEvent.appeal_id == after.id)
    assert [(e.status, e.actor) for e in events] == [("registered", "estu"), (status, "aigerim")]
    if status == "extended":
        assert after.due_date == new and events[-1].new_due_date == new
    if status == "redirected":  # the term starts anew at the competent body (APPC Art. 76 §2)
        assert events[-1].redirected_to == "Управление пассажирского транспорта"
        assert after.due_date == events[-1].new_due_date == due_date(today(), "complaint", redirected=True)
        assert f"{after.due_date:%d.%m.%Y}" in (await env.notices(number))[0]
    # one notification, in the citizen's language
    notices = await env.notices(number)
    assert len(notices) == 1
    assert registry.status_label(status, lang) in notices[0] and number in notices[0]
    if expected:
        assert expected in notices[0]
    other = "kk" if lang == "ru" else "ru"
    assert registry.status_label(status, other) not in notices[0]
    # … and it reaches the web-chat citizen
    inbox = await env.inbox(citizen)
    assert any(number in t and registry.status_label(status, lang) in t for t in inbox)
    # audited, in the same transaction
    rows = await env.all(AuditLog, AuditLog.action == "appeal.status")
    assert [(r.actor, r.record_id, r.detail["from"], r.detail["to"]) for r in rows] == \
        [("aigerim", number, "registered", status)]
    # the page shows the new status, the history and the flash
    html, _ = await env.page(url(number))
    assert "Статус изменён" in html and html.count('class="event ev-') == 2
    if status == "answered":  # the registry asks the citizen for a CSAT rating
        assert await env.count(Feedback, Feedback.kind == "appeal", Feedback.appeal_id == after.id) == 1


async def test_answer_then_the_citizens_rating_reaches_the_ratings_page(env):
    number = await env.file("web-r", agency="health")
    await env.login("aigerim")
    _, csrf = await env.page(url(number))
    resp = await env.post(url(number) + "/status", {"status": "answered", "answer": "Врач назначен."}, csrf=csrf)
    assert resp.status == 303
    inbox = " ".join(await env.inbox("web-r"))
    assert "Врач назначен." in inbox and "от 1" in inbox  # the answer, then the rating request
    replies = await env.say("web-r", button="csat:4")
    assert "Спасибо" in replies[0]["text"]
    html, _ = await env.page("/operator/ratings")
    row = re.search(r'<tr id="ag-health">(.*?)</tr>', html, re.S).group(1)
    assert re.search(r'class="num count">1<', row) and "4,00" in row


BAD = [
    ("answered", {}, "Напишите ответ"),
    ("answered", {"answer": "   "}, "Напишите ответ"),
    ("rejected", {"reason": ""}, "Укажите причину"),
    ("redirected", {"reason": "Не наш вопрос."}, "Укажите, куда перенаправлено"),
    ("redirected", {"redirected_to": "Акимат города"}, "Укажите причину"),
    ("extended", {"reason": "Нужна проверка.", "new_due_date": "31.12.2026"}, "ГГГГ-ММ-ДД"),
    ("extended", {"reason": "Нужна проверка.", "new_due_date": "due"}, "позже текущего срока"),
    ("extended", {"reason": "Нужна проверка.", "new_due_date": "cap+1"}, "не может быть позже"),
    ("extended", {"new_due_date": "due+1"}, "Укажите причину"),
    ("deleted", {}, "Выберите действие"),
    ("answered", {"answer": "x" * 4001}, "не больше 4000 символов"),
]


@pytest.mark.parametrize("status,data,message", BAD, ids=[f"{b[0]}-{i}" for i, b in enumerate(BAD)])
async def test_bad_input_shows_an_error_and_changes_nothing(env, status, data, message):
    number = await env.file("web-bad", appeal_type="statement")
    appeal = await env.appeal(number)
    dates = {"due": appeal.due_date, "due+1": appeal.due_date + dt.timedelta(days=1),
             "cap+1": registry.latest_extension(appeal) + dt.timedelta(days=1)}
    data = {k: (dates[v].isoformat() if v in dates else v) for k, v in data.items()}
    await env.login("aigerim")
    _, csrf = await env.page(url(number))
    resp = await env.post(url(number) + "/status", {"status": status, **data}, csrf=csrf)
    html = await resp.text()
    assert resp.status == 400
    assert message in error_of(html)
    no_traceback(html)
    if data.get("reason", "").strip():
        assert data["reason"] in html  # what the operator typed is kept
    await _unchanged(env, number, appeal)


async def _unchanged(env, number: str, before: Appeal) -> None:
    after = await env.appeal(number)
    assert (after.status, after.due_date) == (before.status, before.due_date)
    assert await env.count(AppealEvent, AppealEvent.appeal_id == after.id) == 1
    assert await env.notices(number) == []
    assert await env.count(AuditLog, AuditLog.action == "appeal.status") == 0


async def test_a_complaint_cannot_be_extended(env):
    number = await env.file("web-cx", appeal_type="complaint")
    before = await env.appeal(number)
    await env.login("aigerim")
    _, csrf = await env.page(url(number))
    new = (before.due_date + dt.timedelta(days=5)).isoformat()
    resp = await env.post(url(number) + "/status", {"status": "extended", "reason": "Нужна проверка.",
                                                    "new_due_date": new}, csrf=csrf)
    assert resp.status == 409
    assert "не допускает продления" in error_of(await resp.text())
    await _unchanged(env, number, before)


async def test_a_transition_the_registry_forbids_is_refused(env):
    number = await env.file("web-x", status="answered")
    before = await env.appeal(number)
    await env.login("aigerim")
    _, csrf = await env.page(url(number))
    for status in ("in_progress", "rejected", "extended"):
        resp = await env.post(url(number) + "/status", {"status": status, "reason": "x", "new_due_date": "2099-01-01"},
                              csrf=csrf)
        assert resp.status == 409
        assert "невозможно" in error_of(await resp.text()) and "«Дан ответ»" in error_of(await resp.text())
    after = await env.appeal(number)
    assert after.status == "answered"
    assert await env.count(AppealEvent, AppealEvent.appeal_id == after.id) == 2  # registered, answered
    assert len(await env.notices(number)) == 1  # the answer's, from the set-up
    assert await env.count(AuditLog, AuditLog.action == "appeal.status") == 0
    assert before.due_date == after.due_date


async def test_a_stale_form_is_refused(env):
    number = await env.file("web-s")
    await env.login("aigerim")
    _, csrf = await env.page(url(number))
    async with env.rt.sessions() as s, s.begin():  # a colleague moves it meanwhile
        appeal = (await s.execute(select(Appeal).where(Appeal.number == number))).scalar_one()
        await registry.set_status(s, appeal, "in_progress", actor="erlan")
    resp = await env.post(url(number) + "/status", {"status": "sent", "expected": "registered"}, csrf=csrf)
    assert resp.status == 409 and "изменилось" in error_of(await resp.text())
    assert (await env.appeal(number)).status == "in_progress"


async def test_without_csrf_nothing_changes(env):
    number = await env.file("web-c")
    before = await env.appeal(number)
    await env.login("aigerim")
    for data in ({"status": "in_progress"}, {"status": "in_progress", "csrf_token": "x" * 43}):
        resp = await env.client.post(url(number) + "/status", data=data, allow_redirects=False)
        assert resp.status == 403
        no_traceback(await resp.text())
    await _unchanged(env, number, before)


# -- roles ---------------------------------------------------------------------------------------------------
async def test_roles(env):
    number = await env.file("web-a")
    # anonymous: to the login page
    resp = await env.client.get("/operator/appeals", allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"].startswith("/operator/login")
    # a plain operator: appeals and ratings yes, admin pages no
    await env.login("aigerim")
    for path in ("/operator/appeals", url(number), "/operator/ratings"):
        assert (await env.client.get(path)).status == 200, path
    for path in ADMIN_PAGES:
        resp = await env.client.get(path)
        assert resp.status == 403, path
        no_traceback(await resp.text())
    home = await (await env.client.get("/operator")).text()
    assert 'href="/operator/appeals"' in home and 'href="/operator/ratings"' in home
    assert "/operator/admin/users" not in home
    # an editor: none of these
    await env.add_user("erbol", "editor")
    await env.login("erbol")
    for path in ("/operator/appeals", url(number), "/operator/ratings"):
        assert (await env.client.get(path)).status == 403, path
    _, csrf = await env.page("/operator/account")
    resp = await env.post(url(number) + "/status", {"status": "in_progress"}, csrf=csrf)
    assert resp.status == 403 and (await env.appeal(number)).status == "registered"
    # an administrator: everything
    await env.login("root")
    for path in ("/operator/appeals", url(number), "/operator/ratings", *ADMIN_PAGES):
        assert (await env.client.get(path)).status == 200, path


async def test_pages_in_kazakh(env):
    number = await env.file("web-k", "kk", due=today() - dt.timedelta(days=2))
    await env.login("aigerim")
    html, _ = await env.page("/operator/appeals", {"lang": "kk"})
    assert "Мерзімі өтті" in html and "2 күнге кешікті" in html and "Өтініш беруші" in html
    html, _ = await env.page(url(number))
    assert "Мәртебені өзгерту" in html and "Тіркелді" in html
    html, _ = await env.page("/operator/ratings")
    assert "Операторлар бойынша" in html


# -- ratings ---------------------------------------------------------------------------------------------------
async def seed_feedback(env) -> None:
    """Ratings asked at various times: see the expected figures in the test below."""
    await env.say("web-fb", "Здравствуйте")
    now = dt.datetime.now(dt.timezone.utc)
    days = dt.timedelta(days=1)
    async with env.rt.sessions() as s, s.begin():
        conv = (await s.execute(select(Conversation.id).join(User).where(User.external_id == "web-fb"))).scalar_one()
        rows = [
            ("operator", "aigerim", "akimat", 5, 1), ("operator", "aigerim", "akimat", 4, 2),
            ("operator", "aigerim", None, 2, 3), ("operator", "erlan", None, 5, 4),
            ("appeal", None, "health", 3, 5), ("appeal", None, "health", 5, 6),
            ("operator", "aigerim", None, None, 1),  # asked, never answered: not counted
            ("operator", "aigerim", "akimat", 1, 60),  # only in the 90-day view
            ("appeal", None, "health", 1, 100),  # in neither
        ]
        for kind, operator, agency, rating, age in rows:
            s.add(Feedback(conversation_id=conv, kind=kind, operator=operator, agency=agency, rating=rating,
                           created_at=now - age * days))
        s.add(Feedback(conversation_id=conv, entry_id="faq.eds", helpful=True, created_at=now))  # not CSAT


def cells(html: str, row_id: str) -> list[str]:
    m = re.search(rf'<tr id="{row_id}">(.*?)</tr>', html, re.S)
    assert m, f"no row {row_id}"
    return [re.sub(r"<[^>]+>", " ", c).split()[0] if c.strip() else "" for c in
            re.findall(r'class="num[^"]*">(.*?)</td>', m.group(1), re.S)]


async def test_ratings_per_operator_and_agency(env):
    await seed_feedback(env)
    await env.login("aigerim")
    html, _ = await env.page("/operator/ratings")
    # overall: 5 4 2 5 3 5 → 6 ratings, 4.00, 4 of 6 satisfied
    overall = re.search(r'<li class="stat card overall">(.*?)</li>', html, re.S).group(1)
    assert "4,00" in overall and "оценок: 6" in overall and "довольны 67 %" in overall
    assert cells(html, "op-aigerim") == ["3", "3,67", "67"]
    assert cells(html, "op-erlan") == ["1", "5,00", "100"]
    assert "Айгерим Сапарова" in html
    assert cells(html, "ag-akimat") == ["2", "4,50", "100", "2", "0"]
    assert cells(html, "ag-health") == ["2", "4,00", "50", "0", "2"]
    assert cells(html, "ag-none") == ["2", "3,50", "50", "2", "0"]
    html, _ = await env.page("/operator/ratings", {"days": "90"})
    assert 'class="period-90 current"' in html
    assert cells(html, "op-aigerim") == ["4", "3,00", "50"]
    assert cells(html, "ag-akimat") == ["3", "3,33", "67", "3", "0"]
    assert cells(html, "ag-health") == ["2", "4,00", "50", "0", "2"]
    # an unknown period falls back to 30 days
    html, _ = await env.page("/operator/ratings", {"days": "7"})
    assert 'class="period-30 current"' in html and cells(html, "op-aigerim") == ["3", "3,67", "67"]


async def test_ratings_page_without_ratings(env):
    await env.login("aigerim")
    html, _ = await env.page("/operator/ratings")
    assert html.count("За этот период оценок нет.") == 2 and "оценок: 0" in html


# -- translations ----------------------------------------------------------------------------------------------
def test_every_string_is_translated():
    """Every msgid of these pages (templates, labels, errors, flashes) is in both console catalogues."""
    from pathlib import Path

    from bot.i18n import catalog
    from bot.web.console import appeals, ratings

    root = Path(__file__).resolve().parent.parent / "bot" / "web" / "templates" / "console"
    msgids = set()
    for name in ("appeals.html", "appeal.html", "ratings.html"):
        text = (root / name).read_text(encoding="utf-8")
        msgids |= set(re.findall(r'_\(\s*"([^"]+)"', text)) | set(re.findall(r"_\(\s*'([^']+)'", text))
    for mapping in (appeals.STATUS_LABELS, appeals.TYPE_LABELS, appeals.CHANNELS, appeals.LANGUAGE_NAMES,
                    appeals.ACTION_LABELS):
        msgids |= set(mapping.values())
    for module in (appeals, ratings):
        source = Path(module.__file__).read_text(encoding="utf-8")
        msgids |= set(re.findall(r'InputError\(\s*"([^"]+)"', source)) | set(re.findall(r'flash="([^"]+)"', source))
        msgids |= set(re.findall(r'error_page\(request, \d+, "([^"]+)"', source))
        msgids |= {i.label for i in module.nav} | {i.description for i in module.nav}
    assert len(msgids) > 100
    for lang in ("kk", "ru"):
        missing = sorted(m for m in msgids if m not in catalog(lang, "console"))
        assert missing == [], f"{lang}: {missing}"


# -- the browser ------------------------------------------------------------------------------------------------
def _post_json(base: str, path: str, body: dict) -> dict:
    req = urllib.request.Request(base + path, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=120) as resp:
        return json.loads(resp.read())


def _get_json(base: str, path: str) -> dict:
    with urllib.request.urlopen(base + path, timeout=120) as resp:
        return json.loads(resp.read())


def test_browser_operator_moves_a_web_chat_appeal_to_in_progress(browser, small_settings, small_assistant, tmp_path):
    from urllib.parse import quote

    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    from tests.live import LiveServer, screenshot

    settings = small_settings.model_copy(update={"database_url": f"sqlite+aiosqlite:///{tmp_path}/browser.db"})
    upgrade(settings.db_url)
    wait = WebDriverWait(browser, 60)
    citizen = "web-7f3a2c"
    with LiveServer(settings, small_assistant) as srv:
        # a citizen files a complaint in the web chat, step by step
        def say(text=None, button=None):
            body = {"user_id": citizen, **({"text": text} if text else {}), **({"button": button} if button else {})}
            return _post_json(srv.url, "/api/v1/messages", body)["replies"]

        say("Хочу подать жалобу на акимат: во дворе полгода не ремонтируют дорогу, сплошные ямы, машины ломаются")
        say(button="type:complaint")
        say(button="agency:akimat")
        for step in ("Иванова", "Анна"):
            say(step)
        say(button="form:skip")
        for step in (VALID_IIN, "г. Астана, ул. Абая, д. 10, кв. 5", "+7 701 123 45 67"):
            say(step)
        say(button="form:done")
        say(button="form:yes")
        done = say(button="form:confirm")
        number = re.search(r"ЕТ-\d{4}-\d{6}", " ".join(r["text"] for r in done)).group(0)

        async def prepare(app):
            from bot.web.console.users import create_user

            on = today()
            async with app[RUNTIME].sessions() as s, s.begin():
                await create_user(s, "aigerim", PASSWORD, "operator", display_name="Айгерим Сапарова")
                # the citizen's appeal is due soon; a few more appeals from other citizens fill the list
                appeal = (await s.execute(select(Appeal).where(Appeal.number == number))).scalar_one()
                appeal.addressee = "Акимат города Астаны"
                appeal.due_date = default_calendar().add_working_days(on, 2)
                others = [
                    ("Сейтқали", "kk", "health", "complaint", "Астана қаласының денсаулық сақтау басқармасы",
                     on - dt.timedelta(days=2)),
                    ("Петров", "ru", "education", "statement", "Управление образования города Алматы",
                     default_calendar().add_working_days(on, 1)),
                    ("Нұрланова", "kk", "akimat", "proposal", "Алматы қаласының әкімдігі", on + dt.timedelta(days=9)),
                    ("Ким", "ru", "labour_social", "request", "Департамент труда и социальной защиты",
                     on + dt.timedelta(days=16)),
                ]
                for i, (surname, lang, agency, kind, addressee, due) in enumerate(others):
                    user = User(channel="telegram", external_id=str(9100 + i), language=lang)
                    s.add(user)
                    await s.flush()
                    other = await registry.register(
                        s, user=user, conversation_id=None, channel="telegram", language=lang, appeal_type=kind,
                        agency=agency, addressee=addressee, surname=surname, name="Айжан", patronymic=None,
                        iin=VALID_IIN, address="г. Алматы", phone=None, email=None, text="…", attachments=[],
                        consent=True)
                    other.due_date = due

        srv.call(prepare)
        assert _get_json(srv.url, f"/api/v1/notifications?user_id={citizen}")["replies"] == []

        # the operator logs in, opens the list: the overdue one first, then the citizen's is marked "due soon"
        browser.delete_all_cookies()
        browser.get(srv.url + "/operator/appeals")
        wait.until(ec.presence_of_element_located((By.NAME, "username")))
        browser.find_element(By.NAME, "username").send_keys("aigerim")
        browser.find_element(By.NAME, "password").send_keys(PASSWORD)
        browser.find_element(By.CSS_SELECTOR, "form button.primary").click()
        wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "table.appeals-list")))
        assert browser.current_url.endswith("/operator/appeals")
        rows = browser.find_elements(By.CSS_SELECTOR, "table.appeals-list tbody tr")
        assert len(rows) == 5 and "deadline-overdue" in rows[0].get_attribute("class")
        row = next(r for r in rows if number in r.text)
        assert "deadline-soon" in row.get_attribute("class") and "Срок скоро" in row.text
        assert VALID_IIN not in browser.find_element(By.TAG_NAME, "body").text
        screenshot(browser, "console-appeals")

        # opens the citizen's appeal and marks it "in progress"
        row.find_element(By.CSS_SELECTOR, "a.number").click()
        wait.until(ec.presence_of_element_located((By.ID, "appeal-status")))
        assert browser.current_url.endswith("/operator/appeals/" + quote(number))
        assert "сплошные ямы" in browser.find_element(By.CSS_SELECTOR, ".appeal-text").text
        browser.find_element(By.CSS_SELECTOR, "details.act-in_progress summary").click()
        browser.find_element(By.CSS_SELECTOR, "#form-in_progress textarea[name=note]").send_keys(
            "Обращение передано специалисту отдела ЖКХ.")
        browser.find_element(By.CSS_SELECTOR, "#form-in_progress button[type=submit]").click()
        wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, ".flash")))
        assert browser.find_element(By.ID, "appeal-status").text == "На рассмотрении"
        assert len(browser.find_elements(By.CSS_SELECTOR, "ol.events li.event")) == 2
        offered = [e.get_attribute("value") for e in browser.find_elements(By.CSS_SELECTOR, "input[name=status]")]
        # TRANSITIONS["in_progress"], less "extended": a complaint's term cannot be extended (APPC Art. 99)
        assert offered == ["answered", "redirected", "rejected", "closed"]
        assert "Закон не допускает продления срока" in browser.page_source
        browser.execute_script("window.scrollTo(0, 0)")
        screenshot(browser, "console-appeal")

        # the web-chat citizen gets the notification, in Russian
        replies = _get_json(srv.url, f"/api/v1/notifications?user_id={citizen}")["replies"]
        texts = [r["text"] for r in replies]
        assert any(number in t and "на рассмотрении" in t and "отдела ЖКХ" in t for t in texts), texts

        async def audited(app):
            async with app[RUNTIME].sessions() as s:
                return (await s.execute(select(AuditLog.action, AuditLog.record_id)
                                        .where(AuditLog.action == "appeal.status"))).all()

        assert srv.call(audited) == [("appeal.status", number)]

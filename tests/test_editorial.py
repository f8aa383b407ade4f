"""Editors keep the bilingual knowledge base right: the working copy, the checks of `estu kb validate` on every
save, publishing with an index build in the background and an atomic swap of the running assistant, roll-back,
export/import (YAML and CSV), review age, the console pages and their roles — against the real app, a real
SQLite database and the real retrieval stack (small fixture corpus)."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import urllib.request
from pathlib import Path

import pytest
import yaml
from sqlalchemy import select

from bot.editorial import checks, content, drafts, publish, transfer, versions
from bot.storage.db import make_engine, sessionmaker, upgrade
from bot.storage.editorial import CorpusVersion
from knowledge.routing import CONDITIONS
from bot.storage.staff import AuditLog
from bot.web.app import RUNTIME, create_app, served_assistant

FIXTURE = Path(__file__).parent / "fixtures" / "corpus_small"
PASSWORD = "correct horse battery"
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')
OLD_RU = "ЭЦП можно получить онлайн на портале egov.kz."
NEW_RU = "ЭЦП теперь выдают онлайн на egov.kz и в любом ЦОН по удостоверению личности."
OLD_KK = "ЭЦҚ-ны egov.kz порталында онлайн алуға болады."
WATER = "Как заменить счётчик воды в квартире"
LAMP_RU = "сообщите в контакт-центр акимата 109"
NEW_KK = "ЭЦҚ-ны енді egov.kz порталында және кез келген ХҚКО-да жеке куәлік арқылы алуға болады."


@pytest.fixture
def kb_settings(small_settings, tmp_path):
    corpus = tmp_path / "corpus"
    shutil.copytree(FIXTURE, corpus)
    s = small_settings.model_copy(update={"corpus_dir": corpus, "data_dir": tmp_path / "data",
                                          "database_url": f"sqlite+aiosqlite:///{tmp_path}/kb.db"})
    upgrade(s.db_url)
    return s


@pytest.fixture
async def db(kb_settings):
    engine = make_engine(kb_settings.db_url)
    yield sessionmaker(engine)
    await engine.dispose()


async def add_user(sessions, name: str, role: str) -> None:
    from bot.web.console.users import create_user

    async with sessions() as s, s.begin():
        await create_user(s, name, PASSWORD, role)


async def login(client, name: str) -> None:
    resp = await client.get("/operator/login")
    token = CSRF_RE.search(await resp.text()).group(1)
    resp = await client.post("/operator/login", data={"csrf_token": token, "username": name, "password": PASSWORD},
                             allow_redirects=False)
    assert resp.status == 303


async def csrf(client, path: str) -> str:
    resp = await client.get(path)
    assert resp.status == 200, path
    return CSRF_RE.search(await resp.text()).group(1)


def eds_form(token: str, kk: bool = True, ru_answer: str = OLD_RU, kk_answer: str = OLD_KK, **extra) -> dict:
    form = {"csrf_token": token, "id": "faq.eds", "agency": "digital", "channels": "egov_portal",
            "reviewed": "2026-11-22", "sources": "test fixture",
            "ru_title": "Получение ЭЦП", "ru_answer": ru_answer,
            "ru_questions": "Как получить ЭЦП?\nЭлектронная цифровая подпись где взять\nСрок ЭЦП истёк, что делать\n"
                            "эцп получить"}
    if kk:
        form.update({"kk_title": "ЭЦҚ алу", "kk_answer": kk_answer,
                     "kk_questions": "ЭЦҚ-ны қалай аламын?\nЭлектрондық цифрлық қолтаңба алу\n"
                                     "ЭЦҚ мерзімі бітті, не істеймін\nэцк алу"})
    form.update(extra)
    return form


async def ask(client, text: str) -> dict:
    resp = await client.post("/api/v1/ask", json={"text": text})
    assert resp.status == 200
    return await resp.json()


async def message(client, user: str, text: str) -> str:
    resp = await client.post("/api/v1/messages", json={"user_id": user, "text": text})
    assert resp.status == 200
    return "\n".join(r["text"] for r in (await resp.json())["replies"] if r.get("text"))


@pytest.fixture
async def app_client(aiohttp_client, kb_settings, small_assistant, db):
    client = await aiohttp_client(create_app(kb_settings, small_assistant))
    await add_user(db, "dana", "editor")
    await add_user(db, "oleg", "operator")
    return client


# -- services -----------------------------------------------------------------------------------------------------
async def test_seed_becomes_version_1_and_is_served(app_client, db, small_assistant):
    async with db() as s:
        rows = (await s.execute(select(CorpusVersion))).scalars().all()
    assert [(r.number, r.is_live, r.author) for r in rows] == [(1, True, "system")]
    assert {e["id"] for e in rows[0].data["entries"]} == {"faq.eds", "faq.kindergarten", "faq.street_lamp",
                                                          "channel.contact_center"}
    app = app_client.server.app
    assert publish.state(app)["serving"] == 1
    assert served_assistant(app) is small_assistant  # same content: nothing rebuilt


def test_checks_are_those_of_kb_validate():
    data = versions.seed_data(FIXTURE)
    assert checks.errors(checks.check(data)) == []
    eds = content.find(data, "faq.eds")
    del eds["kk"]
    eds["channels"] = ["no_such_channel"]
    kinder = content.find(data, "faq.kindergarten")
    kinder["ru"]["questions"].append("Как получить ЭЦП?")  # a phrasing of another entry
    kinder["sources"] = []
    problems = checks.check(data)
    got = {(p.code, p.entry, p.field, p.language) for p in checks.errors(problems)}
    assert ("schema", "faq.eds", "channels", None) in got
    assert ("schema", "faq.kindergarten", "sources", None) in got
    eds["channels"] = ["egov_portal"]
    kinder["sources"] = ["x"]
    got = {(p.code, p.entry, p.field, p.language) for p in checks.errors(checks.check(data))}
    assert ("missing_twin", "faq.eds", None, "kk") in got
    assert ("duplicate_question", "faq.kindergarten", "questions", "ru") in got or \
        ("duplicate_question", "faq.eds", "questions", "ru") in got
    # the routing rules: YAML and shape
    assert checks.parse_routing("rules: [")[0] is None
    routing, problems = checks.parse_routing("rules:\n  - id: a\n    when: 5\n")
    assert routing is None and "`when` must be a mapping" in problems[0].message
    bad_conditions = "rules:\n  - id: a\n    when: {intent: [faq], min_confidence: high}\n    channel: e_otinish\n"
    routing, problems = checks.parse_routing(bad_conditions)
    assert routing is None and {(p.code, p.params["condition"]) for p in problems} == {
        ("unknown_condition", "intent"), ("bad_condition", "min_confidence")}
    assert "intents" in problems[0].params["known"].split(", ") and set(CONDITIONS) >= {"intents", "keywords"}
    # and by `estu kb validate` / publishing, on the whole knowledge base
    codes = {(p.code, p.entry) for p in checks.check({**data, "routing": yaml.safe_load(bad_conditions)})}
    assert {("unknown_condition", "routing"), ("bad_condition", "routing")} <= codes
    assert checks.parse_routing(content.routing_yaml(data["routing"]))[1] == []


def test_self_retrieval_failure_blocks(kb_settings):
    data = versions.seed_data(FIXTURE)
    lamp = content.find(data, "faq.street_lamp")
    # the lamp entry keeps its answer, but each phrasing asks about another entry's topic (as in test_corpus)
    lamp["kk"]["questions"] = ["ЭЦҚ-ны онлайн қайдан алуға болады", "Баланы балабақшаға кезекке қою жолы",
                               "109 нөмірі не үшін керек", "Электрондық қолтаңбаның мерзімі бітсе не істеу керек"]
    lamp["ru"]["questions"] = ["Где оформить ЭЦП онлайн", "Как записать ребёнка в очередь в садик",
                               "Что за номер 109 и зачем туда звонят", "Ключ ЭЦП истёк, как получить новый"]
    problems = checks.check(data, kb_settings, self_test=True)
    assert any(p.code == "self_retrieval" and p.entry == "faq.street_lamp" for p in checks.errors(problems))


async def test_add_phrasings_and_new_entry_draft(db, kb_settings):
    async with db() as s, s.begin():
        await versions.ensure_seeded(s, kb_settings.corpus_dir)
        assert await drafts.add_phrasings(s, "faq.eds", "ru", ["ЭЦП на телефон", "как получить эцп?"], "dana") == 1
    async with db() as s, s.begin():
        data = await drafts.working(s)
        assert content.find(data, "faq.eds")["ru"]["questions"][-1] == "ЭЦП на телефон"
        assert await drafts.changed(s) == ["faq.eds"]
        with pytest.raises(LookupError):
            await drafts.add_phrasings(s, "faq.nope", "ru", ["x"], "dana")
    texts = {"ru": ["Как оформить пособие?", "пособие на ребёнка"], "kk": ["жәрдемақы қалай алуға болады"]}
    async with db() as s, s.begin():
        raw = await drafts.new_entry_draft(s, texts, "dana")
    async with db() as s, s.begin():
        data = await drafts.working(s)
        assert raw["id"] in await drafts.changed(s)
        assert (await drafts.new_entry_draft(s, texts, "dana"))["id"] == raw["id"]  # the same questions again
    stored = content.find(data, raw["id"])
    assert stored["ru"]["questions"] == texts["ru"] and stored["kk"]["questions"] == texts["kk"]
    problems = checks.for_entry(checks.check(data), raw["id"])
    assert any(p.code == "schema" and p.field == "sources" for p in problems)  # to be completed by an editor


def test_export_import_round_trip(tmp_path):
    data = versions.seed_data(FIXTURE)
    eds = content.find(data, "faq.eds")
    eds["ru"]["answer"] = "Строка один.\nСтрока два, с «кавычками», запятой и | чертой."
    eds["url"] = "https://egov.kz"
    eds["notes"] = "проверить в 2027"
    data["retired"] = ["faq.street_lamp"]
    transfer.export_yaml(data, tmp_path / "yaml")
    assert (tmp_path / "yaml" / "faq" / "eds.yml").exists() and (tmp_path / "yaml" / "retired.yaml").exists()
    assert not (tmp_path / "yaml" / "faq" / "street_lamp.yml").exists()
    back, errors = transfer.import_yaml(tmp_path / "yaml")
    assert errors == [] and back == data
    csv_text = transfer.export_csv(data)
    assert csv_text.splitlines()[0].lstrip("\ufeff").startswith(
        "id,language,title,phrasings,answer,channels,agency,sources,reviewed")
    back, errors = transfer.import_csv(csv_text, data["routing"])
    assert errors == [] and back == data
    # the seed's own loader reads the export
    from knowledge.corpus import load_corpus

    assert load_corpus(tmp_path / "yaml").version == content.to_corpus(data).version


def test_cli_export_import_stale(kb_settings, tmp_path, capsys, monkeypatch):
    from bot.cli import main

    data_dir = tmp_path / "cli"
    monkeypatch.delenv("ESTU_DATABASE_URL", raising=False)
    base = ["--data-dir", str(data_dir), "--corpus", str(kb_settings.corpus_dir)]
    assert main([*base, "kb", "export", str(tmp_path / "out"), "--csv", str(tmp_path / "out.csv")]) == 0
    # change one answer in the CSV and import it
    text = (tmp_path / "out.csv").read_text(encoding="utf-8").replace(OLD_RU, NEW_RU)
    (tmp_path / "changed.csv").write_text(text, encoding="utf-8")
    assert main([*base, "kb", "import", "--csv", str(tmp_path / "changed.csv"), "--comment", "new ru answer",
                 "--no-self-test"]) == 0
    assert "as version 2" in capsys.readouterr().out
    # a YAML directory with a missing twin is refused
    broken = tmp_path / "broken"
    shutil.copytree(tmp_path / "out", broken)
    eds = broken / "faq" / "eds.yml"
    eds.write_text(eds.read_text(encoding="utf-8").split("\nkk:")[0] + "\nru:" +
                   eds.read_text(encoding="utf-8").split("\nru:")[1], encoding="utf-8")
    assert main([*base, "kb", "import", str(broken), "--no-self-test"]) == 1
    assert "missing_twin" in capsys.readouterr().err
    # the YAML export of version 1 brings the old answer back as version 3
    assert main([*base, "kb", "import", str(tmp_path / "out"), "--comment", "back"]) == 0
    assert main([*base, "kb", "export", str(tmp_path / "again")]) == 0
    assert (tmp_path / "again" / "faq" / "eds.yml").read_text() == (tmp_path / "out" / "faq" / "eds.yml").read_text()
    capsys.readouterr()
    assert main([*base, "kb", "stale"]) == 0
    assert "0 entries reviewed more than 365 days ago" in capsys.readouterr().out
    # an entry reviewed long ago is listed
    old = tmp_path / "old"
    shutil.copytree(tmp_path / "out", old)
    lamp = old / "faq" / "street_lamp.yml"
    lamp.write_text(lamp.read_text(encoding="utf-8").replace("reviewed: 2026-11-22", "reviewed: 2020-01-15"),
                    encoding="utf-8")
    assert main([*base, "kb", "import", str(old), "--no-self-test"]) == 0
    capsys.readouterr()
    assert main([*base, "kb", "stale", "--fail"]) == 1
    out = capsys.readouterr().out
    assert "faq.street_lamp" in out and "2020-01-15" in out and "faq.eds" not in out


# -- the console and the running server ----------------------------------------------------------------------------
async def test_operator_gets_403(app_client):
    await login(app_client, "oleg")
    for path in ("/operator/kb", "/operator/kb/versions", "/operator/kb/entry/faq.eds", "/operator/kb/routing"):
        resp = await app_client.get(path)
        assert resp.status == 403, path
    resp = await app_client.post("/operator/kb/publish", data={"comment": "x"})
    assert resp.status == 403


async def test_edit_validate_publish_rollback(app_client, db, kb_settings, small_assistant):
    app = app_client.server.app
    await login(app_client, "dana")
    resp = await app_client.get("/operator/kb?q=эцп")
    html = await resp.text()
    assert resp.status == 200 and 'id="row-faq.eds"' in html and 'id="row-faq.kindergarten"' not in html
    assert (await ask(app_client, "Как получить ЭЦП?"))["answer"].startswith(OLD_RU)

    # the Kazakh block removed: saved (nothing lost) but a missing-twin problem, and publishing is refused
    token = await csrf(app_client, "/operator/kb/entry/faq.eds")
    resp = await app_client.post("/operator/kb/entry/faq.eds", data=eds_form(token, kk=False, ru_answer=NEW_RU),
                                 allow_redirects=False)
    assert resp.status == 303
    html = await (await app_client.get("/operator/kb/entry/faq.eds")).text()
    kk_block = html[html.index('id="block-kk"'):html.index('id="block-ru"')]
    assert 'data-code="missing_twin"' in kk_block and NEW_RU in html
    assert "Нет версии на этом языке" in kk_block  # the problem in the editor's language
    token = await csrf(app_client, "/operator/kb/versions")
    resp = await app_client.post("/operator/kb/publish", data={"csrf_token": token, "comment": "new answer"})
    assert resp.status == 422 and 'data-code="missing_twin"' in await resp.text()
    async with db() as s:
        assert [v.number for v in await versions.listing(s)] == [1]
    assert (await ask(app_client, "Как получить ЭЦП?"))["answer"].startswith(OLD_RU)

    # fixed: published, the index is built in the background, the next message gets the new answer
    resp = await app_client.post("/operator/kb/entry/faq.eds", data=eds_form(token, ru_answer=NEW_RU),
                                 allow_redirects=False)
    assert resp.status == 303
    html = await (await app_client.get("/operator/kb/entry/faq.eds")).text()
    assert 'class="kb-problems"' not in html
    resp = await app_client.post("/operator/kb/publish", data={"csrf_token": token, "comment": "new answer"},
                                 allow_redirects=False)
    assert resp.status == 303
    assert await publish.wait(app)
    assert publish.state(app)["serving"] == 2
    assert (await (await app_client.get("/healthz")).json())["kb_version"] == 2
    assert app[RUNTIME].engine.assistant is served_assistant(app)
    assert (await ask(app_client, "Как получить ЭЦП?"))["answer"].startswith(NEW_RU)
    assert NEW_RU in await message(app_client, "web-1", "Как получить ЭЦП?")
    v2_index = publish.index_dir(kb_settings, served_assistant(app).corpus.version)
    assert (v2_index / "meta.json").exists()
    async with db() as s:
        v2 = await versions.get(s, 2)
        assert v2.author == "dana" and v2.comment == "new answer" and v2.is_live
        assert f"-  answer: {OLD_RU}" in v2.diff and f"+  answer: {NEW_RU}" in v2.diff
    html = await (await app_client.get("/operator/kb/versions/2")).text()
    assert NEW_RU in html and "new answer" in html

    # roll back to version 1: published again as version 3; concurrent questions during the swap all succeed
    token = await csrf(app_client, "/operator/kb/versions")
    resp = await app_client.post("/operator/kb/versions/1/rollback", data={"csrf_token": token},
                                 allow_redirects=False)
    assert resp.status == 303
    answers = await asyncio.gather(*[ask(app_client, "Как получить ЭЦП?") for _ in range(12)],
                                   *[message(app_client, f"web-c{i}", "Как получить ЭЦП?") for i in range(4)])
    for a in answers[:12]:
        assert a["answer"].startswith(OLD_RU) or a["answer"].startswith(NEW_RU)
    assert await publish.wait(app)
    assert publish.state(app)["serving"] == 3
    assert (await ask(app_client, "Как получить ЭЦП?"))["answer"].startswith(OLD_RU)
    assert OLD_RU in await message(app_client, "web-2", "Как получить ЭЦП?")
    # version 3 has version 1's content: its index was loaded, not rebuilt (one directory per content)
    assert served_assistant(app).index.meta.corpus_version == small_assistant.corpus.version
    assert sorted(d.name for d in v2_index.parent.iterdir()) == sorted(
        [v2_index.name, small_assistant.corpus.version])
    async with db() as s:
        v3 = await versions.get(s, 3)
        assert v3.comment.startswith("Roll-back to version 1") and v3.data == (await versions.get(s, 1)).data
        actions = [a for (a,) in (await s.execute(select(AuditLog.action).order_by(AuditLog.id))).all()]
    assert actions.count("kb.entry.save") == 2 and actions.count("kb.publish") == 2 and "kb.rollback" in actions


async def test_retire_restore_create_routing_stale(app_client, db):
    app = app_client.server.app
    await login(app_client, "dana")
    token = await csrf(app_client, "/operator/kb")
    # the lamp entry: reviewed long ago → flagged
    lamp = (await app_client.get("/operator/kb/entry/faq.street_lamp"))
    assert lamp.status == 200
    form = {"csrf_token": token, **drafts.raw_to_form(content.find(versions.seed_data(FIXTURE), "faq.street_lamp"))}
    form["reviewed"] = "2020-01-15"
    assert (await app_client.post("/operator/kb/entry/faq.street_lamp", data=form, allow_redirects=False)).status == 303
    html = await (await app_client.get("/operator/kb?show=stale")).text()
    assert 'id="row-faq.street_lamp"' in html and 'id="row-faq.eds"' not in html and "stale" in html
    # retire: hidden from retrieval after publishing, kept, restorable
    assert (await app_client.post("/operator/kb/entry/faq.street_lamp/retire", data={"csrf_token": token},
                                  allow_redirects=False)).status == 303
    resp = await app_client.post("/operator/kb/publish", data={"csrf_token": token, "comment": "retire lamp"},
                                 allow_redirects=False)
    assert resp.status == 303, await resp.text()
    assert await publish.wait(app)
    assert served_assistant(app).corpus.get("faq.street_lamp") is None
    html = await (await app_client.get("/operator/kb?show=retired")).text()
    assert 'id="row-faq.street_lamp"' in html
    assert (await app_client.post("/operator/kb/entry/faq.street_lamp/restore", data={"csrf_token": token},
                                  allow_redirects=False)).status == 303
    async with db() as s:
        assert "faq.street_lamp" not in (await drafts.working(s))["retired"]
    # a new entry with one language only: saved with its problems
    new = {"csrf_token": token, "id": "faq.pension_age", "agency": "labour_social", "channels": "egov_portal",
           "reviewed": "2026-11-20", "sources": "Социальный кодекс РК", "ru_title": "Пенсионный возраст",
           "ru_questions": "Когда выход на пенсию\nПенсионный возраст\nВо сколько лет пенсия\nвозраст пенсии",
           "ru_answer": "Пенсионный возраст установлен Социальным кодексом."}
    resp = await app_client.post("/operator/kb/new", data=new, allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == "/operator/kb/entry/faq.pension_age"
    html = await (await app_client.get("/operator/kb/entry/faq.pension_age")).text()
    assert 'data-code="missing_twin"' in html
    resp = await app_client.post("/operator/kb/new", data=new)  # the same id again
    assert resp.status == 422 and "already exists" in await resp.text()
    # routing rules: invalid YAML is not stored, valid YAML is
    resp = await app_client.post("/operator/kb/routing", data={"csrf_token": token, "routing": "rules: ["})
    assert resp.status == 422 and "YAML error" in await resp.text()
    text = content.routing_yaml(versions.seed_data(FIXTURE)["routing"]).replace("offline_cues:\n",
                                                                                 "offline_cues:\n- нет планшета\n", 1)
    assert (await app_client.post("/operator/kb/routing", data={"csrf_token": token, "routing": text},
                                  allow_redirects=False)).status == 303
    async with db() as s:
        assert "нет планшета" in (await drafts.working(s))["routing"]["offline_cues"]
        assert {"routing", "faq.pension_age", "faq.street_lamp"} <= set(await drafts.changed(s))
        actions = {a for (a,) in (await s.execute(select(AuditLog.action))).all()}
    assert {"kb.entry.retire", "kb.entry.restore", "kb.entry.create", "kb.routing.save"} <= actions


async def test_two_editors_same_entry_conflict(app_client, db):
    """The second editor to save an entry they opened before the first one saved gets their text back, not saved,
    and can then save deliberately; nothing typed is lost."""
    await login(app_client, "dana")
    html = await (await app_client.get("/operator/kb/entry/faq.eds")).text()
    token = CSRF_RE.search(html).group(1)
    base = re.search(r'name="base" value="([0-9a-f]+)"', html).group(1)
    # dana saves first (with the fingerprint of the entry she opened)
    resp = await app_client.post("/operator/kb/entry/faq.eds", data=eds_form(token, ru_answer=NEW_RU, base=base),
                                 allow_redirects=False)
    assert resp.status == 303
    # a second editor had opened the same version: their save is refused, their text comes back
    mine = "Ответ второго редактора."
    resp = await app_client.post("/operator/kb/entry/faq.eds", data=eds_form(token, ru_answer=mine, base=base))
    html = await resp.text()
    assert resp.status == 409 and 'data-code="conflict"' in html and mine in html
    async with db() as s:
        assert content.find(await drafts.working(s), "faq.eds")["ru"]["answer"] == NEW_RU
    new_base = re.search(r'name="base" value="([0-9a-f]+)"', html).group(1)
    assert new_base != base
    resp = await app_client.post("/operator/kb/entry/faq.eds", data=eds_form(token, ru_answer=mine, base=new_base),
                                 allow_redirects=False)
    assert resp.status == 303
    async with db() as s:
        assert content.find(await drafts.working(s), "faq.eds")["ru"]["answer"] == mine


async def test_save_runs_the_self_retrieval_check(app_client):
    """The self-retrieval test runs on save for the saved entry, not only at publishing."""
    await login(app_client, "dana")
    token = await csrf(app_client, "/operator/kb")
    lamp = {"csrf_token": token, **drafts.raw_to_form(content.find(versions.seed_data(FIXTURE), "faq.street_lamp"))}
    lamp["kk_questions"] = "\n".join(["ЭЦҚ-ны онлайн қайдан алуға болады", "Баланы балабақшаға кезекке қою жолы",
                                      "109 нөмірі не үшін керек", "Электрондық қолтаңбаның мерзімі бітсе не істеу керек"])
    lamp["ru_questions"] = "\n".join(["Где оформить ЭЦП онлайн", "Как записать ребёнка в очередь в садик",
                                      "Что за номер 109 и зачем туда звонят", "Ключ ЭЦП истёк, как получить новый"])
    resp = await app_client.post("/operator/kb/entry/faq.street_lamp", data=lamp)
    html = await resp.text()
    assert resp.status == 200 and 'data-code="self_retrieval"' in html
    assert re.search(r"Только \d+ из \d+ формулировок находят эту запись среди первых 1 результатов", html)
    # another entry's page does not show it
    assert 'data-code="self_retrieval"' not in await (await app_client.get("/operator/kb/entry/faq.eds")).text()


async def test_concurrent_saves_keep_both(app_client, db):
    """Two editors saving different entries at the same moment (SQLite): both changes are kept."""
    await login(app_client, "dana")
    token = await csrf(app_client, "/operator/kb")
    lamp = {"csrf_token": token, **drafts.raw_to_form(content.find(versions.seed_data(FIXTURE), "faq.street_lamp"))}
    lamp["ru_answer"] = "Сообщите о неработающем фонаре в 109."
    responses = await asyncio.gather(
        app_client.post("/operator/kb/entry/faq.eds", data=eds_form(token, ru_answer=NEW_RU), allow_redirects=False),
        app_client.post("/operator/kb/entry/faq.street_lamp", data=lamp, allow_redirects=False))
    assert [r.status for r in responses] == [303, 303]
    async with db() as s:
        data = await drafts.working(s)
        assert set(await drafts.changed(s)) == {"faq.eds", "faq.street_lamp"}
    assert content.find(data, "faq.eds")["ru"]["answer"] == NEW_RU
    assert content.find(data, "faq.street_lamp")["ru"]["answer"] == lamp["ru_answer"]


async def test_a_message_keeps_the_assistant_it_started_with(app_client, small_assistant, kb_settings):
    """A version swapped in while a message is being handled takes effect from the next message."""
    from bot.assistant import Assistant
    from bot.dialogue.engine import Router
    from bot.messages import Reply

    app = app_client.server.app
    engine = app[RUNTIME].engine
    other = Assistant(kb_settings, small_assistant.corpus, small_assistant.index, small_assistant.embedder,
                      small_assistant.nlu)
    seen = []
    probe = Router("probe")

    @probe.handler
    async def swap_midway(ctx):
        if ctx.text != "swap":
            return None
        seen.append(ctx.engine.assistant)
        publish.install(app, other)  # what a publication does
        await asyncio.sleep(0)
        seen.append(ctx.engine.assistant)
        return [Reply("ok")]

    engine.routers.insert(0, probe)
    try:
        await message(app_client, "pin-1", "swap")
    finally:
        engine.routers.remove(probe)
    assert seen == [small_assistant, small_assistant]
    assert engine.assistant is other and served_assistant(app) is other


async def test_a_version_published_elsewhere_is_followed(aiohttp_client, kb_settings, small_assistant, db):
    """Another worker or `estu kb import` publishes: this server serves the new version without a restart."""
    settings = kb_settings.model_copy(update={"kb_follow_seconds": 0.2})
    client = await aiohttp_client(create_app(settings, small_assistant))
    app = client.server.app
    assert publish.state(app)["serving"] == 1
    async with db() as s, s.begin():  # what another process does
        data = content.clone((await versions.live(s)).data)
        content.find(data, "faq.eds")["ru"]["answer"] = NEW_RU
        await versions.create(s, data, "cli", "import")
    for _ in range(100):
        if publish.state(app)["serving"] == 2:
            break
        await asyncio.sleep(0.1)
    assert await publish.wait(app) and publish.state(app)["serving"] == 2
    assert (await ask(client, "Как получить ЭЦП?"))["answer"].startswith(NEW_RU)


async def test_pending_changes_survive_a_publication_elsewhere(db, kb_settings):
    """An import (or another worker) publishes while an editor has pending changes: the changes are carried onto
    the new version, the import's changes are kept, and discarding an entry clears its pending mark."""
    async with db() as s, s.begin():
        await versions.ensure_seeded(s, kb_settings.corpus_dir)
        data = await drafts.working(s)
        content.find(data, "faq.eds")["ru"]["answer"] = NEW_RU
        await drafts.store(s, data, "dana", ["faq.eds"])
    async with db() as s, s.begin():  # `estu kb import` with another change
        other = content.clone((await versions.live(s)).data)
        content.find(other, "faq.street_lamp")["ru"]["answer"] = "Фонари: звоните 109."
        await versions.create(s, other, "cli", "import", keep_draft=True)
    async with db() as s, s.begin():
        data = await drafts.working(s)
        assert content.find(data, "faq.eds")["ru"]["answer"] == NEW_RU  # still pending
        assert content.find(data, "faq.street_lamp")["ru"]["answer"] == "Фонари: звоните 109."  # not undone
        assert await drafts.changed(s) == ["faq.eds"]
        await drafts.discard_entry(s, "faq.eds", "dana")
    async with db() as s, s.begin():
        assert await drafts.changed(s) == []
        assert await drafts.working(s) == (await versions.live(s)).data


async def test_two_workers_on_postgresql(aiohttp_client, kb_settings, small_assistant, pg_url):
    """Two servers (workers) on one PostgreSQL database: editors on both save at the same moment and both changes
    are kept (the live version's row is the lock); a publication on one is served by the other."""
    settings = kb_settings.model_copy(update={"database_url": pg_url, "kb_follow_seconds": 0.2})
    await asyncio.to_thread(upgrade, settings.db_url)
    one = await aiohttp_client(create_app(settings, small_assistant))
    two = await aiohttp_client(create_app(settings, small_assistant))
    await add_user(one.server.app[RUNTIME].sessions, "dana", "editor")
    await add_user(one.server.app[RUNTIME].sessions, "aigerim", "editor")
    await login(one, "dana")
    await login(two, "aigerim")
    t1, t2 = await csrf(one, "/operator/kb"), await csrf(two, "/operator/kb")
    lamp = {"csrf_token": t2, **drafts.raw_to_form(content.find(versions.seed_data(FIXTURE), "faq.street_lamp"))}
    lamp["ru_answer"] = "Сообщите о неработающем фонаре в 109."
    for _ in range(3):  # a few rounds, so the two transactions really overlap
        responses = await asyncio.gather(
            one.post("/operator/kb/entry/faq.eds", data=eds_form(t1, ru_answer=NEW_RU), allow_redirects=False),
            two.post("/operator/kb/entry/faq.street_lamp", data=lamp, allow_redirects=False))
        assert [r.status for r in responses] == [303, 303]
    async with one.server.app[RUNTIME].sessions() as s:
        data = await drafts.working(s)
        assert set(await drafts.changed(s)) == {"faq.eds", "faq.street_lamp"}
    assert content.find(data, "faq.eds")["ru"]["answer"] == NEW_RU
    assert content.find(data, "faq.street_lamp")["ru"]["answer"] == lamp["ru_answer"]
    resp = await one.post("/operator/kb/publish", data={"csrf_token": t1, "comment": "both"},
                          allow_redirects=False)
    assert resp.status == 303
    assert await publish.wait(one.server.app)
    for _ in range(100):  # the second worker follows within ESTU_KB_FOLLOW_SECONDS
        if publish.state(two.server.app)["serving"] == 2:
            break
        await asyncio.sleep(0.1)
    assert await publish.wait(two.server.app)
    for client in (one, two):
        assert (await ask(client, "Как получить ЭЦП?"))["answer"].startswith(NEW_RU)


# -- the browser ------------------------------------------------------------------------------------------------------
def _post_json(url: str, body: dict) -> dict:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as resp:
        return json.loads(resp.read().decode())


def test_browser_edit_publish_rollback(browser, kb_settings, small_assistant):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import Select, WebDriverWait

    from tests.live import LiveServer, screenshot

    def reply(srv, user):
        body = _post_json(srv.url + "/api/v1/messages", {"user_id": user, "text": "ЭЦҚ-ны қалай аламын?"})
        return "\n".join(r["text"] for r in body["replies"] if r.get("text"))

    with LiveServer(kb_settings, small_assistant) as srv:
        async def setup(app):
            await add_user(app[RUNTIME].sessions, "dana", "editor")
            await add_user(app[RUNTIME].sessions, "oleg", "operator")

        srv.call(setup)
        assert OLD_KK in reply(srv, "b-1")
        # a question the small corpus cannot answer (nothing on water meters): the bot says it is not sure
        body = _post_json(srv.url + "/api/v1/messages", {"user_id": "b-0", "text": WATER})
        assert not any(old in body["replies"][0]["text"] for old in (OLD_RU, LAMP_RU))
        wait = WebDriverWait(browser, 60)
        browser.get(srv.url + "/operator/login?lang=kk")
        wait.until(ec.presence_of_element_located((By.NAME, "username")))
        browser.find_element(By.NAME, "username").send_keys("dana")
        browser.find_element(By.NAME, "password").send_keys(PASSWORD)
        browser.find_element(By.CSS_SELECTOR, "form button.primary").click()
        wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "ul.cards")))
        # the editor finds it on the Unanswered page and adds it as a phrasing of the 109 entry
        browser.get(srv.url + "/operator/unanswered")
        cluster = wait.until(ec.presence_of_element_located((By.ID, "cluster-1")))
        assert WATER in cluster.text
        Select(cluster.find_element(By.NAME, "entry_id")).select_by_value("faq.street_lamp")
        cluster.find_element(By.CSS_SELECTOR, "button.primary").click()
        questions = wait.until(ec.presence_of_element_located((By.ID, "ru_questions")))
        assert browser.current_url.endswith("/operator/kb/entry/faq.street_lamp")
        assert questions.get_attribute("value").splitlines()[-1] == WATER
        browser.get(srv.url + "/operator/kb/entry/faq.eds")
        answer = wait.until(ec.presence_of_element_located((By.ID, "kk_answer")))
        answer.clear()
        answer.send_keys(NEW_KK)
        for field in ("kk_title", "kk_questions", "kk_answer"):  # the whole Kazakh version removed
            browser.find_element(By.ID, field).clear()
        browser.find_element(By.ID, "save-entry").click()
        problem = wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "#block-kk li[data-code=missing_twin]")))
        assert "kk" in problem.text
        # fixed: the Kazakh version with the new answer
        browser.find_element(By.ID, "kk_title").send_keys("ЭЦҚ алу")
        browser.find_element(By.ID, "kk_questions").send_keys(
            "ЭЦҚ-ны қалай аламын?\nЭлектрондық цифрлық қолтаңба алу\nЭЦҚ мерзімі бітті, не істеймін\nэцк алу")
        browser.find_element(By.ID, "kk_answer").send_keys(NEW_KK)
        button = browser.find_element(By.ID, "save-entry")
        button.click()
        wait.until(ec.staleness_of(button))
        wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "p.flash")))
        assert not browser.find_elements(By.CSS_SELECTOR, ".kb-problems li.error")
        screenshot(browser, "console-kb-edit")
        browser.get(srv.url + "/operator/kb/versions")
        wait.until(ec.presence_of_element_located((By.ID, "publish-comment"))).send_keys("ЭЦҚ: ХҚКО қосылды")
        browser.find_element(By.ID, "publish-button").click()
        wait.until(ec.presence_of_element_located((By.ID, "version-2")))
        assert srv.call(publish.wait)
        assert NEW_KK in reply(srv, "b-2")
        # the new phrasing retrieves its entry: the same question now gets the 109 answer
        assert _post_json(srv.url + "/api/v1/ask", {"text": WATER})["sources"][0]["id"] == "faq.street_lamp"
        body = _post_json(srv.url + "/api/v1/messages", {"user_id": "b-5", "text": WATER})
        assert LAMP_RU in body["replies"][0]["text"]
        browser.get(srv.url + "/operator/kb/versions")
        wait.until(ec.element_to_be_clickable((By.ID, "rollback-1"))).click()
        wait.until(ec.presence_of_element_located((By.ID, "version-3")))
        assert srv.call(publish.wait)
        assert OLD_KK in reply(srv, "b-3") and NEW_KK not in reply(srv, "b-4")
        # an operator cannot reach the editor's pages, nor sees them in the menu
        browser.find_element(By.CSS_SELECTOR, "form.logout button").click()
        wait.until(ec.presence_of_element_located((By.NAME, "username"))).send_keys("oleg")
        browser.find_element(By.NAME, "password").send_keys(PASSWORD)
        browser.find_element(By.CSS_SELECTOR, "form button.primary").click()
        wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "ul.cards")))
        assert "/operator/kb" not in browser.page_source
        for path in ("/operator/kb", "/operator/kb/versions", "/operator/unanswered"):
            browser.get(srv.url + path)
            assert wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, ".error-page"))).is_displayed()
            assert "faq.eds" not in browser.page_source


def test_every_string_is_translated():
    """Every msgid of the knowledge-base pages (templates, problem labels, flashes) is in both console catalogues."""
    from bot.i18n import catalog
    from bot.web.console import insights as insight_pages
    from bot.web.console import kb

    root = Path(__file__).resolve().parent.parent / "bot" / "web" / "templates" / "console"
    msgids = set()
    for path in [*sorted((root / "kb").glob("*.html")), root / "insights" / "unanswered.html"]:
        text = path.read_text(encoding="utf-8")
        msgids |= set(re.findall(r'_\(\s*"([^"]+)"', text)) | set(re.findall(r"_\(\s*'([^']+)'", text))
    msgids |= set(kb.FLASH.values()) | set(kb.CODE_LABELS.values()) | set(kb.DETAILS.values())
    msgids |= set(re.findall(r'flash="([^"]+)"', Path(insight_pages.__file__).read_text(encoding="utf-8")))
    assert len(msgids) > 60
    for lang in ("kk", "ru"):
        missing = sorted(m for m in msgids if m not in catalog(lang, "console"))
        assert missing == [], f"{lang}: {missing}"

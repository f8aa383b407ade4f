"""The web chat page at ``/``: the HTML and static files over aiohttp's test server, then the real page in
headless Chromium against a real ``estu serve`` (``tests.live.LiveServer``, small corpus, fresh SQLite)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from bot.i18n import catalog
from bot.web.app import create_app
from bot.web.chat import JS_STRINGS, STATIC, TEMPLATES
from tests.live import LiveServer, screenshot

# -- the page and its files over HTTP ------------------------------------------------------------------


@pytest.fixture
async def client(aiohttp_client, small_settings, small_assistant):
    return await aiohttp_client(create_app(small_settings, small_assistant, with_dialogue=False))


async def test_page_is_russian_by_default(client):
    resp = await client.get("/")
    assert resp.status == 200 and resp.content_type == "text/html"
    html = await resp.text()
    assert '<html lang="ru">' in html
    assert "Ваше сообщение" in html and "Отправить" in html
    assert 'role="log"' in html and 'aria-live="polite"' in html
    assert '<label for="message"' in html and 'id="message"' in html
    assert '<button type="submit"' in html
    assert "default-src 'self'" in resp.headers["Content-Security-Policy"]
    assert re.search(r'href="static/chat\.css\?v=[0-9a-f]{10}"', html)
    assert re.search(r'src="static/chat\.js\?v=[0-9a-f]{10}"', html)


async def test_kazakh_page_and_the_language_is_remembered(client):
    resp = await client.get("/?lang=kk")
    html = await resp.text()
    assert '<html lang="kk">' in html
    for kk in ("Хабарламаңыз", "Жіберу", "Сұрағыңызды қойыңыз", "Жаңа әңгіме бастау"):
        assert kk in html
    assert "Отправить" not in html
    # the strings for the script are Kazakh too (and JSON-escaped, not markup)
    config = json.loads(re.search(r'id="estu-config">(.*?)</script>', html, re.S).group(1))
    assert config["lang"] == "kk" and config["strings"]["You"] == "Сіз"
    assert resp.cookies["estu_lang"].value == "kk"
    again = await client.get("/")  # the cookie jar sends estu_lang=kk
    assert '<html lang="kk">' in await again.text()
    back = await client.get("/?lang=ru")
    assert '<html lang="ru">' in await back.text()


async def test_unknown_language_falls_back_to_russian(client):
    client.session.cookie_jar.clear()
    html = await (await client.get("/?lang=<script>")).text()
    assert '<html lang="ru">' in html and "<script>" not in html


@pytest.mark.parametrize("name,types", [
    ("chat.js", ("text/javascript", "application/javascript")),
    ("chat.css", ("text/css",)),
])
async def test_static_files_have_the_right_content_type(client, name, types):
    resp = await client.get(f"/static/{name}")
    assert resp.status == 200
    assert resp.content_type in types
    assert await resp.read() == (STATIC / name).read_bytes()


async def test_static_does_not_leave_its_folder(client):
    for path in ("/static/../chat.py", "/static/%2e%2e/chat.py", "/static/nope.js"):
        resp = await client.get(path)
        assert resp.status in (403, 404)
        assert "def setup" not in await resp.text()


def test_no_external_resources():
    """No CDN, no build step: the page loads only its own files."""
    for path in (TEMPLATES / "chat.html", STATIC / "chat.js", STATIC / "chat.css"):
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text), path
        assert "@import" not in text and "innerHTML" not in text, path


def test_every_page_string_is_translated():
    template = (TEMPLATES / "chat.html").read_text(encoding="utf-8")
    script = (STATIC / "chat.js").read_text(encoding="utf-8")
    used = set(re.findall(r'_\("([^"]+)"\)', template)) | set(JS_STRINGS)
    in_script = set(re.findall(r'\bt\("([^"]+)"', script))
    assert in_script <= set(JS_STRINGS), in_script - set(JS_STRINGS)
    for lang in ("kk", "ru"):
        cat = catalog(lang, "web")
        missing = sorted(m for m in used if not cat.get(m))
        assert not missing, (lang, missing)
    kk, ru = catalog("kk", "web"), catalog("ru", "web")
    assert sum(kk[m] != ru[m] for m in used) > len(used) - 3  # really two languages ("Estu" is the same)


def test_sizes_are_in_rem():
    css = (STATIC / "chat.css").read_text(encoding="utf-8")
    # font sizes and spacing in rem; px only for hairlines (1px borders)
    px = re.findall(r"(\d+(?:\.\d+)?)px", css)
    assert px and set(px) == {"1"}, px
    assert "font-size: 100%" in css


# -- the page in a real browser ----------------------------------------------------------------------------
from selenium.common.exceptions import (  # noqa: E402
    NoSuchElementException,
    StaleElementReferenceException,
    WebDriverException,
)
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

WAIT = 90  # an upper bound for slow shared machines, not an assertion about speed


@pytest.fixture(scope="module")
def live(small_settings, small_assistant, tmp_path_factory):
    db = tmp_path_factory.mktemp("webchat") / "web.db"
    s = small_settings.model_copy(update={"database_url": f"sqlite+aiosqlite:///{db}"})
    with LiveServer(s, small_assistant) as srv:
        yield srv


def fresh(driver, url: str) -> None:
    """A first visit: no user id, no history, no language cookie."""
    driver.get(url + "/healthz")
    driver.delete_all_cookies()
    driver.execute_script("localStorage.clear(); sessionStorage.clear();")
    driver.get(url + "/")


def wait(driver, condition, message=""):
    # pages reload on a language switch: an element found just before may go stale, or (Chrome) belong to the
    # document being replaced ("Node with given id does not belong to the document"); look again
    def look(d):
        try:
            return condition(d)
        except WebDriverException as exc:
            if "does not belong to the document" in str(exc):
                return False
            raise

    return WebDriverWait(driver, WAIT, ignored_exceptions=(NoSuchElementException, StaleElementReferenceException)
                         ).until(look, message)


def bot_texts(driver) -> list[str]:
    return [e.text for e in driver.find_elements(By.CSS_SELECTOR, "#log .msg-bot")]


def my_texts(driver) -> list[str]:
    return [e.find_element(By.CSS_SELECTOR, ".msg-text").text
            for e in driver.find_elements(By.CSS_SELECTOR, "#log .msg-me")]


def idle(driver) -> bool:
    return driver.find_element(By.ID, "log").get_attribute("aria-busy") == "false"


def ask(driver, text: str) -> None:
    n = len(bot_texts(driver))
    box = driver.find_element(By.ID, "message")
    box.send_keys(text)
    box.send_keys(Keys.ENTER)
    wait(driver, lambda d: len(bot_texts(d)) > n and idle(d), f"no answer to {text!r}")


def test_conversation_in_russian_with_keyboard(browser, live):
    d = browser
    fresh(d, live.url)
    assert d.find_element(By.TAG_NAME, "html").get_attribute("lang") == "ru"
    wait(d, lambda d: bot_texts(d) and idle(d), "no greeting")
    assert "Estu" in bot_texts(d)[0]
    assert d.find_element(By.ID, "error").get_attribute("hidden") is not None

    # keyboard only: Tab reaches the skip link, Enter jumps to the message field
    d.find_element(By.TAG_NAME, "body").send_keys(Keys.TAB)
    assert d.switch_to.active_element.get_attribute("class") == "skip-link"
    d.switch_to.active_element.send_keys(Keys.ENTER)
    assert d.switch_to.active_element.get_attribute("id") == "message"
    d.switch_to.active_element.send_keys("Как получить ЭЦП?")
    d.switch_to.active_element.send_keys(Keys.ENTER)
    wait(d, lambda d: any("egov.kz" in t for t in bot_texts(d)) and idle(d), "no answer")
    assert my_texts(d) == ["Как получить ЭЦП?"]
    assert d.find_element(By.ID, "message").get_attribute("value") == ""
    assert d.switch_to.active_element.get_attribute("id") == "message"

    # the answer's buttons are real <button>s; press one with the keyboard
    last = d.find_elements(By.CSS_SELECTOR, "#log .msg-bot")[-1]
    buttons = last.find_elements(By.CSS_SELECTOR, "button.reply-button")
    assert [b.text for b in buttons] == ["Помогло", "Не помогло"]
    n = len(bot_texts(d))
    buttons[0].send_keys(Keys.ENTER)
    wait(d, lambda d: len(bot_texts(d)) > n and idle(d), "the button got no reply")
    assert my_texts(d)[-1] == "Помогло"

    # a channel card is rendered once, as a card, with a phone link
    ask(d, "на улице не горит фонарь, куда обращаться?")
    last = d.find_elements(By.CSS_SELECTOR, "#log .msg-bot")[-1]
    assert last.find_element(By.CSS_SELECTOR, ".card-title").text == "Контакт-центр 109"
    assert last.find_element(By.CSS_SELECTOR, ".card-contact a").get_attribute("href") == "tel:109"
    assert "Рекомендуемый канал:" not in last.find_element(By.CSS_SELECTOR, ".msg-text").text
    assert "109" in last.find_element(By.CSS_SELECTOR, ".msg-text").text
    d.execute_script("window.scrollTo(0, 0)")
    screenshot(d, "webchat")


def test_bot_and_citizen_text_is_never_markup(browser, live):
    d = browser
    fresh(d, live.url)
    wait(d, lambda d: bot_texts(d) and idle(d), "no greeting")
    evil = '<img src=x onerror="window.__pwned=1"><b>жирный</b>'
    ask(d, evil)
    assert my_texts(d)[-1] == evil
    assert not d.find_elements(By.CSS_SELECTOR, "#log img, #log b")
    assert d.execute_script("return window.__pwned === undefined")


def test_language_switch_reload_and_notifications(browser, live):
    d = browser
    fresh(d, live.url)
    wait(d, lambda d: bot_texts(d) and idle(d), "no greeting")
    ask(d, "Как получить ЭЦП?")
    user_id = d.execute_script("return EstuChat.userId()")
    assert user_id.startswith("web-")
    before = len(d.find_elements(By.CSS_SELECTOR, "#log .msg"))

    # the header switch (a link, reached and followed with the keyboard)
    kk_link = d.find_element(By.CSS_SELECTOR, '.lang-switch a[lang="kk"]')
    kk_link.send_keys(Keys.ENTER)
    wait(d, lambda d: d.find_element(By.TAG_NAME, "html").get_attribute("lang") == "kk", "page not in Kazakh")
    wait(d, lambda d: any("қазақшаға" in t for t in bot_texts(d)) and idle(d), "the bot was not told")
    assert d.find_element(By.CSS_SELECTOR, "label[for=message]").text == "Хабарламаңыз"
    assert d.find_element(By.ID, "send").text == "Жіберу"
    assert d.find_element(By.CSS_SELECTOR, '.lang-switch a[aria-current="true"]').text == "Қазақша"
    assert d.execute_script("return EstuChat.userId()") == user_id
    assert len(d.find_elements(By.CSS_SELECTOR, "#log .msg")) == before + 1  # history kept, one new reply

    ask(d, "ЭЦҚ-ны қалай аламын?")
    assert "порталында" in bot_texts(d)[-1]
    assert d.find_elements(By.CSS_SELECTOR, "#log .msg-me .msg-who")[-1].text == "Сіз"
    d.execute_script("window.scrollTo(0, 0)")
    screenshot(d, "webchat-kk")

    # a reload keeps the history (this tab) and the user id (this browser), and the page stays Kazakh
    shown = [e.text for e in d.find_elements(By.CSS_SELECTOR, "#log .msg")]
    d.get(live.url + "/")
    wait(d, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#log .msg")) == len(shown))
    assert [e.text for e in d.find_elements(By.CSS_SELECTOR, "#log .msg")] == shown
    assert d.execute_script("return EstuChat.userId()") == user_id
    assert d.find_element(By.TAG_NAME, "html").get_attribute("lang") == "kk"

    # an appeal status notification for this user arrives through the poll
    async def notify(app):
        from sqlalchemy import select

        from bot.intake.registry import notify as queue
        from bot.storage.models import User
        from bot.web.app import RUNTIME

        async with app[RUNTIME].sessions() as session, session.begin():
            user = (await session.execute(select(User).where(User.channel == "web", User.external_id == user_id))
                    ).scalar_one()
            queue(session, user, "ЕТ-2026-000001 өтінішіңіздің мәртебесі: қаралуда.")

    live.call(notify)
    d.execute_script("EstuChat.poll()")
    wait(d, lambda d: d.find_elements(By.CSS_SELECTOR, "#log .msg-note"), "no notification")
    note = d.find_element(By.CSS_SELECTOR, "#log .msg-note")
    assert "ЕТ-2026-000001" in note.text and "Хабарландыру" in note.text


def test_bot_language_button_switches_the_page(browser, live):
    d = browser
    fresh(d, live.url)
    wait(d, lambda d: bot_texts(d) and idle(d), "no greeting")
    kk = [b for b in d.find_elements(By.CSS_SELECTOR, "#log button.reply-button")
          if b.get_attribute("data-button") == "lang:kk"]
    assert kk, "the greeting offers Қазақша"
    kk[0].click()
    wait(d, lambda d: d.find_element(By.TAG_NAME, "html").get_attribute("lang") == "kk", "page not in Kazakh")
    wait(d, lambda d: idle(d))
    assert any("қазақшаға" in t for t in bot_texts(d))
    # no second "switched" message: the bot already knew
    assert sum("қазақшаға" in t for t in bot_texts(d)) == 1


def test_phone_width(browser, live):
    d = browser
    try:
        d.set_window_size(390, 844)
        fresh(d, live.url)
        wait(d, lambda d: bot_texts(d) and idle(d), "no greeting")
        ask(d, "Как получить ЭЦП?")
        assert d.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")
        send = d.find_element(By.ID, "send")
        assert send.size["height"] >= 44 and send.is_displayed()
        screenshot(d, "webchat-phone")
    finally:
        d.set_window_size(1280, 900)


def test_errors_are_shown_and_the_text_is_kept(browser, small_settings, small_assistant, tmp_path):
    d = browser
    s = small_settings.model_copy(update={"database_url": f"sqlite+aiosqlite:///{tmp_path / 'err.db'}"})
    srv = LiveServer(s, small_assistant, with_dialogue=False)  # the API answers 503: no dialogue engine
    srv.__enter__()
    running = True
    try:
        fresh(d, srv.url)
        error = d.find_element(By.ID, "error")
        wait(d, lambda d: error.is_displayed() and idle(d), "no error line for the greeting")
        assert "503" in error.text and "Сервер ответил ошибкой" in error.text

        box = d.find_element(By.ID, "message")
        box.send_keys("Как получить ЭЦП?")
        box.send_keys(Keys.ENTER)
        wait(d, lambda d: idle(d) and error.is_displayed())
        assert box.get_attribute("value") == "Как получить ЭЦП?"
        assert not d.find_elements(By.CSS_SELECTOR, "#log .msg-me")

        # too long for the server: said so, and the text stays
        d.execute_script("arguments[0].value = 'а'.repeat(40000)", box)
        box.send_keys(Keys.END, Keys.ENTER)
        wait(d, lambda d: "слишком длинное" in error.text)
        assert len(box.get_attribute("value")) == 40000

        # the server goes away
        d.execute_script("arguments[0].value = 'Как получить ЭЦП?'", box)
        srv.__exit__(None, None, None)
        running = False
        box.send_keys(Keys.ENTER)
        wait(d, lambda d: "Сервер недоступен" in error.text and idle(d), "no error line when unreachable")
        assert box.get_attribute("value") == "Как получить ЭЦП?"
        assert not d.find_elements(By.CSS_SELECTOR, "#log .msg-me")
    finally:
        if running:
            srv.__exit__(None, None, None)


def test_templates_and_static_are_package_data():
    """Every template and static file is matched by the package-data globs, so a wheel ships them."""
    import glob
    import tomllib

    root = Path(__file__).resolve().parent.parent
    globs = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["bot"]
    files = [p.relative_to(root / "bot").as_posix() for d in ("web/templates", "web/static")
             for p in (root / "bot" / d).rglob("*") if p.is_file()]
    assert files
    shipped = {f for g in globs for f in glob.glob(g, root_dir=root / "bot", recursive=True)}
    assert sorted(set(files) - shipped) == []

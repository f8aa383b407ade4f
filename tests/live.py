"""A real ``estu serve`` (aiohttp app with its dialogue runtime) in a background thread, for
browser tests: Selenium is synchronous, so the server gets its own event loop."""

from __future__ import annotations

import asyncio
import shutil
import socket
import threading
from pathlib import Path

import pytest

from bot.config import Settings


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    """``with LiveServer(settings, assistant) as srv: srv.url`` — runs migrations, starts the app.

    ``srv.call(coro_fn)`` runs ``coro_fn(app)`` on the server's loop and returns its result, so a
    test can look into the database or the runtime the server uses."""

    def __init__(self, settings: Settings, assistant, **app_kwargs) -> None:
        self.settings = settings
        self.assistant = assistant
        self.app_kwargs = app_kwargs
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.loop = asyncio.new_event_loop()
        self.app = None
        self._runner = None
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> "LiveServer":
        from aiohttp import web

        from bot.storage.db import upgrade
        from bot.web.app import create_app

        upgrade(self.settings.db_url)
        self._thread.start()

        async def start():
            self.app = create_app(self.settings, self.assistant, **self.app_kwargs)
            self._runner = web.AppRunner(self.app)
            await self._runner.setup()
            await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

        asyncio.run_coroutine_threadsafe(start(), self.loop).result(timeout=120)
        return self

    def call(self, fn, timeout: float = 60):
        return asyncio.run_coroutine_threadsafe(fn(self.app), self.loop).result(timeout=timeout)

    def __exit__(self, *exc) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self.loop).result(timeout=60)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)


def chromium_paths() -> tuple[str, str] | None:
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    return (binary, driver) if binary and driver else None


@pytest.fixture(scope="session")
def browser():
    """Headless Debian chromium driven by Selenium through the system chromedriver."""
    paths = chromium_paths()
    if paths is None:
        pytest.skip("chromium/chromedriver not installed (make test installs Debian's chromium and chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = paths[0]
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1280,900", "--lang=ru"):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(paths[1]), options=opts)
    driver.implicitly_wait(0)
    yield driver
    driver.quit()


def screenshot(driver, name: str) -> Path:
    """Save a PNG into docs/screenshots/ (kept in the repo as documentation)."""
    out = Path(__file__).resolve().parent.parent / "docs" / "screenshots" / f"{name}.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(out))
    return out

"""`estu appeals list|show|set-status` and `estu db upgrade` against a real database."""

import re

from bot.cli import main
from tests.test_dialogue import Chat, file_appeal


async def _file(settings, assistant, url):
    from bot.dialogue.setup import build_runtime

    rt = await build_runtime(settings.model_copy(update={"database_url": url}), assistant)
    try:
        number, _ = await file_appeal(Chat(rt, user="cli-owner"))
    finally:
        await rt.close()
    return number


def test_staff_commands(settings, assistant, tmp_path, capsys, monkeypatch):
    import asyncio

    url = f"sqlite+aiosqlite:///{tmp_path / 'staff.db'}"
    monkeypatch.setenv("ESTU_DATABASE_URL", url)
    from bot.config import get_settings

    get_settings.cache_clear()
    try:
        assert main(["db", "upgrade"]) == 0
        number = asyncio.run(_file(settings, assistant, url))
        capsys.readouterr()
        assert main(["appeals", "list"]) == 0
        assert re.search(rf"{number}\s+registered", capsys.readouterr().out)
        assert main(["appeals", "set-status", number, "in_progress"]) == 0
        assert main(["appeals", "set-status", number, "extended", "--note", "нужна проверка",
                     "--new-date", "2099-01-01"]) == 1          # beyond the two-month cap
        assert "two months" in capsys.readouterr().err
        assert main(["appeals", "show", number]) == 0
        shown = capsys.readouterr().out
        assert '"status": "in_progress"' in shown and "900101300126" not in shown  # IIN masked for staff output
        assert main(["appeals", "show", "ЕТ-2000-000001"]) == 1
    finally:
        get_settings.cache_clear()

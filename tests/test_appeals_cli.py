"""`estu appeals list|show|set-status` and `estu db upgrade` against a real database."""

import re

import pytest

from bot.cli import main
from tests.test_dialogue import Chat, file_appeal


async def _file(settings, assistant, url, appeal_type="complaint"):
    from bot.dialogue.setup import build_runtime

    rt = await build_runtime(settings.model_copy(update={"database_url": url}), assistant)
    try:
        number, _ = await file_appeal(Chat(rt, user=f"cli-{appeal_type}"), appeal_type=appeal_type)
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
        # a complaint's term cannot be extended (APPC Art. 99)
        assert main(["appeals", "set-status", number, "extended", "--note", "нужна проверка",
                     "--new-date", "2099-01-01"]) == 1
        assert "cannot be extended" in capsys.readouterr().err
        # a statement's can, up to two months from the decision (APPC Art. 76 §3)
        statement = asyncio.run(_file(settings, assistant, url, "statement"))
        assert main(["appeals", "set-status", statement, "extended", "--note", "нужна проверка",
                     "--new-date", "2026-03-17", "--on", "2026-01-14"]) == 1     # the cap is Mon 16 Mar 2026
        assert "two months" in capsys.readouterr().err
        # a redirection restarts the term from the day the competent body received it (APPC Art. 76 §2):
        # Thu 3 Dec 2026 + 20 working days -> Tue 5 Jan 2027 (1, 2 Jan and the moved 4 Jan are days off)
        assert main(["appeals", "set-status", number, "redirected", "--to", "Управление ЖКХ",
                     "--on", "2026-12-03"]) == 0
        capsys.readouterr()
        assert main(["appeals", "show", number]) == 0
        shown = capsys.readouterr().out
        assert '"status": "redirected"' in shown and '"due_date": "2027-01-05"' in shown
        assert "900101300126" not in shown  # IIN masked for staff output
        # a malformed date is a usage error, not a traceback
        with pytest.raises(SystemExit) as exc:
            main(["appeals", "set-status", number, "answered", "--on", "03.12.2026"])
        assert exc.value.code == 2
        assert "use YYYY-MM-DD" in capsys.readouterr().err
        assert main(["appeals", "show", "ЕТ-2000-000001"]) == 1
    finally:
        get_settings.cache_clear()

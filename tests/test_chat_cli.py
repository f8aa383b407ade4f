"""`estu chat`: a real terminal conversation (subprocess, stdin/stdout) on the same engine and database."""

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_estu_chat_files_an_appeal_and_checks_status(settings, assistant, tmp_path):
    env = dict(os.environ, ESTU_DATA_DIR=str(settings.data_dir),
               ESTU_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'chat.db'}")
    lines = [
        "Хочу подать заявление: прошу установить пандус у входа в поликлинику № 3, мама на коляске не может зайти",
        "заявление", "1",                         # the type in words; "1" presses the first (suggested) body
        "Сейтова", "Гульнара", "1",               # "1" presses Skip (no patronymic)
        "900101300126", "г. Шымкент, ул. Байтурсынова, 12", "8 777 123 45 67", "готово", "да", "да", "/status",
    ]
    proc = subprocess.run([sys.executable, "-m", "bot.cli", "chat", "--user", "tester"], input="\n".join(lines),
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "Estu" in out and "[1]" in out
    number = re.search(r"ЕТ-\d{4}-\d{6}", out)
    assert number, out[-2000:]
    assert out.count(number.group(0)) >= 2  # the registration and the /status listing
    assert "Traceback" not in proc.stderr

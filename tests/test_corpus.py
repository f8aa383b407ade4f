"""The shipped knowledge base and the validator."""

import shutil
from pathlib import Path

import pytest
import yaml

from knowledge.corpus import DEFAULT_CORPUS_DIR, load_corpus
from knowledge.ids import AGENCY_IDS, CHANNEL_IDS
from knowledge.validate import Report, static_checks, validate_corpus, _duplicate_ids

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="module")
def corpus():
    return load_corpus(DEFAULT_CORPUS_DIR)


def test_shipped_corpus_loads_without_errors(corpus):
    assert corpus.errors == []


def test_one_entry_per_channel_and_agency(corpus):
    ids = {e.id for e in corpus.entries}
    assert {f"channel.{c}" for c in CHANNEL_IDS} <= ids
    assert {f"agency.{a}" for a in AGENCY_IDS} <= ids


def test_at_least_80_faq_and_service_entries(corpus):
    assert sum(1 for e in corpus.entries if e.kind in ("faq", "service")) >= 80


def test_every_entry_bilingual_with_four_phrasings_and_sources(corpus):
    for e in corpus.entries:
        for lang in ("kk", "ru"):
            block = e.block(lang)
            assert block is not None, f"{e.id} lacks {lang}"
            assert len(block.questions) >= 4, f"{e.id} {lang}"
        assert e.sources, e.id


def test_kazakh_blocks_are_kazakh(corpus):
    """A Kazakh answer written in Russian would slip through the schema; catch it here."""
    kk_letters = set("әіңғүұқөһ")
    for e in corpus.entries:
        assert set(e.kk.answer.lower()) & kk_letters, f"{e.id}: the kk answer has no Kazakh letters"


def test_static_checks_pass_on_shipped_corpus(corpus):
    report = Report(entries=len(corpus.entries))
    static_checks(corpus, report, _duplicate_ids(DEFAULT_CORPUS_DIR))
    errors = [i for i in report.issues if i.level == "error"]
    assert errors == []


def _broken_corpus(tmp_path: Path) -> Path:
    root = tmp_path / "corpus"
    shutil.copytree(FIXTURES / "corpus_small", root)
    eds = yaml.safe_load((root / "faq" / "eds.yml").read_text(encoding="utf-8"))
    # 1. missing twin
    no_kk = dict(eds, id="faq.no_twin")
    no_kk.pop("kk")
    no_kk["ru"] = dict(eds["ru"], questions=["вопрос без пары один", "вопрос без пары два",
                                             "вопрос без пары три", "вопрос без пары четыре"])
    (root / "faq" / "no_twin.yml").write_text(yaml.safe_dump(no_kk, allow_unicode=True), encoding="utf-8")
    # 2. duplicate id, 3. duplicate question (same entry content under the same id in another file)
    (root / "faq" / "eds_copy.yml").write_text(yaml.safe_dump(eds, allow_unicode=True), encoding="utf-8")
    # 4. unknown channel id
    bad = dict(eds, id="faq.bad_channel", channels=["telegraph"])
    (root / "faq" / "bad_channel.yml").write_text(yaml.safe_dump(bad, allow_unicode=True), encoding="utf-8")
    # 5. a question shared with another entry
    lamp = yaml.safe_load((root / "faq" / "street_lamp.yml").read_text(encoding="utf-8"))
    lamp["ru"]["questions"].append("Как получить ЭЦП?")
    (root / "faq" / "street_lamp.yml").write_text(yaml.safe_dump(lamp, allow_unicode=True), encoding="utf-8")
    return root


def test_validator_reports_each_kind_of_problem(tmp_path, small_settings):
    root = _broken_corpus(tmp_path)
    settings = small_settings.model_copy(update={"corpus_dir": root})
    report = validate_corpus(settings, self_test=False)
    codes = {i.code for i in report.issues if i.level == "error"}
    assert {"missing_twin", "duplicate_id", "schema", "duplicate_question"} <= codes
    assert any("telegraph" in i.message for i in report.issues)
    assert not report.ok


def test_validate_cli_exit_codes(tmp_path, small_settings):
    from bot.cli import main

    root = _broken_corpus(tmp_path)
    assert main(["--data-dir", str(small_settings.data_dir), "--corpus", str(root), "kb", "validate",
                 "--no-self-test"]) == 1
    assert main(["--data-dir", str(small_settings.data_dir), "--corpus", str(FIXTURES / "corpus_small"),
                 "kb", "validate"]) == 0


def test_self_test_flags_an_entry_its_phrasings_do_not_find(tmp_path, small_settings):
    root = tmp_path / "corpus"
    shutil.copytree(FIXTURES / "corpus_small", root)
    lamp = yaml.safe_load((root / "faq" / "street_lamp.yml").read_text(encoding="utf-8"))
    # the lamp entry keeps its answer, but each phrasing asks about another entry's topic
    lamp["kk"]["questions"] = ["ЭЦҚ-ны онлайн қайдан алуға болады", "Баланы балабақшаға кезекке қою жолы",
                               "109 нөмірі не үшін керек", "Электрондық қолтаңбаның мерзімі бітсе не істеу керек"]
    lamp["ru"]["questions"] = ["Где оформить ЭЦП онлайн", "Как записать ребёнка в очередь в садик",
                               "Что за номер 109 и зачем туда звонят", "Ключ ЭЦП истёк, как получить новый"]
    (root / "faq" / "street_lamp.yml").write_text(yaml.safe_dump(lamp, allow_unicode=True), encoding="utf-8")
    settings = small_settings.model_copy(update={"corpus_dir": root})
    report = validate_corpus(settings, self_test=True)
    assert report.self_test_top1 is not None
    flagged = {i.where for i in report.issues if i.code == "self_retrieval"}
    assert flagged == {"faq.street_lamp"}
    # the untouched fixture passes
    clean = validate_corpus(small_settings, self_test=True)
    assert not [i for i in clean.issues if i.code == "self_retrieval"]

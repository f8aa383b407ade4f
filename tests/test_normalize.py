import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from nlu.normalize import char_ngrams, clean, fold, normalize, to_cyrillic, words
from nlu.stemming import stem_kk


def test_three_kazakh_spellings_meet():
    cyrillic = "Балабақшаға кезекке қалай тұрамын?"
    russian_keyboard = "балабакшага кезекке калай турамын"
    latin_2021 = "Balabaqşağa kezekke qalai tūramyn"
    latin_ascii = "balabaqshaga kezekke qalai turamyn"
    forms = {tuple(words(normalize(t))) for t in (cyrillic, russian_keyboard, latin_2021, latin_ascii)}
    assert forms == {("балабакшага", "кезекке", "калаи", "турамын")}


def test_latin_digraphs_and_ng():
    assert to_cyrillic("shagym") == "шағым".replace("ғ", "г")  # gh → ғ only as a digraph
    assert normalize("menıng") == normalize("менің")
    assert normalize("Qazaqstan") == normalize("Қазақстан")
    assert normalize("ЁЛКА") == "елка"


def test_clean_removes_control_and_zero_width():
    assert clean("a\x00b\u200bc\n\n d") == "a b c d"


def test_kazakh_stemmer_strips_endings_but_keeps_stems():
    assert stem_kk("балабакшаларга") == "балабакша"
    assert stem_kk("кезекке") == "кезек"
    assert stem_kk("уй") == "уй"  # too short to strip


def test_char_ngrams_mark_word_boundaries():
    assert char_ngrams(["эц"]) == ["_эц_"]
    assert char_ngrams(["эцп"]) == ["_эцп", "эцп_"]
    assert char_ngrams(["сала"]) == ["_сал", "сала", "ала_"]


@given(st.text(max_size=200))
@example("' 0")  # found by hypothesis in CI: a lone apostrophe was taken for a Latin word
def test_normalize_is_idempotent(text):
    once = normalize(text)
    assert normalize(once) == once


@given(st.text(max_size=200))
def test_normalized_text_has_no_latin_letters_or_kazakh_specific_letters(text):
    out = normalize(text)
    assert not any(ch in out for ch in "әіңғүұқөһ")
    assert not any("a" <= ch <= "z" for ch in out)


@given(st.text(alphabet="абвгдежзиклмнопрстуфхцчшщыэюяәіңғүұқөһ ", max_size=100))
def test_transliteration_leaves_cyrillic_alone(text):
    assert to_cyrillic(text) == text


@given(st.text(max_size=100))
def test_fold_is_idempotent(text):
    assert fold(fold(text)) == fold(text)


# The official Kazakh Latin alphabets (see nlu/normalize.py for the sources): 2021 has I ı = І, İ i = И/Й,
# U u = У, Ū ū = Ұ, Ü ü = Ү, Y y = Ы; 2018 has I i = І, Ý ý = У, U u = Ұ, Ú ú = Ү, Y y = Ы.
@pytest.mark.parametrize("latin,cyrillic", [
    ("Būryñğy ötken zamanda, bır danyşpan kısı", "бұрыңғы өткен заманда, бір данышпан кісі"),  # 2021: ı = і
    ("bır ülken qazysynyñ üiıne kelıp", "бір үлкен қазысының үйіне келіп"),  # 2021: i = й after a vowel
    ("Jeke kuälıgımdı joğaltyp aldym", "жеке куәлігімді жоғалтып алдым"),
    ("Qūjattardy tapsyru kerek", "құжаттарды тапсыру керек"),  # 2021: u = у, ū = ұ
    ("Jeke kýálikti aýystyrý úshin", "жеке куәлікті ауыстыру үшін"),  # 2018: ý = у, ú = ү
    ("Mamanǵa aýystyryńyz", "маманға ауыстырыңыз"),
])
def test_official_latin_alphabets(latin, cyrillic):
    assert to_cyrillic(latin) == cyrillic
    assert normalize(latin) == normalize(cyrillic)


def test_dotless_i_typed_the_turkish_way_reads_as_y():
    # "Almatı oblısı": ı in back-vowel words is Ы, as on a Turkish keyboard, not the 2021 І
    assert normalize("Almatı oblısı, Qarasay audanı") == normalize("Алматы облысы, Қарасай ауданы")
    assert normalize("Üyde üş kün boldı jılu joq") == normalize("Үйде үш күн болды жылу жоқ")


def test_capital_dotted_i_leaves_no_combining_dot():
    assert normalize("İNSTİTUT") == "институт"

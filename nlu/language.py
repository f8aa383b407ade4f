"""Per-message language: kk, ru or en.

Signals, strongest first: Kazakh-only Cyrillic letters; Kazakh and Russian function words
(also in Russian-keyboard and Latin spellings, after transliteration); lingua's kk/ru/en
confidence; and, for very short or undecided messages, the conversation's previous language.
"""

from __future__ import annotations

import re
from functools import lru_cache

from nlu.normalize import clean, fold, to_cyrillic

_KK_LETTERS = set("әіңғүұқөһӘІҢҒҮҰҚӨҺ")
_LATIN_KK_LETTERS = set("äğñöşūüıÄĞÑÖŞŪÜİ")
_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)

# Folded spellings (қ→к, ә→а, і→и …) of frequent Kazakh words and endings.
_KK_WORDS = {
    "мен", "сен", "сиз", "ол", "биз", "сиздер", "калаи", "кандаи", "каида", "кашан", "неге",
    "кім", "ким", "керек", "бар", "жок", "иа", "иә", "жане", "уш", "ушин", "бола", "болады", "ма", "ме",
    "ба", "бе", "па", "пе", "агаи", "апаи", "рахмет", "салем", "саламатсыз", "салеметсиз", "сау", "бол",
    "болсын", "жаксы", "аныктама", "отиниш", "шагым", "акимдик", "емхана", "балабакша", "мектеп",
    "зеинетакы", "жардемакы", "турмыс", "уи", "ужаи", "кешир", "кешириниз", "комек", "комектесиниз",
    "каласы", "облысы", "ауданы", "кала", "кажет", "алу", "беру", "жазу", "тиркеу", "куни", "ай", "жыл",
    "бала", "балам", "баланы", "анам", "акем", "осы", "бул", "сол", "мынау", "барма", "жокпа", "болама",
    "кандаи", "накты", "туралы", "бойынша", "аркылы", "дейин", "кеиин", "емес", "ғой", "гои", "гана",
}
_KK_SUFFIX = re.compile(
    r"(мын|мин|сыз|сиз|мыз|миз|ныз|низ|дагы|деги|тагы|теги|нын|нин|дын|дин|тын|тин|га|ге|ка|ке|"
    r"дан|ден|тан|тен|нан|нен|лар|лер|дар|дер|тар|тер|ды|ди|ты|ти|ган|ген|кан|кен|уга|уге|ип|ып)$"
)
_RU_WORDS = {
    "как", "что", "где", "когда", "почему", "зачем", "кто", "какой", "какие", "какая", "сколько", "можно",
    "нужно", "надо", "хочу", "мне", "меня", "мой", "моя", "мои", "у", "в", "на", "и", "не", "нет", "да",
    "это", "по", "за", "с", "со", "из", "от", "до", "для", "или", "а", "но", "же", "ли", "уже", "еще",
    "ещё", "есть", "был", "была", "было", "если", "то", "так", "вы", "я", "он", "она", "они", "мы",
    "ваш", "здравствуйте", "привет", "спасибо", "пожалуйста", "подскажите", "скажите", "помогите",
    "получить", "подать", "куда", "обратиться", "очередь", "справку", "справка", "ребенка", "ребёнка",
}
_EN_WORDS = {
    "the", "is", "are", "how", "what", "where", "when", "why", "can", "could", "do", "does", "i", "my",
    "you", "your", "to", "of", "for", "and", "in", "on", "with", "please", "hello", "hi", "thanks",
    "get", "need", "want", "help", "a", "an", "it", "this", "that", "should", "would", "me",
}


@lru_cache(maxsize=1)
def _lingua():
    from lingua import Language, LanguageDetectorBuilder

    return LanguageDetectorBuilder.from_languages(Language.KAZAKH, Language.RUSSIAN, Language.ENGLISH).build()


def _lingua_scores(text: str) -> dict[str, float]:
    out = {"kk": 0.0, "ru": 0.0, "en": 0.0}
    names = {"KAZAKH": "kk", "RUSSIAN": "ru", "ENGLISH": "en"}
    for cv in _lingua().compute_language_confidence_values(text):
        out[names[cv.language.name]] = float(cv.value)
    return out


def detect_language(text: str, previous: str | None = None) -> str:
    """Return ``kk``, ``ru`` or ``en``; ``previous`` decides short or undecided messages."""
    scores = language_scores(text, previous)
    return max(scores, key=scores.get)


def language_scores(text: str, previous: str | None = None) -> dict[str, float]:
    text = clean(text)
    raw_words = _WORD.findall(text)
    fallback = previous if previous in ("kk", "ru", "en") else "ru"
    if not raw_words:
        return {lang: (1.0 if lang == fallback else 0.0) for lang in ("kk", "ru", "en")}

    kk = ru = en = 0.0
    latin_words = [w for w in raw_words if w.isascii() or set(w) & _LATIN_KK_LETTERS]
    lw_lower = [w.lower() for w in latin_words]
    en += 1.5 * sum(1 for w in lw_lower if w in _EN_WORDS)
    kk += 2.0 * sum(1 for w in latin_words if set(w) & _LATIN_KK_LETTERS)
    kk += 1.0 * sum(1 for w in lw_lower if "q" in w or w.endswith(("myn", "min", "syz", "siz", "ga", "ge")))

    cyr = fold(to_cyrillic(text.lower()))
    for w, raw in zip(_WORD.findall(cyr), raw_words):
        if set(raw) & _KK_LETTERS:
            kk += 2.0
        elif w in _KK_WORDS:
            kk += 1.5
        elif w in _RU_WORDS:
            ru += 1.2
        elif len(w) > 4 and _KK_SUFFIX.search(w) and not raw.isascii():
            kk += 0.4

    # lingua on the Cyrillic form (Latin Kazakh looks English to it otherwise)
    cyr_form = to_cyrillic(text) if latin_words and en < 1.5 else text
    ling = _lingua_scores(cyr_form)
    n = max(1, len(raw_words))
    weight = min(3.0, 0.6 * n)
    kk += weight * ling["kk"]
    ru += weight * ling["ru"]
    en += weight * ling["en"] * (1.0 if latin_words else 0.0)

    if previous in ("kk", "ru", "en") and n <= 2:
        # one or two words: the conversation's language weighs in
        if previous == "kk":
            kk += 1.0
        elif previous == "ru":
            ru += 1.0
        else:
            en += 1.0
    total = kk + ru + en or 1.0
    return {"kk": kk / total, "ru": ru / total, "en": en / total}

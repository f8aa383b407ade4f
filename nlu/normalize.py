"""Text normalisation shared by the lexical and dense retrievers and by the NLU.

Three spellings of the same Kazakh sentence reach the bot:

* Cyrillic Kazakh: ``балабақшаға кезекке қалай тұрамын``
* Kazakh typed on a Russian keyboard: ``балабакшага кезекке калай турамын``
* Kazakh in Latin letters, either the 2021 official alphabet (``balabaqşağa``) or
  informal ASCII (``balabaqshaga kezekke qalai turamyn``)

:func:`to_cyrillic` turns Latin-letter words into Cyrillic, and :func:`fold` maps the
Kazakh-specific letters onto their nearest Russian-keyboard letters, so all three
spellings meet in one *folded* form. Folding loses information, so it is used for
matching only, never for text shown to people.
"""

from __future__ import annotations

import re
import unicodedata

# Kazakh-specific Cyrillic letters and the Russian-keyboard letters people type instead.
_FOLD = str.maketrans(
    {
        "қ": "к", "ә": "а", "ө": "о", "ү": "у", "ұ": "у", "і": "и", "ң": "н",
        "ғ": "г", "һ": "х", "й": "и", "ё": "е", "ъ": "", "ь": "",
        # Look-alike Latin letters that sneak into Cyrillic words.
        "θ": "о",
    }
)

# Multi-letter Latin sequences first (informal ASCII and the 2021 alphabet's digraph-free forms).
_LATIN_DIGRAPHS = [
    ("shch", "щ"), ("sh", "ш"), ("ch", "ч"), ("zh", "ж"), ("gh", "ғ"), ("kh", "х"),
    ("ts", "ц"), ("ya", "я"), ("yu", "ю"), ("ia", "я"), ("iu", "ю"),
    ("a'", "ә"), ("o'", "ө"), ("u'", "ү"), ("g'", "ғ"), ("n'", "ң"), ("i'", "і"),
    ("ae", "ә"), ("oe", "ө"), ("ue", "ү"),
]
_LATIN_SINGLE = {
    "a": "а", "ä": "ә", "á": "ә", "b": "б", "c": "с", "ç": "ч", "d": "д", "e": "е",
    "f": "ф", "g": "г", "ğ": "ғ", "ǵ": "ғ", "h": "х", "i": "і", "ı": "и", "ī": "и",
    "j": "ж", "k": "к", "l": "л", "m": "м", "n": "н", "ñ": "ң", "ń": "ң", "o": "о",
    "ö": "ө", "ó": "ө", "p": "п", "q": "қ", "r": "р", "s": "с", "ş": "ш", "t": "т",
    "u": "ұ", "ū": "ұ", "ü": "ү", "ú": "ү", "v": "в", "w": "у", "x": "х", "y": "ы",
    "ý": "у", "z": "з",
}
# The official alphabets differ on a few letters. 2018 (Decree No. 569 of 26 Oct 2017 as amended on
# 19 Feb 2018): I i = І, Ý ý = У, U u = Ұ, Ú ú = Ү. 2021 (the revision presented in January 2021 and
# published as a draft decree in April 2021): I ı = І, İ i = И/Й, U u = У, Ū ū = Ұ, Ü ü = Ү. Informal
# typing follows neither: "i" is usually І, "u" either У or Ұ (the table above), and some people use
# "ı" the Turkish way, for Ы ("Almatı"). :func:`_latin_reading` decides per message which one it is.
_FRONT_LAT = set("eäöüáóú")
_BACK_LAT = set("aoūy")
_VOWELS_LAT = set("aeiouäöüūıyáóú")
_LATIN_LETTERS = "a-zäáçğǵıīñńöóşūüúý"
# a Latin word starts with a letter; apostrophes inside or at the end mark ә/ө/ү/ғ/ң (a', o' …)
_LATIN_WORD = re.compile(rf"[{_LATIN_LETTERS}][{_LATIN_LETTERS}']*", re.IGNORECASE)
_CYR = re.compile(r"[а-яёәіңғүұқөһ]", re.IGNORECASE)
_SPACES = re.compile(r"\s+")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u200b-\u200f\u2028-\u202f\ufeff]")


def clean(text: str) -> str:
    """Unicode-normalise, drop control and zero-width characters, collapse spaces."""
    text = unicodedata.normalize("NFC", text)
    text = _CONTROL.sub(" ", text)
    return _SPACES.sub(" ", text).strip()


def _latin_reading(text: str) -> dict[str, str]:
    """Letter readings that depend on which Latin spelling the message uses.

    A dotless "ı" is І in the 2021 alphabet ("bır", "keledı") but Ы for people who type the Turkish
    way ("Almatı", "turalı"): the words that contain it decide (front vowels: І, back vowels: Ы).
    Where it stands for І, the writer follows 2021, so "i" is И/Й and "u" is У; a "ū" alone also
    marks 2021 for "u"."""
    lower = text.lower()
    reading: dict[str, str] = {}
    if "ı" in lower:
        front = back = 0
        for m in _LATIN_WORD.finditer(lower):
            w = m.group(0)
            if "ı" in w:
                front += any(c in _FRONT_LAT for c in w)
                back += any(c in _BACK_LAT for c in w)
        if back > front:
            reading["ı"] = "ы"
        else:
            reading.update({"ı": "і", "i": "и", "u": "у"})
    if "ū" in lower:
        reading["u"] = "у"
    return reading


def _latin_word_to_cyrillic(word: str, reading: dict[str, str] | None = None) -> str:
    reading = reading or {}
    w = word.lower().replace("i\u0307", "i")  # "İ".lower() is i + combining dot
    out: list[str] = []
    i = 0
    while i < len(w):
        # "ng" is ң at the end of a word or before a consonant (menıng, jañalyq → not here).
        if w.startswith("ng", i) and (i + 2 == len(w) or w[i + 2] not in _VOWELS_LAT):
            out.append("ң")
            i += 2
            continue
        for lat, cyr in _LATIN_DIGRAPHS:
            if w.startswith(lat, i):
                out.append(cyr)
                i += len(lat)
                break
        else:
            ch = w[i]
            if ch == "y" and i > 0 and w[i - 1] in _VOWELS_LAT:
                out.append("й")  # qalay, oy → й after a vowel
            elif ch == "i" and reading.get("i") == "и" and i > 0 and w[i - 1] in _VOWELS_LAT:
                out.append("й")  # 2021: İ i is both И and Й (qalai, üiıne → үйіне)
            elif ch == "'":
                pass
            else:
                out.append(reading.get(ch) or _LATIN_SINGLE.get(ch, ch))
            i += 1
    return "".join(out)


def has_latin_letters(text: str) -> bool:
    return bool(_LATIN_WORD.search(text))


def to_cyrillic(text: str) -> str:
    """Transliterate every Latin-letter word to Cyrillic (Kazakh conventions)."""
    lower = text.lower()
    reading = _latin_reading(text) if ("ı" in lower or "ū" in lower) else None
    return _LATIN_WORD.sub(lambda m: _latin_word_to_cyrillic(m.group(0), reading), text)


def fold(text: str) -> str:
    """Lower-case and map Kazakh-specific letters to Russian-keyboard letters."""
    return text.lower().translate(_FOLD)


def normalize(text: str) -> str:
    """Canonical matching form: cleaned, lower-case, Latin → Cyrillic, folded."""
    text = clean(text).lower().replace("ё", "е").replace("i\u0307", "i")  # "İ".lower() is i + dot
    text = to_cyrillic(text)
    return _SPACES.sub(" ", fold(text)).strip()


_WORD = re.compile(r"[0-9a-zа-я]+")


def words(normalized: str) -> list[str]:
    """Split a normalised string into word tokens (letters and digits)."""
    return _WORD.findall(normalized)


def char_ngrams(normalized_words: list[str], n: int = 4) -> list[str]:
    """Character n-grams of each word, with word-boundary marks; short words kept whole."""
    grams: list[str] = []
    for w in normalized_words:
        padded = f"_{w}_"
        if len(padded) <= n:
            grams.append(padded)
        else:
            grams.extend(padded[i : i + n] for i in range(len(padded) - n + 1))
    return grams


def is_cyrillic(text: str) -> bool:
    return bool(_CYR.search(text))


def dense_text(text: str) -> str:
    """What the sentence embedder sees: cleaned, with Latin-letter Kazakh transliterated to
    Cyrillic (E5 reads Cyrillic Kazakh far better than ``balabaqshaga``); Cyrillic is unchanged."""
    return to_cyrillic(clean(text))

"""Stemming for the lexical index: Russian Snowball and a light Kazakh suffix stripper.

Both work on *folded* words (see :mod:`nlu.normalize`), so that Kazakh typed in Latin,
in Cyrillic and on a Russian keyboard stems alike.
"""

from __future__ import annotations

from functools import lru_cache

import Stemmer

_russian = Stemmer.Stemmer("russian")

# Common Kazakh inflectional endings in folded spelling (қ→к, ә→а, ө→о, ү/ұ→у, і→и,
# ң→н, ғ→г). Longest first; a stem keeps at least three letters.
_KK_SUFFIXES = sorted(
    {
        # plural + case / possessive combinations
        "лардын", "лердин", "дардын", "дердин", "тардын", "тердин",
        "ларга", "лерге", "дарга", "дерге", "тарга", "терге",
        "ларда", "лерде", "дарда", "дерде", "тарда", "терде",
        "лардан", "лерден", "дардан", "дерден", "тардан", "терден",
        "лары", "лери", "дары", "дери", "тары", "тери",
        "лар", "лер", "дар", "дер", "тар", "тер",
        # possessive
        "ымыз", "имиз", "мыз", "миз", "ынызга", "инизге", "ныз", "низ", "ыныз", "иниз",
        "сыз", "сиз",
        # cases
        "нын", "нин", "дын", "дин", "тын", "тин",
        "ына", "ине", "нга", "нге", "га", "ге", "ка", "ке", "на", "не",
        "нда", "нде", "да", "де", "та", "те",
        "нан", "нен", "дан", "ден", "тан", "тен",
        "мен", "бен", "пен", "ын", "ин", "ны", "ни", "ды", "ди", "ты", "ти",
        # verb endings
        "амын", "емин", "ймын", "ймин", "аймын", "еймин", "мын", "мин", "бын", "бин", "пын", "пин",
        "асыз", "есиз", "аласыз", "елесиз", "ады", "еди", "йды", "йди", "ган", "ген", "кан", "кен",
        "уга", "уге", "ып", "ип", "у",
    },
    key=len,
    reverse=True,
)


@lru_cache(maxsize=200_000)
def stem_kk(word: str) -> str:
    for _ in range(2):  # at most two layers: балабакшаларга → балабакша
        for suf in _KK_SUFFIXES:
            if word.endswith(suf) and len(word) - len(suf) >= 3:
                word = word[: -len(suf)]
                break
        else:
            break
    return word


@lru_cache(maxsize=200_000)
def stem_ru(word: str) -> str:
    return _russian.stemWord(word)


def stem(word: str, language: str) -> str:
    return stem_kk(word) if language == "kk" else stem_ru(word)

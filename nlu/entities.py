"""Entity extraction: IIN/BIN (checksum-validated), phones, e-mails, appeal numbers, places."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

from nlu.normalize import normalize, words
from nlu.pii import is_valid_bin, is_valid_iin

DATA_DIR = Path(__file__).parent / "data"

_TWELVE = re.compile(r"(?<!\d)\d(?:[ \-]?\d){11}(?!\d)")
_PHONE = re.compile(r"(?<![\w\d])(\+\s?7|8|7)?[\s\-]*\(?\s*([67]\d{2})\s*\)?[\s\-]*(\d{3})[\s\-]*(\d{2})[\s\-]*(\d{2})(?!\d)")
_EMAIL = re.compile(r"(?<![\w.+-])[A-Za-z0-9][A-Za-z0-9._%+-]*@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
# Estu's own registration numbers: ЕТ-2026-000123 (Cyrillic or Latin letters, any separators)
_APPEAL_NO = re.compile(r"(?<![\w])([ЕEеe][ТTтt])\s*[-–—]?\s*(\d{4})\s*[-–—]?\s*(\d{6})(?!\d)")


@dataclass(frozen=True)
class Entity:
    type: str  # iin | bin | phone | email | appeal_number | place
    value: str  # canonical value
    text: str  # as written
    start: int
    end: int


def find_iins(text: str) -> list[Entity]:
    out = []
    for m in _TWELVE.finditer(text):
        d = re.sub(r"\D", "", m.group(0))
        if is_valid_iin(d):
            out.append(Entity("iin", d, m.group(0), m.start(), m.end()))
        elif is_valid_bin(d):
            out.append(Entity("bin", d, m.group(0), m.start(), m.end()))
    return out


def find_phones(text: str) -> list[Entity]:
    out = []
    for m in _PHONE.finditer(text):
        value = "+7" + "".join(m.group(i) for i in range(2, 6))
        out.append(Entity("phone", value, m.group(0).strip(), m.start(), m.end()))
    return out


def find_emails(text: str) -> list[Entity]:
    return [Entity("email", m.group(0).lower(), m.group(0), m.start(), m.end()) for m in _EMAIL.finditer(text)]


def format_appeal_number(year: int, serial: int) -> str:
    return f"ЕТ-{year:04d}-{serial:06d}"


def find_appeal_numbers(text: str) -> list[Entity]:
    return [Entity("appeal_number", format_appeal_number(int(m.group(2)), int(m.group(3))), m.group(0),
                   m.start(), m.end()) for m in _APPEAL_NO.finditer(text)]


@lru_cache(maxsize=1)
def _places() -> tuple[dict[tuple[str, ...], str], dict[str, dict], int]:
    """Folded spelling (as a word tuple) → canonical place id; place metadata; longest spelling."""
    from nlu.rasa_format import read_nlu_file

    spellings: dict[tuple[str, ...], str] = {}
    meta: dict[str, dict] = {}
    places = DATA_DIR / "places.yml"
    if places.exists():
        for canon, examples in read_nlu_file(places).synonyms.items():
            for ex in [canon.replace("_", " "), *examples]:
                key = tuple(words(normalize(ex)))
                if key:
                    spellings.setdefault(key, canon)
    meta_path = DATA_DIR / "places_meta.yml"
    if meta_path.exists():
        meta = yaml.safe_load(meta_path.read_text(encoding="utf-8")) or {}
        for canon, info in meta.items():
            for name in (info or {}).get("kk"), (info or {}).get("ru"):
                if name:
                    key = tuple(words(normalize(str(name))))
                    if key:
                        spellings.setdefault(key, canon)
    longest = max((len(k) for k in spellings), default=1)
    return spellings, meta, longest


def place_info(place_id: str) -> dict:
    return _places()[1].get(place_id, {})


def find_places(text: str) -> list[Entity]:
    """Longest-match lookup of place spellings; Kazakh/Russian case endings are tolerated."""
    spellings, _meta, longest = _places()
    toks = words(normalize(text))
    out: list[Entity] = []
    i = 0
    while i < len(toks):
        hit = None
        for n in range(min(longest, len(toks) - i), 0, -1):
            key = tuple(toks[i : i + n])
            canon = spellings.get(key)
            if canon is None and n == 1 and len(key[0]) > 5:
                # inflected single word: Астанада, Алматыдан, Шымкенте, Орала …
                for cut in range(1, 4):
                    canon = spellings.get((key[0][:-cut],))
                    if canon:
                        break
            if canon:
                hit = (canon, n)
                break
        if hit:
            out.append(Entity("place", hit[0], " ".join(toks[i : i + hit[1]]), i, i + hit[1]))
            i += hit[1]
        else:
            i += 1
    return out


@lru_cache(maxsize=1)
def _agencies() -> tuple[tuple[tuple[str, ...], str], ...]:
    """Names of bodies (``agencies.yml``) as folded word tuples → agency id, longest first."""
    from nlu.rasa_format import read_nlu_file

    path = DATA_DIR / "agencies.yml"
    if not path.exists():
        return ()
    names = [(key, canon) for canon, examples in read_nlu_file(path).synonyms.items()
             for key in (tuple(words(normalize(ex))) for ex in examples) if key]
    return tuple(sorted(names, key=lambda kv: -len(kv[0])))


def _word_matches(token: str, word: str) -> bool:
    """The token is the word, possibly with a case or possessive ending (Russian or Kazakh)."""
    if token == word:
        return True
    if len(word) <= 4:  # аким → акимат, әкімдікке; мвд → мвд-ға
        return token.startswith(word) and len(token) <= len(word) + 6
    stem = word[:-1] if len(word) < 8 else word[:-2]  # министерство → министерства; здравоохранения → …ию
    return token.startswith(stem) and len(token) <= len(word) + 6


def find_agencies(text: str) -> list[Entity]:
    """State bodies named in the text ("жалоба на акимат", "білім бөліміне", "в налоговую"), in order."""
    names = _agencies()
    toks = words(normalize(text))
    out: list[Entity] = []
    i = 0
    while i < len(toks):
        for key, canon in names:
            n = len(key)
            if i + n <= len(toks) and all(_word_matches(toks[i + j], key[j]) for j in range(n)):
                out.append(Entity("agency", canon, " ".join(toks[i : i + n]), i, i + n))
                i += n
                break
        else:
            i += 1
    return out


def extract(text: str) -> list[Entity]:
    return (find_iins(text) + find_phones(text) + find_emails(text) + find_appeal_numbers(text) + find_places(text)
            + find_agencies(text))

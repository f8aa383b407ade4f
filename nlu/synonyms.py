"""Entity synonyms from ``nlu/data/synonyms.yml`` (Rasa ``- synonym:`` blocks).

Every spelling of a synonym (``ЭЦП``, ``ЭЦҚ``, ``ecp``, ``электронная подпись`` …) maps to one
canonical token (``§eds``) that the lexical index adds to both passages and queries, so a
query in one spelling matches a passage written in another.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path

from nlu.normalize import normalize, words

SYNONYMS_FILE = Path(__file__).parent / "data" / "synonyms.yml"


@lru_cache(maxsize=4)
def _table(path: str) -> tuple[dict[tuple[str, ...], str], int]:
    from nlu.rasa_format import read_nlu_file

    p = Path(path)
    table: dict[tuple[str, ...], str] = {}
    if p.exists():
        for canon, examples in read_nlu_file(p).synonyms.items():
            for ex in [canon, *examples]:
                key = tuple(words(normalize(ex)))
                if key:
                    table.setdefault(key, canon)
    return table, max((len(k) for k in table), default=0)


def synonyms_version(path: Path = SYNONYMS_FILE) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12] if path.exists() else "none"


def canonical_tokens(normalized_words: list[str], path: Path = SYNONYMS_FILE) -> list[str]:
    """``§<canonical>`` for every synonym spelling found in the word sequence."""
    table, longest = _table(str(path))
    if not table:
        return []
    out: list[str] = []
    n = len(normalized_words)
    for i in range(n):
        for size in range(min(longest, n - i), 0, -1):
            canon = table.get(tuple(normalized_words[i : i + size]))
            if canon:
                out.append(f"§{canon}")
                break
    return out

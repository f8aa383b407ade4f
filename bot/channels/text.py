"""Splitting long answers for platforms with a message size limit."""

from __future__ import annotations

import re

_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+|\n+")


def split_message(text: str, limit: int) -> list[str]:
    """Chunks of at most ``limit`` characters, cut at paragraph or sentence boundaries when possible."""
    text = text.strip()
    if len(text) <= limit:
        return [text] if text else []
    chunks: list[str] = []
    rest = text
    while len(rest) > limit:
        window = rest[:limit]
        cut = max((m.end() for m in _SENTENCE_END.finditer(window)), default=0)
        if cut < limit // 3:  # no good boundary: cut at the last space, else hard
            space = window.rfind(" ")
            cut = space + 1 if space > limit // 3 else limit
        chunks.append(rest[:cut].strip())
        rest = rest[cut:].strip()
    if rest:
        chunks.append(rest)
    return [c for c in chunks if c]

"""UI strings in Kazakh and Russian from gettext catalogues (``bot/locale/<lang>/LC_MESSAGES/<domain>.po``).

Domains: ``estu`` (what the bot says to citizens), ``web`` (the web chat page), ``console`` (the staff console).

Message ids are English; the catalogues hold the kk and ru texts. Catalogues are read with
Babel straight from the ``.po`` files, so editing a ``.po`` file needs no compile step.
A missing translation falls back to the Russian text, then to the message id.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from babel.messages.pofile import read_po

LOCALE_DIR = Path(__file__).parent / "locale"
DOMAIN = "estu"


@lru_cache(maxsize=16)
def catalog(language: str, domain: str = DOMAIN) -> dict[str, str]:
    path = LOCALE_DIR / language / "LC_MESSAGES" / f"{domain}.po"
    if not path.exists():
        return {}
    with path.open("rb") as fh:
        cat = read_po(fh, locale=language if language != "kk" else "kk")
    return {m.id: m.string for m in cat if m.id and m.string}


def gettext(language: str, msgid: str, **kwargs) -> str:
    text = catalog(language).get(msgid) or catalog("ru").get(msgid) or msgid
    return text.format(**kwargs) if kwargs else text


_ = gettext


def translator(domain: str):
    """``t = translator("console"); t("kk", "Log in")`` — gettext for another domain, same fallbacks."""

    def translate(language: str, msgid: str, **kwargs) -> str:
        text = catalog(language, domain).get(msgid) or catalog("ru", domain).get(msgid) or msgid
        return text.format(**kwargs) if kwargs else text

    return translate

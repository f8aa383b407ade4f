"""Explicit wishes to file an appeal ("хочу подать жалобу", "шағым бергім келеді").

When a citizen says in so many words that they want to file, write or send an appeal of a
named type, that decides the intent (``appeal``) and the type, whatever the classifier thinks.
Patterns match the normalised text (any spelling, see :mod:`nlu.normalize`).
"""

from __future__ import annotations

import re

from nlu.normalize import fold, normalize

_TYPE_STEMS = {
    "complaint": r"(жалоб\w*|шагым\w*|shagym\w*)",
    "statement": r"(заявлени\w*|арыз\w*)",
    "proposal": r"(предложени\w*|усыныс\w*)",
    "request": r"(запрос\w*|сурау\s*салу\w*|сурау\w*)",
    "feedback": r"(отклик\w*|ун\s*кату\w*|пикир\w*)",
    "report": r"(сообщени\w*|хабар\w*)",
    None: r"(обращени\w*|отиниш\w*|жолданым\w*)",
}
_RU_WANT = r"(хочу|хотим|хотела?|буду|давайте|помогите|прошу\s+принять|решил[аи]?)"
_RU_VERB = (r"(подать|подам|подаю|подайте|написать|напишу|напишите|оставить|оставлю|оставьте|отправить|отправлю|"
            r"отправьте|направить|направлю|направьте|зарегистрировать|зарегистрируйте|оформить|оформите|составить|"
            r"подадим|напишем|оставим|отправим|направим|оформим|составим|зарегистрируем)")  # "давайте оформим жалобу"
_KK_SEND = r"(бер|жаз|жибер|калдыр|тирке|тусир|жолда)"  # give, write, send, leave, register, submit, dispatch
# "толтыр" (fill in a form) names the filing after an appeal noun, but counts only with a "here" / "for me" cue
# (below), not as a first-person wish on its own
_KK_VERB = rf"({_KK_SEND[1:-1]}|толтыр)\w*"
# a wish ("бергім келеді"), first-person future, also colloquial ("жазамын", "жазам"), or "let me / let us"
# ("берейін", "жазайық")
_KK_WANT = (rf"\b{_KK_SEND}\w*(гым|гим|кым|ким)\s*келеди|"
            rf"\b{_KK_SEND}\w*(амын|емин|мын|мин|ам|ем|еиин|аиын|иин|аиык|еиик)\b")


def _compile():
    out = []
    for t, stem in _TYPE_STEMS.items():
        ru = rf"\b{_RU_WANT}\s+(\w+\s+){{0,2}}{_RU_VERB}\s+(\w+\s+){{0,2}}{stem}"
        ru2 = rf"\b{_RU_VERB}\s+(\w+\s+){{0,1}}{stem}"  # "подать жалобу", "оформите сообщение"
        kk = rf"\b{stem}\s+(\w+\s+){{0,2}}{_KK_VERB}"
        out.append((t, re.compile(fold(ru))))
        out.append((t, re.compile(fold(kk))))
        out.append((t, re.compile(fold(ru2))))
    return out


_PATTERNS = _compile()
_KK_WANT_RE = re.compile(fold(_KK_WANT))
_QUESTION = re.compile(fold(r"\b(как|где|куда|можно|калаи|кандаи|каида|кашан|сколько|скольки|канша|ма|ме|ба|бе|па|пе|керек)\b"))


_WISH = re.compile(fold(r"\b(хочу|хотим|хотела?|прошу|давайте|оформите|примите|\w+(гым|гим|кым|ким)\s*келеди)\b"))
# asking to file it *here*, through Estu ("можно здесь подать жалобу?", "осы жерде арыз толтыруға бола ма?"), or
# asking Estu to do it ("ұсыныс жіберіп бересіз бе?"): the citizen wants the intake, not a how-to answer
_HERE = re.compile(fold(r"\b(здесь|тут|через\s+(вас|тебя|бота?|есту|estu|этот\s+чат)|осы\s+жерде|осы\s+жерден|осында|"
                        r"мында|осы\s+чатта|сиз\s+аркылы|сен\s+аркылы|бот\s+аркылы)\b"))
# "здесь написано …", "осы жерде көрсетілген …": "here" points at a text, not at this chat
_HERE_QUOTE = re.compile(fold(r"\b(здесь|тут|осы\s+жерде|мында)\s+(\w+\s+)?(сказано|написано|указано|говорится|пишут|"
                              r"жазылган|корсетилген|айтылган|жазылып|корсетилип)"))
_FOR_ME = re.compile(fold(r"\b\w+(ып|ип|п)\s+бер(есиз|есин|иниз|ициз|ши)\b"))


def explicit_appeal(text: str) -> tuple[bool, str | None]:
    """(True, type or None) when the text says the person wants to file an appeal now."""
    norm = normalize(text)
    quote = _HERE_QUOTE.search(norm)
    here = bool((_HERE.search(norm) and not quote) or _FOR_ME.search(norm))
    if (quote or _QUESTION.search(norm)) and not _WISH.search(norm) and not here:
        return False, None  # "как подать жалобу?", "здесь написано подать жалобу": a how-to question, a quote
    for appeal_type, pat in _PATTERNS:
        m = pat.search(norm)
        if not m:
            continue
        is_kazakh_pattern = not pat.pattern.startswith(fold(r"\b" + _RU_WANT)) and \
            not pat.pattern.startswith(fold(r"\b" + _RU_VERB))
        # Kazakh: the verb must carry a wish or first-person future ("бергім келеді", "жазамын", "берейін")
        if is_kazakh_pattern and not here and not _KK_WANT_RE.search(norm[m.start():m.end() + 25]):
            continue
        return True, appeal_type
    return False, None

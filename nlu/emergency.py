"""A high-recall lexicon of emergencies in Kazakh and Russian (any spelling).

Patterns are matched against the *normalised* text (Latin → Cyrillic, Kazakh letters folded,
see :mod:`nlu.normalize`), so ``өрт``, ``орт`` and ``ört`` all hit. The lexicon is OR-ed with the
intent classifier: missing an emergency can cost a life, a false alarm costs one sentence.
"""

from __future__ import annotations

import re

from nlu.normalize import fold, normalize

# kind -> patterns (regular expressions over folded Cyrillic)
LEXICON: dict[str, list[str]] = {
    "fire": [
        r"\bпожар", r"\bгорит\b", r"\bгорим\b", r"\bгорят\b", r"\bзагорел", r"\bподожгл", r"\bдым(ом|ит)?\b",
        r"\bорт\b", r"\bорт(ен|те|ке|ти)", r"\bортеп", r"\bжанып\s*(жатыр|кетти|тур)", r"\bтутин", r"\bоттан\b",
    ],
    "flood": [
        r"\bнаводнен", r"\bпаводок", r"\bзатопил", r"\bзатапливает", r"\bтонет", r"\bутонул", r"\bтонул",
        r"\bсу\s*басы", r"\bсу\s*басып", r"\bсуга\s*(кет|бат)", r"\bбатып\s*(бара|кет)", r"\bсел\s*жур",
        r"\bпровалил\w*\s+под\s+лед",
    ],
    "accident": [
        r"\bавари", r"\bдтп\b", r"\bсбил[аи]?\b", r"\bсбила\s+машин", r"\bразбил\w*\s+насмерть",
        r"\bапат", r"\bсоктыгыс", r"\bкагып\s*кет", r"\bмашина\s*кагып", r"\bобрушил", r"\bрухнул",
        r"\bзавалил", r"\bуиинди", r"\bкулап\s*(жатыр|калды)", r"\bжер\s*силкин", r"\bземлетрясен",
        r"\bвзрыв", r"\bвзорвал", r"\bжарылыс", r"\bжарылып",
    ],
    "violence": [
        r"\bизбива", r"\bбьет\b", r"\bбьют\b", r"\bбь[её]т\s", r"\bизбил", r"\bнасил", r"\bизнасил",
        r"\bубива", r"\bубьет", r"\bубью", r"\bубить\b", r"\bугрожа", r"\bугроз", r"\bнож(ом)?\b", r"\bпистолет",
        r"\bстреля", r"\bнапал", r"\bграбят", r"\bограбил", r"\bвломил", r"\bломятся", r"\bпохитил", r"\bзаложник",
        r"\bурып\s*(жатыр|жатр|тур|жур)", r"\bсабап", r"\bсоккы", r"\bзорлык", r"\bзорла", r"\bпышак",
        r"\bмылтык", r"\bатып\s*(жатыр|жатр)", r"\bолтир", r"\bкорка", r"\bкауип\s*тон", r"\bшабуыл",
        r"\bтонап", r"\bкыспакка", r"\bкорлап", r"\bкызыма\s*тиис",
    ],
    "medical": [
        r"\bскор(ая|ую|ои)\b", r"\bинфаркт", r"\bинсульт", r"\bсердечн\w*\s*приступ", r"\bбез\s*сознан",
        r"\bпотерял\w*\s*сознан", r"\bне\s*дышит", r"\bкровотеч", r"\bистекает\s*кровью", r"\bпередоз",
        r"\bотравил", r"\bотравлен", r"\bсудорог", r"\bзадыха", r"\bумира", r"\bрожа(ет|ю)\b", r"\bроды\s*начал",
        r"\bприступ", r"\bжедел\s*жардем", r"\bжурек\s*(талма|устама|ауыр)", r"\bесин(ен)?\s*тан", r"\bдем\s*ала\s*алмаи",
        r"\bдем\s*алмаи", r"\bкан\s*(кет|агып)", r"\bулан(ып|ды|у)", r"\bбосану\s*бас", r"\bтолгак", r"\bолип\s*бара",
        r"\bхали\s*ауыр", r"\bталып\s*(калды|кетти|жатыр)",
    ],
    "gas": [
        r"\bгаз\w*\s*(пахнет|запах|утечк|иис)", r"\bзапах\w*\s*газ", r"\bпахнет\s*газ", r"\bутечк\w*\s*газ",
        r"\bгаз\s*шыг", r"\bгаз\s*ис", r"\bугарн", r"\bис\s*тиип", r"\bангидрид",
    ],
    "lost_person": [
        r"\bпропал\w*\s*(реб|сын|доч|мальч|девоч)", r"\b(реб[её]нок|сын|дочь)\s*пропал", r"\bпотерял\w*\s*реб",
        r"\bбала\w*\s*жогал", r"\bжогалып\s*кетти", r"\bуш\s*(кун|саг)\w*\s*(бери|болды)\s*жок",
    ],
    "self_harm": [
        r"\bсуицид", r"\bпокончить\s*с\s*собой", r"\bпокончу\s*с\s*собой", r"\bне\s*хочу\s*жить",
        r"\bжить\s*не\s*хочу", r"\bубить\s*себя", r"\bубью\s*себя", r"\bповеситься", r"\bповешусь",
        r"\bвскрыть\s*вены", r"\bвскрою\s*вены", r"\bвыпрыгну", r"\bсамоубийств", r"\bнет\s*смысла\s*жить",
        r"\bустал\w*\s*жить", r"\bуйти\s*из\s*жизни", r"\bсебе\s*навредить", r"\bозиме\s*кол\s*жумса",
        r"\bолгим\s*келе", r"\bолип\s*кеткым", r"\bомир\s*сургим\s*келмеи", r"\bомирдин\s*мани\s*жок",
        r"\bасылып\s*(олгим|аламын|алам)", r"\bозимди\s*олтир", r"\bтамырымды\s*кес", r"\bомир\s*суру\w*\s*мани",
        r"\bомирден\s*кет", r"\bаман\s*калгым\s*келмеи",
    ],
    "call_for_help": [
        r"\bспасите\b", r"\bпомогите\s*срочно", r"\bсрочно\s*помогите", r"\bкутка?р(ыныз|ындар)", r"\bкомектесиндер\s*тез",
        r"\bтез\s*комек", r"\bполици\w*\s*срочно", r"\bсрочно\s*полиц", r"\bвызовите\s*(полиц|скор|пожар)",
    ],
}
# patterns are folded like the text (ь dropped, ё→е, й→и) so they may be written naturally
_COMPILED = {kind: [re.compile(fold(p)) for p in pats] for kind, pats in LEXICON.items()}

# Services to name per kind (numbers confirmed in the corpus entry faq.emergency_numbers).
SERVICE_FOR_KIND = {
    "fire": "101", "flood": "112", "accident": "112", "violence": "102", "medical": "103", "gas": "104",
    "lost_person": "102", "self_harm": "112", "call_for_help": "112",
}


def emergency_kinds(text: str) -> list[str]:
    """The emergency kinds the text mentions (empty when none)."""
    norm = normalize(text)
    return [kind for kind, pats in _COMPILED.items() if any(p.search(norm) for p in pats)]


def is_emergency(text: str) -> bool:
    return bool(emergency_kinds(text))

"""The checks of ``estu kb validate`` applied to a working copy held in memory, as structured problems
(entry, field, language, message) the console shows next to the field concerned.

The same functions as the command line run here (:func:`knowledge.validate.static_checks`,
:func:`knowledge.validate.run_self_test`); on top, each entry's schema errors (pydantic) are split into
field and language, and the routing rules are checked for shape.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass

import yaml

from bot.editorial import content
from knowledge.routing import Router, condition_problems
from knowledge.validate import check_corpus


@dataclass(frozen=True)
class Problem:
    level: str  # error | warning
    code: str  # schema, missing_twin, few_phrasings, duplicate_question, near_duplicate, self_retrieval …
    entry: str | None  # entry id, "routing", or None for the whole knowledge base
    field: str | None
    language: str | None
    message: str  # in English; ``params`` hold its values so the console can show it translated
    params: dict | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def _clean(msg: str) -> str:
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            return msg[len(prefix):]
    return msg


def schema_problems(raw: dict) -> list[Problem]:
    entry, exc = content.parse(raw)
    if exc is None:
        return []
    out = []
    eid = str(raw.get("id") or "?")
    for err in exc.errors():
        loc = [str(p) for p in err["loc"]]
        language = loc[0] if loc and loc[0] in content.LANGUAGES else None
        rest = loc[1:] if language else loc
        field = rest[0] if rest else None
        msg = _clean(err["msg"])
        if err["type"] == "missing":
            msg = "this field is required"
        elif err["type"] == "too_short":
            msg = "at least one is needed"
        out.append(Problem("error", "schema", eid, field, language, msg, {"kind": err["type"]}))
    return out


def routing_problems(routing) -> list[Problem]:
    out: list[Problem] = []

    def bad(msg: str) -> None:
        out.append(Problem("error", "routing", "routing", None, None, msg))

    if not isinstance(routing, dict):
        bad("the routing rules must be a mapping with `rules` (a list) and `offline_cues`")
        return out
    rules = routing.get("rules", [])
    if not isinstance(rules, list):
        bad("`rules` must be a list")
        return out
    if not isinstance(routing.get("offline_cues", []) or [], list):
        bad("`offline_cues` must be a list")
    ids = Counter()
    for n, rule in enumerate(rules, 1):
        if not isinstance(rule, dict):
            bad(f"rule {n} must be a mapping")
            continue
        ids[rule.get("id")] += 1
        if not rule.get("id"):
            bad(f"rule {n} has no id")
        if not isinstance(rule.get("when", {}) or {}, dict):
            bad(f"rule {rule.get('id') or n}: `when` must be a mapping")
        why = rule.get("why")
        if why is not None and not (isinstance(why, dict) and why.get("kk") and why.get("ru")):
            bad(f"rule {rule.get('id') or n}: `why` needs both kk and ru")
    for rid, count in ids.items():
        if rid and count > 1:
            bad(f"rule id {rid!r} is used {count} times")
    if not out and not condition_problems(routing):  # those are reported with their own codes
        try:  # the loader the bot uses must accept the rules and run them
            Router(routing, content.Corpus(entries=[])).recommend("тест", "faq")
        except Exception as exc:  # noqa: BLE001 - any failure is a problem of the rules
            bad(f"the rules cannot be used: {exc}")
    return out


def parse_routing(text: str) -> tuple[dict | None, list[Problem]]:
    """The routing rules from the console's text area: YAML, checked."""
    try:
        routing = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        return None, [Problem("error", "routing", "routing", None, None, f"YAML error: {exc}")]
    problems = routing_problems(routing)
    if not problems:  # conditions are also checked with the whole knowledge base (estu kb validate)
        problems = [Problem("error", code, "routing", None, None, msg, params)
                    for code, msg, params in condition_problems(routing)]
    return (routing if not problems else None), problems


def check(data: dict, settings=None, self_test: bool = False, only: set[str] | None = None,
          embedder=None) -> list[Problem]:
    """Every problem of the working copy ``data`` (the retired entries are left out, as from retrieval).
    ``self_test`` adds the self-retrieval test (CPU-bound: run it in a thread), for the entries in ``only``
    if given (a save checks its entry; publishing checks all)."""
    retired = set(data.get("retired", []))
    live = [raw for raw in data.get("entries", []) if raw.get("id") not in retired]
    problems: list[Problem] = []
    counts = Counter(raw.get("id") for raw in live)
    for eid, n in counts.items():
        if n > 1:
            problems.append(Problem("error", "duplicate_id", eid, "id", None, f"{n} entries have this id"))
    for raw in live:
        problems.extend(schema_problems(raw))
    routing = data.get("routing") or {}
    problems.extend(routing_problems(routing))
    corpus = content.to_corpus(data)
    if not isinstance(routing, dict):
        corpus.routing = {}
    blocking = [p for p in problems if p.level == "error" and (only is None or p.entry in only or
                                                                p.entry == "routing")]
    report = check_corpus(corpus, settings, self_test=self_test and not blocking,
                          only=only, embedder=embedder)
    for issue in report.issues:
        entry = issue.where
        if entry.startswith("routing:"):
            entry = "routing"
        problems.append(Problem(issue.level, issue.code, entry, issue.field, issue.language, issue.message,
                                issue.params))
    return problems


def for_entry(problems: list[Problem], entry_id: str) -> list[Problem]:
    return [p for p in problems if p.entry == entry_id]


def errors(problems: list[Problem]) -> list[Problem]:
    return [p for p in problems if p.level == "error"]

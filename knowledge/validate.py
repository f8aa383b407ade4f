"""``estu kb validate``: schema errors, missing language twins, duplicate ids, unknown ids,
near-duplicate questions across entries, and the self-retrieval test."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from knowledge.corpus import Corpus, load_corpus
from knowledge.ids import CHANNEL_IDS
from knowledge.routing import condition_problems
from nlu.normalize import normalize, words

MIN_PHRASINGS = 4
NEAR_DUP_JACCARD = 0.85


@dataclass
class Issue:
    level: str  # error | warning
    code: str
    where: str
    message: str
    field: str | None = None  # the entry field concerned (questions, channels …), when there is one
    language: str | None = None  # kk | ru, when the problem is in one language block
    params: dict | None = None  # the values in ``message``, for a translated text (the console)


@dataclass
class Report:
    entries: int
    issues: list[Issue] = field(default_factory=list)
    self_test_top1: float | None = None

    @property
    def ok(self) -> bool:
        return not any(i.level == "error" for i in self.issues)

    def add(self, level, code, where, message, field: str | None = None, language: str | None = None,
            **params) -> None:
        self.issues.append(Issue(level, code, where, message, field, language, params or None))


def _duplicate_ids(root: Path) -> dict[str, list[str]]:
    seen: dict[str, list[str]] = defaultdict(list)
    for path in sorted(root.rglob("*.yml")):
        if path.name == "routing.yml":
            continue
        try:
            docs = list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
        except yaml.YAMLError:
            continue
        for doc in docs:
            for item in doc if isinstance(doc, list) else [doc]:
                if isinstance(item, dict) and item.get("id"):
                    seen[str(item["id"])].append(str(path.relative_to(root)))
    return {k: v for k, v in seen.items() if len(v) > 1}


def static_checks(corpus: Corpus, report: Report, duplicates: dict[str, list[str]] | None = None) -> None:
    for err in corpus.errors:
        report.add("error", "schema", err.path, err.message)
    for eid, files in (duplicates or {}).items():
        report.add("error", "duplicate_id", eid, f"defined in {', '.join(files)}")
    for e in corpus.entries:
        for lang in ("kk", "ru"):
            block = e.block(lang)
            if block is None:
                report.add("error", "missing_twin", e.id, f"no {lang} version", language=lang)
            elif len(block.questions) < MIN_PHRASINGS:
                report.add("error", "few_phrasings", e.id,
                           f"{lang}: {len(block.questions)} phrasing(s), at least {MIN_PHRASINGS} needed",
                           field="questions", language=lang, n=len(block.questions), min=MIN_PHRASINGS)
    present = {e.id for e in corpus.entries}
    for cid in CHANNEL_IDS:
        if f"channel.{cid}" not in present:
            report.add("warning", "missing_channel", f"channel.{cid}", "no entry describes this channel")
    # near-duplicate questions across different entries
    seen: dict[str, str] = {}
    token_sets: list[tuple[str, str, frozenset, str]] = []
    for e in corpus.entries:
        for lang in e.languages():
            for q in e.block(lang).questions:
                norm = " ".join(words(normalize(q)))
                if not norm:
                    continue
                if norm in seen and seen[norm] != e.id:
                    report.add("error", "duplicate_question", e.id, f"{q!r} is also a phrasing of {seen[norm]}",
                               field="questions", language=lang, q=q, other=seen[norm])
                seen.setdefault(norm, e.id)
                toks = frozenset(norm.split())
                if len(toks) >= 3:
                    token_sets.append((e.id, q, toks, lang))
    by_token: dict[str, list[int]] = defaultdict(list)
    for i, (_, _, toks, _) in enumerate(token_sets):
        for t in toks:
            by_token[t].append(i)
    reported: set[tuple[str, str]] = set()
    for i, (eid, q, toks, lang) in enumerate(token_sets):
        cand = Counter(j for t in toks for j in by_token[t] if j > i)
        for j, shared in cand.items():
            ej, qj, tj, _ = token_sets[j]
            if ej == eid or (eid, ej) in reported:
                continue
            jac = shared / len(toks | tj)
            if jac >= NEAR_DUP_JACCARD and toks != tj:
                reported.add((eid, ej))
                report.add("warning", "near_duplicate", eid, f"{q!r} ~ {qj!r} ({ej}), word overlap {jac:.2f}",
                           field="questions", language=lang, q=q, other_q=qj, other=ej, overlap=f"{jac:.2f}")
    # routing rules must name known channels and use known conditions
    for code, message, params in condition_problems(corpus.routing):
        report.add("error", code, f"routing:{params['rule']}", message, **params)
    for rule in corpus.routing.get("rules", []) or []:
        ch = rule.get("channel")
        if ch not in (None, "@entry") and ch not in CHANNEL_IDS:
            report.add("error", "unknown_channel", f"routing:{rule.get('id')}", f"unknown channel id {ch!r}",
                       rule=rule.get("id"), channel=ch)
        for eid in (rule.get("when") or {}).get("entries", []) or []:
            if eid not in present:
                report.add("warning", "unknown_entry", f"routing:{rule.get('id')}", f"no entry {eid!r}",
                           rule=rule.get("id"), entry=eid)


def run_self_test(corpus: Corpus, settings, report: Report, min_share: float = 0.5,
                  only: set[str] | None = None, embedder=None) -> None:
    """Every phrasing, asked with its own passage removed, should find its entry in the top 3
    (top 1 in a corpus under 15 entries), for at least ``min_share`` of an entry's phrasings.
    ``only``: test just these entries (the console checks the entry being saved); ``embedder``: reuse a
    loaded one (else one is made from ``settings``)."""
    from knowledge.embeddings import VectorCache, make_embedder
    from knowledge.retrieval import Retriever, build_index

    if embedder is None:
        embedder = make_embedder(settings.embedder, settings.embedder_model, settings.embedder_threads)
    cache = VectorCache(settings.cache_path, embedder.name)
    index = build_index(corpus, embedder, cache=cache, calibrate=False)
    cache.save()
    retriever = Retriever(index, embedder)
    # "in the top 3" means little in a tiny corpus: there the phrasing must find its entry first
    depth = 3 if len(corpus.entries) >= 15 else 1
    per_entry: dict[str, list[bool]] = defaultdict(list)
    top1 = []
    for i, p in enumerate(index.passages):
        if p.kind != "question" or (only is not None and p.entry_id not in only):
            continue
        res = retriever.search(p.text, k=depth, query_vector=index.vectors[i], exclude={i})
        ids = [h.entry_id for h in res.hits]
        per_entry[p.entry_id].append(p.entry_id in ids)
        top1.append(bool(ids) and ids[0] == p.entry_id)
    for eid, hits in sorted(per_entry.items()):
        share = sum(hits) / len(hits)
        if share < min_share:
            report.add("error", "self_retrieval", eid,
                       f"only {sum(hits)}/{len(hits)} of its phrasings retrieve it in the top {depth}",
                       hits=sum(hits), n=len(hits), depth=depth)
    report.self_test_top1 = sum(top1) / len(top1) if top1 else None


def check_corpus(corpus: Corpus, settings=None, self_test: bool = False,
                 duplicates: dict[str, list[str]] | None = None, only: set[str] | None = None,
                 embedder=None) -> Report:
    """Every check of ``estu kb validate`` on a corpus held in memory (the console's editors use it on the
    working copy): the static checks, and the self-retrieval test when ``self_test`` (needs ``settings``;
    ``only`` limits it to some entries)."""
    report = Report(entries=len(corpus.entries))
    static_checks(corpus, report, duplicates)
    if self_test and corpus.entries and not corpus.errors:
        run_self_test(corpus, settings, report, only=only, embedder=embedder)
    return report


def validate_corpus(settings, self_test: bool = True) -> Report:
    corpus = load_corpus(settings.corpus_dir)
    return check_corpus(corpus, settings, self_test, _duplicate_ids(Path(settings.corpus_dir)))

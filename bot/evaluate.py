"""``estu eval``: retrieval and understanding accuracy on ``tests/eval/*.jsonl``.

Each line: ``{"id", "text", "language", "intent", "entries": [...], "channel", "agency",
"appeal_type", "emergency"}``. Retrieval is scored on the messages the knowledge base answers —
expected intent ``faq`` or ``channel``, with ``entries`` (a hit when any listed id is retrieved);
emergencies, appeals and status questions take other paths and are scored as understanding.
Channel/agency/appeal type are scored only on lines where they are labelled.
"""

from __future__ import annotations

import json
import statistics
from collections import Counter, defaultdict
from pathlib import Path

from knowledge.ids import INTENTS

LANGS = ("kk", "ru")
RETRIEVAL_INTENTS = ("faq", "channel")


def load_eval(path: Path) -> list[dict]:
    files = sorted(path.glob("*.jsonl")) if path.is_dir() else [path]
    rows = []
    for f in files:
        for line in f.read_text(encoding="utf-8").splitlines():
            if line.strip():
                rows.append(json.loads(line))
    return rows


def retrieval_metrics(retriever, rows: list[dict], mode: str) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for lang in LANGS:
        subset = [r for r in rows if r.get("entries") and r["language"] == lang and r["intent"] in RETRIEVAL_INTENTS]
        top1 = top3 = rr = 0.0
        for r in subset:
            ids = [h.entry_id for h in retriever.search(r["text"], k=10, mode=mode).hits]
            gold = set(r["entries"])
            ranks = [i for i, e in enumerate(ids) if e in gold]
            if ranks:
                rr += 1.0 / (ranks[0] + 1)
                top1 += ranks[0] == 0
                top3 += ranks[0] < 3
        n = len(subset) or 1
        out[lang] = {"n": len(subset), "top1": top1 / n, "top3": top3 / n, "mrr": rr / n}
    return out


def _pct(x: float) -> str:
    return f"{x:.3f}"


def run_eval(assistant, path: Path, markdown: bool = True) -> str:
    rows = load_eval(path)
    lines: list[str] = [f"Evaluation set: {len(rows)} messages "
                        f"({sum(r['language'] == 'kk' for r in rows)} kk, {sum(r['language'] == 'ru' for r in rows)} ru)",
                        ""]
    # -- retrieval ------------------------------------------------------------------------
    lines += ["### Retrieval (messages the knowledge base answers: expected intent faq or channel)", "",
              "| retriever | lang | n | top-1 | top-3 | MRR |", "|---|---|---|---|---|---|"]
    for mode in ("lexical", "dense", "hybrid"):
        m = retrieval_metrics(assistant.retriever, rows, mode)
        for lang in LANGS:
            r = m[lang]
            name = {"lexical": "BM25 only", "dense": "dense only", "hybrid": "hybrid"}[mode]
            lines.append(f"| {name} | {lang} | {r['n']} | {_pct(r['top1'])} | {_pct(r['top3'])} | {_pct(r['mrr'])} |")
    # -- the whole pipeline --------------------------------------------------------------------
    latencies: list[float] = []
    stats = defaultdict(lambda: defaultdict(lambda: [0, 0]))  # lang -> field -> [correct, total]
    confusion: dict[str, Counter] = defaultdict(Counter)
    emergencies = {lang: [0, 0] for lang in LANGS}
    misses: list[str] = []
    for r in rows:
        out = assistant.ask(r["text"], id=r.get("id"))
        latencies.append(out["latency_ms"])
        lang = r["language"]
        for fld in ("language", "intent", "appeal_type", "channel", "agency"):
            gold = r.get(fld)
            if gold is None:
                continue
            ok = out[fld] == gold
            stats[lang][fld][0] += ok
            stats[lang][fld][1] += 1
        confusion[r["intent"]][out["intent"]] += 1
        if r.get("emergency"):
            emergencies[lang][1] += 1
            if out["intent"] == "emergency":
                emergencies[lang][0] += 1
            else:
                misses.append(f"{r.get('id')}: {r['text']}")
    lines += ["", "### Understanding (whole pipeline, as `estu ask` answers)", "",
              "| lang | language | intent | appeal type | channel | agency | emergency recall |",
              "|---|---|---|---|---|---|---|"]
    for lang in LANGS:
        cells = []
        for fld in ("language", "intent", "appeal_type", "channel", "agency"):
            c, t = stats[lang][fld]
            cells.append(f"{c / t:.3f} (n={t})" if t else "–")
        ec, et = emergencies[lang]
        cells.append(f"{ec / et:.3f} ({ec}/{et})" if et else "–")
        lines.append(f"| {lang} | " + " | ".join(cells) + " |")
    labels = [i for i in INTENTS if i in confusion or any(i in c for c in confusion.values())]
    lines += ["", "### Intent confusion matrix (rows: expected, columns: predicted)", "",
              "| expected \\ predicted | " + " | ".join(labels) + " |", "|---" * (len(labels) + 1) + "|"]
    for gold in labels:
        lines.append(f"| {gold} | " + " | ".join(str(confusion[gold][p]) for p in labels) + " |")
    if latencies:
        lat = sorted(latencies)
        p95 = lat[min(len(lat) - 1, int(round(0.95 * (len(lat) - 1))))]
        lines += ["", f"Latency per message (models loaded): median {statistics.median(lat):.1f} ms, "
                      f"p95 {p95:.1f} ms"]
    if misses:
        lines += ["", "Missed emergencies:"] + [f"- {m}" for m in misses]
    return "\n".join(lines)

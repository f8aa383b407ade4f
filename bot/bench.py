"""``estu bench``: per-message latency and index build time, for the shipped corpus and for
synthetic corpora of N passages (random unit vectors + generated texts, so no embedding
time is spent building them; the figure measured is the index, not the embedder)."""

from __future__ import annotations

import random
import statistics
import time

import numpy as np

from knowledge.index import DenseIndex, LexicalIndex, Passage, document_tokens, query_tokens

_WORDS = ("очередь справка пособие пенсия жалоба заявление детский сад школа поликлиника налог земля жильё "
          "дорога освещение мусор автобус кезек анықтама жәрдемақы зейнетақы шағым арыз балабақша мектеп "
          "емхана салық жер тұрғын үй жол жарық қоқыс автобус өтініш ЭЦП ЦОН eGov акимат әкімдік").split()


def _pcts(values: list[float]) -> tuple[float, float]:
    v = sorted(values)
    return statistics.median(v), v[min(len(v) - 1, int(round(0.95 * (len(v) - 1))))]


def bench_shipped(settings, queries: int) -> list[str]:
    from bot.assistant import Assistant

    t0 = time.perf_counter()
    assistant = Assistant.load(settings)
    load_s = time.perf_counter() - t0
    texts = []
    for e in assistant.corpus.entries:
        for lang in e.languages():
            texts.extend(e.block(lang).questions[:1])
    random.Random(1).shuffle(texts)
    texts = (texts * (queries // max(1, len(texts)) + 1))[:queries]
    assistant.ask("прогрев")  # warm-up
    lat = [assistant.ask(t)["latency_ms"] for t in texts]
    p50, p95 = _pcts(lat)
    return [f"| shipped corpus ({assistant.index.meta.passages} passages) | {assistant.index.meta.build_seconds:.1f} s "
            f"(last build; warm vector cache) | load {load_s:.2f} s | {p50:.1f} ms | {p95:.1f} ms | "
            f"estu ask pipeline, {len(lat)} msgs |"]


def bench_synthetic(n: int, queries: int, dim: int = 384) -> str:
    rng = np.random.default_rng(0)
    rnd = random.Random(0)
    vecs = rng.standard_normal((n, dim)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    passages = [Passage(f"faq.e{i // 10}", "ru" if i % 2 else "kk", "question",
                        " ".join(rnd.choices(_WORDS, k=8))) for i in range(n)]
    t0 = time.perf_counter()
    dense = DenseIndex(vecs)
    t_dense = time.perf_counter() - t0
    t0 = time.perf_counter()
    lexical = LexicalIndex([document_tokens(p.text, p.language) for p in passages])
    t_lex = time.perf_counter() - t0
    lat = []
    for _ in range(queries):
        q = rng.standard_normal(dim).astype(np.float32)
        q /= np.linalg.norm(q)
        text = " ".join(rnd.choices(_WORDS, k=6))
        t0 = time.perf_counter()
        dense.search(q, 200)
        lexical.scores(query_tokens(text))
        lat.append((time.perf_counter() - t0) * 1000)
    p50, p95 = _pcts(lat)
    return (f"| synthetic {n:,} passages ({dense.kind} faiss) | dense {t_dense:.2f} s + BM25 {t_lex:.2f} s "
            f"(vectors given) | – | {p50:.1f} ms | {p95:.1f} ms | search only (dense top-200 + BM25), "
            f"{queries} queries |")


def bench_publish(settings) -> str:
    """What an editor's publication costs on the shipped corpus: every check (with the self-retrieval test), the
    save-time check of one entry, and the new index (warm vector cache, one answer and one phrasing new)."""
    import tempfile
    from pathlib import Path

    from bot.assistant import Assistant
    from bot.editorial import checks, content, publish

    base = Assistant.load(settings)
    data = content.from_corpus(base.corpus)
    raw = next(r for r in data["entries"] if r["kind"] == "faq")
    raw["ru"]["answer"] += " (проверка публикации)"
    raw["ru"]["questions"].append(raw["ru"]["questions"][0] + " срочно")
    t0 = time.perf_counter()
    checks.check(data, settings, True, {raw["id"]}, base.embedder)
    t_save = time.perf_counter() - t0
    t0 = time.perf_counter()
    problems = checks.check(data, settings, True, None, base.embedder)
    t_checks = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:  # the index goes to a scratch directory, the cache is shared
        scratch = settings.model_copy(update={"data_dir": Path(tmp)})
        scratch_cache = scratch.cache_path
        scratch_cache.parent.mkdir(parents=True, exist_ok=True)
        if settings.cache_path.exists():
            scratch_cache.write_bytes(settings.cache_path.read_bytes())
        t0 = time.perf_counter()
        publish.build_assistant(scratch, data, base)
        t_build = time.perf_counter() - t0
    return (f"| publish one changed entry (shipped corpus) | index {t_build:.1f} s (warm vector cache) | – | "
            f"save check {t_save:.1f} s | all checks {t_checks:.1f} s | `kb validate` checks on save (one entry) "
            f"and at publishing (all entries, {len(checks.errors(problems))} errors), then the new index |")


def run_bench(settings, sizes: list[int], queries: int = 200) -> str:
    lines = ["| corpus | index build | start-up | p50 | p95 | what is timed |", "|---|---|---|---|---|---|"]
    lines += bench_shipped(settings, queries)
    lines.append(bench_publish(settings))
    for n in sizes:
        lines.append(bench_synthetic(n, min(queries, 100)))
    return "\n".join(lines)

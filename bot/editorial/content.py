"""The knowledge base as data: ``{"entries": [entry dicts], "retired": [ids], "routing": {...}}``.

This is what a version stores (JSON) and what the working copy holds. Entries are plain dicts in the YAML
seed's shape (``knowledge/corpus/SCHEMA.md``); an entry an editor saved with errors is kept as typed, so no
work is lost, and is reported by :mod:`bot.editorial.checks`. Retired entries stay in ``entries`` and are
listed in ``retired``: they are kept (and can be restored) but are not part of the corpus the bot answers from.
"""

from __future__ import annotations

import copy
import datetime as dt
import difflib

import yaml
from pydantic import ValidationError

from knowledge.corpus import Corpus
from knowledge.schema import Entry

LANGUAGES = ("kk", "ru")
KEY_ORDER = ("id", "kind", "agency", "channels", "url", "reviewed", "sources", "notes", "contact", "kk", "ru")
BLOCK_ORDER = ("title", "questions", "answer")
KIND_DIRS = {"channel": "channels", "agency": "agencies", "faq": "faq", "service": "services"}


def empty() -> dict:
    return {"entries": [], "retired": [], "routing": {}}


def clone(data: dict) -> dict:
    return copy.deepcopy(data)


def entry_dict(entry: Entry) -> dict:
    """An Entry as a plain JSON-safe dict in the seed's key order, without empty optional keys."""
    raw = entry.model_dump(mode="json", exclude_none=True)
    return ordered(raw)


def ordered(raw: dict) -> dict:
    out = {k: raw[k] for k in KEY_ORDER if k in raw}
    out.update({k: v for k, v in raw.items() if k not in out})
    for lang in LANGUAGES:
        block = out.get(lang)
        if isinstance(block, dict):
            b = {k: block[k] for k in BLOCK_ORDER if k in block}
            b.update({k: v for k, v in block.items() if k not in b})
            out[lang] = b
    return out


def from_corpus(corpus: Corpus, retired: list[str] | None = None) -> dict:
    entries = sorted((entry_dict(e) for e in corpus.entries), key=lambda d: d["id"])
    return {"entries": entries, "retired": sorted(retired or []), "routing": copy.deepcopy(corpus.routing)}


def find(data: dict, entry_id: str) -> dict | None:
    for raw in data.get("entries", []):
        if raw.get("id") == entry_id:
            return raw
    return None


def put(data: dict, raw: dict, old_id: str | None = None) -> None:
    """Insert or replace (by ``old_id`` or the entry's id) an entry, keeping the list sorted by id."""
    key = old_id or raw.get("id")
    entries = [e for e in data.get("entries", []) if e.get("id") != key]
    entries.append(raw)
    data["entries"] = sorted(entries, key=lambda d: str(d.get("id", "")))


def parse(raw: dict) -> tuple[Entry | None, ValidationError | None]:
    try:
        return Entry.model_validate(raw), None
    except ValidationError as exc:
        return None, exc


def to_corpus(data: dict, include_retired: bool = False) -> Corpus:
    """The corpus the bot answers from: the valid, not retired entries (invalid ones are skipped)."""
    retired = set(data.get("retired", []))
    entries = []
    for raw in data.get("entries", []):
        if raw.get("id") in retired and not include_retired:
            continue
        entry, _ = parse(raw)
        if entry is not None:
            entries.append(entry)
    return Corpus(entries=entries, routing=copy.deepcopy(data.get("routing") or {}))


# -- YAML -----------------------------------------------------------------------------------------------------
class _Dumper(yaml.SafeDumper):
    pass


def _str(dumper, value: str):
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def _yaml_ready(raw: dict) -> dict:
    out = ordered(copy.deepcopy(raw))
    rv = out.get("reviewed")
    if isinstance(rv, str):
        try:
            out["reviewed"] = dt.date.fromisoformat(rv)
        except ValueError:
            pass
    return out


def entry_yaml(raw: dict) -> str:
    return yaml.dump(_yaml_ready(raw), Dumper=_Dumper, allow_unicode=True, sort_keys=False, width=110)


def routing_yaml(routing: dict) -> str:
    return yaml.dump(routing or {}, Dumper=_Dumper, allow_unicode=True, sort_keys=False, width=110)


def as_text(data: dict) -> str:
    """A canonical YAML text of the whole knowledge base (what the versions' diffs compare)."""
    retired = set(data.get("retired", []))
    parts = []
    for raw in sorted(data.get("entries", []), key=lambda d: str(d.get("id", ""))):
        head = f"# --- {raw.get('id')}" + (" (retired)" if raw.get("id") in retired else "") + "\n"
        parts.append(head + entry_yaml(raw))
    parts.append("# --- routing.yml\n" + routing_yaml(data.get("routing") or {}))
    return "".join(parts)


def diff(old: dict | None, new: dict, old_label: str = "previous", new_label: str = "new") -> str:
    a = as_text(old).splitlines(keepends=True) if old is not None else []
    b = as_text(new).splitlines(keepends=True)
    return "".join(difflib.unified_diff(a, b, old_label, new_label, n=2))


def changed_ids(old: dict | None, new: dict) -> list[str]:
    """Entries added, changed, retired or restored between two states (``routing`` if the rules changed)."""
    before = {e.get("id"): e for e in (old or {}).get("entries", [])}
    after = {e.get("id"): e for e in new.get("entries", [])}
    r_old, r_new = set((old or {}).get("retired", [])), set(new.get("retired", []))
    out = sorted(i for i in set(before) | set(after)
                 if before.get(i) != after.get(i) or ((i in r_old) != (i in r_new)))
    if (old or {}).get("routing") != new.get("routing"):
        out.append("routing")
    return out

"""``estu kb export`` / ``estu kb import``: the knowledge base as YAML files in the seed's layout, or as CSV.

YAML: one file per entry, ``<DIR>/<kind dir>/<slug>.yml`` (``channels/``, ``agencies/``, ``faq/``,
``services/``), plus ``routing.yml``; retired entries go to ``<DIR>/retired.yaml`` (a list; the ``.yaml``
ending keeps them out of ``load_corpus``, which reads ``*.yml``).

CSV (UTF-8 with BOM): one row per entry × language: ``id, language, title, phrasings`` (joined by `` | ``),
``answer, channels`` (space-separated), ``agency, sources`` (joined by `` | ``), ``reviewed`` and, so that a
round trip loses nothing, ``url, notes, contact`` (JSON) and ``retired`` (``yes``/empty). A CSV carries no
routing rules: an import keeps the current ones.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import yaml

from bot.editorial import content

CSV_COLUMNS = ("id", "language", "title", "phrasings", "answer", "channels", "agency", "sources", "reviewed",
               "url", "notes", "contact", "retired")
SEP = " | "
RETIRED_FILE = "retired.yaml"


# -- YAML -------------------------------------------------------------------------------------------------------
def export_yaml(data: dict, directory: Path | str) -> list[Path]:
    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    retired = set(data.get("retired", []))
    written = []
    for raw in data.get("entries", []):
        if raw.get("id") in retired:
            continue
        kind, _, name = str(raw.get("id")).partition(".")
        path = root / content.KIND_DIRS.get(kind, kind) / f"{name}.yml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content.entry_yaml(raw), encoding="utf-8")
        written.append(path)
    path = root / "routing.yml"
    path.write_text(content.routing_yaml(data.get("routing") or {}), encoding="utf-8")
    written.append(path)
    gone = [content._yaml_ready(r) for r in data.get("entries", []) if r.get("id") in retired]
    if gone:
        path = root / RETIRED_FILE
        path.write_text(yaml.dump(gone, Dumper=content._Dumper, allow_unicode=True, sort_keys=False, width=110),
                        encoding="utf-8")
        written.append(path)
    return written


def _json_safe(raw: dict) -> dict:
    return json.loads(json.dumps(raw, default=str, ensure_ascii=False))


def import_yaml(directory: Path | str) -> tuple[dict, list[str]]:
    """``(data, errors)`` from a directory in the seed's layout (entries that fail the schema are kept as
    written, so the checks report them; files that are not YAML are errors)."""
    from knowledge.corpus import _documents

    root = Path(directory)
    if not root.is_dir():
        return content.empty(), [f"{root}: not a directory"]
    data, errors = content.empty(), []
    for path in sorted(root.rglob("*.yml")):
        rel = str(path.relative_to(root))
        try:
            if path.name == "routing.yml":
                data["routing"] = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
                continue
            docs = _documents(path)
        except yaml.YAMLError as exc:
            errors.append(f"{rel}: YAML error: {exc}")
            continue
        for doc in docs:
            if not isinstance(doc, dict):
                errors.append(f"{rel}: an entry must be a mapping")
                continue
            data["entries"].append(_normalise(_json_safe(doc)))
    retired_path = root / RETIRED_FILE
    if retired_path.exists():
        try:
            gone = yaml.safe_load(retired_path.read_text(encoding="utf-8")) or []
        except yaml.YAMLError as exc:
            errors.append(f"{RETIRED_FILE}: YAML error: {exc}")
            gone = []
        for doc in gone if isinstance(gone, list) else []:
            if isinstance(doc, dict):
                data["entries"].append(_normalise(_json_safe(doc)))
                data["retired"].append(str(doc.get("id")))
    data["entries"].sort(key=lambda d: str(d.get("id", "")))
    data["retired"] = sorted(set(data["retired"]))
    return data, errors


def _normalise(raw: dict) -> dict:
    entry, _ = content.parse(raw)
    return content.entry_dict(entry) if entry is not None else content.ordered(raw)


# -- CSV --------------------------------------------------------------------------------------------------------
def export_csv(data: dict) -> str:
    retired = set(data.get("retired", []))
    out = io.StringIO()
    w = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\n")
    w.writeheader()
    for raw in data.get("entries", []):
        for lang in content.LANGUAGES:
            block = raw.get(lang)
            if not isinstance(block, dict):
                continue
            w.writerow({"id": raw.get("id"), "language": lang, "title": block.get("title", ""),
                        "phrasings": SEP.join(block.get("questions") or []), "answer": block.get("answer", ""),
                        "channels": " ".join(raw.get("channels") or []), "agency": raw.get("agency") or "",
                        "sources": SEP.join(raw.get("sources") or []), "reviewed": raw.get("reviewed") or "",
                        "url": raw.get("url") or "", "notes": raw.get("notes") or "",
                        "contact": json.dumps(raw["contact"], ensure_ascii=False) if raw.get("contact") else "",
                        "retired": "yes" if raw.get("id") in retired else ""})
    return "\ufeff" + out.getvalue()


def import_csv(text: str, routing: dict | None = None) -> tuple[dict, list[str]]:
    """``(data, errors)`` from CSV text; the entry-level columns are taken from an entry's first row."""
    text = text.lstrip("\ufeff")
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in CSV_COLUMNS[:9] if c not in (reader.fieldnames or [])]
    if missing:
        return content.empty(), [f"CSV: missing column(s) {', '.join(missing)}"]
    data, errors = content.empty(), []
    data["routing"] = routing or {}
    by_id: dict[str, dict] = {}
    for n, row in enumerate(reader, 2):
        eid, lang = (row.get("id") or "").strip(), (row.get("language") or "").strip()
        if not eid or lang not in content.LANGUAGES:
            errors.append(f"CSV line {n}: needs an id and a language (kk or ru)")
            continue
        raw = by_id.get(eid)
        if raw is None:
            raw = by_id[eid] = {"id": eid, "kind": eid.split(".", 1)[0]}
            if (row.get("agency") or "").strip():
                raw["agency"] = row["agency"].strip()
            raw["channels"] = (row.get("channels") or "").split()
            if (row.get("url") or "").strip():
                raw["url"] = row["url"].strip()
            raw["reviewed"] = (row.get("reviewed") or "").strip()
            raw["sources"] = [s.strip() for s in (row.get("sources") or "").split(SEP.strip()) if s.strip()]
            if (row.get("notes") or "").strip():
                raw["notes"] = row["notes"]
            if (row.get("contact") or "").strip():
                try:
                    raw["contact"] = json.loads(row["contact"])
                except json.JSONDecodeError:
                    errors.append(f"CSV line {n}: contact is not JSON")
            if (row.get("retired") or "").strip().lower() in ("yes", "1", "true"):
                data["retired"].append(eid)
        if lang in raw:
            errors.append(f"CSV line {n}: a second {lang} row for {eid}")
            continue
        raw[lang] = {"title": row.get("title") or "",
                     "questions": [q.strip() for q in (row.get("phrasings") or "").split(SEP.strip()) if q.strip()],
                     "answer": row.get("answer") or ""}
    data["entries"] = sorted((_normalise(r) for r in by_id.values()), key=lambda d: str(d.get("id", "")))
    data["retired"] = sorted(set(data["retired"]))
    return data, errors

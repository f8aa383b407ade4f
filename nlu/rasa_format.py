"""Read Rasa's open training-data format (``nlu.yml``, version 3.1): intents, synonyms, lookups.

Only the parts Estu uses are read; the files stay valid Rasa data, so they move to a Rasa
deployment unchanged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

_ANNOTATION = re.compile(r"\[([^\]]+)\](?:\([^)]*\)|\{[^}]*\})")


def _examples(block: str | list) -> list[str]:
    lines = block if isinstance(block, list) else str(block).splitlines()
    out = []
    for line in lines:
        line = str(line).strip()
        if line.startswith("- "):
            line = line[2:]
        elif line == "-":
            continue
        line = _ANNOTATION.sub(r"\1", line).strip()
        if line:
            out.append(line)
    return out


@dataclass
class NluData:
    intents: dict[str, list[str]] = field(default_factory=dict)
    synonyms: dict[str, list[str]] = field(default_factory=dict)
    lookups: dict[str, list[str]] = field(default_factory=dict)

    def merge(self, other: "NluData") -> None:
        for src, dst in ((other.intents, self.intents), (other.synonyms, self.synonyms),
                         (other.lookups, self.lookups)):
            for k, v in src.items():
                dst.setdefault(k, []).extend(v)


def read_nlu_file(path: Path) -> NluData:
    doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    data = NluData()
    for item in doc.get("nlu", []) or []:
        if not isinstance(item, dict):
            continue
        if "intent" in item:
            data.intents.setdefault(str(item["intent"]), []).extend(_examples(item.get("examples", "")))
        elif "synonym" in item:
            data.synonyms.setdefault(str(item["synonym"]), []).extend(_examples(item.get("examples", "")))
        elif "lookup" in item:
            data.lookups.setdefault(str(item["lookup"]), []).extend(_examples(item.get("examples", "")))
    return data


def read_nlu_dir(directory: Path, pattern: str = "*.yml") -> NluData:
    data = NluData()
    for path in sorted(Path(directory).glob(pattern)):
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        if isinstance(doc, dict) and "nlu" in doc:
            data.merge(read_nlu_file(path))
    return data

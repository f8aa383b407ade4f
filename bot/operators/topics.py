"""Editor-defined topics that require a human (``handoff_topics.yml``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from knowledge.ids import AGENCY_IDS

HERE = Path(__file__).parent
TOPICS_FILE = HERE / "handoff_topics.yml"
GENERAL = "general"
QUEUES: tuple[str, ...] = (GENERAL,) + AGENCY_IDS


@dataclass(frozen=True)
class Topic:
    key: str             # "entry:<id>" or "agency:<id>"
    queue: str | None    # None: the agency's queue, or general
    note: str = ""


class Topics:
    def __init__(self, path: Path | None = None) -> None:
        path = Path(path or TOPICS_FILE)
        doc = (yaml.safe_load(path.read_text(encoding="utf-8")) if path.exists() else None) or {}
        if not isinstance(doc, dict):
            raise ValueError(f"{path}: expected a mapping with 'entries' and 'agencies'")
        self.path = path
        self.entries: dict[str, Topic] = {}
        self.agencies: dict[str, Topic] = {}
        for kind, target in (("entries", self.entries), ("agencies", self.agencies)):
            for item in doc.get(kind) or []:
                if isinstance(item, str):
                    item = {"id": item}
                if not isinstance(item, dict) or not str(item.get("id") or "").strip():
                    raise ValueError(f"{path}: {kind}: each item needs an 'id'")
                key = str(item["id"]).strip()
                queue = item.get("queue")
                if queue is not None and queue not in QUEUES:
                    raise ValueError(f"{path}: {kind}: {key}: unknown queue {queue!r}; one of {', '.join(QUEUES)}")
                if kind == "agencies" and key not in AGENCY_IDS:
                    raise ValueError(f"{path}: agencies: unknown agency id {key!r}")
                prefix = "entry" if kind == "entries" else "agency"
                target[key] = Topic(f"{prefix}:{key}", queue, str(item.get("note") or ""))

    def match(self, entry_id: str | None = None, agency: str | None = None) -> Topic | None:
        """The topic rule for an answer (its entry and the agency it is routed to), if any."""
        if entry_id and entry_id in self.entries:
            return self.entries[entry_id]
        if agency and agency in self.agencies:
            return self.agencies[agency]
        return None

    def unknown_entries(self, corpus) -> list[str]:
        """Entry ids listed here that the corpus does not have (for validation)."""
        return sorted(e for e in self.entries if corpus.get(e) is None)


def queue_for(agency: str | None, explicit: str | None = None) -> str:
    """The queue key: an explicit one, else the agency's own queue, else ``general``."""
    if explicit in QUEUES:
        return explicit
    return agency if agency in AGENCY_IDS else GENERAL

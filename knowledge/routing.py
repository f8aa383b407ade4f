"""Channel and agency advice from editable rules (``knowledge/corpus/routing.yml``).

A rule has conditions (``when``) and an outcome (``channel``, optional ``agency``, and a short
``why`` in kk and ru). Rules are tried in order; the first whose conditions all hold wins.
Conditions available to editors:

* ``intents``: the understood intent is one of these
* ``appeal_types``: the appeal type is one of these
* ``min_type_confidence``: the appeal-type classifier's probability needed before ``appeal_types`` counts
  (a "where do I go" message is not yet an appeal, so its type is only a guess)
* ``entries`` / ``entry_kinds`` / ``agencies``: the top retrieved entry (if confident enough)
* ``keywords``: any of these word stems occurs in the normalised message (any spelling)
* ``offline``: the citizen says they have no internet / cannot use a computer (``offline_cues``)
* ``min_confidence``: retrieval confidence needed before entry conditions count

``channel: "@entry"`` means the top entry's primary channel (its own id for a channel entry).
The agency is the rule's ``agency`` when it sets one (``null`` included); otherwise (``"@entry"``, the
default) the body the citizen names in the message (``nlu/data/agencies.yml``), else the top entry's agency.
"""

from __future__ import annotations

from dataclasses import dataclass

from nlu.normalize import normalize


@dataclass
class Recommendation:
    channel: str | None
    agency: str | None
    rule: str | None
    why: dict | None = None  # {"kk": ..., "ru": ...}
    entry_id: str | None = None  # the channel entry describing the recommended channel


# the conditions a rule's ``when`` may use (anything else is an editor's typo, reported by the checks)
CONDITIONS = ("intents", "appeal_types", "min_type_confidence", "entries", "entry_kinds", "agencies", "keywords",
              "offline", "min_confidence")
NUMERIC_CONDITIONS = ("min_confidence", "min_type_confidence")


def condition_problems(routing: dict) -> list[tuple[str, str, dict]]:
    """(code, English message, params) for each condition a rule cannot use: an unknown key (a typo would
    silently disable the condition) or a threshold that is not a number."""
    out: list[tuple[str, str, dict]] = []
    rules = routing.get("rules") if isinstance(routing, dict) else None
    for n, rule in enumerate(rules if isinstance(rules, list) else [], 1):
        when = rule.get("when") if isinstance(rule, dict) else None
        if not isinstance(when, dict):
            continue
        rid = str(rule.get("id") or n)
        for key, value in when.items():
            if key not in CONDITIONS:
                out.append(("unknown_condition", f"rule {rid}: unknown condition `{key}` (known: "
                            f"{', '.join(CONDITIONS)})", {"rule": rid, "condition": key,
                                                          "known": ", ".join(CONDITIONS)}))
            elif key in NUMERIC_CONDITIONS and (isinstance(value, bool) or not isinstance(value, (int, float))):
                out.append(("bad_condition", f"rule {rid}: `{key}` must be a number", {"rule": rid, "condition": key}))
    return out


def _any_cue(norm: str, cues: list[str]) -> bool:
    padded = f" {norm} "
    return any(normalize(c) in padded or (" " + normalize(c)) in padded for c in cues)


class Router:
    def __init__(self, routing: dict, corpus) -> None:
        self.rules: list[dict] = list(routing.get("rules") or [])
        self.offline_cues: list[str] = list(routing.get("offline_cues") or [])
        self.corpus = corpus

    def recommend(self, text: str, intent: str, appeal_type: str | None = None, top_entry: str | None = None,
                  confidence: float = 0.0, type_confidence: float = 1.0,
                  named_agency: str | None = None) -> Recommendation:
        norm = normalize(text)
        entry = self.corpus.get(top_entry) if top_entry else None
        offline = _any_cue(norm, self.offline_cues)
        for rule in self.rules:
            when = rule.get("when") or {}
            min_conf = float(when.get("min_confidence", 0.3))
            usable_entry = entry if (entry is not None and confidence >= min_conf) else None
            if "intents" in when and intent not in when["intents"]:
                continue
            if "appeal_types" in when and (appeal_type not in when["appeal_types"] or
                                           type_confidence < float(when.get("min_type_confidence", 0.0))):
                continue
            if "offline" in when and bool(when["offline"]) != offline:
                continue
            if "keywords" in when and not _any_cue(norm, when["keywords"]):
                continue
            if "entries" in when and (usable_entry is None or usable_entry.id not in when["entries"]):
                continue
            if "entry_kinds" in when and (usable_entry is None or usable_entry.kind not in when["entry_kinds"]):
                continue
            if "agencies" in when and (usable_entry is None or usable_entry.agency not in when["agencies"]):
                continue
            channel = rule.get("channel")
            if channel == "@entry":
                channel = usable_entry.channel_id if usable_entry else None
                if channel is None:
                    continue
            agency = rule.get("agency", "@entry")
            if agency == "@entry":
                agency = named_agency or (usable_entry.agency if usable_entry else None)
            return Recommendation(channel, agency, rule.get("id"), rule.get("why"),
                                  f"channel.{channel}" if channel else None)
        return Recommendation(None, named_agency or (entry.agency if entry and confidence >= 0.3 else None), None)

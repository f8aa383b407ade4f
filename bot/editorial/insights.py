"""Learning from traffic: what citizens asked that the bot could not answer, and the figures of the service.

* :func:`unanswered_clusters` groups the citizens' questions the bot did not answer (its reply was
  ``low_confidence`` / ``no_answer``, also when a hand-off followed, and the question before a "not helpful"
  vote) into clusters of similar questions, Kazakh and Russian together, with the E5 embedder.
* The analytics functions (:data:`TABLES`) return rows (lists of dicts) for a period: messages per day by
  language and channel, intents, top entries, answer statuses and the answer rate, hand-offs, CSAT, appeals by
  type / agency / deadline status, and the channel recommendations made. :func:`to_csv` writes any of them.

Everything reads the tables the dialogue writes (``messages``, ``feedback``, ``handoffs``, ``appeals``); texts
are stored masked (``nlu.pii.mask``) by the engine, so nothing here sees an IIN or a phone number.

A *turn* is one incoming message and the bot's replies to it (the outgoing messages up to the next incoming
one in the same conversation); its status, intent and entry are those of its first reply.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import zoneinfo
from collections import Counter, OrderedDict, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sqlalchemy import select

from bot.storage.models import Appeal, AppealEvent, Conversation, Feedback, Handoff, Message, User

LOCAL_TZ = zoneinfo.ZoneInfo("Asia/Almaty")
UNANSWERED = ("low_confidence", "no_answer")
# statuses of a turn that was a question to the knowledge base (the denominator of the answer rate)
QUESTION_STATUSES = ("answered", "clarified", "low_confidence", "no_answer")
NEGATIVE_PREFIX = "[button fb:no:"
OPEN_APPEAL_STATUSES = ("registered", "sent", "in_progress", "extended", "redirected")
DUE_SOON_DAYS = 3  # working days, as on the appeals page
DEADLINE_STATES = ("answered_on_time", "answered_late", "in_time", "due_soon", "overdue")
CSAT_KINDS = ("operator", "appeal")
DEFAULT_DISTANCE = 0.55  # cosine distance between language-centred vectors below which questions join
MAX_QUESTIONS = 400  # the most recent unanswered questions clustered at once (embedding costs ~30 ms each)
NLU_DATA = Path(__file__).resolve().parent.parent.parent / "nlu" / "data"


def aware(value: dt.datetime | None) -> dt.datetime | None:
    """SQLite gives naive datetimes back; every stored time is UTC."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=dt.timezone.utc)
    return value


def local_date(value: dt.datetime) -> dt.date:
    return aware(value).astimezone(LOCAL_TZ).date()


def is_text(text: str | None) -> bool:
    """A typed message, not a pressed button or a bare attachment (the engine stores those as ``[button …]``)."""
    t = (text or "").strip()
    return bool(t) and not (t.startswith("[button ") or t == "[attachment]")


# -- turns ---------------------------------------------------------------------------------------------------
@dataclass
class Turn:
    id: int  # the incoming message
    conversation_id: int
    text: str
    created_at: dt.datetime
    channel: str  # the citizen's channel (telegram, whatsapp, web …)
    language: str | None  # the conversation's language
    status: str | None = None
    intent: str | None = None
    entry_id: str | None = None
    unanswered: str | None = None  # low_confidence / no_answer, kept even if a hand-off followed
    recommended: list[str] = field(default_factory=list)  # channel ids of recommendation cards shown
    replied: bool = False

    @property
    def answered(self) -> bool:
        # an answer on a topic that also goes to an operator is recorded as handed_off, with its entry
        return self.unanswered is None and (self.status == "answered" or (self.status == "handed_off"
                                                                             and self.entry_id is not None))

    @property
    def question(self) -> bool:
        return self.unanswered is not None or self.answered or self.status in QUESTION_STATUSES


async def turns(session, since: dt.datetime, until: dt.datetime | None = None) -> list[Turn]:
    """The turns whose incoming message arrived in ``[since, until)``, in order per conversation."""
    cond = [Message.created_at >= since]
    if until is not None:
        cond.append(Message.created_at < until)
    rows = await session.execute(
        select(Message.id, Message.conversation_id, Message.direction, Message.text_masked, Message.intent,
               Message.entry_id, Message.answer_status, Message.payload, Message.created_at, User.channel,
               Conversation.language)
        .join(Conversation, Message.conversation_id == Conversation.id)
        .join(User, Conversation.user_id == User.id)
        .where(*cond).order_by(Message.conversation_id, Message.id))
    out: list[Turn] = []
    current: dict[int, Turn] = {}
    for mid, conv, direction, text, intent, entry, status, payload, created, channel, lang in rows.all():
        if direction == "in":
            turn = Turn(mid, conv, text or "", aware(created), channel, lang)
            current[conv] = turn
            out.append(turn)
            continue
        turn = current.get(conv)
        if turn is None:
            continue  # replies to a message before the period, notifications
        payload = payload or {}
        if not turn.replied:
            turn.replied = True
            turn.status, turn.intent, turn.entry_id = status, intent, entry
        if payload.get("unanswered") and turn.unanswered is None:
            turn.unanswered = payload["unanswered"]
        if payload.get("channel"):
            turn.recommended.append(payload["channel"])
    for t in out:
        if t.unanswered is None and t.status in UNANSWERED:
            t.unanswered = t.status
    return out


# -- unanswered questions --------------------------------------------------------------------------------------
@dataclass
class Question:
    id: int
    conversation_id: int
    text: str
    language: str
    created_at: dt.datetime
    reasons: set[str] = field(default_factory=set)  # low_confidence / no_answer / feedback_negative
    entry_id: str | None = None  # the entry voted "not helpful"


@dataclass
class Cluster:
    size: int
    languages: dict[str, int]
    reasons: dict[str, int]
    examples: list[str]  # distinct texts, the most typical first
    entries: dict[str, int]  # entries whose answers were voted "not helpful"
    first_seen: dt.datetime
    last_seen: dt.datetime
    question_ids: list[int]


def unanswered_questions(all_turns: list[Turn]) -> list[Question]:
    """Typed questions the bot did not answer, and the question before each "not helpful" vote."""
    found: dict[int, Question] = {}
    last_text: dict[int, Turn] = {}

    def add(t: Turn, reason: str, entry: str | None = None) -> None:
        from nlu.language import detect_language

        q = found.get(t.id)
        if q is None:
            lang = detect_language(t.text, t.language) if len(t.text.split()) >= 2 else (t.language or "ru")
            q = found[t.id] = Question(t.id, t.conversation_id, t.text, lang if lang in ("kk", "ru") else
                                       (t.language or "ru"), t.created_at)
        q.reasons.add(reason)
        if entry:
            q.entry_id = entry

    for t in all_turns:
        if t.text.startswith(NEGATIVE_PREFIX):
            before = last_text.get(t.conversation_id)
            if before is not None:
                add(before, "feedback_negative", t.text[len(NEGATIVE_PREFIX):].rstrip("]") or None)
            continue
        if is_text(t.text):
            last_text[t.conversation_id] = t
            if t.unanswered:
                add(t, t.unanswered)
    return sorted(found.values(), key=lambda q: q.created_at)


_MEANS: dict[str, dict[str, np.ndarray]] = {}


def _nlu_examples(lang: str, limit: int = 120) -> list[str]:
    import yaml

    texts: list[str] = []
    for name in (f"intents_{lang}.yml", f"appeal_types_{lang}.yml"):
        path = NLU_DATA / name
        if not path.exists():
            continue
        for item in (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("nlu", []):
            for line in str(item.get("examples") or "").splitlines():
                line = line.strip()
                if line.startswith("- "):
                    texts.append(line[2:].strip())
    step = max(1, len(texts) // limit)
    return texts[::step][:limit]


def language_means(embedder) -> dict[str, np.ndarray]:
    """The mean query vector of each language, from the NLU training examples (computed once per embedder).

    Small multilingual E5 puts two Kazakh questions on different topics closer together than a Kazakh and a
    Russian question on the same topic; subtracting each language's mean vector removes most of that
    language signal, so paraphrases in both languages meet (a common trick for cross-lingual embeddings)."""
    key = getattr(embedder, "name", type(embedder).__name__)
    if key not in _MEANS:
        means = {}
        for lang in ("kk", "ru"):
            examples = _nlu_examples(lang)
            means[lang] = embedder.query(examples).mean(axis=0) if examples else np.zeros(embedder.dim, np.float32)
        _MEANS[key] = means
    return _MEANS[key]


_VECTORS: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()
VECTOR_CACHE_SIZE = 5000


def query_vectors(embedder, texts: list[str]) -> np.ndarray:
    """``embedder.query`` with a small in-process cache, so reloading the Unanswered page does not embed the
    same questions again. Runs on the calling thread (the embedder is shared with the dialogue and is not
    guaranteed to be thread-safe)."""
    key = getattr(embedder, "name", type(embedder).__name__)
    missing = list(dict.fromkeys(t for t in texts if (key, t) not in _VECTORS))
    if missing:
        for text, vec in zip(missing, np.asarray(embedder.query(missing), dtype=np.float32)):
            _VECTORS[(key, text)] = vec
    for t in texts:
        _VECTORS.move_to_end((key, t))
    out = np.stack([_VECTORS[(key, t)] for t in texts]) if texts else np.zeros((0, embedder.dim), np.float32)
    while len(_VECTORS) > VECTOR_CACHE_SIZE:
        _VECTORS.popitem(last=False)
    return out


def centred_vectors(embedder, texts: list[str], languages: list[str]) -> np.ndarray:
    vectors = query_vectors(embedder, texts)
    means = language_means(embedder)
    shift = np.stack([means.get(lang, np.zeros(vectors.shape[1], np.float32)) for lang in languages])
    centred = vectors - shift
    norms = np.linalg.norm(centred, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return centred / norms


def cluster_labels(vectors: np.ndarray, distance: float = DEFAULT_DISTANCE) -> list[int]:
    """Agglomerative clustering (average linkage, cosine distance) cut at ``distance``."""
    if len(vectors) == 0:
        return []
    if len(vectors) == 1:
        return [0]
    from sklearn.cluster import AgglomerativeClustering

    model = AgglomerativeClustering(n_clusters=None, metric="cosine", linkage="average",
                                    distance_threshold=distance)
    return [int(x) for x in model.fit_predict(vectors)]


def cluster_questions(questions: list[Question], embedder, *, min_size: int = 1, distance: float = DEFAULT_DISTANCE,
                      max_examples: int = 5) -> list[Cluster]:
    if not questions:
        return []
    vectors = centred_vectors(embedder, [q.text for q in questions], [q.language for q in questions])
    groups: dict[int, list[int]] = defaultdict(list)
    for i, label in enumerate(cluster_labels(vectors, distance)):
        groups[label].append(i)
    clusters = []
    for members in groups.values():
        if len(members) < min_size:
            continue
        qs = [questions[i] for i in members]
        centre = vectors[members].mean(axis=0)
        order = sorted(members, key=lambda i: -float(vectors[i] @ centre))  # the most typical first
        examples: list[str] = []
        for i in order:
            text = questions[i].text.strip()
            if text.casefold() not in {e.casefold() for e in examples}:
                examples.append(text)
            if len(examples) >= max_examples:
                break
        reasons: Counter = Counter(r for q in qs for r in q.reasons)
        clusters.append(Cluster(
            size=len(qs), languages=dict(Counter(q.language for q in qs).most_common()),
            reasons=dict(reasons.most_common()), examples=examples,
            entries=dict(Counter(q.entry_id for q in qs if q.entry_id).most_common()),
            first_seen=min(q.created_at for q in qs), last_seen=max(q.created_at for q in qs),
            question_ids=sorted(q.id for q in qs)))
    clusters.sort(key=lambda c: (-c.size, -c.last_seen.timestamp()))
    return clusters


async def unanswered_clusters(session, embedder, since: dt.datetime, min_size: int = 1, *,
                              until: dt.datetime | None = None, distance: float = DEFAULT_DISTANCE,
                              limit: int = MAX_QUESTIONS) -> list[Cluster]:
    """Clusters of similar unanswered questions asked since ``since`` (Kazakh and Russian together), largest
    first. ``embedder`` is the assistant's (``assistant.embedder``); new texts cost ~30 ms each to embed (on the
    calling thread), texts seen before come from a cache; at most ``limit`` (the most recent) are clustered."""
    questions = unanswered_questions(await turns(session, since, until))[-limit:]
    return cluster_questions(questions, embedder, min_size=min_size, distance=distance)


# -- analytics ------------------------------------------------------------------------------------------------
def _share(part: int, whole: int) -> float | None:
    return round(100.0 * part / whole, 1) if whole else None


def messages_per_day(all_turns: list[Turn]) -> list[dict]:
    """Incoming messages per local (Astana) day, language and channel."""
    counts = Counter((local_date(t.created_at), t.language or "", t.channel) for t in all_turns)
    return [{"day": d.isoformat(), "language": lang, "channel": ch, "messages": n}
            for (d, lang, ch), n in sorted(counts.items())]


def intents(all_turns: list[Turn]) -> list[dict]:
    counts = Counter(t.intent for t in all_turns if t.replied and t.intent)
    total = sum(counts.values())
    return [{"intent": k, "turns": n, "share": _share(n, total)} for k, n in counts.most_common()]


async def top_entries(session, all_turns: list[Turn], since: dt.datetime, until: dt.datetime | None,
                      limit: int = 20) -> list[dict]:
    """Entries answered most often, with the "helpful / not helpful" votes on them."""
    answered = Counter(t.entry_id for t in all_turns if t.entry_id and t.status in ("answered", "handed_off"))
    cond = [Feedback.created_at >= since, Feedback.helpful.is_not(None), Feedback.entry_id.is_not(None)]
    if until is not None:
        cond.append(Feedback.created_at < until)
    votes: dict[str, Counter] = defaultdict(Counter)
    for entry, helpful in (await session.execute(select(Feedback.entry_id, Feedback.helpful).where(*cond))).all():
        votes[entry]["yes" if helpful else "no"] += 1
    rows = [{"entry_id": e, "answers": n, "helpful": votes[e]["yes"], "not_helpful": votes[e]["no"]}
            for e, n in answered.items()]
    rows += [{"entry_id": e, "answers": 0, "helpful": v["yes"], "not_helpful": v["no"]}
             for e, v in votes.items() if e not in answered]
    rows.sort(key=lambda r: (-r["answers"], -(r["helpful"] + r["not_helpful"]), r["entry_id"]))
    return rows[:limit]


def answer_statuses(all_turns: list[Turn]) -> list[dict]:
    """Turns per answer status of the bot's first reply (``unanswered`` questions that were handed off count as
    what they were: low_confidence / no_answer)."""
    counts = Counter((t.unanswered or t.status or "none") for t in all_turns if t.replied)
    total = sum(counts.values())
    return [{"status": s, "turns": n, "share": _share(n, total)} for s, n in counts.most_common()]


def answer_rate(all_turns: list[Turn]) -> list[dict]:
    """Questions to the knowledge base, and how many were answered directly / after a clarification."""
    qs = [t for t in all_turns if t.question]
    answered = sum(1 for t in qs if t.answered)
    clarified = sum(1 for t in qs if t.status == "clarified")
    unanswered = sum(1 for t in qs if t.unanswered)
    return [{"questions": len(qs), "answered": answered, "clarified": clarified, "unanswered": unanswered,
             "answer_rate": _share(answered, len(qs)), "unanswered_rate": _share(unanswered, len(qs))}]


async def handoff_rate(session, all_turns: list[Turn], since: dt.datetime, until: dt.datetime | None) -> list[dict]:
    """Hand-offs to operators per reason, as a share of the conversations active in the period."""
    conversations = len({t.conversation_id for t in all_turns})
    cond = [Handoff.created_at >= since]
    if until is not None:
        cond.append(Handoff.created_at < until)
    rows = (await session.execute(select(Handoff.reason, Handoff.conversation_id).where(*cond))).all()
    by_reason: dict[str, set] = defaultdict(set)
    for reason, conv in rows:
        by_reason[reason].add(conv)
    counts = Counter(reason for reason, _ in rows)
    out = [{"reason": r, "handoffs": n, "conversations": len(by_reason[r]),
            "rate": _share(len(by_reason[r]), conversations)} for r, n in counts.most_common()]
    out.append({"reason": "all", "handoffs": len(rows), "conversations": len({c for _, c in rows}),
                "rate": _share(len({c for _, c in rows}), conversations)})
    return out


async def csat(session, since: dt.datetime, until: dt.datetime | None) -> list[dict]:
    """Ratings 1–5 (after an operator conversation, after an answered appeal): count, average, share of 4–5."""
    cond = [Feedback.created_at >= since, Feedback.rating.is_not(None), Feedback.kind.in_(CSAT_KINDS)]
    if until is not None:
        cond.append(Feedback.created_at < until)
    ratings: dict[str, list[int]] = defaultdict(list)
    for kind, rating in (await session.execute(select(Feedback.kind, Feedback.rating).where(*cond))).all():
        ratings[kind].append(int(rating))
    ratings["all"] = [r for k in CSAT_KINDS for r in ratings.get(k, [])]

    def row(kind: str) -> dict:
        values = ratings.get(kind, [])
        return {"kind": kind, "ratings": len(values),
                "average": round(sum(values) / len(values), 2) if values else None,
                "satisfied": _share(sum(1 for v in values if v >= 4), len(values))}

    return [row(k) for k in (*CSAT_KINDS, "all")]


def _working_days_left(start: dt.date, end: dt.date) -> int:
    from bot.intake.deadlines import default_calendar

    cal = default_calendar()
    n, d = 0, start
    while d < end:
        d += dt.timedelta(days=1)
        if cal.is_working_day(d):
            n += 1
    return n


def deadline_state(appeal: Appeal, answered_on: dt.date | None, today: dt.date) -> str:
    """``answered_on_time`` / ``answered_late`` once answered (or rejected / closed), else ``overdue`` /
    ``due_soon`` (≤ 3 working days left) / ``in_time``."""
    if appeal.status not in OPEN_APPEAL_STATUSES:
        done = answered_on or local_date(appeal.updated_at)
        return "answered_on_time" if done <= appeal.due_date else "answered_late"
    if appeal.due_date < today:
        return "overdue"
    return "due_soon" if _working_days_left(today, appeal.due_date) <= DUE_SOON_DAYS else "in_time"


async def _appeals(session, since: dt.datetime, until: dt.datetime | None) -> list[tuple[Appeal, dt.date | None]]:
    cond = [Appeal.received_at >= since]
    if until is not None:
        cond.append(Appeal.received_at < until)
    appeals = (await session.execute(select(Appeal).where(*cond).order_by(Appeal.id))).scalars().all()
    out = []
    for a in appeals:
        done = [e.created_at for e in a.events if e.status in ("answered", "rejected", "closed")]
        out.append((a, local_date(min(done)) if done else None))
    return out


async def appeals_by_type(session, since, until=None) -> list[dict]:
    counts = Counter(a.appeal_type for a, _ in await _appeals(session, since, until))
    return [{"appeal_type": k, "appeals": n} for k, n in counts.most_common()]


async def appeals_by_agency(session, since, until=None) -> list[dict]:
    counts = Counter(a.agency or "" for a, _ in await _appeals(session, since, until))
    return [{"agency": k, "appeals": n} for k, n in counts.most_common()]


async def appeals_by_deadline(session, since, until=None, today: dt.date | None = None) -> list[dict]:
    today = today or dt.datetime.now(LOCAL_TZ).date()
    counts = Counter(deadline_state(a, done, today) for a, done in await _appeals(session, since, until))
    return [{"state": s, "appeals": counts.get(s, 0)} for s in DEADLINE_STATES]


def channel_recommendations(all_turns: list[Turn]) -> list[dict]:
    """Recommendation cards shown to citizens, per recommended channel."""
    counts = Counter(ch for t in all_turns for ch in dict.fromkeys(t.recommended))
    total = sum(counts.values())
    return [{"channel": k, "recommendations": n, "share": _share(n, total)} for k, n in counts.most_common()]


# name → columns, in CSV order
TABLES: dict[str, tuple[str, ...]] = {
    "messages": ("day", "language", "channel", "messages"),
    "intents": ("intent", "turns", "share"),
    "entries": ("entry_id", "answers", "helpful", "not_helpful"),
    "statuses": ("status", "turns", "share"),
    "answer_rate": ("questions", "answered", "clarified", "unanswered", "answer_rate", "unanswered_rate"),
    "handoffs": ("reason", "handoffs", "conversations", "rate"),
    "csat": ("kind", "ratings", "average", "satisfied"),
    "appeal_types": ("appeal_type", "appeals"),
    "appeal_agencies": ("agency", "appeals"),
    "appeal_deadlines": ("state", "appeals"),
    "channels": ("channel", "recommendations", "share"),
}


async def report(session, since: dt.datetime, until: dt.datetime | None = None,
                 today: dt.date | None = None) -> dict[str, list[dict]]:
    """Every table of :data:`TABLES` for ``[since, until)`` (the turns are read once)."""
    all_turns = await turns(session, since, until)
    appeals = await _appeals(session, since, until)
    today = today or dt.datetime.now(LOCAL_TZ).date()
    deadline_counts = Counter(deadline_state(a, done, today) for a, done in appeals)
    return {
        "messages": messages_per_day(all_turns),
        "intents": intents(all_turns),
        "entries": await top_entries(session, all_turns, since, until),
        "statuses": answer_statuses(all_turns),
        "answer_rate": answer_rate(all_turns),
        "handoffs": await handoff_rate(session, all_turns, since, until),
        "csat": await csat(session, since, until),
        "appeal_types": [{"appeal_type": k, "appeals": n}
                         for k, n in Counter(a.appeal_type for a, _ in appeals).most_common()],
        "appeal_agencies": [{"agency": k, "appeals": n}
                            for k, n in Counter(a.agency or "" for a, _ in appeals).most_common()],
        "appeal_deadlines": [{"state": s, "appeals": deadline_counts.get(s, 0)} for s in DEADLINE_STATES],
        "channels": channel_recommendations(all_turns),
    }


async def table(session, name: str, since: dt.datetime, until: dt.datetime | None = None) -> list[dict]:
    if name not in TABLES:
        raise KeyError(name)
    return (await report(session, since, until))[name]


def to_csv(rows: list[dict], columns: tuple[str, ...] | list[str]) -> str:
    """The rows as CSV text (a header line, then one line per row; empty cells for None)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow(["" if row.get(c) is None else row.get(c) for c in columns])
    return buf.getvalue()


_ = AppealEvent  # the events are loaded with each appeal (selectin)

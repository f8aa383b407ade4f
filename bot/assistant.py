"""The single-message pipeline behind ``estu ask`` and ``POST /api/v1/ask``.

text → clean → language → emergency lexicon → intent / appeal type → retrieval → channel
advice → an answer in the citizen's language. It has no side effects (no database writes);
the dialogue engine builds conversations on top of it.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from bot.config import Settings
from bot.i18n import gettext as _
from bot.logging import get_logger
from bot.messages import Card
from knowledge.corpus import Corpus, load_corpus
from knowledge.embeddings import Embedder, VectorCache, make_embedder
from knowledge.index import KnowledgeIndex
from knowledge.retrieval import Retriever, build_index, index_is_current
from knowledge.routing import Recommendation, Router
from nlu.appeal_cues import explicit_appeal
from nlu.emergency import emergency_kinds
from nlu.entities import find_agencies, find_appeal_numbers
from nlu.intents import NluModels, Ranked, RasaIntentClassifier, models_are_current, train_models
from nlu.language import detect_language
from nlu.normalize import clean, fold, normalize

log = get_logger("estu.assistant")

_THANKS = re.compile(r"(спасиб|благодар|рахмет|raqmet|rahmet|thank|сау бол|sau bol)", re.IGNORECASE)
_SMALLTALK_WORDS = (
    # greetings, thanks, goodbyes (stems match any ending)
    r"сәлем", r"салем", r"салам", r"сәлеметсіз", r"саламатсыз", r"привет", r"здравств", r"здраст",
    r"добр(ый|ое|ого|ой)\s+(день|утро|вечер|дня|ночи)", r"рахмет", r"ракмет", r"рахмат", r"спасиб", r"благодар",
    r"сау\s*бол", r"до\s*свидан", r"қош\s*бол", r"ассалам", r"қайырлы", r"каиирлы", r"көріскенше", r"до\s*встречи",
    r"хорошего\s*дня", r"спокойной\s*ночи", r"пасиб", r"жарайсың",
    # about the bot
    r"кто\s*ты", r"кто\s*вы", r"умеешь", r"умеете", r"бот\w*", r"робот", r"не\s*істей\s*алас", r"кімсің", r"кімсіз",
    r"атың\s*кім", r"атыңыз\s*кім", r"адамсың", r"адамсыз", r"кім\s*жасады", r"зовут", r"ты\s*человек", r"вы\s*человек",
    r"создал", r"чем\s*(можешь|можете)\s*помочь", r"отвечаешь", r"с\s*тобой", r"по-казахски", r"настоящий", r"говоришь",
    r"живой", r"крутой", r"есту\b", r"не\s*істеи\s*алас", r"сау\s*бол", r"ассалау", r"всего\s*доброго",
    r"доброго\s*времени", r"көмек\s*көрсете\s*алас", r"жауап\s*бересің", r"жауап\s*бересіз", r"түсінесің",
    r"как\s*дела", r"қалайсыз", r"калайсын", r"қалың\s*қалай", r"жақсымысыз",
    # acknowledgements
    r"хорошо", r"ясно", r"понятно", r"понял", r"поняла", r"түсінікті", r"түсіндім", r"жақсы",
    r"hello", r"thanks", r"окей", r"спс", r"пока", r"хай", r"ку", r"ок", r"ok", r"hi", r"hey",
)
# smalltalk needs a cue (greeting, thanks, goodbye, "who are you", "ok"); a bare topic ("пенсия",
# "балабақша кезегі") is a question about that topic, whatever the classifier says about short messages
_SHORT = tuple(w for w in _SMALLTALK_WORDS if len(w) <= 4 and w.isalpha())
_LONG = tuple(w for w in _SMALLTALK_WORDS if w not in _SHORT)
_SMALLTALK_CUE = re.compile(fold(r"\b(" + "|".join(_LONG) + r")|\b(" + "|".join(_SHORT) + r")\b"))
# chosen by 5-fold cross-validation on nlu/data (lexicon OR model): recall 0.99, 0.7% false alarms
EMERGENCY_MODEL_THRESHOLD = 0.3
# the first line of an emergency answer per kind (texts in the gettext catalogues)
EMERGENCY_ADVICE = {
    "fire": "Fire: call 101 or 112, leave the building and close the door behind you.",
    "flood": "Flood or water: call 112 and move to a higher, safe place.",
    "accident": "Accident: call 112 (ambulance 103, police 102) and do not move injured people unless they are in danger.",
    "violence": "Violence or threats: call the police, 102, or 112. If you can, go somewhere safe first. "
                "For violence in the family or against a child, the 111 contact centre also helps, around the clock "
                "and free of charge.",
    "medical": "Medical emergency: call the ambulance, 103, or 112.",
    "gas": "Gas: leave the premises, do not switch lights on or off, and call the gas emergency service, 104, or 112.",
    "lost_person": "A missing person: call the police, 102, or 112, right away \u2014 do not wait.",
    "self_harm": "If you are thinking about ending your life or hurting yourself, please call 112 now and tell them. You are not alone, and you deserve help.",
}
_LETTER = re.compile(r"[^\W\d_]", re.UNICODE)
# channels reached online: the channel card also names the way without internet
_OFFLINE_ALTERNATIVE = {"egov_portal": "psc", "e_otinish": "manual_submission", "online_reception": "manual_submission",
                        "mobile_app": "manual_submission", "contact_center": "manual_submission"}


@dataclass
class Understanding:
    text: str
    language: str
    intent: Ranked
    appeal_type: Ranked | None
    emergency: list[str]
    retrieval: object | None = None
    appeal_numbers: list[str] = field(default_factory=list)
    agencies: list[str] = field(default_factory=list)  # bodies named in the text, in order

    @property
    def named_agency(self) -> str | None:
        return self.agencies[0] if self.agencies else None


@dataclass
class Plan:
    """What to do with one understood message: the one answer policy.

    ``estu ask`` (and ``POST /api/v1/ask``) render it as text, the chat renders it as replies with buttons,
    hand-offs and forms; both take the same decision, channel and agency from here.

    kind: ``emergency``, ``status``, ``operator``, ``smalltalk``, ``out_of_scope``, ``appeal`` (file one now),
    ``answer`` (``entry_id`` answers it), ``choose`` (``options``: two likely entries), ``unsure`` (a weak match
    only) or ``no_answer``.
    """

    kind: str
    intent: str
    appeal_type: str | None
    recommendation: Recommendation
    confidence: float
    entry_id: str | None = None
    options: list[str] = field(default_factory=list)

    @property
    def channel(self) -> str | None:
        return self.recommendation.channel

    @property
    def agency(self) -> str | None:
        return self.recommendation.agency


class Assistant:
    def __init__(self, settings: Settings, corpus: Corpus, index: KnowledgeIndex, embedder: Embedder,
                 nlu: NluModels | None) -> None:
        self.settings = settings
        self.corpus = corpus
        self.index = index
        self.embedder = embedder
        self.retriever = Retriever(index, embedder)
        self.nlu = nlu
        self.rasa = RasaIntentClassifier(settings.rasa_url) if settings.rasa_url else None
        self.router = Router(corpus.routing, corpus)

    # -- loading ------------------------------------------------------------------------
    @classmethod
    def load(cls, settings: Settings, build: bool = True, progress=None) -> "Assistant":
        corpus = load_corpus(settings.corpus_dir)
        embedder = make_embedder(settings.embedder, settings.embedder_model, settings.embedder_threads)
        index = ensure_index(settings, corpus, embedder, build=build, progress=progress)
        nlu = ensure_nlu(settings, embedder, build=build)
        return cls(settings, corpus, index, embedder, nlu)

    # -- understanding ------------------------------------------------------------------------
    def understand(self, text: str, previous_language: str | None = None) -> Understanding:
        language = detect_language(text, previous_language)
        kinds = emergency_kinds(text)
        vector = self.retriever.embed_query(text)
        intent, appeal_type = self._classify(text, vector)
        numbers = [e.value for e in find_appeal_numbers(text)]
        if kinds or (intent.name == "emergency" and intent.confidence >= EMERGENCY_MODEL_THRESHOLD):
            intent = Ranked([("emergency", max(intent.confidence, 0.99) if kinds else intent.confidence)]
                            + [r for r in intent.ranking if r[0] != "emergency"])
        elif intent.name == "emergency":
            # a weak model-only guess: fall back to the next intent (the lexicon carries recall)
            intent = Ranked([r for r in intent.ranking if r[0] != "emergency"] + [("emergency", intent.confidence)])
        if intent.name != "emergency":
            explicit, named_type = explicit_appeal(text)
            if explicit and not numbers:
                intent = Ranked([("appeal", max(0.95, intent.confidence if intent.name == "appeal" else 0.0))]
                                + [r for r in intent.ranking if r[0] != "appeal"])
                if named_type:
                    rest = appeal_type.ranking if appeal_type else []
                    appeal_type = Ranked([(named_type, 0.95)] + [r for r in rest if r[0] != named_type])
        if numbers and intent.name in ("faq", "appeal", "channel", "out_of_scope", "smalltalk"):
            intent = Ranked([("status", 0.9)] + [r for r in intent.ranking if r[0] != "status"])
        if intent.name == "smalltalk" and not _SMALLTALK_CUE.search(normalize(text)):
            intent = Ranked([("faq", intent.confidence)] + [r for r in intent.ranking if r[0] not in ("faq", "smalltalk")]
                            + [("smalltalk", 0.0)])
        retrieval = None
        if intent.name in ("faq", "channel", "appeal", "out_of_scope", "smalltalk", "emergency"):
            retrieval = self.retriever.search(text, k=max(3, self.settings.top_k), query_vector=vector,
                                               language=language)
            # a confident knowledge-base match outweighs a weak out-of-scope/smalltalk guess
            if intent.name in ("out_of_scope", "smalltalk") and intent.confidence < 0.6 \
                    and retrieval.confidence >= 0.7:
                intent = Ranked([("faq", retrieval.confidence)] + [r for r in intent.ranking if r[0] != "faq"])
        agencies = list(dict.fromkeys(e.value for e in find_agencies(text)))
        return Understanding(text, language, intent, appeal_type, kinds, retrieval, numbers, agencies)

    def _classify(self, text: str, vector) -> tuple[Ranked, Ranked | None]:
        if self.rasa is not None:
            try:
                return self.rasa.predict(text)
            except Exception as exc:  # noqa: BLE001 - fall back to the local model
                log.warning("rasa_unavailable", error=str(exc))
        if self.nlu is None:
            return Ranked([("faq", 0.5)]), None
        intent = self.nlu.intent.predict(text, vector)
        appeal_type = self.nlu.appeal_type.predict(text, vector) if self.nlu.appeal_type else None
        return intent, appeal_type

    # -- deciding ---------------------------------------------------------------------------------
    def plan(self, u: Understanding, intent: str | None = None) -> Plan:
        """Decide what to answer; ``intent`` overrides the understood one (the citizen chose it)."""
        chosen, intent = intent, intent or u.intent.name
        if chosen is None and u.appeal_numbers and intent not in ("emergency", "status"):
            intent = "status"  # a registration number in the message: the citizen asks about that appeal
        appeal_type = u.appeal_type.name if (u.appeal_type and intent in ("appeal", "channel")) else None
        r = u.retrieval
        top = r.top if r else None
        conf = r.confidence if r else 0.0
        rec = self.router.recommend(u.text, intent, appeal_type, top.entry_id if top else None, conf,
                                    u.appeal_type.confidence if u.appeal_type else 0.0, u.named_agency)
        if intent in ("emergency", "status", "operator", "smalltalk", "out_of_scope", "appeal"):
            # an emergency only the model suspects also gets the ordinary answer, after 112
            extra = top.entry_id if (intent == "emergency" and not u.emergency and top is not None
                                     and conf >= self.settings.answer_threshold) else None
            return Plan(intent, intent, appeal_type, rec, u.intent.confidence, entry_id=extra)
        if top is None:
            return Plan("no_answer", intent, appeal_type, rec, 0.0)
        if conf >= self.settings.answer_threshold:
            return Plan("answer", intent, appeal_type, rec, conf, entry_id=top.entry_id)
        if conf >= self.settings.clarify_threshold and len(r.hits) > 1:
            return Plan("choose", intent, appeal_type, rec, conf, options=[h.entry_id for h in r.hits[:2]])
        return Plan("unsure", intent, appeal_type, rec, conf)

    # -- answering ------------------------------------------------------------------------------
    def ask(self, text, previous_language: str | None = None, id=None) -> dict:
        started = time.perf_counter()
        result = self._ask(text, previous_language)
        result["id"] = id
        result["latency_ms"] = round((time.perf_counter() - started) * 1000, 1)
        order = ["id", "language", "intent", "appeal_type", "channel", "agency", "answer", "sources",
                 "confidence", "latency_ms"]
        return {k: result.get(k) for k in order}

    def _ask(self, text, previous_language: str | None) -> dict:
        if not isinstance(text, str):
            text = "" if text is None else str(text)
        text = clean(text)[: self.settings.max_message_chars]
        lang = previous_language if previous_language in ("kk", "ru") else "ru"
        if not _LETTER.search(text):
            return self._reply(lang, "out_of_scope", _(lang, "Please write your question in words: I could "
                                                            "not find any text in the message."), confidence=0.0)
        u = self.understand(text, previous_language)
        lang = u.language
        ui = lang if lang in ("kk", "ru") else "ru"
        plan = self.plan(u)
        kind, intent = plan.kind, plan.intent
        sources = [{"id": h.entry_id, "score": h.score} for h in (u.retrieval.hits if u.retrieval else [])]

        if kind == "emergency":
            answer = self._emergency_answer(ui, u.emergency)
            if plan.entry_id:
                answer += "\n\n" + self._entry_answer(plan.entry_id, lang, ui)
            return self._reply(lang, intent, answer, channel="emergency_112", agency="emergency",
                               confidence=plan.confidence, sources=sources)
        if kind == "status":
            return self._reply(lang, intent, _(ui, "To check the status of an appeal filed through Estu, send its "
                               "registration number (for example, ЕТ-2026-000123) from the same chat where you filed "
                               "it. Appeals filed directly in E-otinish are tracked in your E-otinish account."),
                               channel="e_otinish", confidence=plan.confidence)
        if kind == "operator":
            return self._reply(lang, intent, _(ui, "I will pass the conversation to a human operator. Please "
                               "describe your question in one message; the operator will see our whole "
                               "conversation."), confidence=plan.confidence)
        if kind == "smalltalk":
            return self._reply(lang, intent, self.smalltalk_answer(text, ui), confidence=plan.confidence)
        if kind == "out_of_scope":
            return self._reply(lang, intent, self.out_of_scope_answer(ui), confidence=plan.confidence)
        if kind == "appeal":
            agency_name = self.agency_name(plan.agency, ui) or _(ui, "the responsible body")
            guide_entry = self.corpus.get("faq.eotinish_how_to_file")
            guide = ""
            if guide_entry and guide_entry.block(ui):
                guide = guide_entry.block(ui).answer.strip()
            answer = _(ui, "I can help you file a formal appeal ({appeal_type}). It will be registered with a number, "
                       "sent to the responsible body ({agency}) and must be answered within the legal term. {guide}",
                       appeal_type=_(ui, plan.appeal_type or "appeal"), agency=agency_name, guide=guide).strip()
            return self._reply(lang, intent, answer, appeal_type=plan.appeal_type, channel=plan.channel or "e_otinish",
                               agency=plan.agency, confidence=plan.confidence, sources=sources)

        # faq / channel: answer from the knowledge base
        card = self.channel_card(plan.recommendation, ui)
        if kind == "no_answer":
            return self._reply(lang, intent, _(ui, "I could not find an answer to this. You can rephrase the question "
                               "or ask for a human operator (/operator)."), confidence=0.0)
        if kind == "answer":
            answer = self._entry_answer(plan.entry_id, lang, ui)
            if intent == "channel" and card:
                answer = self.card_text(card, ui) + "\n\n" + answer
        elif kind == "choose":
            titles = [self._title(e, ui) for e in plan.options]
            answer = _(ui, "Did you mean one of these?") + "\n" + "\n".join(f"{i}. {t}" for i, t in
                                                                           enumerate(titles, 1))
        else:
            answer = self.unsure_answer(card, ui)
        return self._reply(lang, intent, answer, appeal_type=plan.appeal_type, channel=plan.channel,
                           agency=plan.agency, confidence=plan.confidence, sources=sources)

    # -- pieces -------------------------------------------------------------------------------------
    @staticmethod
    def smalltalk_answer(text: str, ui: str) -> str:
        """Thanks get "you are welcome"; any other smalltalk gets what Estu can do."""
        if _THANKS.search(text):
            return _(ui, "You are welcome! Ask if anything else comes up.")
        return _(ui, "Hello! I am Estu, the citizen assistant. I answer questions about public services, tell you "
                     "which channel and agency to contact, help you file an appeal (statement, complaint, proposal, "
                     "request, feedback, report) and can connect you to an operator. Write in Kazakh or Russian.")

    @staticmethod
    def _reply(language, intent, answer, appeal_type=None, channel=None, agency=None, confidence=0.0,
               sources=None) -> dict:
        return {"language": language, "intent": intent, "appeal_type": appeal_type, "channel": channel,
                "agency": agency, "answer": answer, "sources": sources or [], "confidence": round(float(confidence), 4)}

    def _title(self, entry_id: str, ui: str) -> str:
        e = self.corpus.get(entry_id)
        if e is None:
            return entry_id
        block = e.block(ui) or e.block("ru") or e.block("kk")
        return block.title

    @staticmethod
    def out_of_scope_answer(ui: str) -> str:
        return _(ui, "I can only help with questions about public services and appeals to state bodies. For example: "
                     "how to get a digital signature, where to complain about a broken street lamp, or how to file an "
                     "appeal.")

    @staticmethod
    def unsure_answer(card: Card | None, ui: str) -> str:
        return _(ui, "I am not sure I understood. You can rephrase the question, contact {channel}, or ask for a human "
                     "operator.", channel=card.title if card else "E-otinish")

    def agency_name(self, agency: str | None, ui: str) -> str | None:
        e = self.corpus.get(f"agency.{agency}") if agency else None
        return e.block(ui).title if e and e.block(ui) else None

    def _entry_answer(self, entry_id: str, lang: str, ui: str) -> str:
        e = self.corpus.get(entry_id)
        block = e.block(ui)
        prefix = ""
        if block is None:
            other = "kk" if ui == "ru" else "ru"
            block = e.block(other)
            prefix = _(ui, "This entry is not yet available in your language, so I answer in the other one.") + "\n\n"
        elif lang == "en":
            prefix = _("ru", "I answer in Russian: the knowledge base has no English version.") + "\n\n"
        parts = [prefix + block.answer.strip(), _(ui, "Source: {title}", title=block.title)]
        url = e.url or (e.contact.url if e.contact else None)
        if url:
            parts.append(_(ui, "More: {url}", url=url))
        return "\n\n".join(parts)

    def channel_card(self, rec: Recommendation, ui: str) -> Card | None:
        """The recommended channel: its name, why (from the routing rule), how to reach it, and the way
        without internet for online channels. The one builder for every channel and for ``estu ask``."""
        if not rec.channel:
            return None
        entry = self.corpus.get(f"channel.{rec.channel}")
        title = self._title(entry.id, ui) if entry else rec.channel
        contact = []
        if entry and entry.contact:
            c = entry.contact
            contact += [x for x in (c.phone, c.url) if x]
            if c.hours and getattr(c.hours, ui, None):
                contact.append(getattr(c.hours, ui))
        alternative = None
        alt = _OFFLINE_ALTERNATIVE.get(rec.channel)
        if alt and self.corpus.get(f"channel.{alt}") is not None:  # never show a bare id to a citizen
            alternative = _(ui, "Without internet: {channel}.", channel=self._title(f"channel.{alt}", ui))
        return Card(title=title, why=(rec.why or {}).get(ui, ""), contact=contact, alternative=alternative)

    @staticmethod
    def card_text(card: Card, ui: str) -> str:
        parts = [_(ui, "Recommended channel: {channel}.", channel=card.title)]
        parts += [x for x in (card.why, " · ".join(card.contact), card.alternative) if x]
        return "\n".join(parts)

    def _emergency_answer(self, ui: str, kinds: list[str] | None = None) -> str:
        head = _(ui, "This looks like an emergency. Call 112 now.")
        specific = [_(ui, EMERGENCY_ADVICE[k]) for k in (kinds or []) if k in EMERGENCY_ADVICE]
        if specific:
            head += "\n" + "\n".join(specific)
        entry = self.corpus.get("faq.emergency_numbers")
        if entry and entry.block(ui):
            return head + "\n\n" + entry.block(ui).answer.strip()
        return head


# -- index and model management ------------------------------------------------------------------------

def ensure_index(settings: Settings, corpus: Corpus, embedder: Embedder, build: bool = True,
                 progress=None, force: bool = False) -> KnowledgeIndex:
    directory: Path = settings.index_dir
    if not force and index_is_current(directory, corpus.version, embedder.name):
        return KnowledgeIndex.load(directory)
    if not build:
        raise RuntimeError(f"the index in {directory} is missing or stale: run `estu kb build`")
    cache = VectorCache(settings.cache_path, embedder.name)
    index = build_index(corpus, embedder, cache=cache, progress=progress)
    cache.save()
    index.save(directory)
    log.info("index_built", passages=len(index.passages), seconds=index.meta.build_seconds,
             corpus_version=corpus.version)
    return index


def ensure_nlu(settings: Settings, embedder: Embedder, build: bool = True, force: bool = False) -> NluModels | None:
    path = settings.index_dir / "nlu.joblib"
    if not settings.nlu_data_dir.exists():
        return None
    models = None if force else NluModels.load(path)
    if models_are_current(models, settings.nlu_data_dir, embedder.name):
        return models
    if not build:
        return models
    try:
        models = train_models(settings.nlu_data_dir, embedder)
    except RuntimeError as exc:
        log.warning("nlu_not_trained", reason=str(exc))
        return None
    models.save(path)
    log.info("nlu_trained", counts=str(models.counts))
    return models

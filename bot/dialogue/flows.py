"""Feature routers: commands, emergencies, buttons, and answers by intent."""

from __future__ import annotations

from bot.dialogue.engine import Context, Router
from bot.intake import registry
from bot.messages import Button, Card, Reply
from bot.operators import handoff
from bot.storage.models import Feedback
from nlu.pii import mask

commands = Router("commands")
emergency = Router("emergency")
buttons = Router("buttons")
answers = Router("answers")

FORM_EMERGENCY_MODEL_THRESHOLD = 0.8
# "did you mean": when the intent classifier is less than even on whether the citizen wants to file an appeal
# or wants an answer, and the other reading has at least this much, the bot asks instead of guessing
# (on tests/eval this asks about 1 message in 400, and there the first guess was wrong)
INTENT_CLARIFY_BELOW = 0.5
INTENT_CLARIFY_OTHER = 0.2
_ACTIONS = {"appeal": "appeal", "faq": "answer", "channel": "answer"}
COMMANDS = {"/start", "/help", "/lang", "/cancel", "/status", "/operator", "/back"}


def help_text(ctx: Context) -> str:
    return ctx.t("Hello! I am Estu, the citizen assistant. I answer questions about public services, tell you which "
                 "channel and agency to contact, help you file an appeal (statement, complaint, proposal, request, "
                 "feedback, report) and can connect you to an operator. Write in Kazakh or Russian.")


def help_buttons(ctx: Context) -> list[Button]:
    return [Button("menu:appeal", ctx.t("File an appeal")), Button("menu:status", ctx.t("My appeals")),
            Button("act:operator", ctx.t("Operator")), Button("lang:kk" if ctx.lang == "ru" else "lang:ru",
                                                               "Қазақша" if ctx.lang == "ru" else "Русский")]


def lang_buttons() -> list[Button]:
    return [Button("lang:kk", "Қазақша"), Button("lang:ru", "Русский")]


def _command(ctx: Context) -> str | None:
    if ctx.text.startswith("/"):
        return ctx.text.split()[0].split("@")[0].lower()
    return None


@commands.handler
async def on_operator_controls(ctx: Context):
    # CSAT ratings, leaving the operator queue (bot/operators/handoff.py)
    return await handoff.controls(ctx)


@commands.handler
async def on_command(ctx: Context):
    cmd = _command(ctx)
    button = ctx.incoming.button or ""
    if button.startswith("lang:"):
        lang = button.split(":", 1)[1]
        if lang in ("kk", "ru"):
            ctx.set_lang(lang)
            ctx.user.language = lang
            out = [Reply(ctx.t("Language switched to Russian.") if lang == "ru" else ctx.t("Language switched to "
                                                                                              "Kazakh."))]
            from bot.intake.form import resume_prompt

            return out + resume_prompt(ctx)
    if cmd is None and button not in ("menu:status", "act:operator", "form:cancel"):
        return None
    if cmd in ("/start", "/help"):
        replies = [Reply(help_text(ctx), buttons=help_buttons(ctx))]
        if cmd == "/start" and not ctx.user.language:
            replies.append(Reply(ctx.t("Choose a language:"), buttons=lang_buttons()))
        return replies
    if cmd == "/lang":
        return [Reply(ctx.t("Choose a language:"), buttons=lang_buttons())]
    if cmd == "/cancel" or button == "form:cancel":
        had_form = bool(ctx.state.get("flow"))
        ctx.conversation.state = {}
        return [Reply(ctx.t("Cancelled. Nothing was sent.") if had_form else ctx.t("There is nothing to cancel."),
                      buttons=help_buttons(ctx))]
    if cmd == "/status" or button == "menu:status":
        return await status_reply(ctx)
    if cmd == "/operator" or button == "act:operator":
        return await operator_reply(ctx, "citizen_request")
    if cmd == "/back":
        return None  # handled by the form router
    if cmd not in COMMANDS:
        return [Reply(ctx.t("I do not know this command. Try /help."))]
    return None


@emergency.handler
async def on_emergency(ctx: Context):
    if not ctx.text or ctx.text.startswith("/"):
        return None
    u = ctx.understand()
    if u.intent.name != "emergency":
        return None
    in_form = ctx.state.get("flow") == "appeal"
    if in_form and not u.emergency and u.intent.confidence < FORM_EMERGENCY_MODEL_THRESHOLD:
        # inside a form, names and addresses are not emergencies unless the lexicon or a confident model says so
        return None
    ctx.meta.update(intent="emergency", confidence=u.intent.confidence, answer_status="emergency")
    await handoff.flag_emergency(ctx)  # a queued conversation moves to the front
    text = ctx.engine.assistant._emergency_answer(ctx.lang, u.emergency)
    replies = [Reply(text, links=["tel:112"])]
    if ctx.state.get("flow") == "appeal":
        replies.append(Reply(ctx.t("Your appeal draft is saved. When you are safe, we can continue.")))
    return replies


@emergency.handler
async def on_waiting_for_operator(ctx: Context):
    # queued for an operator: out-of-hours contact and description, place in the queue
    return await handoff.while_waiting(ctx)


async def status_reply(ctx: Context, number: str | None = None) -> list[Reply]:
    ctx.meta.update(intent="status")
    session, user = ctx.session, ctx.user
    if number:
        appeal = await registry.find_own(session, number, user.channel, user.external_id)
        if appeal is None:
            return [Reply(ctx.t("I found no appeal {number} filed from this chat. Only the person who filed an appeal "
                                "can see it, from the same chat.", number=number))]
        return [Reply(describe_appeal(ctx, appeal))]
    own = await registry.list_own(session, user)
    if not own:
        return [Reply(ctx.t("You have no appeals filed through Estu in this chat yet."),
                      buttons=[Button("menu:appeal", ctx.t("File an appeal"))])]
    lines = [ctx.t("Your appeals:")] + [
        f"{a.number} — {registry.status_label(a.status, ctx.lang)}, {ctx.t('deadline')} {a.due_date:%d.%m.%Y}"
        for a in own]
    return [Reply("\n".join(lines))]


def describe_appeal(ctx: Context, appeal) -> str:
    lines = [ctx.t("Appeal {number}", number=appeal.number),
             f"{ctx.t('Status')}: {registry.status_label(appeal.status, ctx.lang)}",
             f"{ctx.t('Addressee')}: {appeal.addressee}",
             f"{ctx.t('Deadline')}: {appeal.due_date:%d.%m.%Y}"]
    for ev in appeal.events[-5:]:
        note = f" — {ev.note}" if ev.note else ""
        lines.append(f"· {ev.created_at:%d.%m.%Y} {registry.status_label(ev.status, ctx.lang)}{note}")
    return "\n".join(lines)


async def operator_reply(ctx: Context, reason: str, lead: list[Reply] | None = None, topic=None,
                         agency: str | None = None) -> list[Reply]:
    """Hand the conversation to a human operator (queue, estimate, working hours: bot/operators)."""
    return await handoff.request(ctx, reason, topic=topic, agency=agency, lead=lead)


async def with_topic_handoff(ctx: Context, reply: Reply, entry_id: str, agency: str | None) -> list[Reply]:
    """An answer on an editor-defined topic (bot/operators/handoff_topics.yml) also goes to an operator."""
    topic = handoff.topic_for(ctx, entry_id, agency)
    if topic is None:
        return [reply]
    meta = dict(ctx.meta)
    out = await operator_reply(ctx, "topic", lead=[reply], topic=topic, agency=agency)
    ctx.meta.update(intent=meta.get("intent"), entry_id=meta.get("entry_id"), confidence=meta.get("confidence"))
    return out


@buttons.handler
async def on_button(ctx: Context):
    b = ctx.incoming.button
    if not b:
        return None
    a = ctx.engine.assistant
    if b.startswith("fb:"):
        _, verdict, entry_id = (b.split(":", 2) + ["", ""])[:3]
        ctx.session.add(Feedback(conversation_id=ctx.conversation.id, entry_id=entry_id or None,
                                 helpful=verdict == "yes"))
        ctx.meta.update(answer_status="feedback_positive" if verdict == "yes" else "feedback_negative")
        if verdict == "yes":
            return [Reply(ctx.t("Thank you! Glad it helped."))]
        negatives = int(ctx.state.get("negative_feedback", 0)) + 1
        ctx.state["negative_feedback"] = negatives
        if negatives >= 2:  # the second "not helpful" in this conversation: a human takes over
            return await operator_reply(ctx, "negative_feedback",
                                        lead=[Reply(ctx.t("Sorry it did not help again."))])
        return [Reply(ctx.t("Sorry it did not help. You can rephrase the question, or I can connect you to an "
                            "operator."), buttons=[Button("act:operator", ctx.t("Operator"))])]
    if b.startswith("pick:"):
        entry_id = b.split(":", 1)[1]
        entry = a.corpus.get(entry_id)
        if entry is None:
            return [Reply(ctx.t("This option is no longer available. Please ask again."))]
        if entry.agency:
            ctx.state["last_agency"] = entry.agency
        return await with_topic_handoff(ctx, answer_reply(ctx, entry_id, intent="faq", confidence=None), entry_id,
                                        entry.agency)
    if b == "menu:appeal":
        from bot.intake.form import start_form

        return start_form(ctx, initial_text=None)
    if b in ("intent:appeal", "intent:answer"):
        text = ctx.state.pop("clarify_text", None)
        if not text:
            return [Reply(ctx.t("This option is no longer available. Please ask again."))]
        ctx.state["intent_chosen"] = b.split(":", 1)[1]
        ctx.replace_text(text)
        return await on_text(ctx)
    return None


def intent_clarification(ctx: Context, u) -> list[Reply] | None:
    """Ask "did you mean" when filing an appeal and getting an answer are both likely readings."""
    ranking = u.intent.ranking
    if u.emergency or not ranking or ranking[0][0] not in _ACTIONS or ranking[0][1] >= INTENT_CLARIFY_BELOW:
        return None
    first = _ACTIONS[ranking[0][0]]
    other = next(((n, p) for n, p in ranking[1:] if n in _ACTIONS and _ACTIONS[n] != first), None)
    if other is None or other[1] < INTENT_CLARIFY_OTHER:
        return None
    ctx.state["clarify_text"] = mask(ctx.text)  # state is stored: PII masked, like stored messages
    ctx.meta.update(intent=ranking[0][0], confidence=ranking[0][1], answer_status="clarified")
    options = {"appeal": Button("intent:appeal", ctx.t("File a formal appeal")),
               "answer": Button("intent:answer", ctx.t("Get an answer and where to turn"))}
    order = [first, "answer" if first == "appeal" else "appeal"]
    return [Reply(ctx.t("Did you mean one of these?"),
                  buttons=[options[k] for k in order] + [Button("act:operator", ctx.t("Operator"))])]


def answer_reply(ctx: Context, entry_id: str, intent: str, confidence: float | None, card: Card | None = None) -> Reply:
    a = ctx.engine.assistant
    ctx.meta.update(intent=intent, confidence=confidence, entry_id=entry_id, answer_status="answered")
    text = a._entry_answer(entry_id, ctx.lang, ctx.lang)
    entry = a.corpus.get(entry_id)
    links = [entry.url] if entry and entry.url else []
    return Reply(text, buttons=[Button(f"fb:yes:{entry_id}", ctx.t("Helpful")),
                                Button(f"fb:no:{entry_id}", ctx.t("Not helpful"))], links=links, card=card)


@answers.handler
async def on_text(ctx: Context):
    if not ctx.text:
        if ctx.incoming.attachments:
            return [Reply(ctx.t("I received the file. To attach files to an appeal, start an appeal first."),
                          buttons=[Button("menu:appeal", ctx.t("File an appeal"))])]
        return [Reply(ctx.t("Please write your question in words: I could not find any text in the message."))]
    a = ctx.engine.assistant
    chosen = ctx.state.pop("intent_chosen", None)  # the citizen answered "did you mean" (see on_button)
    ctx.state.pop("clarify_text", None)  # a new message instead of a click: the question is dropped
    u = ctx.understand()
    if chosen is None and not u.appeal_numbers and (ask := intent_clarification(ctx, u)):
        return ask
    override = None
    if chosen == "appeal":
        override = "appeal"
    elif chosen == "answer" and u.intent.name == "appeal":
        override = next((name for name, _p in u.intent.ranking if name in ("faq", "channel")), "faq")
    plan = a.plan(u, override)  # the same decision, channel and agency as `estu ask` (bot/assistant.py)
    kind, intent = plan.kind, plan.intent
    if kind == "status":
        return await status_reply(ctx, u.appeal_numbers[0] if u.appeal_numbers else None)
    if kind == "operator":
        return await operator_reply(ctx, "citizen_request")
    if kind == "smalltalk":
        ctx.meta.update(intent="smalltalk")
        return [Reply(a.smalltalk_answer(ctx.text, ctx.lang), buttons=help_buttons(ctx))]
    if kind == "out_of_scope":
        ctx.meta.update(intent="out_of_scope", answer_status="out_of_scope")
        return [Reply(a.out_of_scope_answer(ctx.lang))]
    if kind == "appeal":
        from bot.intake.form import start_form

        return start_form(ctx, initial_text=ctx.text)
    if kind == "emergency":  # a weak model-only guess the emergency router let through: 112 first, all the same
        ctx.meta.update(intent="emergency", confidence=plan.confidence, answer_status="emergency")
        return [Reply(a._emergency_answer(ctx.lang, u.emergency), links=["tel:112"])]
    # faq / channel
    if plan.agency:
        ctx.state["last_agency"] = plan.agency  # the operator queue if the citizen asks for one
    card = a.channel_card(plan.recommendation, ctx.lang)
    if kind == "answer":
        ctx.state["low_confidence"] = 0
        shown = card if intent == "channel" else None
        reply = answer_reply(ctx, plan.entry_id, intent, plan.confidence, shown)
        if shown:
            ctx.meta["channel"] = plan.channel  # stored with the reply that shows the card (analytics)
            reply.text = a.card_text(shown, ctx.lang) + "\n\n" + reply.text
        return await with_topic_handoff(ctx, reply, plan.entry_id, plan.agency)
    if kind == "choose":
        ctx.state["low_confidence"] = 0
        ctx.meta.update(intent=intent, confidence=plan.confidence, answer_status="clarified")
        return [Reply(ctx.t("Did you mean one of these?"),
                      buttons=[Button(f"pick:{e}", a._title(e, ctx.lang)) for e in plan.options]
                      + [Button("act:operator", ctx.t("Operator"))])]
    lows = int(ctx.state.get("low_confidence", 0)) + 1
    ctx.state["low_confidence"] = lows
    ctx.meta.update(intent=intent, confidence=plan.confidence,
                    answer_status="low_confidence" if kind == "unsure" else "no_answer")
    ctx.meta["unanswered"] = ctx.meta["answer_status"]  # kept in the payload even if a hand-off follows
    if card:
        ctx.meta["channel"] = plan.channel
    text = a.unsure_answer(card, ctx.lang)
    if lows >= 2:  # two low-confidence / no-answer turns in a row: a human takes over
        meta = dict(ctx.meta)
        out = await operator_reply(ctx, "low_confidence", lead=[Reply(text, card=card)])
        ctx.meta.update(confidence=meta.get("confidence"))
        return out
    return [Reply(text, buttons=[Button("act:operator", ctx.t("Operator"))], card=card)]

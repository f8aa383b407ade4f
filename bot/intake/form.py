"""The appeal intake form (E-otinish style).

Collects what the Administrative Procedural and Process-Related Code asks of an appeal
(Art. 63 as confirmed in docs/legal.md: surname, name, patronymic if any, IIN, postal address,
the addressee, the substance; here also a phone or e-mail to reach the applicant), the type,
optional attachments and explicit consent to the processing of personal data. Fields already
known (from the first message or from the applicant's earlier appeal) are not asked again.
The citizen can go back, cancel, or ask a question in the middle: it is answered and the form
resumes. Nothing entered is lost on a wrong answer.
"""

from __future__ import annotations

import re

from bot.dialogue.engine import Context, Router
from bot.intake import registry
from bot.intake.deadlines import rule_for
from bot.messages import Button, Reply
from knowledge.ids import AGENCY_IDS, APPEAL_TYPES
from nlu.entities import find_emails, find_iins, find_phones, find_places
from nlu.normalize import normalize
from nlu.pii import is_valid_iin

router = Router("appeal_form")

STEPS = ("type", "agency", "text", "surname", "name", "patronymic", "iin", "address", "contact", "attachments",
         "consent", "confirm")
OPTIONAL = {"patronymic", "attachments"}
PROFILE_FIELDS = ("surname", "name", "patronymic", "iin", "address", "phone", "email")
MAX_SUBSTANCE = 5000
_NAME = re.compile(r"^[^\W\d_]+(?:[ '\-’][^\W\d_]+)*$", re.UNICODE)

TYPE_WORDS = {  # folded stems in kk and ru (and Latin, after normalisation)
    "statement": ("заявлен", "арыз", "отиниш"),
    "complaint": ("жалоб", "шагым"),
    "proposal": ("предлож", "усыныс"),
    "request": ("запрос", "сурау"),
    "feedback": ("отклик", "ун кату", "пикир", "ден кою"),
    "report": ("сообщен", "хабар"),
}
YES = ("да", "иа", "ия", "иэ", "ок", "согласен", "согласна", "келисемин", "yes")
NO = ("нет", "жок", "не согласен", "no")


def _agency_title(ctx: Context, agency: str | None) -> str | None:
    return (ctx.engine.assistant.agency_name(agency, ctx.lang) or agency) if agency else None


def start_form(ctx: Context, initial_text: str | None) -> list[Reply]:
    form: dict = {"attachments": []}
    profile = ctx.user.profile or {}
    for f in PROFILE_FIELDS:
        if profile.get(f) or (f == "patronymic" and f in profile):  # "no patronymic" is an answer too
            form[f] = profile[f]
    if initial_text:
        u = ctx.understand()
        if u.appeal_type and u.appeal_type.confidence >= 0.35:
            form["suggested_type"] = u.appeal_type.name
        agency = ctx.engine.assistant.plan(u, "appeal").agency  # the addressee `estu ask` would name
        if agency:
            form["suggested_agency"] = agency
        if len(initial_text.split()) >= 8:
            form["text"] = initial_text[:MAX_SUBSTANCE]
        for e in find_iins(initial_text):
            if e.type == "iin":
                form["iin"] = e.value
        phones, emails = find_phones(initial_text), find_emails(initial_text)
        if phones:
            form["phone"] = phones[0].value
        if emails:
            form["email"] = emails[0].value
    ctx.state.clear()
    ctx.state.update(flow="appeal", form=form, history=[], step=None)
    ctx.meta.update(intent="appeal")
    intro = Reply(ctx.t("Let's file a formal appeal. I will ask a few questions required by law (Administrative "
                        "Procedural and Process-Related Code); it takes about two minutes. You can go back (/back) or "
                        "cancel (/cancel) at any step."))
    return [intro] + _advance(ctx)


def _next_step(ctx: Context) -> str:
    form = ctx.state["form"]
    for step in STEPS:
        if step == "contact":
            if not (form.get("phone") or form.get("email")):
                return step
            continue
        if step in ("attachments", "confirm"):
            if not form.get(f"{step}_done"):
                return step
            continue
        if step == "consent":
            if not form.get("consent"):
                return step
            continue
        if step == "patronymic":
            if "patronymic" not in form:
                return step
            continue
        if not form.get(step):
            return step
    return "confirm"


def _advance(ctx: Context) -> list[Reply]:
    step = _next_step(ctx)
    ctx.state["step"] = step
    return [_prompt(ctx, step)]


def resume_prompt(ctx: Context) -> list[Reply]:
    if ctx.state.get("flow") == "appeal" and ctx.state.get("step"):
        return [_prompt(ctx, ctx.state["step"])]
    return []


def _nav(ctx: Context, skip: bool = False) -> list[Button]:
    out = []
    if skip:
        out.append(Button("form:skip", ctx.t("Skip")))
    if ctx.state.get("history"):
        out.append(Button("form:back", ctx.t("Back")))
    out.append(Button("form:cancel", ctx.t("Cancel")))
    return out


def _type_label(ctx: Context, t: str) -> str:
    return ctx.t(t).capitalize()


# One line per appeal type, in the Code's sense (APPC Art. 4 §1: sub-items 1, 38, 35, 32, 36, 37; the complaint's
# term is Art. 99). Shown with the type buttons, because choosing the type is where citizens hesitate.
TYPE_HELP = {
    "statement": "Statement: you ask for help to exercise your right or someone else's.",
    "complaint": ("Complaint: you demand that a right violated by a decision, action or inaction of a body or "
                  "official be restored (considered within {term})."),
    "proposal": "Proposal: you suggest how to improve laws, the work of state bodies or public life.",
    "request": "Request: you ask to be given information.",
    "feedback": "Feedback: you express your attitude to state policy or to public events.",
    "report": "Report: you inform of a violation of the law or of shortcomings in the work of a body or official.",
}


def _term(ctx: Context, rule) -> str:
    """A rule's legal term in words, e.g. "20 рабочих дней" (bot/intake/deadline_rules.yml)."""
    msgid = "{n} working days" if rule.unit == "working" else "{n} calendar days"
    return ctx.t(msgid, n=rule.days)


def _prompt(ctx: Context, step: str, error: str | None = None) -> Reply:
    form = ctx.state["form"]
    head = (error + "\n") if error else ""
    if step == "type":
        suggested = form.get("suggested_type")
        order = ([suggested] if suggested else []) + [t for t in APPEAL_TYPES if t != suggested]
        text = ctx.t("What kind of appeal is it?")
        if suggested:
            text += " " + ctx.t("It looks like: {type}.", type=ctx.t(suggested))
        text += "\n" + "\n".join("• " + ctx.t(TYPE_HELP[t], term=_term(ctx, rule_for(t))) for t in order)
        return Reply(head + text, buttons=[Button(f"type:{t}", _type_label(ctx, t)) for t in order] + _nav(ctx))
    if step == "agency":
        suggested = form.get("suggested_agency")
        order = ([suggested] if suggested else []) + [a for a in ("akimat", "health", "education", "labour_social")
                                                      if a != suggested]
        text = ctx.t("Which body should receive it? Choose one or write its name.")
        if suggested:
            text += " " + ctx.t("Suggested: {body}.", body=_agency_title(ctx, suggested))
        return Reply(head + text, buttons=[Button(f"agency:{a}", _agency_title(ctx, a) or a) for a in order[:4]]
                     + _nav(ctx))
    if step == "text":
        return Reply(head + ctx.t("Describe the substance of your appeal in your own words: what happened, where, "
                                  "since when, and what you ask for."), buttons=_nav(ctx))
    if step == "surname":
        return Reply(head + ctx.t("Your surname?"), buttons=_nav(ctx))
    if step == "name":
        return Reply(head + ctx.t("Your first name?"), buttons=_nav(ctx))
    if step == "patronymic":
        return Reply(head + ctx.t("Your patronymic (if you have one)?"), buttons=_nav(ctx, skip=True))
    if step == "iin":
        return Reply(head + ctx.t("Your IIN (12 digits)? It is required by law to register an appeal."),
                     buttons=_nav(ctx))
    if step == "address":
        return Reply(head + ctx.t("Your postal address (region, city, street, house, flat)?"), buttons=_nav(ctx))
    if step == "contact":
        return Reply(head + ctx.t("A phone number or e-mail to reach you?"), buttons=_nav(ctx))
    if step == "attachments":
        n = len(form.get("attachments", []))
        text = ctx.t("You can send photos or documents now (optional). Press Done when finished.")
        if n:
            text = ctx.t("Files attached: {n}.", n=n) + " " + text
        return Reply(head + text, buttons=[Button("form:done", ctx.t("Done"))] + _nav(ctx))
    if step == "consent":
        return Reply(head + ctx.t("Do you agree to the processing of your personal data to consider this appeal? "
                                  "Without consent the appeal cannot be registered."),
                     buttons=[Button("form:yes", ctx.t("I agree")), Button("form:no", ctx.t("I do not agree"))]
                     + _nav(ctx))
    # confirm
    return Reply(head + summary(ctx), buttons=[Button("form:confirm", ctx.t("Register the appeal"))] + _nav(ctx))


def summary(ctx: Context) -> str:
    f = ctx.state["form"]
    masked_iin = f"{'•' * 8}{f.get('iin', '')[-4:]}"
    lines = [ctx.t("Please check your appeal:"),
             f"{ctx.t('Type')}: {ctx.t(f.get('type', ''))}",
             f"{ctx.t('Addressee')}: {f.get('addressee', '')}",
             f"{ctx.t('Applicant')}: {f.get('surname', '')} {f.get('name', '')} {f.get('patronymic') or ''}".strip(),
             f"{ctx.t('IIN')}: {masked_iin}",
             f"{ctx.t('Address')}: {f.get('address', '')}",
             f"{ctx.t('Contact')}: {f.get('phone') or ''} {f.get('email') or ''}".strip(),
             f"{ctx.t('Files')}: {len(f.get('attachments', []))}",
             f"{ctx.t('Substance')}: {f.get('text', '')[:600]}"]
    return "\n".join(lines)


def _parse(ctx: Context, step: str) -> tuple[object | None, str | None]:
    """(value, error). ``value`` None with no error means: nothing usable, re-prompt."""
    b = ctx.incoming.button or ""
    text = ctx.text
    if step == "type":
        if b.startswith("type:") and b[5:] in APPEAL_TYPES:
            return b[5:], None
        norm = normalize(text)
        for t, words in TYPE_WORDS.items():
            if any(w in norm for w in words):
                return t, None
        return None, ctx.t("Please choose the kind of appeal with a button.")
    if step == "agency":
        if b.startswith("agency:") and b[7:] in AGENCY_IDS:
            return {"agency": b[7:], "addressee": _agency_title(ctx, b[7:]) or b[7:]}, None
        if text and 3 <= len(text) <= 200 and not b:
            return {"agency": None, "addressee": text}, None
        return None, ctx.t("Please choose a body with a button or write its name (up to 200 characters).")
    if b:
        return None, ctx.t("Please answer with a message.")
    if step == "text":
        if len(text) < 15:
            return None, ctx.t("Please describe the substance in a few sentences (at least 15 characters).")
        if len(text) > MAX_SUBSTANCE:
            return None, ctx.t("The text is too long ({n} characters). Please shorten it to {max} characters; you can "
                               "attach the rest as a document.", n=len(text), max=MAX_SUBSTANCE)
        return text, None
    if step in ("surname", "name", "patronymic"):
        if not text or len(text) > 60 or not _NAME.match(text):
            return None, ctx.t("Please write it in letters only (up to 60 characters).")
        return text.strip().title(), None
    if step == "iin":
        digits = re.sub(r"\D", "", text)
        if len(digits) != 12:
            return None, ctx.t("An IIN has exactly 12 digits. Please check and send it again.")
        if not is_valid_iin(digits):
            return None, ctx.t("This IIN does not pass the check (a digit may be mistyped). Please check it against "
                               "your ID card.")
        return digits, None
    if step == "address":
        if len(text) < 5 or len(text) > 300:
            return None, ctx.t("Please write the full postal address (5 to 300 characters).")
        return text, None
    if step == "contact":
        phones, emails = find_phones(text), find_emails(text)
        if not phones and not emails:
            return None, ctx.t("I could not find a Kazakhstan phone number (+7 …) or an e-mail address. Please send "
                               "one of them.")
        return {"phone": phones[0].value if phones else None, "email": emails[0].value if emails else None}, None
    return None, None


@router.handler
async def on_form(ctx: Context):
    if ctx.state.get("flow") != "appeal":
        return None
    form = ctx.state.setdefault("form", {"attachments": []})
    history: list = ctx.state.setdefault("history", [])
    step = ctx.state.get("step") or _next_step(ctx)
    b = ctx.incoming.button or ""
    ctx.meta.update(intent="appeal")

    # attachments are kept whenever they arrive during the form
    if ctx.incoming.attachments:
        form.setdefault("attachments", []).extend(
            {"kind": a.kind, "file_id": a.file_id, "name": a.name, "mime_type": a.mime_type}
            for a in ctx.incoming.attachments)
        if step == "attachments" or not ctx.text:
            return [_prompt(ctx, step)]

    if b == "form:back" or ctx.text.lower().split()[:1] == ["/back"]:
        if not history:
            return [_prompt(ctx, step)]
        prev = history.pop()
        for key in _fields_of(prev):
            form.pop(key, None)
        ctx.state["step"] = prev
        return [_prompt(ctx, prev)]
    if b == "form:skip" and step in OPTIONAL:
        form[step if step != "attachments" else "attachments_done"] = None if step == "patronymic" else True
        if step == "patronymic":
            form["patronymic"] = None
        history.append(step)
        return _advance(ctx)

    # a question in the middle of the form: answer it, then resume
    if ctx.text and step not in ("text",) and ctx.text.rstrip().endswith("?") and not b:
        u = ctx.understand()
        r = u.retrieval
        if u.intent.name in ("faq", "channel") and r and r.top and r.confidence >= ctx.engine.assistant.settings.answer_threshold:
            answer = ctx.engine.assistant._entry_answer(r.top.entry_id, ctx.lang, ctx.lang)
            return [Reply(answer), Reply(ctx.t("Now, back to your appeal."))] + [_prompt(ctx, step)]

    if step == "attachments":
        if b in ("form:done", "form:skip") or (ctx.text and normalize(ctx.text) in ("готово", "даиын", "done")):
            form["attachments_done"] = True
            history.append(step)
            return _advance(ctx)
        return [_prompt(ctx, step, ctx.t("Send a photo or a document, or press Done."))]
    if step == "consent":
        answer = b or normalize(ctx.text)
        if answer in ("form:yes",) + YES:
            form["consent"] = True
            history.append(step)
            return _advance(ctx)
        if answer in ("form:no",) + NO:
            return [Reply(ctx.t("Without consent to the processing of personal data the appeal cannot be registered. "
                                "You can agree, or cancel: nothing will be sent."),
                          buttons=[Button("form:yes", ctx.t("I agree")), Button("form:cancel", ctx.t("Cancel"))])]
        return [_prompt(ctx, step, ctx.t("Please answer with the buttons."))]
    if step == "confirm":
        if b == "form:confirm" or (not b and normalize(ctx.text) in YES):
            return await _register(ctx)
        return [_prompt(ctx, step, ctx.t("Please confirm with the button, go back to change something, or cancel."))]

    value, error = _parse(ctx, step)
    if value is None:
        return [_prompt(ctx, step, error)]
    if isinstance(value, dict):
        form.update(value)
    else:
        form[step] = value
    if step == "address":
        places = find_places(value)
        if places:
            form["place"] = places[0].value
    history.append(step)
    return _advance(ctx)


def _fields_of(step: str) -> tuple[str, ...]:
    return {"agency": ("agency", "addressee"), "contact": ("phone", "email"), "attachments": ("attachments_done",),
            "confirm": ("confirm_done",)}.get(step, (step,))


async def _register(ctx: Context) -> list[Reply]:
    f = ctx.state["form"]
    appeal = await registry.register(
        ctx.session, user=ctx.user, conversation_id=ctx.conversation.id, channel=ctx.user.channel, language=ctx.lang,
        appeal_type=f["type"], agency=f.get("agency"), addressee=f["addressee"], surname=f["surname"],
        name=f["name"], patronymic=f.get("patronymic"), iin=f["iin"], address=f["address"], phone=f.get("phone"),
        email=f.get("email"), text=f["text"], attachments=f.get("attachments", []), consent=True,
        connector=ctx.engine.connector)
    # remember the applicant's details (with their consent) so they are not asked again
    # (other keys, e.g. a channel adapter's own "whatsapp" state, are kept)
    kept = {k: v for k, v in (ctx.user.profile or {}).items() if k not in PROFILE_FIELDS}
    ctx.user.profile = {**kept, **{k: f.get(k) for k in PROFILE_FIELDS if f.get(k) or (k == "patronymic" and k in f)}}
    ctx.user.consent_at = appeal.received_at
    ctx.state.clear()
    ctx.meta.update(intent="appeal", answer_status="appeal_registered")
    rule = rule_for(appeal.appeal_type)
    citation = rule.citation.get(ctx.lang) or rule.citation.get("ru", "")
    term = _term(ctx, rule)
    text = ctx.t("Your appeal is registered. Number: {number}. Addressee: {addressee}. Legal deadline for the answer: "
                 "{date} ({term}, {citation}). I will notify you here when its status changes; to check it, send the "
                 "number or /status.", number=appeal.number, addressee=appeal.addressee,
                 date=appeal.due_date.strftime("%d.%m.%Y"), term=term, citation=citation)
    return [Reply(text)]

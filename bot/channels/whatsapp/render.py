"""Neutral messages ↔ WhatsApp Cloud API JSON (pure functions, no I/O).

Outgoing (Cloud API limits as documented by Meta):

* text: a body of at most 4,096 characters; longer answers are split on sentence boundaries;
* up to 3 buttons whose labels fit 20 characters: *reply buttons* (``interactive.type = button``);
* up to 10 options whose labels fit 24 characters, or 72 in the row description: a *list message*
  (the row title is the label, shortened at a word if needed, the description holds the full label);
* more options, or labels too long even for a list row: the options are written into the text as
  ``1. …`` lines and the citizen answers with the number (the adapter remembers the options);
* the text of an interactive message is limited to 1,024 characters: the earlier part goes as text
  messages first;
* a channel card is written into the text (its contacts are appended if the text lacks them).

Incoming: text, reply-button and list replies (→ ``Incoming.button``), images and documents
(→ attachments with the media id and the caption as text).
"""

from __future__ import annotations

import re

from bot.channels.text import split_message
from bot.i18n import gettext
from bot.messages import Attachment, Button, Incoming, Reply

CHANNEL = "whatsapp"
MAX_TEXT = 4096
MAX_INTERACTIVE_BODY = 1024
MAX_REPLY_BUTTONS = 3
MAX_BUTTON_TITLE = 20
MAX_LIST_ROWS = 10
MAX_ROW_TITLE = 24
MAX_ROW_DESCRIPTION = 72
MAX_ID = 200
MAX_TEMPLATE_PARAM = 900  # the whole template body must stay within 1,024 characters

LIST_BUTTON = "Choose"  # gettext msgids (bot/locale/*/LC_MESSAGES/estu.po)
NUMBER_HINT = "Send the number of the option."
_NUMBER_REPLY = re.compile(r"\s*(\d{1,2})\s*[.)]?\s*")


def reply_text(reply: Reply) -> str:
    """The reply's text with its channel card written in (title, why, contacts, the offline alternative),
    leaving out what the text already says."""
    text = (reply.text or "").strip()
    card = reply.card
    if card is not None:
        lead = [p for p in (card.title, card.why) if p and p not in text]
        if lead:
            text = "\n".join(lead) + ("\n\n" + text if text else "")
        if card.contact and not all(c in text for c in card.contact):
            text += "\n" + " · ".join(card.contact)
        if card.alternative and card.alternative not in text:
            text += "\n" + card.alternative
    return text.strip()


def shorten(label: str, limit: int) -> str:
    """``label`` cut at a word boundary to ``limit`` characters, with an ellipsis."""
    label = " ".join(label.split())
    if len(label) <= limit:
        return label
    cut = label[:limit - 1]
    space = cut.rfind(" ")
    if space >= limit // 2:
        cut = cut[:space]
    return cut.rstrip(" ,.;:-–—(") + "…"


def layout(buttons: list[Button]) -> str:
    """``buttons`` (reply buttons), ``list`` or ``numbered`` for these options."""
    labels = [" ".join(b.label.split()) for b in buttons]
    if len(buttons) <= MAX_REPLY_BUTTONS and all(0 < len(x) <= MAX_BUTTON_TITLE for x in labels) \
            and len(set(labels)) == len(labels):
        return "buttons"
    if len(buttons) <= MAX_LIST_ROWS and all(0 < len(x) <= MAX_ROW_DESCRIPTION for x in labels) \
            and len({b.id for b in buttons}) == len(buttons) and all(len(b.id) <= MAX_ID for b in buttons):
        return "list"
    return "numbered"


def _text(body: str, preview: bool = False) -> dict:
    return {"type": "text", "text": {"body": body, "preview_url": preview}}


def numbered_text(text: str, buttons: list[Button], lang: str) -> str:
    lines = [f"{i}. {' '.join(b.label.split())}" for i, b in enumerate(buttons, 1)]
    return (text + "\n\n" if text else "") + "\n".join(lines) + "\n" + gettext(lang, NUMBER_HINT)


def render(reply: Reply, lang: str = "ru") -> tuple[list[dict], list[str]]:
    """The message payloads (without ``to``) for one reply, and the option ids a numbered answer
    stands for (empty unless the options were written as numbers)."""
    text = reply_text(reply)
    preview = any(link in text for link in reply.links) or "http" in text
    if not reply.buttons:
        return [_text(chunk, preview) for chunk in split_message(text, MAX_TEXT)] or [_text("…")], []
    kind = layout(reply.buttons)
    if kind == "numbered":
        body = numbered_text(text, reply.buttons, lang)
        return [_text(chunk, preview) for chunk in split_message(body, MAX_TEXT)], [b.id for b in reply.buttons]
    chunks = split_message(text, MAX_TEXT) or ["…"]
    last = chunks.pop()
    if len(last) > MAX_INTERACTIVE_BODY:
        tail = split_message(last, MAX_INTERACTIVE_BODY)
        chunks += tail[:-1]
        last = tail[-1]
    out = [_text(chunk, preview) for chunk in chunks]
    if kind == "buttons":
        action = {"buttons": [{"type": "reply", "reply": {"id": b.id[:MAX_ID], "title": " ".join(b.label.split())}}
                              for b in reply.buttons]}
        out.append({"type": "interactive", "interactive": {"type": "button", "body": {"text": last},
                                                           "action": action}})
    else:
        rows = []
        for b in reply.buttons:
            label = " ".join(b.label.split())
            row = {"id": b.id, "title": shorten(label, MAX_ROW_TITLE)}
            if len(label) > MAX_ROW_TITLE:
                row["description"] = label
            rows.append(row)
        out.append({"type": "interactive", "interactive": {
            "type": "list", "body": {"text": last},
            "action": {"button": gettext(lang, LIST_BUTTON), "sections": [{"rows": rows}]}}})
    return out, []


def template_param(text: str) -> str:
    """A template body parameter: no new lines or tabs, no runs of more than 4 spaces (the Cloud API
    refuses them), at most MAX_TEMPLATE_PARAM characters."""
    flat = re.sub(r"\s*\n\s*", " · ", text.strip())
    flat = re.sub(r"[\t ]{2,}", " ", flat.replace("\t", " "))
    return shorten(flat, MAX_TEMPLATE_PARAM) if len(flat) > MAX_TEMPLATE_PARAM else flat


def template(name: str, language_code: str, text: str, buttons: list[Button] | None = None,
             lang: str = "ru") -> tuple[dict, list[str]]:
    """An approved template with the notification text as its one body parameter. Options (e.g. a
    rating) cannot be template buttons, so they are numbered inside the parameter."""
    options = []
    if buttons:
        text = text + " " + " ".join(f"{i}. {b.label}" for i, b in enumerate(buttons, 1)) + " — " + \
            gettext(lang, NUMBER_HINT)
        options = [b.id for b in buttons]
    payload = {"type": "template", "template": {
        "name": name, "language": {"code": language_code},
        "components": [{"type": "body", "parameters": [{"type": "text", "text": template_param(text)}]}]}}
    return payload, options


def numbered_choice(text: str | None, options: list[str]) -> str | None:
    """The option id a bare number ("2", "2.") stands for, if the last message offered numbered options."""
    if not text or not options:
        return None
    m = _NUMBER_REPLY.fullmatch(text)
    if not m:
        return None
    n = int(m.group(1))
    return options[n - 1] if 1 <= n <= len(options) else None


def to_incoming(message: dict) -> Incoming | None:
    """One webhook ``messages[]`` item as a neutral message; None for what needs no answer (reactions,
    system notices). Media without text become attachments; other kinds (voice, stickers, locations)
    become an empty message, which the engine answers with a prompt to write."""
    wa_id = str(message.get("from") or "")
    if not wa_id:
        return None
    kind = message.get("type")
    base = {"user_id": wa_id, "channel": CHANNEL, "message_id": str(message.get("id") or "") or None}
    if kind == "text":
        return Incoming(text=str((message.get("text") or {}).get("body") or ""), **base)
    if kind == "interactive":
        inter = message.get("interactive") or {}
        reply = inter.get(inter.get("type") or "") or {}
        if inter.get("type") in ("button_reply", "list_reply") and reply.get("id"):
            return Incoming(button=str(reply["id"]), **base)
        return Incoming(text="", **base)
    if kind == "button":  # a quick-reply button of a template
        button = message.get("button") or {}
        return Incoming(text=str(button.get("text") or button.get("payload") or ""), **base)
    if kind in ("image", "document"):
        media = message.get(kind) or {}
        if not media.get("id"):
            return Incoming(text="", **base)
        att = Attachment("photo" if kind == "image" else "document", str(media["id"]), media.get("filename"),
                         media.get("mime_type"))
        return Incoming(text=media.get("caption") or None, attachments=[att], **base)
    if kind in ("reaction", "system"):
        return None
    return Incoming(text="", **base)

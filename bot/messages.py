"""The one channel-neutral message model. Channel adapters translate to and from it; the
dialogue engine never imports a channel library."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass
class Attachment:
    kind: str  # photo | document | audio | other
    file_id: str  # the platform's file id (Telegram file_id, WhatsApp media id)
    name: str | None = None
    mime_type: str | None = None


@dataclass
class Incoming:
    user_id: str  # the platform's user identity (chat id, phone number, web session id)
    channel: str  # telegram | whatsapp | web | cli | test
    text: str | None = None
    button: str | None = None  # the id of a pressed button / quick reply
    language_hint: str | None = None  # e.g. Telegram's language_code
    attachments: list[Attachment] = field(default_factory=list)
    message_id: str | None = None  # platform message id (de-duplication)


@dataclass
class Button:
    id: str
    label: str


@dataclass
class Card:
    """A channel recommendation: which channel, why, and how to reach it."""

    title: str
    why: str
    contact: list[str] = field(default_factory=list)  # phone, link, hours
    alternative: str | None = None  # for people without internet


@dataclass
class Reply:
    text: str
    buttons: list[Button] = field(default_factory=list)
    links: list[str] = field(default_factory=list)
    card: Card | None = None

    def to_dict(self) -> dict:
        return asdict(self)

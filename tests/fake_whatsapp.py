"""A small fake WhatsApp Cloud API (Graph API) server on 127.0.0.1, and builders of signed webhooks.

The server answers ``POST /{version}/{phone_number_id}/messages`` like the Cloud API: it checks the
bearer token, validates the message against the documented limits (so a rendering mistake fails as it
would in production, with a 400), records what was sent, and can answer 429 (with ``Retry-After``),
a 5xx or a 400 to the next N sends."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
import uuid

from aiohttp import web

TOKEN = "EAAG-test-token"
PHONE_NUMBER_ID = "1234567890"
APP_SECRET = "app-secret-for-tests"
VERIFY_TOKEN = "verify-me"
VERSION = "v23.0"


def check(payload: dict) -> str | None:
    """What the Cloud API would object to in ``payload``, or None."""
    if payload.get("messaging_product") != "whatsapp" or not payload.get("to"):
        return "messaging_product and to are required"
    kind = payload.get("type")
    if kind == "text":
        body = (payload.get("text") or {}).get("body") or ""
        return None if 0 < len(body) <= 4096 else f"text body length {len(body)}"
    if kind == "interactive":
        inter = payload["interactive"]
        body = (inter.get("body") or {}).get("text") or ""
        if not 0 < len(body) <= 1024:
            return f"interactive body length {len(body)}"
        if inter["type"] == "button":
            buttons = inter["action"]["buttons"]
            titles = [b["reply"]["title"] for b in buttons]
            if not 1 <= len(buttons) <= 3 or any(not 0 < len(t) <= 20 for t in titles) \
                    or len(set(titles)) < len(titles):
                return f"bad reply buttons {titles}"
            return None
        if inter["type"] == "list":
            action = inter["action"]
            rows = [r for s in action["sections"] for r in s["rows"]]
            if not 0 < len(action["button"]) <= 20 or not 1 <= len(rows) <= 10:
                return "bad list"
            if any(not 0 < len(r["title"]) <= 24 or len(r.get("description", "")) > 72 or len(r["id"]) > 200
                   for r in rows):
                return f"bad list rows {rows}"
            return None
        return "unknown interactive type"
    if kind == "template":
        tpl = payload["template"]
        params = [p["text"] for c in tpl.get("components", []) for p in c.get("parameters", [])]
        if not tpl.get("name") or not tpl.get("language", {}).get("code"):
            return "template name and language are required"
        if any("\n" in p or "\t" in p or "     " in p or len(p) > 1024 for p in params):
            return "Param text cannot have new-line/tab characters or more than 4 consecutive spaces"
        return None
    return f"unsupported type {kind}"


class FakeGraphAPI:
    def __init__(self, token: str = TOKEN, phone_number_id: str = PHONE_NUMBER_ID) -> None:
        self.token = token
        self.phone_number_id = phone_number_id
        self.sent: list[dict] = []  # accepted payloads, each with its "id" (wamid)
        self.attempts = 0  # every POST to /messages, failed or not
        self.fail_next_sends = 0
        self.fail_status = 429
        self.fail_code: int | None = None  # Meta's error code; default by status
        self.retry_after: str | None = "1"

    # -- inspecting ------------------------------------------------------------------------------
    def sent_to(self, wa_id: str) -> list[dict]:
        return [m for m in self.sent if m["to"] == wa_id]

    async def wait_sent(self, wa_id: str, count: int, timeout: float = 60.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        while len(self.sent_to(wa_id)) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"expected {count} messages to {wa_id}, got {self.sent_to(wa_id)}")
            await asyncio.sleep(0.05)
        return self.sent_to(wa_id)

    # -- the HTTP side ---------------------------------------------------------------------------
    async def messages(self, request: web.Request) -> web.Response:
        self.attempts += 1
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return self.error(401, 190, "Invalid OAuth access token")
        if request.match_info["phone"] != self.phone_number_id:
            return self.error(400, 100, "Unsupported post request")
        payload = await request.json()
        if self.fail_next_sends > 0:
            self.fail_next_sends -= 1
            status = self.fail_status
            code = self.fail_code or {429: 130429, 400: 131009}.get(status, 131000)
            headers = {"Retry-After": self.retry_after} if status == 429 and self.retry_after is not None else None
            return self.error(status, code, {429: "Rate limit hit", 400: "Parameter value is not valid"}.get(
                status, "Something went wrong"), headers=headers)
        problem = check(payload)
        if problem:
            return self.error(400, 131009, "Parameter value is not valid", details=problem)
        wamid = "wamid." + uuid.uuid4().hex
        self.sent.append({**payload, "id": wamid})
        return web.json_response({"messaging_product": "whatsapp",
                                  "contacts": [{"input": payload["to"], "wa_id": payload["to"]}],
                                  "messages": [{"id": wamid}]})

    @staticmethod
    def error(status: int, code: int, message: str, details: str = "", headers=None) -> web.Response:
        err = {"message": message, "type": "OAuthException", "code": code, "fbtrace_id": "AbCdEf"}
        if details:
            err["error_data"] = {"messaging_product": "whatsapp", "details": details}
        return web.json_response({"error": err}, status=status, headers=headers)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/{version}/{phone}/messages", self.messages)
        return app


# -- webhook payloads (what Meta posts to /webhooks/whatsapp) ---------------------------------------
def envelope(messages: list[dict] | None = None, statuses: list[dict] | None = None,
             phone_number_id: str = PHONE_NUMBER_ID, contacts: list[dict] | None = None) -> dict:
    value: dict = {"messaging_product": "whatsapp",
                   "metadata": {"display_phone_number": "77170000000", "phone_number_id": phone_number_id}}
    if messages is not None:
        value["contacts"] = contacts or [{"profile": {"name": "Test"}, "wa_id": m["from"]} for m in messages]
        value["messages"] = messages
    if statuses is not None:
        value["statuses"] = statuses
    return {"object": "whatsapp_business_account",
            "entry": [{"id": "WABA-1", "changes": [{"field": "messages", "value": value}]}]}


def _base(wa_id: str, kind: str, message_id: str | None, at: float | None) -> dict:
    return {"from": wa_id, "id": message_id or f"wamid.in.{uuid.uuid4().hex}",
            "timestamp": str(int(at if at is not None else time.time())), "type": kind}


def text(wa_id: str, body: str, message_id: str | None = None, at: float | None = None) -> dict:
    return {**_base(wa_id, "text", message_id, at), "text": {"body": body}}


def button_reply(wa_id: str, button_id: str, title: str = "…", context_id: str = "wamid.out") -> dict:
    return {**_base(wa_id, "interactive", None, None), "context": {"from": "77170000000", "id": context_id},
            "interactive": {"type": "button_reply", "button_reply": {"id": button_id, "title": title}}}


def list_reply(wa_id: str, row_id: str, title: str = "…", description: str = "") -> dict:
    return {**_base(wa_id, "interactive", None, None),
            "interactive": {"type": "list_reply", "list_reply": {"id": row_id, "title": title,
                                                                  "description": description}}}


def image(wa_id: str, media_id: str, caption: str | None = None) -> dict:
    media = {"id": media_id, "mime_type": "image/jpeg", "sha256": "abc"}
    if caption:
        media["caption"] = caption
    return {**_base(wa_id, "image", None, None), "image": media}


def document(wa_id: str, media_id: str, filename: str = "scan.pdf") -> dict:
    return {**_base(wa_id, "document", None, None),
            "document": {"id": media_id, "filename": filename, "mime_type": "application/pdf", "sha256": "abc"}}


def status(wa_id: str, message_id: str, state: str, code: int | None = None, title: str = "") -> dict:
    out = {"id": message_id, "status": state, "timestamp": str(int(time.time())), "recipient_id": wa_id}
    if code is not None:
        out["errors"] = [{"code": code, "title": title, "message": title,
                          "error_data": {"details": title}}]
    return out


def sign(raw: bytes, secret: str = APP_SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()


def signed(body: dict, secret: str = APP_SECRET) -> tuple[bytes, dict]:
    """The raw body and the headers Meta would send with it."""
    raw = json.dumps(body, ensure_ascii=False).encode()
    return raw, {"Content-Type": "application/json", "X-Hub-Signature-256": sign(raw, secret)}

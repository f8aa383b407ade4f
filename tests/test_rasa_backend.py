"""The optional Rasa backend against a local HTTP server that speaks /model/parse."""

import threading

import pytest
from aiohttp import web

from nlu.intents import RasaIntentClassifier


@pytest.fixture
def rasa_server():
    import asyncio
    seen = []

    async def parse(request):
        body = await request.json()
        seen.append(body["text"])
        ranking = [{"name": "appeal_complaint", "confidence": 0.8}, {"name": "greet", "confidence": 0.15},
                   {"name": "faq", "confidence": 0.05}]
        return web.json_response({"text": body["text"], "intent": ranking[0], "intent_ranking": ranking})

    loop = asyncio.new_event_loop()
    app = web.Application()
    app.router.add_post("/model/parse", parse)
    runner = web.AppRunner(app)
    loop.run_until_complete(runner.setup())
    site = web.TCPSite(runner, "127.0.0.1", 0)
    loop.run_until_complete(site.start())
    port = site._server.sockets[0].getsockname()[1]
    t = threading.Thread(target=loop.run_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{port}", seen
    loop.call_soon_threadsafe(loop.stop)
    t.join(5)
    loop.run_until_complete(runner.cleanup())
    loop.close()


def test_rasa_intents_are_mapped_onto_ours(rasa_server):
    url, seen = rasa_server
    intent, appeal_type = RasaIntentClassifier(url).predict("хочу пожаловаться на акимат")
    assert seen == ["хочу пожаловаться на акимат"]
    assert intent.name == "appeal" and intent.confidence == pytest.approx(0.8)
    assert dict(intent.ranking)["smalltalk"] == pytest.approx(0.15)
    assert appeal_type.name == "complaint"


def test_text_sent_to_rasa_is_masked(rasa_server):
    url, seen = rasa_server
    RasaIntentClassifier(url).predict("мой ИИН 900101300126, телефон +7 701 123 45 67")
    assert "900101300126" not in seen[-1] and "123 45 67" not in seen[-1]
    assert "[IIN" in seen[-1] and "[PHONE" in seen[-1]


def test_assistant_uses_rasa_when_configured_and_falls_back_when_down(rasa_server, small_settings):
    from bot.assistant import Assistant

    url, seen = rasa_server
    a = Assistant.load(small_settings.model_copy(update={"rasa_url": url}))
    assert a.ask("хочу пожаловаться на акимат")["intent"] == "appeal"
    down = Assistant.load(small_settings.model_copy(update={"rasa_url": "http://127.0.0.1:9"}))
    out = down.ask("Как получить ЭЦП?")
    assert out["intent"] in {"faq", "channel"} and out["sources"][0]["id"] == "faq.eds"

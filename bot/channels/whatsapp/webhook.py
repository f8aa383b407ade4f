"""/webhooks/whatsapp (placeholder until the WhatsApp adapter lands)."""

from aiohttp import web


def setup(app: web.Application) -> None:
    """Register the WhatsApp routes and start-up hooks on ``app``."""

"""The web chat page at ``/`` (placeholder until it lands)."""

from aiohttp import web


def setup(app: web.Application) -> None:
    """Register the web chat page and its static files on ``app``."""

"""The staff console at ``/operator`` (placeholder until it lands)."""

from aiohttp import web


def setup(app: web.Application) -> None:
    """Register the console routes on ``app``."""

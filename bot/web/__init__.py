"""aiohttp web server: health, the ask API (and later web chat, webhooks, consoles)."""

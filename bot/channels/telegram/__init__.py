"""Telegram adapter (aiogram 3): long polling or a webhook with a secret token."""

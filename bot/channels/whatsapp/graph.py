"""The Graph API's messages endpoint, its errors, and which of them are worth retrying."""

from __future__ import annotations

import asyncio
import datetime as dt
import email.utils

import aiohttp

from bot.channels.ratelimit import backoff

DEFAULT_API_URL = "https://graph.facebook.com"
DEFAULT_API_VERSION = "v23.0"
# Cloud API throttling: 4 application request limit, 80007 business account rate limit,
# 130429 throughput reached, 131056 pair rate (too many messages to one user)
THROTTLING_CODES = frozenset({4, 80007, 130429, 131056})


class GraphAPIError(Exception):
    """The Cloud API refused a request: HTTP status and Meta's error code, title and details."""

    def __init__(self, status: int, code: int | None = None, title: str = "", details: str = "",
                 retry_after: float | None = None) -> None:
        self.status = status
        self.code = code
        self.title = title
        self.details = details
        self.retry_after = retry_after
        what = f"HTTP {status}" + (f", error {code}" if code is not None else "")
        text = "; ".join(p for p in (title, details) if p)
        super().__init__(f"WhatsApp Cloud API refused the message ({what})" + (f": {text}" if text else ""))

    @property
    def throttled(self) -> bool:
        return self.status == 429 or self.code in THROTTLING_CODES


def parse_retry_after(value: str | None) -> float | None:
    """``Retry-After`` as seconds (a number, or an HTTP date)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    return max(0.0, (when - dt.datetime.now(dt.timezone.utc)).total_seconds())


def whatsapp_retry_delay(error: BaseException, attempt: int) -> float | None:
    """How long to wait before sending again, or None when retrying cannot help (``send_with_retries``)."""
    if isinstance(error, GraphAPIError):
        if error.throttled:
            return error.retry_after if error.retry_after is not None else backoff(attempt)
        if error.status >= 500:
            return backoff(attempt)
        return None  # 400 bad parameter, 401 token, 403 permission, …: the same request fails again
    if isinstance(error, (aiohttp.ClientError, asyncio.TimeoutError, ConnectionError)):
        return backoff(attempt)
    return None


class GraphClient:
    """``POST {base}/{version}/{phone_number_id}/messages`` with the bearer token; returns the message id."""

    def __init__(self, token: str, phone_number_id: str, api_url: str = DEFAULT_API_URL,
                 api_version: str = DEFAULT_API_VERSION, timeout: float = 20.0) -> None:
        self.url = f"{api_url.rstrip('/')}/{api_version.strip('/')}/{phone_number_id}/messages"
        self._token = token
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    async def send(self, payload: dict) -> str:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        body = {"messaging_product": "whatsapp", "recipient_type": "individual", **payload}
        async with self._session.post(self.url, json=body,
                                      headers={"Authorization": f"Bearer {self._token}"}) as resp:
            try:
                data = await resp.json(content_type=None)
            except ValueError:
                data = None
            if resp.status >= 400 or not isinstance(data, dict):
                err = (data or {}).get("error") if isinstance(data, dict) else None
                err = err if isinstance(err, dict) else {}
                data_ = err.get("error_data")
                details = data_.get("details", "") if isinstance(data_, dict) else ""
                code = err.get("code")
                raise GraphAPIError(resp.status if resp.status >= 400 else 502,
                                    code if isinstance(code, int) else None,
                                    str(err.get("message") or err.get("error_user_title") or resp.reason or ""),
                                    str(details), parse_retry_after(resp.headers.get("Retry-After")))
            messages = data.get("messages") or [{}]
            return str(messages[0].get("id") or "")

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

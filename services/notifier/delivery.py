"""One matched event POSTed to a platform's webhook: signed, retried with back-off.

The body is the event's JSON, as published on `facepass.photos.matched.v1`. The signature
header is `X-FacePass-Signature: t=<unix seconds>,v1=<hex>`, where the hex is HMAC-SHA256,
keyed with the API key that owns the session, of `<t>.` followed by the body's bytes. A
receiver recomputes it, compares in constant time, and refuses a `t` older than a few minutes
(a replayed request); the event's `event_id` (also in `X-FacePass-Event-Id`) is the same on
every delivery of the pair, so a repeat is dropped by it (docs/events.md).

A 2xx is delivered. A 408, 429, 5xx or no answer is retried after 1, 2, 4, ... s (each attempt
signed afresh) up to NOTIFY_MAX_ATTEMPTS; another 4xx is refused at once. Either way the
outcome is counted (`facepass_webhook_deliveries_total`) and the next event goes on.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx

from libs.common.log import get_logger
from libs.common.metrics import WEBHOOK_DELIVERIES
from libs.common.settings import NotifySettings

log = get_logger(__name__)

SIGNATURE_HEADER = "X-FacePass-Signature"
EVENT_ID_HEADER = "X-FacePass-Event-Id"
_RETRYABLE = {408, 429}


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The signature header's value for `body` sent at `timestamp`."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


@dataclass(frozen=True)
class Webhook:
    url: str
    secret: str  # the owning API key
    key_id: str


async def deliver(
    client: httpx.AsyncClient,
    webhook: Webhook,
    body: bytes,
    event_id: str,
    settings: NotifySettings,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> bool:
    """POST the event until it is taken, refused, or out of attempts; True: delivered."""
    delay, answer = settings.retry_base_s, "no answer"
    for attempt in range(1, settings.max_attempts + 1):
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: signature(webhook.secret, int(time.time()), body),
            EVENT_ID_HEADER: event_id,
        }
        try:
            response = await client.post(
                webhook.url, content=body, headers=headers, timeout=settings.timeout_s
            )
        except httpx.HTTPError as exc:
            answer, retryable = type(exc).__name__, True
        else:
            if response.is_success:
                WEBHOOK_DELIVERIES.labels(outcome="delivered").inc()
                return True
            answer = f"HTTP {response.status_code}"
            retryable = response.status_code >= 500 or response.status_code in _RETRYABLE
        if not retryable or attempt == settings.max_attempts:
            break
        WEBHOOK_DELIVERIES.labels(outcome="retried").inc()
        await sleep(delay)
        delay *= 2
    WEBHOOK_DELIVERIES.labels(outcome="failed").inc()
    log.warning(
        "webhook delivery failed",
        event_id=event_id,
        key_id=webhook.key_id,
        answer=answer,
        attempts=attempt,
    )
    return False

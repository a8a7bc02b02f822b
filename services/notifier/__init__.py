"""Notifier: the `facepass-notifier` consumer group. POSTs each `photos.matched` event, signed,
to the webhook of the API key that owns its session (NOTIFY_WEBHOOKS), with retries; idle when
no webhook is configured. Runs beside the embedder, never in its way."""

from __future__ import annotations

from libs.common.runtime import Need
from libs.common.service import ServiceSpec
from services.notifier.subscriber import register_notifier

SERVICE = ServiceSpec(
    name="notifier",
    needs=frozenset({Need.DB, Need.KAFKA}),
    on_start=(register_notifier,),
)

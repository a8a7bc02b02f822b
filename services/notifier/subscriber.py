"""The notifier's Kafka side: consumer group `facepass-notifier` on `photos.matched`.

Thin: decode the event, find the webhook of the API key that owns its session (webhooks.py),
deliver it (delivery.py), return. Only sessions uploaded over HTTP have an owner; an event of
another session, or of an owner without a webhook, is left to the platforms that read the
topic. A delivery that fails for good is counted and logged, and the partition moves on: the
embedder never waits for a platform.
"""

from __future__ import annotations

import httpx
from faststream import AckPolicy

from libs.common.events import PhotoMatched
from libs.common.log import log_context
from libs.common.runtime import Runtime
from services.notifier.delivery import deliver
from services.notifier.webhooks import Webhooks


async def register_notifier(runtime: Runtime) -> None:
    """Declare the subscriber on the runtime's broker, if any webhook is configured."""
    notify, kafka = runtime.settings.notify, runtime.settings.kafka
    if not notify.webhooks:
        return
    webhooks = Webhooks(runtime)

    @runtime.kafka().subscriber(
        kafka.topic_matched,
        group_id=notify.consumer_group,
        auto_offset_reset="earliest",
        ack_policy=AckPolicy.NACK_ON_ERROR,
        title="photos.matched:notifier",
        description="Matched events POSTed, signed, to the session owner's webhook.",
    )
    async def on_photo_matched(event: PhotoMatched) -> None:
        webhook = await webhooks.for_session(event.session_id)
        if webhook is None:
            return
        body = event.model_dump_json().encode()
        with log_context(session_id=event.session_id, photo_id=event.photo_id):
            async with httpx.AsyncClient(follow_redirects=False) as client:
                await deliver(client, webhook, body, event.event_id, notify)

"""The ingest service's Kafka side: it publishes `photos.uploaded` (key: photo_id)."""

from __future__ import annotations

from libs.common.events import PhotoUploaded
from libs.common.runtime import Runtime


async def declare_uploaded_publisher(runtime: Runtime) -> None:
    """Declare what ingest publishes, so the AsyncAPI document describes it."""
    runtime.kafka().publisher(
        runtime.settings.kafka.topic_uploaded,
        title="photos.uploaded:ingest",
        description=(
            "A photo to index (key: photo_id). Published by ingest after POST /api/v2/index, "
            "or by an upstream system that already stores the photo in S3."
        ),
        schema=PhotoUploaded,
    )

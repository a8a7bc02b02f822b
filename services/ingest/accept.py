"""Accepting a photo: store the bytes, record it as queued, publish `photos.uploaded`.

All three happen inside one database transaction that holds a per-photo lock, and the event is
published (and acknowledged by the broker) before the commit. So a 202 means the event is in
Kafka; if S3 or Kafka fails, the transaction rolls back, the new object is deleted, and the
caller gets 503: nothing half-written is left visible. Two concurrent uploads of one photo id
are serialised by the lock, so their events reach Kafka in the order their rows were written.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from libs.common.db import photos
from libs.common.events import ObjectRef, PhotoUploaded
from libs.common.http.problems import ApiError
from libs.common.log import REQUEST_ID_HEADER, get_logger
from libs.common.metrics import PHOTOS_RECEIVED
from libs.common.runtime import Runtime
from libs.common.storage import StorageUnavailableError, photo_object_key, upload_digest

log = get_logger(__name__)


@dataclass(frozen=True)
class Upload:
    photo_id: str
    session_id: str
    data: bytes
    content_type: str
    request_id: str
    key_id: str | None = None  # the uploading API key's id: the session's owner (webhooks)


@dataclass(frozen=True)
class Accepted:
    status: str
    duplicate: bool


async def accept_photo(runtime: Runtime, upload: Upload) -> Accepted:
    digest = upload_digest(upload.data)
    key = photo_object_key(upload.session_id, upload.photo_id, digest)
    store, kafka = runtime.objects(), runtime.settings.kafka
    old_key: str | None = None
    async with photos.photo_transaction(runtime.pool(), upload.photo_id, upload.session_id) as conn:
        existing = await photos.get_photo(conn, upload.photo_id, for_update=True)
        if existing is not None and existing.session_id != upload.session_id:
            raise ApiError(
                409,
                "photo-conflict",
                f"photo_id {upload.photo_id!r} already belongs to another session",
            )
        if (
            existing is not None
            and existing.content_sha256 == digest
            and existing.status in ("queued", "indexed")
        ):
            PHOTOS_RECEIVED.labels(outcome="duplicate").inc()
            return Accepted(status=existing.status, duplicate=True)
        await store.put(key, upload.data, upload.content_type)
        try:
            accepted_at = await photos.record_queued(
                conn,
                photo_id=upload.photo_id,
                session_id=upload.session_id,
                object_key=key,
                content_sha256=digest,
                owner_key_id=upload.key_id,
            )
            event = PhotoUploaded(
                photo_id=upload.photo_id,
                session_id=upload.session_id,
                object=ObjectRef(bucket=store.bucket, key=key),
                content_sha256=digest,
                content_type=upload.content_type,
                size_bytes=len(upload.data),
                uploaded_at=accepted_at,
                source="http",
            )
            await runtime.publish(
                event.model_dump(mode="json"),
                topic=kafka.topic_uploaded,
                key=upload.photo_id.encode(),
                headers={REQUEST_ID_HEADER: upload.request_id},
            )
        except BaseException:
            if existing is None or existing.object_key != key:
                with contextlib.suppress(StorageUnavailableError):
                    await store.delete([key])
            raise
        if existing is not None and existing.object_key != key:
            old_key = existing.object_key
    if old_key is not None:
        # The replaced bytes; the new object is what the row (and soon the faces) point at.
        with contextlib.suppress(StorageUnavailableError):
            await store.delete([old_key])
    PHOTOS_RECEIVED.labels(outcome="published").inc()
    log.info("photo accepted", size_bytes=len(upload.data), object_key=key)
    return Accepted(status="queued", duplicate=False)

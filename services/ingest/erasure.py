"""Erasure of biometric data: a photo or a whole session, rows, vectors and S3 objects.

The database goes first, in one transaction that also writes a tombstone, so the vectors stop
being searchable at once and a replayed upload event older than the erasure is skipped by the
embedder. The S3 objects go next; if S3 is down the caller gets 503 and repeats the request,
which finds the tombstone and deletes the objects then.
"""

from __future__ import annotations

from dataclasses import dataclass

from libs.common.db import photos
from libs.common.log import get_logger
from libs.common.metrics import ERASURES
from libs.common.runtime import Runtime
from libs.common.storage import ObjectStore, photo_prefix, session_prefix

log = get_logger(__name__)


@dataclass(frozen=True)
class ErasureResult:
    session_id: str
    photos_erased: int
    objects_deleted: int


async def erase_photo(runtime: Runtime, photo_id: str) -> ErasureResult | None:
    """None if FacePass never had this photo (no row and no earlier erasure)."""
    erased = await photos.erase_photo(runtime.pool(), photo_id)
    if erased is None:
        return None
    deleted = await _delete_prefix(runtime.objects(), photo_prefix(erased.session_id, photo_id))
    ERASURES.labels(scope="photo").inc()
    log.info("photo erased", photo_id=photo_id, session_id=erased.session_id, objects=deleted)
    return ErasureResult(erased.session_id, int(erased.had_row), deleted)


async def erase_session(runtime: Runtime, session_id: str) -> ErasureResult:
    """Always leaves a tombstone, even for a session not seen yet (events may be in flight)."""
    count = await photos.erase_session(runtime.pool(), session_id)
    deleted = await _delete_prefix(runtime.objects(), session_prefix(session_id))
    ERASURES.labels(scope="session").inc()
    log.info("session erased", session_id=session_id, photos=count, objects=deleted)
    return ErasureResult(session_id, count, deleted)


async def _delete_prefix(store: ObjectStore, prefix: str) -> int:
    keys = await store.list_keys(prefix)
    await store.delete(keys)
    return len(keys)

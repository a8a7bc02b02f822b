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

log = get_logger(__name__)


def _photo_prefix(session_id: str, photo_id: str) -> str:
    return f"sessions/{session_id}/photos/{photo_id}/"


def _session_prefix(session_id: str) -> str:
    return f"sessions/{session_id}/"


@dataclass(frozen=True)
class ErasureResult:
    session_id: str
    photos_erased: int
    objects_deleted: int


async def erase_photo(runtime: Runtime, photo_id: str) -> ErasureResult | None:
    """None if FacePass never had this photo (no row and no earlier erasure)."""
    async with runtime.pool().acquire() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", photo_id)
        record = await photos.erase_photo(conn, photo_id)
        session_id = (
            record.session_id
            if record
            else await conn.fetchval(
                "SELECT session_id FROM erased_photos WHERE photo_id = $1", photo_id
            )
        )
    if session_id is None:
        return None
    deleted = await _delete_prefix(runtime, _photo_prefix(session_id, photo_id))
    ERASURES.labels(scope="photo").inc()
    log.info("photo erased", photo_id=photo_id, session_id=session_id, objects=deleted)
    return ErasureResult(session_id, int(record is not None), deleted)


async def erase_session(runtime: Runtime, session_id: str) -> ErasureResult:
    """Always leaves a tombstone, even for a session not seen yet (events may be in flight)."""
    async with runtime.pool().acquire() as conn, conn.transaction():
        keys = await photos.erase_session(conn, session_id)
    deleted = await _delete_prefix(runtime, _session_prefix(session_id))
    ERASURES.labels(scope="session").inc()
    log.info("session erased", session_id=session_id, photos=len(keys), objects=deleted)
    return ErasureResult(session_id, len(keys), deleted)


async def _delete_prefix(runtime: Runtime, prefix: str) -> int:
    store = runtime.objects()
    keys = await store.list_keys(prefix)
    await store.delete(keys)
    return len(keys)

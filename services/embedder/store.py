"""Writing one photo's outcome to PostgreSQL, in one transaction per photo.

The transaction takes the photo's lock, checks the erasure tombstones (an event older than an
erasure of its photo or session is skipped, so a replay cannot resurrect erased faces), then
upserts the photo row and replaces its faces. Keyed by (photo_id, face_index), a replay writes
the same rows again: never a duplicate face.
"""

from __future__ import annotations

import json
from enum import StrEnum

import asyncpg

from libs.common.db import photos
from libs.common.events import PhotoUploaded
from libs.common.face.results import PhotoFaces


class WriteResult(StrEnum):
    WRITTEN = "written"
    ERASED = "erased"  # skipped: erased after this upload
    SUPERSEDED = "superseded"  # skipped: newer bytes of the photo were uploaded since
    CONFLICT = "conflict"  # the photo id belongs to another session


async def _begin(conn: photos.Connection, event: PhotoUploaded) -> WriteResult | None:
    """Lock the photo; a WriteResult if it must not be written, None to go on."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", event.photo_id)
    erased = await photos.erased_at(conn, event.session_id, event.photo_id)
    if erased is not None and erased >= event.uploaded_at:
        return WriteResult.ERASED
    row = await conn.fetchrow(
        "SELECT session_id, content_sha256, updated_at FROM photos WHERE photo_id = $1",
        event.photo_id,
    )
    if row is None:
        return None
    if row["session_id"] != event.session_id:
        return WriteResult.CONFLICT
    # An older upload of other bytes (a replay, or one racing a re-upload): the row already
    # names newer bytes, whose own event follows. Writing this one would put back faces of a
    # replaced (and deleted) object.
    if (
        event.content_sha256 is not None
        and row["content_sha256"] is not None
        and row["content_sha256"] != event.content_sha256
        and row["updated_at"] > event.uploaded_at
    ):
        return WriteResult.SUPERSEDED
    return None


async def write_indexed(
    pool: asyncpg.Pool, event: PhotoUploaded, result: PhotoFaces, model_id: str
) -> WriteResult:
    rejected = [{"reason": r.reason, "bbox": list(r.bbox)} for r in result.rejected]
    async with pool.acquire() as conn, conn.transaction():
        stop = await _begin(conn, event)
        if stop is not None:
            return stop
        await photos.touch_session(conn, event.session_id)
        await conn.execute(
            """
            INSERT INTO photos (photo_id, session_id, status, object_key, content_sha256,
                                faces_count, faces_rejected, model_id, error, indexed_at)
            VALUES ($1, $2, 'indexed', $3, $4, $5, $6::jsonb, $7, NULL, now())
            ON CONFLICT (photo_id) DO UPDATE SET
                status = 'indexed', object_key = EXCLUDED.object_key,
                content_sha256 = EXCLUDED.content_sha256, faces_count = EXCLUDED.faces_count,
                faces_rejected = EXCLUDED.faces_rejected, model_id = EXCLUDED.model_id,
                error = NULL, indexed_at = now(), updated_at = now()
            """,
            event.photo_id, event.session_id, event.object.key, event.content_sha256,
            len(result.faces), json.dumps(rejected), model_id,
        )  # fmt: skip
        await conn.execute("DELETE FROM face_embeddings WHERE photo_id = $1", event.photo_id)
        if result.faces:
            await conn.executemany(
                """
                INSERT INTO face_embeddings
                    (photo_id, face_index, session_id, bbox, det_score, embedding, model_id)
                VALUES ($1, $2, $3, $4, $5, $6, $7)
                """,
                [
                    (
                        event.photo_id,
                        index,
                        event.session_id,
                        list(face.bbox),
                        face.det_score,
                        face.embedding,
                        model_id,
                    )
                    for index, face in enumerate(result.faces)
                ],
            )
    return WriteResult.WRITTEN


async def write_failed(pool: asyncpg.Pool, event: PhotoUploaded, error: str) -> WriteResult:
    """Record status `failed` with the reason (unless erased since, superseded, or owned
    elsewhere). Faces of earlier bytes of the photo go: they no longer describe it."""
    async with pool.acquire() as conn, conn.transaction():
        stop = await _begin(conn, event)
        if stop is not None:
            return stop
        await conn.execute("DELETE FROM face_embeddings WHERE photo_id = $1", event.photo_id)
        await photos.mark_failed(
            conn,
            photo_id=event.photo_id,
            session_id=event.session_id,
            object_key=event.object.key,
            error=error,
        )
    return WriteResult.WRITTEN

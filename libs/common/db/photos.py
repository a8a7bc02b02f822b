"""A photo's lifecycle in PostgreSQL: the one home of every write to `photos`,
`face_embeddings`, `sessions` and the erasure tombstones.

queued (ingest accepted the bytes) → indexed with its faces, or failed with the reason (the
embedder) → erased (a photo or its whole session; a tombstone stays). Every write to one photo
runs in a transaction holding that photo's lock (`photo_transaction`), so an upload, the
embedder's write and an erasure of the same photo never interleave. The embedder's writes are
gated (`_write_gate`): an event older than an erasure of its photo or session is skipped, so a
replay cannot resurrect erased faces, and neither can an older upload of other bytes. Keyed by
(photo_id, face_index), a replayed write puts the same rows back: never a duplicate face.

Lock order: a photo's writes hold its session's lock in shared mode, taken before any row lock;
a session's erasure holds it exclusively, before its row locks. Without it, an erasure of a
session (photo rows, then the session row) and a write into it (the session row, then the
photo row) deadlocked: PostgreSQL aborted one of them, and the erasure answered 500
(schemathesis found it; tests/integration/test_photo_locks.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

import asyncpg

from libs.common.db.locks import Connection, lock_session
from libs.common.db.locks import photo_transaction as photo_transaction  # callers' name for it
from libs.common.db.renditions import PhotoRenditions, current_renditions, unnamed
from libs.common.events import PhotoUploaded
from libs.common.face.results import PhotoFaces


@dataclass(frozen=True)
class PhotoRecord:
    photo_id: str
    session_id: str
    status: str
    object_key: str
    content_sha256: str | None
    faces_count: int
    faces_rejected: list[dict[str, Any]]
    model_id: str | None
    error: str | None
    indexed_at: datetime | None
    updated_at: datetime
    thumbnail_key: str | None = None
    preview_key: str | None = None


class WriteResult(StrEnum):
    """What became of an embedder's write."""

    WRITTEN = "written"
    ERASED = "erased"  # skipped: erased after this upload
    SUPERSEDED = "superseded"  # skipped: newer bytes of the photo were uploaded since
    CONFLICT = "conflict"  # the photo id belongs to another session


@dataclass(frozen=True)
class Written:
    """What became of an embedder's write, and the rendition objects that no photo row names
    any more (the replaced bytes' copies, or this write's own when it was skipped): the caller
    deletes them once the transaction has committed."""

    result: WriteResult
    stale_keys: tuple[str, ...] = ()


_COLUMNS = (
    "photo_id, session_id, status, object_key, content_sha256, faces_count, faces_rejected, "
    "model_id, error, indexed_at, updated_at, thumbnail_key, preview_key"
)


def _record(row: asyncpg.Record | None) -> PhotoRecord | None:
    if row is None:
        return None
    values = dict(row)
    rejected = values["faces_rejected"]
    values["faces_rejected"] = json.loads(rejected) if isinstance(rejected, str) else rejected
    return PhotoRecord(**values)


# --- reading and locking ------------------------------------------------------------------


async def get_photo(
    conn: Connection, photo_id: str, *, for_update: bool = False
) -> PhotoRecord | None:
    lock = " FOR UPDATE" if for_update else ""
    query = f"SELECT {_COLUMNS} FROM photos WHERE photo_id = $1{lock}"  # noqa: S608 - constants
    return _record(await conn.fetchrow(query, photo_id))


async def erased_at(conn: Connection, session_id: str, photo_id: str) -> datetime | None:
    """The latest erasure of this session or photo, if any."""
    value: datetime | None = await conn.fetchval(
        """
        SELECT max(t.erased_at) FROM (
            SELECT erased_at FROM erased_sessions WHERE session_id = $1
            UNION ALL
            SELECT erased_at FROM erased_photos WHERE photo_id = $2
        ) AS t
        """,
        session_id, photo_id,
    )  # fmt: skip
    return value


# --- sessions -----------------------------------------------------------------------------


async def ensure_session(conn: Connection, session_id: str, owner_key_id: str | None) -> None:
    """The session, created if new; its owner is the first API key that uploads into it (the
    update locks the row only while it has none, so later uploads never wait on it)."""
    await conn.execute(
        "INSERT INTO sessions (session_id, owner_key_id) VALUES ($1, $2) "
        "ON CONFLICT (session_id) DO NOTHING",
        session_id,
        owner_key_id,
    )
    if owner_key_id is not None:
        await conn.execute(
            "UPDATE sessions SET owner_key_id = $2 WHERE session_id = $1 AND owner_key_id IS NULL",
            session_id,
            owner_key_id,
        )


async def touch_session(conn: Connection, session_id: str) -> int:
    """Create the session if needed, move its `changed_at` (invalidates search caches) and give
    it the next change number, which is returned for the photo (or tombstone) being written.
    The row stays locked until the transaction ends, so a session's numbers follow the order
    its writes commit in (migration 0003; services/search_api/matrices.py relies on it)."""
    change: int = await conn.fetchval(
        """
        INSERT INTO sessions (session_id, change_seq) VALUES ($1, nextval('face_change_seq'))
        ON CONFLICT (session_id) DO UPDATE
            SET changed_at = clock_timestamp(), change_seq = nextval('face_change_seq')
        RETURNING change_seq
        """,
        session_id,
    )
    return change


async def expired_sessions(conn: Connection, retention_days: int, limit: int = 100) -> list[str]:
    """Sessions past their expires_at, or (retention_days > 0) created longer ago than that."""
    rows = await conn.fetch(
        """
        SELECT session_id FROM sessions
        WHERE expires_at < now()
           OR ($1 > 0 AND expires_at IS NULL AND created_at < now() - make_interval(days => $1))
        ORDER BY created_at
        LIMIT $2
        """,
        retention_days, limit,
    )  # fmt: skip
    return [row["session_id"] for row in rows]


# --- queued: ingest -----------------------------------------------------------------------


async def record_queued(
    conn: Connection,
    *,
    photo_id: str,
    session_id: str,
    object_key: str,
    content_sha256: str,
    owner_key_id: str | None = None,
) -> datetime:
    """Record an accepted upload as queued; returns the database's clock for the event.
    Call it inside `photo_transaction`."""
    await ensure_session(conn, session_id, owner_key_id)
    accepted_at: datetime = await conn.fetchval(
        """
        INSERT INTO photos (photo_id, session_id, status, object_key, content_sha256)
        VALUES ($1, $2, 'queued', $3, $4)
        ON CONFLICT (photo_id) DO UPDATE
            SET status = 'queued', object_key = EXCLUDED.object_key,
                content_sha256 = EXCLUDED.content_sha256, error = NULL, updated_at = now()
        RETURNING now()
        """,
        photo_id, session_id, object_key, content_sha256,
    )  # fmt: skip
    return accepted_at


# --- indexed or failed: the embedder ------------------------------------------------------


async def _write_gate(conn: Connection, event: PhotoUploaded) -> WriteResult | None:
    """Under the photo's lock: a WriteResult if this event must not be written, else None."""
    erased = await erased_at(conn, event.session_id, event.photo_id)
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


async def record_indexed(
    pool: asyncpg.Pool,
    event: PhotoUploaded,
    result: PhotoFaces,
    model_id: str,
    renditions: PhotoRenditions | None = None,
) -> Written:
    """Status `indexed`, the photo's faces (replacing any earlier ones) and its renditions, in
    one transaction. The rendition objects must already be in S3: a photo row never names a
    copy that is not there."""
    rejected = [{"reason": r.reason, "bbox": list(r.bbox)} for r in result.rejected]
    ours = renditions.keys() if renditions is not None else ()
    async with photo_transaction(pool, event.photo_id, event.session_id) as conn:
        current = await current_renditions(conn, event.photo_id)
        stop = await _write_gate(conn, event)
        if stop is not None:
            return Written(stop, unnamed(ours, current))
        change = await touch_session(conn, event.session_id)
        await conn.execute(
            """
            INSERT INTO photos (photo_id, session_id, status, object_key, content_sha256,
                                faces_count, faces_rejected, model_id, error, indexed_at,
                                thumbnail_key, preview_key, width, height, object_bucket,
                                change_seq)
            VALUES ($1, $2, 'indexed', $3, $4, $5, $6::jsonb, $7, NULL, now(), $8, $9, $10, $11,
                    $12, $13)
            ON CONFLICT (photo_id) DO UPDATE SET
                status = 'indexed', object_key = EXCLUDED.object_key,
                object_bucket = EXCLUDED.object_bucket, change_seq = EXCLUDED.change_seq,
                content_sha256 = EXCLUDED.content_sha256, faces_count = EXCLUDED.faces_count,
                faces_rejected = EXCLUDED.faces_rejected, model_id = EXCLUDED.model_id,
                error = NULL, indexed_at = now(), updated_at = now(),
                thumbnail_key = EXCLUDED.thumbnail_key, preview_key = EXCLUDED.preview_key,
                width = EXCLUDED.width, height = EXCLUDED.height
            """,
            event.photo_id, event.session_id, event.object.key, event.content_sha256,
            len(result.faces), json.dumps(rejected), model_id,
            renditions.thumbnail_key if renditions else None,
            renditions.preview_key if renditions else None,
            renditions.width if renditions else None,
            renditions.height if renditions else None,
            event.object.bucket, change,
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
    return Written(WriteResult.WRITTEN, unnamed(current, ours))


async def record_failed(
    pool: asyncpg.Pool,
    event: PhotoUploaded,
    error: str,
    renditions: PhotoRenditions | None = None,
) -> Written:
    """Status `failed` with the reason (unless erased since, superseded, or owned elsewhere).
    Faces and renditions of earlier bytes of the photo go: they no longer describe it; so do
    `renditions` made of these bytes before they failed."""
    ours = renditions.keys() if renditions is not None else ()
    async with photo_transaction(pool, event.photo_id, event.session_id) as conn:
        current = await current_renditions(conn, event.photo_id)
        stop = await _write_gate(conn, event)
        if stop is not None:
            return Written(stop, unnamed(ours, current))
        await conn.execute("DELETE FROM face_embeddings WHERE photo_id = $1", event.photo_id)
        change = await touch_session(conn, event.session_id)
        await conn.execute(
            """
            INSERT INTO photos (photo_id, session_id, status, object_key, error, change_seq)
            VALUES ($1, $2, 'failed', $3, $4, $5)
            ON CONFLICT (photo_id) DO UPDATE
                SET status = 'failed', error = EXCLUDED.error, faces_count = 0,
                    faces_rejected = '[]'::jsonb, updated_at = now(),
                    thumbnail_key = NULL, preview_key = NULL, width = NULL, height = NULL,
                    change_seq = EXCLUDED.change_seq
                WHERE photos.session_id = EXCLUDED.session_id
            """,
            event.photo_id, event.session_id, event.object.key, error, change,
        )  # fmt: skip
    return Written(WriteResult.WRITTEN, unnamed(current + ours, ()))


# --- erased -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ErasedPhoto:
    session_id: str
    #: False when only an earlier erasure's tombstone was found (a repeated erasure).
    had_row: bool


async def erase_photo(pool: asyncpg.Pool, photo_id: str) -> ErasedPhoto | None:
    """Delete a photo and its faces and leave a tombstone, under the photo's lock. A repeated
    erasure finds the tombstone (so the caller can finish deleting S3 objects); None if
    FacePass never had this photo."""
    async with photo_transaction(pool, photo_id) as conn:
        # Its session first (shared), then its row: read unlocked to learn the session. The
        # photo's lock keeps other writes of it out; a session erasure may still take the row,
        # and then it is found as a tombstone below.
        session_of: str | None = await conn.fetchval(
            "SELECT session_id FROM photos WHERE photo_id = $1", photo_id
        )
        if session_of is not None:
            await lock_session(conn, session_of, exclusive=False)
        record = await get_photo(conn, photo_id, for_update=True)
        if record is None:
            session_id: str | None = await conn.fetchval(
                "SELECT session_id FROM erased_photos WHERE photo_id = $1", photo_id
            )
            return ErasedPhoto(session_id, had_row=False) if session_id is not None else None
        await conn.execute("DELETE FROM photos WHERE photo_id = $1", photo_id)
        change = await touch_session(conn, record.session_id)
        await conn.execute(
            """
            INSERT INTO erased_photos (photo_id, session_id, change_seq) VALUES ($1, $2, $3)
            ON CONFLICT (photo_id) DO UPDATE
                SET erased_at = now(), session_id = EXCLUDED.session_id,
                    change_seq = EXCLUDED.change_seq
            """,
            photo_id, record.session_id, change,
        )  # fmt: skip
    return ErasedPhoto(record.session_id, had_row=True)


async def erase_session(pool: asyncpg.Pool, session_id: str) -> int:
    """Delete a session's photos and faces and leave a tombstone (even for a session not seen
    yet: its events may be in flight). Returns how many photos were erased."""
    async with pool.acquire() as conn, conn.transaction():
        await lock_session(conn, session_id, exclusive=True)
        erased = await conn.fetch(
            "SELECT photo_id FROM photos WHERE session_id = $1 FOR UPDATE", session_id
        )
        await conn.execute("DELETE FROM sessions WHERE session_id = $1", session_id)
        await conn.execute(
            """
            INSERT INTO erased_sessions (session_id) VALUES ($1)
            ON CONFLICT (session_id) DO UPDATE SET erased_at = now()
            """,
            session_id,
        )
    return len(erased)


# --- counted (the attendee page) ----------------------------------------------------------


async def indexed_photo_count(conn: Connection, session_id: str) -> int:
    """How many of a session's photos are indexed (searchable); 0 for an unknown session.
    Read on every load of the session's page: it visits only the session's rows (found by
    photos_session_id_idx), a few milliseconds for an event's thousands of photos."""
    count: int = await conn.fetchval(
        "SELECT count(*) FROM photos WHERE session_id = $1 AND status = 'indexed'", session_id
    )
    return count

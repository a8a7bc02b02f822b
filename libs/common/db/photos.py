"""Photo rows, sessions and erasure tombstones: the queries every service shares."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

#: A plain connection or one borrowed from a pool.
Connection = asyncpg.Connection | asyncpg.pool.PoolConnectionProxy


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


_COLUMNS = (
    "photo_id, session_id, status, object_key, content_sha256, faces_count, faces_rejected, "
    "model_id, error, indexed_at, updated_at"
)


def _record(row: asyncpg.Record | None) -> PhotoRecord | None:
    if row is None:
        return None
    values = dict(row)
    rejected = values["faces_rejected"]
    values["faces_rejected"] = json.loads(rejected) if isinstance(rejected, str) else rejected
    return PhotoRecord(**values)


async def get_photo(
    conn: Connection, photo_id: str, *, for_update: bool = False
) -> PhotoRecord | None:
    lock = " FOR UPDATE" if for_update else ""
    query = f"SELECT {_COLUMNS} FROM photos WHERE photo_id = $1{lock}"  # noqa: S608 - constants
    return _record(await conn.fetchrow(query, photo_id))


async def ensure_session(conn: Connection, session_id: str) -> None:
    await conn.execute(
        "INSERT INTO sessions (session_id) VALUES ($1) ON CONFLICT (session_id) DO NOTHING",
        session_id,
    )


async def touch_session(conn: Connection, session_id: str) -> None:
    """Create the session if needed and move its `changed_at` (invalidates search caches)."""
    await conn.execute(
        """
        INSERT INTO sessions (session_id) VALUES ($1)
        ON CONFLICT (session_id) DO UPDATE SET changed_at = clock_timestamp()
        """,
        session_id,
    )


async def upsert_queued(
    conn: Connection, *, photo_id: str, session_id: str, object_key: str, content_sha256: str
) -> datetime:
    """Record an accepted upload as queued; returns the database's clock for the event."""
    await ensure_session(conn, session_id)
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


async def mark_failed(
    conn: Connection, *, photo_id: str, session_id: str, object_key: str, error: str
) -> None:
    """Status `failed` with the reason, unless the photo belongs to another session."""
    await touch_session(conn, session_id)
    await conn.execute(
        """
        INSERT INTO photos (photo_id, session_id, status, object_key, error)
        VALUES ($1, $2, 'failed', $3, $4)
        ON CONFLICT (photo_id) DO UPDATE
            SET status = 'failed', error = EXCLUDED.error, faces_count = 0,
                faces_rejected = '[]'::jsonb, updated_at = now()
            WHERE photos.session_id = EXCLUDED.session_id
        """,
        photo_id, session_id, object_key, error,
    )  # fmt: skip


async def erase_photo(conn: Connection, photo_id: str) -> PhotoRecord | None:
    """Delete a photo and its faces and leave a tombstone. Returns the row that was erased."""
    record = await get_photo(conn, photo_id, for_update=True)
    if record is None:
        return None
    await conn.execute("DELETE FROM photos WHERE photo_id = $1", photo_id)
    await touch_session(conn, record.session_id)
    await conn.execute(
        """
        INSERT INTO erased_photos (photo_id, session_id) VALUES ($1, $2)
        ON CONFLICT (photo_id) DO UPDATE SET erased_at = now(), session_id = EXCLUDED.session_id
        """,
        photo_id, record.session_id,
    )  # fmt: skip
    return record


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


async def erase_session(conn: Connection, session_id: str) -> list[str]:
    """Delete a session's photos and faces and leave a tombstone. Returns their object keys."""
    keys = [
        row["object_key"]
        for row in await conn.fetch(
            "SELECT object_key FROM photos WHERE session_id = $1 FOR UPDATE", session_id
        )
    ]
    await conn.execute("DELETE FROM sessions WHERE session_id = $1", session_id)
    await conn.execute(
        """
        INSERT INTO erased_sessions (session_id) VALUES ($1)
        ON CONFLICT (session_id) DO UPDATE SET erased_at = now()
        """,
        session_id,
    )
    return keys

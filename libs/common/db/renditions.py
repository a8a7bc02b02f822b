"""A photo's renditions in PostgreSQL: which thumbnail and preview objects its row names.

The embedder names them in the same transaction as the faces (photos.record_indexed); the
backfill (`facepass renditions backfill`) names them for photos indexed before renditions
existed (`set_renditions`). Every write returns the keys no row names any more, for the caller
to delete from S3 once committed.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from libs.common.db.locks import Connection, photo_transaction


@dataclass(frozen=True)
class PhotoRenditions:
    """Where a photo's thumbnail and preview are (our bucket), and the photo's upright size in
    pixels, which scales a face's box onto them."""

    thumbnail_key: str
    preview_key: str
    width: int
    height: int

    def keys(self) -> tuple[str, str]:
        return self.thumbnail_key, self.preview_key


@dataclass(frozen=True)
class MissingRenditions:
    """An indexed photo without renditions, and where its original is."""

    photo_id: str
    session_id: str
    object_bucket: str | None  # None: S3_BUCKET
    object_key: str
    content_sha256: str | None


async def current_renditions(conn: Connection, photo_id: str) -> tuple[str, ...]:
    """The rendition keys the photo's row names now (call it under the photo's lock)."""
    row = await conn.fetchrow(
        "SELECT thumbnail_key, preview_key FROM photos WHERE photo_id = $1", photo_id
    )
    if row is None:
        return ()
    return tuple(k for k in (row["thumbnail_key"], row["preview_key"]) if k is not None)


def unnamed(keys: tuple[str, ...], named: tuple[str, ...]) -> tuple[str, ...]:
    """`keys` that are not in `named`, each once, in order."""
    return tuple(k for k in dict.fromkeys(keys) if k not in named)


async def missing_renditions(
    conn: Connection, *, session_id: str | None, after: str, limit: int
) -> list[MissingRenditions]:
    """Indexed photos without renditions (of one session, or all), by photo id after `after`:
    a keyset page, so a long backfill never rereads what it did."""
    rows = await conn.fetch(
        """
        SELECT photo_id, session_id, object_bucket, object_key, content_sha256 FROM photos
        WHERE status = 'indexed' AND thumbnail_key IS NULL AND photo_id > $1
          AND ($2::text IS NULL OR session_id = $2)
        ORDER BY photo_id
        LIMIT $3
        """,
        after, session_id, limit,
    )  # fmt: skip
    return [MissingRenditions(**dict(row)) for row in rows]


async def set_renditions(
    pool: asyncpg.Pool, photo: MissingRenditions, renditions: PhotoRenditions
) -> bool:
    """Name the renditions on the photo's row if it still is what they were made from (indexed,
    same object and content, none named yet), and move the session's `changed_at` (search
    caches key on it); False (name nothing) when the photo changed since: the caller deletes
    its objects."""
    async with photo_transaction(pool, photo.photo_id, photo.session_id) as conn:
        status = await conn.execute(
            """
            UPDATE photos SET thumbnail_key = $2, preview_key = $3, width = $4, height = $5
            WHERE photo_id = $1 AND status = 'indexed' AND thumbnail_key IS NULL
              AND object_key = $6 AND content_sha256 IS NOT DISTINCT FROM $7
            """,
            photo.photo_id, renditions.thumbnail_key, renditions.preview_key,
            renditions.width, renditions.height, photo.object_key, photo.content_sha256,
        )  # fmt: skip
        named = status == "UPDATE 1"
        if named:  # cached answers of the session without the links are stale now
            await conn.execute(
                "UPDATE sessions SET changed_at = clock_timestamp() WHERE session_id = $1",
                photo.session_id,
            )
    return named

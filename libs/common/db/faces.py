"""The per-session face query behind a selfie search.

Exact by construction: the session's faces are selected by the B-tree on (session_id,
model_id) and every one is compared with the selfie, so no approximate index can drop a match
(the pgvector README warns that an ANN index filtered by a selective WHERE can return fewer
rows). Only faces made by the same model pack are compared. Each photo keeps its best face;
for query expansion the best matches also bring that face's embedding (`Lending`).
Huge sessions are also read whole (`load_session_faces`) for the search API's in-memory path,
whose scan names candidate photos that the same query then compares exactly.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg
import numpy as np
import numpy.typing as npt
from pgvector import Vector

from libs.common.db.locks import Connection


@dataclass(frozen=True)
class Lending:
    """Which matches lend their face's embedding to a refined query (query expansion): the
    first `faces` of them, best first, at cosine similarity >= `threshold`."""

    threshold: float
    faces: int


@dataclass(frozen=True)
class PhotoObjects:
    """Where a photo's original and renditions are, and its upright size (None: indexed before
    renditions existed, until the backfill)."""

    object_key: str
    object_bucket: str | None = None  # None: S3_BUCKET
    thumbnail_key: str | None = None
    preview_key: str | None = None
    width: int | None = None
    height: int | None = None


@dataclass(frozen=True)
class PhotoMatch:
    photo_id: str
    similarity: float
    bbox: list[float]
    objects: PhotoObjects
    #: The matched face's embedding when it lends (see Lending), else None.
    embedding: npt.NDArray[np.float32] | None = field(default=None, compare=False, repr=False)


#: The exact query: each photo's best face at distance <= $4, best first, $5 photos. Its
#: variants: restricted to the candidate photos $6 (an in-memory matrix named them; read by
#: primary key), and with lenders (query expansion: the first rows at distance <= the last
#: parameter, up to the one before, also carry their face's embedding, looked up by primary key
#: for those rows only, so the lenders cost no query of their own).
_SEARCH = """
WITH best AS (
    SELECT DISTINCT ON (photo_id) photo_id, face_index, bbox, embedding <=> $1 AS distance
    FROM face_embeddings
    WHERE {candidates} session_id = $2 AND model_id = $3 AND (embedding <=> $1) <= $4
    ORDER BY photo_id, distance
), top AS (
    SELECT * FROM best ORDER BY distance, photo_id LIMIT $5
)
SELECT t.photo_id, t.face_index, t.bbox, t.distance, 1 - t.distance AS similarity,
       p.object_key, p.object_bucket, p.thumbnail_key, p.preview_key, p.width, p.height
FROM top t JOIN photos p USING (photo_id)
ORDER BY t.distance, t.photo_id
"""
_LENDING = """
WITH found AS ({search}), ranked AS (
    SELECT *, row_number() OVER (ORDER BY distance, photo_id) AS rank FROM found
)
SELECT r.*,
       CASE WHEN r.rank <= ${faces} AND r.distance <= ${distance} THEN
           (SELECT f.embedding FROM face_embeddings f
            WHERE f.photo_id = r.photo_id AND f.face_index = r.face_index)
       END AS lent
FROM ranked r
ORDER BY r.rank
"""
SEARCH_SQL = _SEARCH.format(candidates="")
CANDIDATES_SEARCH_SQL = _SEARCH.format(candidates="photo_id = ANY($6::text[]) AND")
LENDING_SEARCH_SQL = _LENDING.format(search=SEARCH_SQL, faces=6, distance=7)
CANDIDATES_LENDING_SEARCH_SQL = _LENDING.format(search=CANDIDATES_SEARCH_SQL, faces=7, distance=8)

_OBJECT_COLUMNS = ("object_key", "object_bucket", "thumbnail_key", "preview_key", "width", "height")


def photo_objects_of(row: asyncpg.Record) -> PhotoObjects:
    """A query row's photo columns (object_key, object_bucket, ... width, height)."""
    return PhotoObjects(**{name: row[name] for name in _OBJECT_COLUMNS})


async def search_session(
    conn: Connection,
    *,
    session_id: str,
    model_id: str,
    embedding: npt.NDArray[np.float32],
    threshold: float,
    limit: int,
    lending: Lending | None = None,
    photo_ids: list[str] | None = None,
) -> list[PhotoMatch]:
    """Photos of the session with a face at cosine similarity >= threshold, best first; with
    `lending`, the lenders' matches carry their face's embedding; with `photo_ids`, only
    those photos are compared (candidates that hold every match)."""
    args: tuple[Any, ...] = (embedding, session_id, model_id, 1.0 - threshold, limit)
    if photo_ids is not None:
        args += (photo_ids,)
    if lending is not None:
        args += (lending.faces, 1.0 - lending.threshold)
    sql = {
        (False, False): SEARCH_SQL,
        (True, False): CANDIDATES_SEARCH_SQL,
        (False, True): LENDING_SEARCH_SQL,
        (True, True): CANDIDATES_LENDING_SEARCH_SQL,
    }[photo_ids is not None, lending is not None]
    rows = await conn.fetch(sql, *args)
    return [
        PhotoMatch(
            photo_id=row["photo_id"],
            similarity=float(row["similarity"]),
            bbox=[float(v) for v in row["bbox"]],
            objects=photo_objects_of(row),
            embedding=row["lent"].to_numpy() if row.get("lent") is not None else None,
        )
        for row in rows
    ]


@dataclass(frozen=True)
class SessionVersion:
    """Where a session stands: `changed_at` moves on every change (search caches key on it),
    `change_seq` on every change of its faces (in-memory matrices apply what changed after
    theirs), `created_at` tells a session erased and begun again from the one before."""

    changed_at: datetime
    change_seq: int
    created_at: datetime


async def session_version(conn: Connection, session_id: str) -> SessionVersion | None:
    """Where the session stands now (None: no such session)."""
    row = await conn.fetchrow(
        "SELECT changed_at, change_seq, created_at FROM sessions WHERE session_id = $1",
        session_id,
    )
    return SessionVersion(**dict(row)) if row is not None else None


async def count_session_faces(conn: Connection, session_id: str, model_id: str) -> int:
    """How many faces of the session one model pack made (from the B-tree)."""
    count: int = await conn.fetchval(
        "SELECT count(*) FROM face_embeddings WHERE session_id = $1 AND model_id = $2",
        session_id,
        model_id,
    )
    return count


@dataclass(frozen=True)
class SessionFaces:
    """Faces of a session made by one model pack, as of `version` (one snapshot): every face
    (in chunks), or (FaceChanges) those of the photos changed after a change number."""

    version: SessionVersion
    photo_ids: list[str]
    embeddings: list[Vector]  # decoded to numpy by the caller, off the event loop


async def load_session_faces(
    conn: Connection,
    session_id: str,
    model_id: str,
    consume: Callable[[SessionFaces], Awaitable[None]],
    *,
    chunk_rows: int = 4096,
) -> SessionVersion | None:
    """The session's faces, handed to `consume` `chunk_rows` at a time, and the version they
    are as of, read in one snapshot (so they agree); a chunk at a time, so neither the event
    loop nor the memory holds the whole session. None: no such session."""
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        version = await session_version(conn, session_id)
        if version is None:
            return None
        cursor = await conn.cursor(
            "SELECT photo_id, embedding FROM face_embeddings "
            "WHERE session_id = $1 AND model_id = $2",
            session_id,
            model_id,
        )
        while rows := await cursor.fetch(chunk_rows):
            await consume(
                SessionFaces(version, [r["photo_id"] for r in rows], [r["embedding"] for r in rows])
            )
        return version


@dataclass(frozen=True)
class FaceChanges:
    """What changed in a session's faces after change number `since`, as of `faces.version`:
    every photo whose faces changed (indexed again, failed, erased) and the current faces of
    those photos (none for the failed and erased)."""

    since: int
    photos: list[str]
    faces: SessionFaces


async def load_face_changes(
    conn: Connection, session_id: str, model_id: str, since: int
) -> FaceChanges | None:
    """The session's face changes after `since`, with its version, in one snapshot (so they
    agree: the writes of a session commit in change order). None: no such session."""
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        version = await session_version(conn, session_id)
        if version is None:
            return None
        rows = await conn.fetch(
            """
            SELECT photo_id FROM photos WHERE session_id = $1 AND change_seq > $2
            UNION
            SELECT photo_id FROM erased_photos WHERE session_id = $1 AND change_seq > $2
            """,
            session_id, since,
        )  # fmt: skip
        photos = [row["photo_id"] for row in rows]
        faces = SessionFaces(version, [], [])
        if photos:
            found = await conn.fetch(
                "SELECT photo_id, embedding FROM face_embeddings "
                "WHERE session_id = $1 AND model_id = $2 AND photo_id = ANY($3::text[])",
                session_id, model_id, photos,
            )  # fmt: skip
            for row in found:
                faces.photo_ids.append(row["photo_id"])
                faces.embeddings.append(row["embedding"])
        return FaceChanges(since, photos, faces)

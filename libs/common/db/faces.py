"""The per-session face query behind a selfie search.

Exact by construction: the session's faces are selected by the B-tree on (session_id,
model_id) and every one is compared with the selfie, so no approximate index can drop a match
(the pgvector README warns that an ANN index filtered by a selective WHERE can return fewer
rows). Only faces made by the same model pack are compared. Each photo keeps its best face.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
import numpy.typing as npt

from libs.common.db.photos import Connection


@dataclass(frozen=True)
class PhotoMatch:
    photo_id: str
    similarity: float
    bbox: list[float]
    object_key: str


SEARCH_SQL = """
WITH best AS (
    SELECT DISTINCT ON (photo_id) photo_id, bbox, embedding <=> $1 AS distance
    FROM face_embeddings
    WHERE session_id = $2 AND model_id = $3 AND (embedding <=> $1) <= $4
    ORDER BY photo_id, distance
), top AS (
    SELECT * FROM best ORDER BY distance, photo_id LIMIT $5
)
SELECT t.photo_id, t.bbox, 1 - t.distance AS similarity,
       (SELECT p.object_key FROM photos p WHERE p.photo_id = t.photo_id) AS object_key
FROM top t
ORDER BY t.distance, t.photo_id
"""


async def search_session(
    conn: Connection,
    *,
    session_id: str,
    model_id: str,
    embedding: npt.NDArray[np.float32],
    threshold: float,
    limit: int,
) -> list[PhotoMatch]:
    """Photos of the session with a face at cosine similarity >= threshold, best first."""
    rows = await conn.fetch(SEARCH_SQL, embedding, session_id, model_id, 1.0 - threshold, limit)
    return [
        PhotoMatch(
            photo_id=row["photo_id"],
            similarity=float(row["similarity"]),
            bbox=[float(v) for v in row["bbox"]],
            object_key=row["object_key"],
        )
        for row in rows
    ]


async def session_version(conn: Connection, session_id: str) -> datetime | None:
    """When the session last changed (None: no such session); search caches key on it."""
    value: datetime | None = await conn.fetchval(
        "SELECT changed_at FROM sessions WHERE session_id = $1", session_id
    )
    return value

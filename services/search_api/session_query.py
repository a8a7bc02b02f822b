"""The exact per-session query of a selfie search: in memory when the session is huge and its
matrix is current (matrices.py), else in SQL (libs/common/db/faces.py); both give the same
answer. With SEARCH_QUERY_EXPANSION it is two passes on the same path (expansion.py)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from libs.common.db import faces as faces_db
from libs.common.db.faces import Lending, PhotoMatch, SessionVersion
from libs.common.metrics import SESSION_QUERIES
from libs.common.runtime import Runtime
from services.search_api.expansion import expanded_search
from services.search_api.matrices import MatrixMatch, session_matrices
from services.search_api.schemas import QueryExpansion

Vector = npt.NDArray[np.float32]


@dataclass(frozen=True)
class SessionQuery:
    """What one search asks of one session, as of `version`, among one model pack's faces."""

    session_id: str
    model_id: str
    version: SessionVersion
    threshold: float
    limit: int
    lending: Lending | None  # None: no query expansion


async def session_matches(
    runtime: Runtime, query: SessionQuery, embedding: Vector
) -> tuple[list[PhotoMatch], QueryExpansion]:
    """The session's photos of the selfie's person, best first, and whether the query was
    expanded. Every pass counts in SESSION_QUERIES under its path."""
    matrices = session_matrices(runtime)
    matrix = (
        await matrices.current(query.session_id, query.model_id, query.version)
        if matrices
        else None
    )
    if matrix is None:
        async with runtime.pool().acquire() as conn:

            async def sql(vector: Vector, lending: Lending | None) -> list[PhotoMatch]:
                SESSION_QUERIES.labels(path="sql").inc()
                return await faces_db.search_session(
                    conn,
                    session_id=query.session_id,
                    model_id=query.model_id,
                    embedding=vector,
                    threshold=query.threshold,
                    limit=query.limit,
                    lending=lending,
                )

            return await expanded_search(sql, embedding, query.lending, query.limit)
    search = matrix.search

    async def in_memory(vector: Vector, lending: Lending | None) -> list[MatrixMatch]:
        SESSION_QUERIES.labels(path="matrix").inc()
        return await runtime.run_cpu(search, vector, query.threshold, query.limit, lending)

    found, expansion = await expanded_search(in_memory, embedding, query.lending, query.limit)
    async with runtime.pool().acquire() as conn:
        objects = await faces_db.photo_objects(conn, query.session_id, [m.photo_id for m in found])
    # A photo erased since the version was read has no row any more: it is left out.
    matches = [
        PhotoMatch(m.photo_id, m.similarity, m.bbox, objects[m.photo_id])
        for m in found
        if m.photo_id in objects
    ]
    return matches, expansion

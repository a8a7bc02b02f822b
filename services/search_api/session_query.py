"""The exact per-session query of a selfie search, in SQL (libs/common/db/faces.py): over the
session's faces, or, when the session is huge and this process holds its matrix current
(matrices.py), over the candidate photos the matrix's scan names, which hold every match (the
same answer, from a few hundred rows instead of all). With SEARCH_QUERY_EXPANSION it is two
passes on the same path (expansion.py)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from libs.common.db import faces as faces_db
from libs.common.db.faces import Lending, PhotoMatch, SessionVersion
from libs.common.metrics import SESSION_QUERIES
from libs.common.runtime import Runtime
from services.search_api.expansion import expanded_search
from services.search_api.matrices import session_matrices
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

    async def exact(vector: Vector, lending: Lending | None) -> list[PhotoMatch]:
        candidates = None
        if matrix is not None:  # the scan names the only photos that can match
            SESSION_QUERIES.labels(path="matrix").inc()
            candidates = await runtime.run_cpu(
                matrix.candidates, vector, query.threshold, query.limit
            )
            if not candidates:
                return []
        else:
            SESSION_QUERIES.labels(path="sql").inc()
        async with runtime.pool().acquire() as conn:
            return await faces_db.search_session(
                conn,
                session_id=query.session_id,
                model_id=query.model_id,
                embedding=vector,
                threshold=query.threshold,
                limit=query.limit,
                lending=lending,
                photo_ids=candidates,
            )

    return await expanded_search(exact, embedding, query.lending, query.limit)

"""One to three selfies of one person, prepared and combined into one search.

Each selfie is decoded and its face embedded as a single one would be (concurrently, in the CPU
pool); one without a face, or bytes that are no image, fail the whole search with the problem a
single selfie gets, naming which selfie it was. The embeddings are then combined the way
SEARCH_SELFIES_FUSION says (docs/faces.md has the measurement): `mean` searches once with their
L2-normalised mean (a "user vector": the person's face averaged over poses and light), `max`
searches once per selfie and keeps each photo at its best similarity to any of them.

Nothing of any selfie outlives the request (see search.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import numpy as np

from libs.common.db.faces import PhotoMatch
from libs.common.face.errors import NoFaceError
from libs.common.face.selfie import PreparedSelfie, selfie_from_bytes
from libs.common.http.problems import ApiError, image_problem
from libs.common.imaging import ImageError
from libs.common.metrics import SEARCHES
from libs.common.runtime import Runtime
from services.search_api.schemas import QueryExpansion
from services.search_api.session_query import SessionQuery, Vector, session_matches

NO_FACE = "no face was found in the selfie; use a clear, front-facing photo"


async def prepare_selfies(runtime: Runtime, selfies: Sequence[bytes]) -> list[PreparedSelfie]:
    """Every selfie's face, or the problem of the first selfie that has none or is no image."""
    engine, face = runtime.face_engine(), runtime.settings.face
    outcomes = await asyncio.gather(
        *(runtime.run_cpu(selfie_from_bytes, engine, data, face) for data in selfies),
        return_exceptions=True,
    )
    for number, outcome in enumerate(outcomes, start=1):
        which = f" (selfie {number} of {len(selfies)})" if len(selfies) > 1 else ""
        extra = {"selfie": number} if len(selfies) > 1 else None
        if isinstance(outcome, ImageError):
            SEARCHES.labels(outcome="invalid").inc()
            problem = image_problem(outcome)
            raise ApiError(
                problem.status_code, problem.slug, f"{problem.detail}{which}", extra=extra
            ) from outcome
        if isinstance(outcome, NoFaceError):
            SEARCHES.labels(outcome="no_face").inc()
            raise ApiError(422, "no-face", NO_FACE + which, extra=extra) from outcome
        if isinstance(outcome, BaseException):
            raise outcome
    return [o for o in outcomes if isinstance(o, PreparedSelfie)]


def fused(embeddings: Sequence[Vector]) -> Vector:
    """The L2-normalised mean of unit embeddings (one embedding: itself, unchanged)."""
    if len(embeddings) == 1:
        return embeddings[0]
    total: Vector = np.stack(embeddings).astype(np.float32).sum(axis=0)
    norm = float(np.linalg.norm(total))
    return (total / norm).astype(np.float32) if norm > 0 else embeddings[0]


def best_of(answers: Sequence[list[PhotoMatch]], limit: int) -> list[PhotoMatch]:
    """Each photo once, at its best similarity over the answers, best first, at most `limit`."""
    best: dict[str, PhotoMatch] = {}
    for matches in answers:
        for match in matches:
            kept = best.get(match.photo_id)
            if kept is None or match.similarity > kept.similarity:
                best[match.photo_id] = match
    return sorted(best.values(), key=lambda m: (-m.similarity, m.photo_id))[:limit]


async def selfies_matches(
    runtime: Runtime, query: SessionQuery, embeddings: Sequence[Vector]
) -> tuple[list[PhotoMatch], QueryExpansion]:
    """The session's photos of the person the selfies show, best first."""
    if len(embeddings) == 1 or runtime.settings.search.selfies_fusion == "mean":
        return await session_matches(runtime, query, fused(embeddings))
    answers = [await session_matches(runtime, query, e) for e in embeddings]
    expansion = QueryExpansion(
        used=any(e.used for _, e in answers), faces=sum(e.faces for _, e in answers)
    )
    return best_of([m for m, _ in answers], query.limit), expansion

"""A selfie search: decode → pick the selfie's face → embed → exact per-session query →
best face per photo → presigned URLs. Cached in Redis by a keyed hash of the selfie.

The selfie lives only in this request's memory: its bytes and its embedding are never written
to a database, a cache, a topic or a log.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime

import msgspec
import numpy as np
import numpy.typing as npt

from libs.common.db import faces as faces_db
from libs.common.db.faces import PhotoMatch
from libs.common.face.errors import NoFaceError
from libs.common.face.selfie import selfie_from_bytes
from libs.common.http.problems import ApiError, image_problem
from libs.common.imaging import ImageError
from libs.common.metrics import SEARCHES, SESSION_QUERIES, STAGE_SECONDS
from libs.common.runtime import Runtime
from services.search_api.cache import CacheKeyParts, SearchCache
from services.search_api.matrices import session_matrices
from services.search_api.schemas import (
    MatchedFace,
    QueryFace,
    SearchResponse,
    SearchResult,
)


@dataclass(frozen=True)
class SearchRequest:
    session_id: str
    selfie: bytes
    threshold: float
    limit: int


def _ms_since(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 1)


def _stage(name: str, start: float) -> float:
    now = time.perf_counter()
    STAGE_SECONDS.labels("search", name).observe(now - start)
    return now


async def run_search(
    runtime: Runtime, cache: SearchCache | None, req: SearchRequest
) -> SearchResponse:
    started = time.perf_counter()
    engine = runtime.face_engine()
    async with runtime.pool().acquire() as conn:
        version = await faces_db.session_version(conn, req.session_id)
    parts = CacheKeyParts(req.session_id, version, req.threshold, req.limit, engine.pack.id)
    key = await cache.key(req.selfie, parts) if cache else None
    cached = await cache.get(key) if cache else None
    if cached is not None:
        SEARCHES.labels(outcome="cached").inc()
        return msgspec.structs.replace(cached, took_ms=_ms_since(started))
    mark = _stage("cache", started)

    try:
        prepared = await runtime.run_cpu(
            selfie_from_bytes, engine, req.selfie, runtime.settings.face
        )
    except ImageError as exc:
        SEARCHES.labels(outcome="invalid").inc()
        raise image_problem(exc) from exc
    except NoFaceError as exc:
        SEARCHES.labels(outcome="no_face").inc()
        raise ApiError(
            422, "no-face", "no face was found in the selfie; use a clear, front-facing photo"
        ) from exc
    mark = _stage("selfie", mark)
    selfie, scale = prepared.result, prepared.scale

    matches = []
    if version is not None:  # an unknown session answers like an empty one
        matches = await _session_matches(
            runtime, req, engine.pack.id, selfie.face.embedding, version
        )
        mark = _stage("query", mark)
    store, expires = runtime.objects(), runtime.settings.search.url_expires_s
    results = [
        SearchResult(
            photo_id=m.photo_id,
            similarity=round(m.similarity, 4),
            face=MatchedFace(bbox=[round(v, 1) for v in m.bbox]),
            url=await store.presigned_url(m.object_key, expires),
        )
        for m in matches
    ]
    _stage("presign", mark)
    response = SearchResponse(
        session_id=req.session_id,
        results=results,
        query_face=QueryFace(
            bbox=[round(v * scale, 1) for v in selfie.face.bbox],
            det_score=round(selfie.face.det_score, 4),
            faces_in_selfie=selfie.faces_in_selfie,
        ),
        threshold=req.threshold,
        took_ms=_ms_since(started),
    )
    if cache is not None:
        await cache.put(key, response)
    SEARCHES.labels(outcome="results" if results else "empty").inc()
    return response


async def _session_matches(
    runtime: Runtime,
    req: SearchRequest,
    model_id: str,
    embedding: npt.NDArray[np.float32],
    version: datetime,
) -> list[PhotoMatch]:
    """The exact per-session query: in memory when the session is huge and its matrix is
    current (see matrices.py), else in SQL. Both give the same answer."""
    matrices = session_matrices(runtime)
    matrix = matrices.current(req.session_id, model_id, version) if matrices else None
    if matrix is None:
        SESSION_QUERIES.labels(path="sql").inc()
        async with runtime.pool().acquire() as conn:
            return await faces_db.search_session(
                conn,
                session_id=req.session_id,
                model_id=model_id,
                embedding=embedding,
                threshold=req.threshold,
                limit=req.limit,
            )
    SESSION_QUERIES.labels(path="matrix").inc()
    found = await runtime.run_cpu(matrix.search, embedding, req.threshold, req.limit)
    async with runtime.pool().acquire() as conn:
        keys = await faces_db.object_keys(conn, [m.photo_id for m in found])
    # A photo erased since the version was read has no key any more: it is left out.
    return [
        PhotoMatch(m.photo_id, m.similarity, m.bbox, keys[m.photo_id])
        for m in found
        if m.photo_id in keys
    ]

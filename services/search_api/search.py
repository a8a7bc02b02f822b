"""A selfie search: decode → pick the selfie's face → embed → exact per-session query (and,
with SEARCH_QUERY_EXPANSION, a second one: expansion.py) → best face per photo → presigned URLs.
Cached in Redis by a keyed hash of the selfie.

The selfie lives only in this request's memory: its bytes, its embedding and any query refined
from it are never written to a database, a cache, a topic or a log.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import msgspec

from libs.common.db import faces as faces_db
from libs.common.db.faces import PhotoMatch
from libs.common.face.errors import NoFaceError
from libs.common.face.selfie import selfie_from_bytes
from libs.common.http.problems import ApiError, image_problem
from libs.common.imaging import ImageError
from libs.common.metrics import SEARCHES, STAGE_SECONDS
from libs.common.runtime import Runtime
from services.search_api.cache import CacheKeyParts, SearchCache
from services.search_api.expansion import NOT_USED, lending_for
from services.search_api.schemas import MatchedFace, QueryFace, SearchResponse, SearchResult
from services.search_api.session_query import SessionQuery, session_matches


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
    lending = lending_for(runtime.settings.search, req.threshold)
    parts = CacheKeyParts(
        req.session_id,
        version,
        req.threshold,
        req.limit,
        engine.pack.id,
        selfie_flip=runtime.settings.face.selfie_flip,
        lending=lending,
    )
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

    matches: list[PhotoMatch] = []
    expansion = NOT_USED
    if version is not None:  # an unknown session answers like an empty one
        query = SessionQuery(
            req.session_id, engine.pack.id, version, req.threshold, req.limit, lending
        )
        matches, expansion = await session_matches(runtime, query, selfie.face.embedding)
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
        query_expansion=expansion,
    )
    if cache is not None:
        await cache.put(key, response)
    SEARCHES.labels(outcome="results" if results else "empty").inc()
    return response

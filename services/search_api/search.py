"""A selfie search: decode → pick each selfie's face → embed → combine (selfies.py) → exact
per-session query (and, with SEARCH_QUERY_EXPANSION, a second one: expansion.py) → best face
per photo → presigned URLs of its thumbnail, preview and original. Cached in Redis by a keyed
hash of the selfies.

The selfies live only in this request's memory: their bytes, their embeddings and any query
refined from them are never written to a database, a cache, a topic or a log.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import msgspec

from libs.common.db import faces as faces_db
from libs.common.db.faces import PhotoMatch
from libs.common.face.selfie import PreparedSelfie
from libs.common.metrics import SEARCHES, STAGE_SECONDS
from libs.common.runtime import Runtime
from services.search_api.cache import CacheKeyParts, SearchCache
from services.search_api.expansion import NOT_USED, lending_for
from services.search_api.schemas import MatchedFace, QueryFace, SearchResponse, SearchResult
from services.search_api.selfies import prepare_selfies, selfies_matches
from services.search_api.session_query import SessionQuery


@dataclass(frozen=True)
class SearchRequest:
    session_id: str
    selfies: tuple[bytes, ...]  # 1-3 of one person
    threshold: float
    limit: int


def _ms_since(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 1)


def _stage(name: str, start: float) -> float:
    now = time.perf_counter()
    STAGE_SECONDS.labels("search", name).observe(now - start)
    return now


def _query_face(prepared: PreparedSelfie) -> QueryFace:
    """A selfie's face, its box in the uploaded selfie's pixels."""
    selfie, scale = prepared.result, prepared.scale
    return QueryFace(
        bbox=[round(v * scale, 1) for v in selfie.face.bbox],
        det_score=round(selfie.face.det_score, 4),
        faces_in_selfie=selfie.faces_in_selfie,
    )


async def signed_result(runtime: Runtime, match: PhotoMatch) -> SearchResult:
    """A match with its links signed."""
    store, search = runtime.objects(), runtime.settings.search
    objects = match.objects

    async def signed(key: str | None, bucket: str | None = None) -> str | None:
        return None if key is None else await store.presigned_url(key, search.url_expires_s, bucket)

    preview = await signed(objects.preview_key)
    original = await signed(objects.object_key, objects.object_bucket) if search.originals else None
    return SearchResult(
        photo_id=match.photo_id,
        similarity=round(match.similarity, 4),
        face=MatchedFace(bbox=[round(v, 1) for v in match.bbox]),
        thumbnail_url=await signed(objects.thumbnail_key),
        preview_url=preview,
        original_url=original,
        width=objects.width,
        height=objects.height,
        url=original if search.originals else preview,
    )


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
        originals=runtime.settings.search.originals,
        fusion=runtime.settings.search.selfies_fusion,
    )
    key = await cache.key(req.selfies, parts) if cache else None
    cached = await cache.get(key) if cache else None
    if cached is not None:
        SEARCHES.labels(outcome="cached").inc()
        return msgspec.structs.replace(cached, took_ms=_ms_since(started))
    mark = _stage("cache", started)

    prepared = await prepare_selfies(runtime, req.selfies)
    mark = _stage("selfie", mark)

    matches: list[PhotoMatch] = []
    expansion = NOT_USED
    if version is not None:  # an unknown session answers like an empty one
        query = SessionQuery(
            req.session_id, engine.pack.id, version, req.threshold, req.limit, lending
        )
        embeddings = [p.result.face.embedding for p in prepared]
        matches, expansion = await selfies_matches(runtime, query, embeddings)
        mark = _stage("query", mark)
    results = [await signed_result(runtime, m) for m in matches]
    _stage("presign", mark)
    query_faces = [_query_face(p) for p in prepared]
    response = SearchResponse(
        session_id=req.session_id,
        results=results,
        query_face=query_faces[0],
        threshold=req.threshold,
        took_ms=_ms_since(started),
        query_expansion=expansion,
        query_faces=query_faces,
    )
    if cache is not None:
        await cache.put(key, response)
    SEARCHES.labels(outcome="results" if results else "empty").inc()
    return response

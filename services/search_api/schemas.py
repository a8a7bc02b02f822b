"""Request and response shapes of POST /api/v2/search (documented in the OpenAPI schema)."""

from __future__ import annotations

from dataclasses import dataclass

import msgspec
from litestar.datastructures import UploadFile


@dataclass
class SearchForm:
    """multipart/form-data of POST /api/v2/search."""

    session_id: str
    file: UploadFile
    #: Cosine similarity a face must reach, between SEARCH_MIN_THRESHOLD and 1; default: the
    #: model pack's calibrated threshold (or FACE_SIMILARITY_THRESHOLD).
    threshold: float | None = None
    #: Most photos returned, 1..1000 (default SEARCH_DEFAULT_LIMIT).
    limit: int | None = None


# The answer is msgspec structs: Litestar documents and encodes them, and the cache stores and
# reads the very same type (cache.py), so no hand-written dict mapping sits in between.


class MatchedFace(msgspec.Struct, frozen=True):
    bbox: list[float]


class SearchResult(msgspec.Struct, frozen=True):
    photo_id: str
    similarity: float
    face: MatchedFace
    #: Presigned GET URL of the photo (expires after SEARCH_URL_EXPIRES_S).
    url: str


class QueryFace(msgspec.Struct, frozen=True):
    bbox: list[float]
    det_score: float
    faces_in_selfie: int


class SearchResponse(msgspec.Struct, frozen=True):
    session_id: str
    results: list[SearchResult]
    query_face: QueryFace
    threshold: float
    took_ms: float

"""Request and response shapes of POST /api/v2/search (documented in the OpenAPI schema)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import msgspec
from litestar.datastructures import UploadFile
from litestar.params import Parameter

from libs.common.http.openapi import ID
from libs.common.settings import SearchSettings

MAX_LIMIT = 1000
#: The threshold floor the document states: SEARCH_MIN_THRESHOLD's default. The document is
#: built from types, not settings; a deployment that changes the floor enforces its own.
DOCUMENTED_MIN_THRESHOLD: float = SearchSettings.model_fields["min_threshold"].default


@dataclass
class SearchForm:
    """multipart/form-data of POST /api/v2/search. The bounds are documented here and checked
    by the controller (`_validated`), which names every bad field at once."""

    session_id: ID
    file: UploadFile
    threshold: Annotated[
        float | None,
        Parameter(
            ge=DOCUMENTED_MIN_THRESHOLD,
            le=1.0,
            description="Cosine similarity a face must reach, from SEARCH_MIN_THRESHOLD "
            f"(default {DOCUMENTED_MIN_THRESHOLD}) to 1; default: the model pack's calibrated "
            "threshold (or FACE_SIMILARITY_THRESHOLD)",
        ),
    ] = None
    limit: Annotated[
        int | None,
        Parameter(
            ge=1, le=MAX_LIMIT, description="Most photos returned (default SEARCH_DEFAULT_LIMIT)"
        ),
    ] = None


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


class QueryExpansion(msgspec.Struct, frozen=True):
    """Whether the session's surest matches refined the query (SEARCH_QUERY_EXPANSION) and
    how many faces they lent; `used` is false when the switch is off or none was sure enough."""

    used: bool
    faces: int


class SearchResponse(msgspec.Struct, frozen=True):
    session_id: str
    results: list[SearchResult]
    query_face: QueryFace
    threshold: float
    took_ms: float
    query_expansion: QueryExpansion

"""Request and response shapes of POST /api/v2/search (documented in the OpenAPI schema)."""

# No `from __future__ import annotations` here: Litestar resolves a multipart form's type
# hints on every request, and string annotations cost a compile and an eval each time (the
# search form's hints: 188 -> 17 us; cached searches at c=10, four alternating rounds:
# 750-930 -> 1100-1390 answers/s, p95 14-19 -> 9-14 ms); test_form_annotations.py keeps it.

from dataclasses import dataclass
from typing import Annotated

import msgspec
from litestar.datastructures import UploadFile
from litestar.params import Parameter

from libs.common.http.openapi import ID
from libs.common.settings import SearchSettings

MAX_LIMIT = 1000
#: Most selfies one search takes.
MAX_SELFIES = 3
#: The threshold floor the document states: SEARCH_MIN_THRESHOLD's default. The document is
#: built from types, not settings; a deployment that changes the floor enforces its own.
DOCUMENTED_MIN_THRESHOLD: float = SearchSettings.model_fields["min_threshold"].default


#: The `file` parts of a search or a subscription: one person's selfies.
Selfies = Annotated[
    list[UploadFile],
    Parameter(
        min_items=1,
        max_items=MAX_SELFIES,
        description=f"1-{MAX_SELFIES} selfies of the same person (repeat the part): more poses "
        "and light find more of their photos (docs/faces.md)",
    ),
]


@dataclass
class SearchForm:
    """multipart/form-data of POST /api/v2/search. The bounds are documented here and checked
    by the controller (`_validated`), which names every bad field at once."""

    session_id: ID
    file: Selfies
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
    """One photo. The links are presigned GETs that expire after SEARCH_URL_EXPIRES_S; a photo
    indexed before renditions existed has no thumbnail or preview until `facepass renditions
    backfill` has run, and `original_url` is null when SEARCH_ORIGINALS=false."""

    photo_id: str
    similarity: float
    face: Annotated[
        MatchedFace,
        msgspec.Meta(
            description="The matched face; its bbox (x1, y1, x2, y2) is in the "
            "photo's own upright pixels (`width` x `height`)."
        ),
    ]
    thumbnail_url: Annotated[
        str | None,
        msgspec.Meta(
            description="Presigned link to a small copy for a result grid "
            "(RENDITION_THUMBNAIL_SIDE, 400 px long side); null until the photo has "
            "renditions."
        ),
    ]
    preview_url: Annotated[
        str | None,
        msgspec.Meta(
            description="Presigned link to a screen-size copy (RENDITION_PREVIEW_SIDE, "
            "1600 px), watermarked when one is set; null until the photo has "
            "renditions."
        ),
    ]
    original_url: Annotated[
        str | None,
        msgspec.Meta(
            description="Presigned link to the photo as uploaded; null when the "
            "event withholds originals (SEARCH_ORIGINALS=false)."
        ),
    ]
    width: Annotated[int | None, msgspec.Meta(description="The photo's upright width in pixels.")]
    height: Annotated[int | None, msgspec.Meta(description="The photo's upright height in pixels.")]
    url: Annotated[
        str | None,
        msgspec.Meta(
            description="What v2.0 clients download: `original_url`, or "
            "`preview_url` when originals are withheld."
        ),
    ]


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
    #: The (first) selfie's face; `query_faces` has every selfie's, in the order sent.
    query_face: QueryFace
    threshold: float
    took_ms: float
    query_expansion: QueryExpansion
    query_faces: list[QueryFace] = msgspec.field(default_factory=list)


# --- "notify me": consented match subscriptions (subscriptions.py) -----------------------------


@dataclass
class SubscribeForm:
    """multipart/form-data of POST /api/v2/subscriptions."""

    session_id: ID
    file: Selfies
    consent: Annotated[
        bool,
        Parameter(
            description="Must be true: the attendee agrees that their face's embedding is "
            "kept until the subscription expires (SEARCH_SUBSCRIPTION_DAYS) or is deleted, "
            "to match photos that arrive later"
        ),
    ]


class SubscriptionCreated(msgspec.Struct, frozen=True):
    subscription_id: str
    token: Annotated[
        str,
        msgspec.Meta(
            description="Shown once: it names the subscription in GET .../photos and "
            "DELETE; FacePass keeps only its SHA-256. Give it to no one else."
        ),
    ]
    session_id: str
    consented_at: str
    expires_at: str
    photos_so_far: Annotated[
        int,
        msgspec.Meta(
            description="Photos of the person already in the session (listed by GET "
            ".../photos, never announced as new)."
        ),
    ]


class SubscriptionPhotos(msgspec.Struct, frozen=True):
    """Every photo matched so far, best first: those already in the session when the
    subscription was made, and each new one announced since."""

    subscription_id: str
    session_id: str
    expires_at: str
    results: list[SearchResult]

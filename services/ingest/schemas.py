"""Request and response shapes of the ingest routes (documented in the OpenAPI schema)."""

# No `from __future__ import annotations` here: Litestar resolves a multipart form's type
# hints on every request, and string annotations cost a compile and an eval each time
# (see services/search_api/schemas.py).

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from litestar.datastructures import UploadFile

from libs.common.http.openapi import ID

PhotoStatus = Literal["queued", "indexed", "failed"]


@dataclass
class IndexForm:
    """multipart/form-data of POST /api/v2/index (ids are checked by validation.py)."""

    photo_id: ID
    session_id: ID
    file: UploadFile


@dataclass(frozen=True)
class IndexAccepted:
    photo_id: str
    session_id: str
    status: PhotoStatus
    status_url: str
    #: True when the same photo with the same bytes was already queued or indexed (no-op).
    duplicate: bool


@dataclass(frozen=True)
class RejectedFaceOut:
    reason: str
    bbox: list[float]


@dataclass(frozen=True)
class PhotoStatusOut:
    photo_id: str
    session_id: str
    status: PhotoStatus
    faces_indexed: int
    faces_rejected: list[RejectedFaceOut]
    model: str | None
    error: str | None
    indexed_at: datetime | None


@dataclass(frozen=True)
class PhotoErased:
    photo_id: str
    session_id: str
    objects_deleted: int


@dataclass(frozen=True)
class SessionErased:
    session_id: str
    photos_erased: int
    objects_deleted: int

"""Kafka event contracts: what flows between ingest, upstream systems, the embedder and clients.

These pydantic models are the source of the JSON Schemas committed in `schemas/` (tests fail
when the files drift) and are used directly by the services. `photos.uploaded` is a public
contract: an upstream system that already stores its photos in S3 publishes it itself with an
object reference, no HTTP upload needed (see docs/events.md).
"""

from __future__ import annotations

import hashlib
import re
import uuid
from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

#: Photo and session ids: 1-128 characters of letters, digits and `._:-`, starting with a letter
#: or digit, never two dots in a row. No slashes and no `..`, so an id can never walk out of its
#: S3 prefix. (The pattern has no look-ahead: pydantic's regex engine has none, so the length
#: is a separate bound.)
ID_PATTERN = r"^[A-Za-z0-9](?:\.?[A-Za-z0-9_:-])*\.?$"
ID_MAX_LENGTH = 128
Identifier = Annotated[str, StringConstraints(pattern=ID_PATTERN, max_length=ID_MAX_LENGTH)]
_ID = re.compile(ID_PATTERN)


def is_valid_id(value: str) -> bool:
    """Whether `value` is a valid photo or session id (the rule of `Identifier`)."""
    return len(value) <= ID_MAX_LENGTH and _ID.fullmatch(value) is not None


RejectReason = Literal["too_small", "low_score", "blurry", "extreme_pose", "over_limit"]
BBox = Annotated[list[float], Field(min_length=4, max_length=4, description="x1, y1, x2, y2")]


def _now() -> datetime:
    return datetime.now(UTC)


def _event_id() -> str:
    return uuid.uuid4().hex


class _Event(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    event_id: str = Field(default_factory=_event_id, max_length=64)


class ObjectRef(BaseModel):
    """Where the photo bytes are: a bucket and key on the S3 endpoint FacePass is configured for."""

    model_config = ConfigDict(frozen=True)

    bucket: Annotated[str, StringConstraints(min_length=3, max_length=63)]
    key: Annotated[str, StringConstraints(min_length=1, max_length=1024)]


class PhotoUploaded(_Event):
    """`facepass.photos.uploaded.v1` (Kafka key: photo_id): a photo to index."""

    photo_id: Identifier
    session_id: Identifier
    object: ObjectRef
    content_sha256: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")] | None = None
    content_type: str | None = Field(default=None, max_length=100)
    size_bytes: int | None = Field(default=None, ge=0)
    uploaded_at: datetime = Field(
        default_factory=_now,
        description="When the photo was accepted. Erasures newer than this skip the event.",
    )
    source: str = Field(default="upstream", max_length=64, description="Who published it.")


class RejectedFace(BaseModel):
    model_config = ConfigDict(frozen=True)

    reason: RejectReason
    bbox: BBox


class StageTimings(BaseModel):
    model_config = ConfigDict(frozen=True)

    download_ms: float = 0.0
    decode_ms: float = 0.0
    detect_ms: float = 0.0
    embed_ms: float = 0.0
    render_ms: float = Field(default=0.0, description="Making the thumbnail and preview.")
    db_ms: float = 0.0
    total_ms: float = Field(
        default=0.0,
        description="Sum of the stage times: work done for this photo, not its latency (stages "
        "of a batch overlap; detect/embed are the photo's share of batched inference).",
    )


class PhotoIndexed(_Event):
    """`facepass.photos.indexed.v1` (key: photo_id): a photo's faces are searchable."""

    photo_id: Identifier
    session_id: Identifier
    faces_indexed: int = Field(ge=0)
    faces_rejected: list[RejectedFace] = Field(default_factory=list)
    model_id: str
    timings: StageTimings
    indexed_at: datetime = Field(default_factory=_now)


ErrorKind = Literal[
    "invalid_event", "missing_object", "unsupported_image", "corrupt_image", "image_too_large",
    "photo_conflict", "processing_error",
]  # fmt: skip


class SourceRecord(BaseModel):
    """Where the failed message was, and its bytes, so it can be inspected and replayed."""

    model_config = ConfigDict(frozen=True)

    topic: str
    partition: int
    offset: int
    key: str | None = None
    value: str = Field(description="The message value as UTF-8 text (invalid bytes replaced).")


class PhotoFailed(_Event):
    """`facepass.photos.dlq.v1`: a message that could not be indexed, with the reason."""

    photo_id: str | None = None
    session_id: str | None = None
    error_kind: ErrorKind
    error: str = Field(max_length=2000)
    attempts: int = Field(ge=1)
    failed_at: datetime = Field(default_factory=_now)
    source: SourceRecord


def matched_event_id(subscription_id: str, photo_id: str) -> str:
    """The id of the (subscription, photo) pair's event: the same on every publication of the
    pair (a replay, a re-index), so a consumer drops the repeats by it."""
    return hashlib.sha256(f"{subscription_id}\x00{photo_id}".encode()).hexdigest()[:32]


class PhotoMatched(_Event):
    """`facepass.photos.matched.v1` (key: subscription_id): a photo new to the session shows
    the person of a live "notify me" subscription. Published at least once per pair, always
    with the same `event_id` (`matched_event_id`): deliver each event id once."""

    subscription_id: str = Field(max_length=64)
    session_id: Identifier
    photo_id: Identifier
    similarity: float = Field(ge=-1.0, le=1.0)
    bbox: BBox
    model_id: str
    matched_at: datetime = Field(default_factory=_now)


#: Every event model and the file its JSON Schema is committed to, under schemas/.
EVENT_SCHEMAS: dict[str, type[BaseModel]] = {
    "photos.uploaded.v1.schema.json": PhotoUploaded,
    "photos.indexed.v1.schema.json": PhotoIndexed,
    "photos.dlq.v1.schema.json": PhotoFailed,
    "photos.matched.v1.schema.json": PhotoMatched,
}
